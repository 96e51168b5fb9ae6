"""``kiosk doc-key``: the public key that ``fleet enroll --doc-key-pub`` records for a station."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from flows.tokens import Signer, TokenClaims, Verdict, load_public, verify


def doc_key(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "--config", str(config), "doc-key", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_doc_key_prints_the_key_that_verifies_the_stations_tokens(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = tmp_path / "kiosk.toml"
    config.write_text(f'version = 1\n[state]\ndir = "{state}"\n')

    missing = doc_key(config)
    assert missing.returncode == 2
    assert "document-signing.key does not exist yet" in missing.stderr
    assert not (state / "document-signing.key").exists()  # nothing made behind one's back

    made = doc_key(config, "--create", "--out", str(tmp_path / "station.pub"))
    assert made.returncode == 0, made.stderr
    signer = Signer.load_or_create(state / "document-signing.key")  # the kiosk's own key
    assert made.stdout.strip() == f"key id {signer.key_id}: written to {tmp_path / 'station.pub'}"

    printed = doc_key(config)
    assert printed.returncode == 0
    assert printed.stdout.encode() == (tmp_path / "station.pub").read_bytes()
    public = load_public(printed.stdout.encode())
    claims = TokenClaims("residence_certificate", "D-1", 1_795_000_000, "ab" * 16)
    assert verify(signer.sign(claims), {signer.key_id: public}) == (Verdict.VALID, claims)
