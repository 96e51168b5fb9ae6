"""pcscd for tests, benchmarks and the simulated station: the vpcd reader on a free port."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from smartcard import scard

from drivers.simtools import free_port

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")


def usable() -> str:
    """Empty when a private pcscd can run here, else why not."""
    if os.geteuid() != 0 or not shutil.which("pcscd"):
        return "a private pcscd needs root and the Debian package pcscd"
    if not VPCD_DRIVER.exists():
        return "the vpcd reader driver (Debian vsmartcard-vpcd) is missing"
    if subprocess.run(["pgrep", "-x", "pcscd"], capture_output=True, check=False).returncode == 0:
        return "another pcscd is running; stop it first"
    return ""


class Pcscd:
    """pcscd in the foreground with its own reader.conf.d: the vpcd reader on ``port``.

    pcscd's socket is the system's (/run/pcscd): one pcscd per machine, so the tests need root
    and no other pcscd running (scripts/bootstrap stops the packaged service).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        conf = root / "reader.conf.d"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "vpcd").write_text(
            'FRIENDLYNAME "Virtual PCD"\n'
            f"DEVICENAME   /dev/null:{self.port}\n"
            "LIBPATH      /usr/lib/pcsc/drivers/serial/libifdvpcd.so\n"
            f"CHANNELID    {self.port}\n"
        )

    def start(self) -> None:
        with (self.root / "pcscd.log").open("ab") as log:
            self.proc = subprocess.Popen(
                ["pcscd", "--foreground", "-c", str(self.root / "reader.conf.d")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hr == scard.SCARD_S_SUCCESS:
                hr, readers = scard.SCardListReaders(ctx, [])
                scard.SCardReleaseContext(ctx)
                if hr == scard.SCARD_S_SUCCESS and readers:
                    return
            time.sleep(0.1)
        raise RuntimeError("pcscd did not come up with the vpcd reader")

    def stop(self, *, hard: bool = False) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if hard:
            proc.kill()
        else:
            proc.terminate()
        proc.wait(timeout=10)
