"""A private mosquitto for tests and the simulated station, with the fleet's ACL.

Stations are identified by their client id (= station id) and may write only under their own
root ``kiosk/v1/{site}/{station}/`` and read only their own ``desired`` and ``cmd`` (mosquitto ACL
patterns with ``%c``). The console logs in as user ``console`` with a generated password and may
read and write the whole tree. This slice listens on plain TCP on loopback; the production
configuration (TLS with ``require_certificate`` and ``use_identity_as_username``, so the
identity comes from the station's certificate, not from a client id anyone could claim) comes
with the agent issue.

When run as root, mosquitto drops to the ``mosquitto`` user and then cannot read root-only files;
this private broker says ``user root`` instead, and its files live in its own folder.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from flows.errors import KioskError

CONSOLE_USER = "console"

ACL = """\
# stations: anonymous clients identified by their client id (%c), TLS identities later
pattern write kiosk/v1/+/%c/state
pattern write kiosk/v1/+/%c/birth
pattern write kiosk/v1/+/%c/health
pattern write kiosk/v1/+/%c/evt/#
pattern write kiosk/v1/+/%c/reported
pattern write kiosk/v1/+/%c/cmd/+/result
pattern read kiosk/v1/+/%c/desired
pattern read kiosk/v1/+/%c/cmd/+
pattern read kiosk/v1/console/state

user console
topic readwrite kiosk/v1/#
"""


class BrokerError(KioskError):
    translation_key = "error.broker"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MosquittoBroker:
    def __init__(self, root: Path, *, port: int = 0) -> None:
        self.root = Path(root).resolve()
        self.host = "127.0.0.1"
        self.port = port
        self.console_password = ""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def write_config(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        secret = self.root / "console.secret"
        if not secret.exists():
            secret.write_text(secrets.token_urlsafe(18))
            secret.chmod(0o600)
        self.console_password = secret.read_text().strip()
        passwd = self.root / "passwd"
        passwd.unlink(missing_ok=True)
        subprocess.run(
            ["mosquitto_passwd", "-c", "-b", str(passwd), CONSOLE_USER, self.console_password],
            check=True,
            capture_output=True,
            timeout=20,
        )
        (self.root / "acl").write_text(ACL)
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            f"password_file {passwd}",
            f"acl_file {self.root / 'acl'}",
            "persistence true",
            f"persistence_location {self.root / 'data'}/",
            f"log_dest file {self.root / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_queued_messages 100000",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        conf = self.root / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        for path in (passwd, self.root / "acl"):
            path.chmod(0o600)
        return conf

    def start(self, timeout_s: float = 10.0) -> None:
        if shutil.which("mosquitto") is None:
            raise BrokerError("mosquitto is missing: install the Debian package mosquitto")
        if not self.port:
            self.port = free_port()
        conf = self.write_config()
        self._proc = subprocess.Popen(
            ["mosquitto", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                self.stop()
                raise BrokerError(f"mosquitto did not start: {err.strip()[-500:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()

    def restart(self) -> None:
        """Stop and start again on the same port (for outage tests)."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a private mosquitto with the fleet ACL")
    parser.add_argument("--root", type=Path, required=True)
    args = parser.parse_args(argv)
    broker = MosquittoBroker(args.root)
    broker.start()
    print(json.dumps({"host": broker.host, "port": broker.port}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
