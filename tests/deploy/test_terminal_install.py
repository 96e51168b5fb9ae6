"""docs/deploy.md's terminal installation, run as written: the centre's block builds the
wheelhouse and the tarball from a copy of this checkout, the terminal's block unpacks it and
installs with ``--no-index --require-hashes`` in a network namespace of its own (no route to any
index), then ``kiosk --version`` answers from that venv. The commands are read from the
document, so the two cannot drift: only the lines that need a real station (the units, the
kiosk user, a reboot) are left out, by name, and the ``apt-get`` lines are checked against the
Debian archive instead of run.

Slow: the wheelhouse (pip's cache keeps downloads and compiled wheels) and a Kivy install.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.venvs import REPO, block, installed, pip_env, run, source_copy

pytestmark = pytest.mark.slow

CENTRE = "# at the centre: build the terminal's wheelhouse"
TERMINAL = "# on the terminal: install from the wheelhouse, no package index"
NEEDS_A_STATION = (  # root on a real terminal: units, users, the kiosk's own account, a reboot
    "/opt/station-kiosk/deploy/install ",
    "install -o root -g kiosk ",
    "sudo -u kiosk ",
    "reboot",
)


def apt_packages(command: str) -> list[str]:
    words = shlex.split(command, comments=True)
    assert words[:2] == ["apt-get", "install"], command
    return [w for w in words[2:] if not w.startswith("-")]


def test_the_documented_blocks_are_what_this_test_runs() -> None:
    centre, terminal = block(CENTRE), block(TERMINAL)
    assert [c.split()[0] for c in centre] == ["apt-get", "scripts/wheelhouse", "tar"]
    assert any("--no-index" in c and "--require-hashes" in c for c in terminal)
    skipped = [c for c in terminal if c.startswith(NEEDS_A_STATION)]
    assert len(skipped) == len(NEEDS_A_STATION)  # each left-out line is still in the document


def test_the_apt_get_lines_name_packages_debian_has() -> None:
    named = apt_packages(block(CENTRE)[0]) + apt_packages(block(TERMINAL)[0])
    shown = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", *named],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    known = set(re.findall(r"^Package: (\S+)$", shown, flags=re.M))
    assert set(named) - known == set(), "not in this machine's Debian archive"
    assert "libpcsclite1" in known  # the check reads what apt-cache says
    # the centre compiles pyscard and pycups: its build packages are the ones bootstrap installs
    bootstrap = (REPO / "scripts" / "bootstrap").read_text()
    assert all(p in bootstrap for p in apt_packages(block(CENTRE)[0]))


def offline(argv: list[str]) -> list[str]:
    """``argv`` in a network namespace of its own, when this machine lets us make one."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--net", "true"], check=False).returncode == 0:
        return [unshare, "--net", *argv]
    return argv  # not root: --no-index alone keeps pip off the network


def test_a_terminal_installs_from_the_wheelhouse_with_no_index(tmp_path: Path) -> None:
    checkout = source_copy(tmp_path / "checkout")
    srv, opt = tmp_path / "srv", tmp_path / "opt"

    def here(command: str) -> str:
        return command.replace("/srv/station-kiosk", str(srv)).replace(
            "/opt/station-kiosk", str(opt)
        )

    srv.mkdir()
    for command in block(CENTRE)[1:]:  # apt-get: checked above
        run(["bash", "-euo", "pipefail", "-c", here(command)], checkout, pip_env(), timeout=1800)
    wheels = {p.name.split("-")[0].lower() for p in (srv / "wheelhouse").glob("*.whl")}
    assert {"kivy", "pyscard", "pycups", "station_kiosk"} <= wheels
    assert not any((srv / "wheelhouse").glob("*.tar.gz")), "an sdist would build on the station"

    said = {}
    for command in block(TERMINAL)[1:]:
        if command.startswith(NEEDS_A_STATION):
            continue
        argv = offline(["bash", "-euo", "pipefail", "-c", here(command)])
        said[command] = run(argv, srv, pip_env(), timeout=900).stdout
    version = said["/opt/station-kiosk/venv/bin/kiosk --version"]
    assert re.fullmatch(r"kiosk \S+\n", version), version
    venv_bin = opt / "venv" / "bin"
    assert {"station-kiosk", "kivy", "pyscard", "pycups"} <= installed(venv_bin)
    assert not installed(venv_bin) & {"sqlalchemy", "uvicorn", "swig"}
    assert (opt / "deploy" / "install").is_file() and (opt / "docs" / "deploy.md").is_file()

    # a wheel changed after the wheelhouse was built is refused, and nothing is installed
    tampered = next((opt / "wheelhouse").glob("six-*.whl"))  # as unpacked on the terminal
    tampered.write_bytes(tampered.read_bytes() + b"\0")
    install = next(c for c in block(TERMINAL) if "--require-hashes" in c)
    shutil.rmtree(opt / "venv")
    run(["python3", "-m", "venv", str(opt / "venv")], srv, pip_env())
    refused = subprocess.run(
        offline(["bash", "-c", here(install)]),
        cwd=srv,
        env=pip_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert refused.returncode != 0
    assert "DO NOT MATCH THE HASHES" in refused.stderr
    assert "kivy" not in installed(venv_bin)
