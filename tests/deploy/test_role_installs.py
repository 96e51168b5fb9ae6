"""Each role installs alone: ``pip install '.[terminal]'`` and ``pip install '.[console]'`` into a
fresh venv each, the dependencies from that role's lock with every hash checked
(``requirements/terminal.txt``, ``requirements/console.txt``: the console by docs/deploy.md's
own block, read from the document), then the project with ``--no-index``, so pip must find
every requirement of the group already there. Then each venv runs its command, imports every
module of its side, and holds none of the other side's libraries.

Slow (a Kivy install and, the first time, pyscard and pycups compiled: pip's cache keeps them).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.deploy.venvs import (
    REPO,
    block,
    installed,
    lock_stanzas,
    new_venv,
    pip_env,
    run,
    source_copy,
)

pytestmark = pytest.mark.slow

ROLE_MODULES = {
    "terminal": ("kiosk", "drivers", "statedir", "fleet.agent"),
    "console": ("fleet.cli", "fleet.console", "fleet.simulate", "fleet.trust"),
}
NOT_ON = {  # what the other side's group brings and this side must not carry
    "terminal": {"sqlalchemy", "alembic", "uvicorn", "starlette", "psycopg", "argon2-cffi"},
    "console": {"kivy", "pyscard", "pycups", "pyserial", "python-escpos", "pyttsx3", "swig"},
}


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return source_copy(tmp_path_factory.mktemp("checkout"))


CONSOLE = "# at the centre: install the console from its lock, in a checkout of the release"


def install_terminal_group(venv: Path, sources: Path) -> Path:
    """As docs/deploy.md installs the console (below), from requirements/terminal.txt: its
    build tools first (swig on PATH for pyscard), sdists built with them, no isolation."""
    bin_dir = new_venv(venv)
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q"]
    env = pip_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    lock = REPO / "requirements" / "terminal.txt"
    (venv / "build.txt").write_text(lock_stanzas(lock, ("pip", "setuptools", "wheel", "swig")))
    run([*pip, "--require-hashes", "--no-deps", "-r", str(venv / "build.txt")], venv, env)
    run([*pip, "--require-hashes", "--no-deps", "--no-build-isolation", "-r", str(lock)], venv, env)
    # the project with its group, no index: pip checks each requirement is already installed
    run([*pip, "--no-index", "--no-build-isolation", ".[terminal]"], sources, env)
    return bin_dir


def install_console_group(opt: Path, sources: Path) -> Path:
    """docs/deploy.md's block for the console's machine, run as written (in a copy of this
    checkout, /opt/station-kiosk moved into ``opt``)."""
    commands = block(CONSOLE)
    assert any("--no-index" in c and "'.[console]'" in c for c in commands)
    for command in commands:
        run(
            ["bash", "-euo", "pipefail", "-c", command.replace("/opt/station-kiosk", str(opt))],
            sources,
            pip_env(),
        )
    return opt / "venv" / "bin"


@pytest.fixture(scope="session")
def terminal_venv(tmp_path_factory: pytest.TempPathFactory, sources: Path) -> Path:
    bin_dir = install_terminal_group(tmp_path_factory.mktemp("terminal") / "venv", sources)
    run([str(bin_dir / "python"), "-m", "pip", "check"], bin_dir, pip_env())
    return bin_dir


@pytest.fixture(scope="session")
def console_venv(tmp_path_factory: pytest.TempPathFactory, sources: Path) -> Path:
    bin_dir = install_console_group(tmp_path_factory.mktemp("console"), sources)
    run([str(bin_dir / "python"), "-m", "pip", "check"], bin_dir, pip_env())
    return bin_dir


def import_everything(bin_dir: Path, packages: tuple[str, ...], home: Path) -> list[str]:
    """Import every module of ``packages`` in the venv (no display: no window is opened);
    the modules imported, or the failure."""
    code = (
        "import importlib, pkgutil, sys\n"
        f"names = {list(packages)!r}\n"
        "done = []\n"
        "for name in names:\n"
        "    package = importlib.import_module(name)\n"
        "    done.append(name)\n"
        "    for info in pkgutil.walk_packages(package.__path__, name + '.'):\n"
        "        # __main__ runs the command; alembic runs the migrations' scripts itself\n"
        "        if not info.name.endswith('.__main__') and '.migrations' not in info.name:\n"
        "            importlib.import_module(info.name)\n"
        "            done.append(info.name)\n"
        "print('\\n'.join(done))\n"
    )
    env = pip_env(HOME=str(home), KIVY_NO_ARGS="1", KIVY_NO_CONSOLELOG="1", KIVY_HOME=str(home))
    env.pop("DISPLAY", None)
    return run([str(bin_dir / "python"), "-c", code], home, env).stdout.split()


def test_the_terminal_group_runs_kiosk_without_the_centre(
    terminal_venv: Path, tmp_path: Path
) -> None:
    done = run([str(terminal_venv / "kiosk"), "--version"], tmp_path, pip_env())
    assert re.fullmatch(r"kiosk \S+\n", done.stdout), done.stdout
    have = installed(terminal_venv)
    assert {"station-kiosk", "kivy", "pyscard", "pycups", "python-escpos"} <= have
    assert not have & NOT_ON["terminal"], have & NOT_ON["terminal"]
    modules = import_everything(terminal_venv, ROLE_MODULES["terminal"], tmp_path)
    assert {
        "kiosk.station",
        "kiosk.ui.app",
        "drivers.pcsc.reader",
        "fleet.agent.catalog_update",
    } <= set(modules)


def test_the_console_group_runs_fleet_without_kivy_pyscard_or_pycups(
    console_venv: Path, tmp_path: Path
) -> None:
    done = run([str(console_venv / "fleet"), "--version"], tmp_path, pip_env())
    assert re.fullmatch(r"fleet \S+\n", done.stdout), done.stdout
    have = installed(console_venv)
    assert {"station-kiosk", "sqlalchemy", "uvicorn", "starlette", "alembic"} <= have
    assert not have & NOT_ON["console"], have & NOT_ON["console"]
    db = f"sqlite:///{tmp_path / 'console.sqlite3'}"  # migrations run: SQLAlchemy and Alembic
    listed = run([str(console_venv / "fleet"), "user", "list", "--db", db], tmp_path, pip_env())
    assert listed.stdout.strip() == "no console users"
    modules = import_everything(console_venv, ROLE_MODULES["console"], tmp_path)
    assert {"fleet.console.app", "fleet.cli.ca", "fleet.simulate.process"} <= set(modules)
