"""``fleet document check|withdraw|list`` against a console database (SQLite)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fleet.cli import main
from fleet.console import enroll
from fleet.console.store import AuditEntry, Store
from fleet.trust.pki import CertificateAuthority
from flows.tokens import Signer, TokenClaims, public_pem, verify_url


def test_withdraw_then_check_says_withdrawn_and_the_audit_log_has_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_url = f"sqlite:///{tmp_path / 'console.sqlite3'}"
    store = Store(db_url)
    store.migrate()
    signer = Signer.load_or_create(tmp_path / "doc.key")
    with store.session() as db:
        ca = CertificateAuthority.create("test CA")
        enroll.enrol(db, ca, "zibo-gx", "st-0101", "t", doc_key_pem=public_pem(signer.public))
    claims = TokenClaims("residence_certificate", "RE0000000000000A", int(time.time()), "ab" * 16)
    url = verify_url("https://verify.example.gov.cn", signer.sign(claims))

    assert main(["document", "check", url, "--db", db_url]) == 0
    assert capsys.readouterr().out.startswith("valid: residence_certificate RE0000000000000A")
    assert main(["document", "withdraw", "re0000000000000a", "--reason", "wrong record",
                 "--as", "oper", "--db", db_url]) == 0  # fmt: skip
    assert "RE0000000000000A withdrawn" in capsys.readouterr().out
    assert main(["document", "check", url, "--db", db_url]) == 1
    assert capsys.readouterr().out.startswith("withdrawn:")
    assert main(["document", "withdraw", "RE0000000000000A", "--reason", "again",
                 "--db", db_url]) == 1  # fmt: skip
    assert "withdrawn already" in capsys.readouterr().err
    assert main(["document", "withdraw", "RE'; drop", "--reason", "x", "--db", db_url]) == 1
    assert "not a document number" in capsys.readouterr().err
    assert main(["document", "list", "--db", db_url]) == 0
    listed = capsys.readouterr().out
    assert "RE0000000000000A" in listed and "oper" in listed and "wrong record" in listed
    with store.session() as db:
        audited = [(a.actor, a.action, a.target) for a in db.query(AuditEntry)]
    assert ("oper", "withdraw_document", "document/RE0000000000000A") in audited
    store.close()
