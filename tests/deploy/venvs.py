"""Fresh virtual environments for the packaging tests: pip as an operator runs it, with this
machine's pip configuration left out (no local mirror, no extra find-links, no constraints), and
pip's own cache kept (downloads and wheels it compiled from hashed sdists are reused between runs).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEPLOY_MD = REPO / "docs" / "deploy.md"


def pip_env(**extra: str) -> dict[str, str]:
    """The environment of an operator's shell: no PYTHONPATH into this checkout, no pip
    configuration of this machine, pip's cache where it always is."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV", "KIVY_"))
    }
    env["PIP_CONFIG_FILE"] = os.devnull  # pip reads no pip.conf at all
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if "PIP_CERT" in os.environ:
        env["PIP_CERT"] = os.environ["PIP_CERT"]
    env.update(extra)
    return env


def run(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"{argv}: {done.returncode}\n{done.stdout[-3000:]}\n" + (done.stderr[-3000:])
    )
    return done


def source_copy(dest: Path) -> Path:
    """The checkout's files (tracked and new, not ignored) copied to ``dest``: a build writes
    build/ and *.egg-info beside the sources, and this checkout is shared."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = REPO / os.fsdecode(name)
        if source.is_file():  # a file deleted but not yet committed is listed and absent
            target = dest / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def lock_stanzas(lock: Path, names: tuple[str, ...]) -> str:
    """The stanzas of ``names`` in a lock (pin, hashes, comments), as bootstrap picks the build
    tools: installed first, so that sdists are built with hashed tools."""
    kept, keep = [], False
    for line in lock.read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            keep = line.split("==")[0].lower() in names
        if keep:
            kept.append(line)
    return "\n".join(kept) + "\n"


def new_venv(where: Path) -> Path:
    """A venv made by the system's python3 (Debian's, as on a station), its ``bin``."""
    python3 = shutil.which("python3") or sys.executable
    run([python3, "-m", "venv", str(where)], cwd=where.parent, env=pip_env())
    return where / "bin"


def installed(bin_dir: Path) -> set[str]:
    """The distributions in a venv, by canonical name."""
    code = (
        "from importlib import metadata\n"
        "import re\n"
        "print('\\n'.join(sorted({re.sub(r'[-_.]+', '-', d.metadata['Name']).lower()"
        " for d in metadata.distributions()})))"
    )
    done = run([str(bin_dir / "python"), "-c", code], cwd=bin_dir, env=pip_env())
    return set(done.stdout.split())


def block(first_line: str) -> list[str]:
    """The commands of the ``sh`` block that starts with ``first_line``: continuations joined,
    comments dropped."""
    blocks = re.findall(r"```sh\n(.*?)```", DEPLOY_MD.read_text(), flags=re.S)
    found = [b for b in blocks if b.startswith(first_line + "\n")]
    assert len(found) == 1, f"docs/deploy.md has {len(found)} blocks starting {first_line!r}"
    text = found[0].replace("\\\n", " ")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
