"""A private PostgreSQL cluster for tests and development (like :mod:`sandbox.mosquitto` for MQTT).

``initdb`` into a fresh folder, ``pg_ctl start`` on a free loopback port with its socket in that
folder; trust authentication, loopback only, fsync off (throw-away data). PostgreSQL refuses to
run as root, so as root the cluster runs as the ``postgres`` user (Debian's package makes it)
through ``runuser``, in a folder handed to that user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from fleet.errors import FleetError
from sandbox.process import free_port

SUPERUSER = "console"


class PostgresError(FleetError):
    translation_key = "error.postgres"


def bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise PostgresError("PostgreSQL is missing: install the Debian package postgresql")
    return Path(initdb).resolve().parent


def _version(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


class PostgresCluster:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="kiosk-pg-"))
        self.port = 0
        self.bin = bin_dir()
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        done = subprocess.run(
            [*self._as, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise PostgresError(f"{Path(args[0]).name} failed: {done.stderr.strip()[-800:]}")

    def start(self) -> None:
        self.port = free_port()
        data = self.root / "data"
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.root / "postgres.log"),
            "-w",
            "start",
        )

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its SQLAlchemy URL."""
        host = ("-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER)
        self._run(str(self.bin / "createdb"), *host, name)
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.port:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "stop")
            self.port = 0
        shutil.rmtree(self.root, ignore_errors=True)
