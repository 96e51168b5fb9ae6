"""A private mosquitto for tests and the simulated station, with the fleet's ACL.

Two variants:

- plain (the default): loopback TCP; stations are anonymous clients identified by their client id
  (= station id) and may write only under their own root ``kiosk/v1/{site}/{station}/`` and read
  only their own ``desired`` and ``cmd`` (mosquitto ACL patterns with ``%c``). The console logs in
  as user ``console`` with a generated password and may read and write the whole tree.
- ``tls=True``: the production configuration shipped in ``assets/mosquitto/`` (TLS with
  ``require_certificate`` and ``use_identity_as_username``, so the identity comes from the
  station's certificate, not from a client id anyone could claim), with its paths and port moved
  into this broker's folder by :func:`derive_tls_config` and its ACL copied word for word, so the
  tests exercise the configuration that ships. The broker generates a fleet CA and a server
  certificate for 127.0.0.1 and issues client certificates on request (:meth:`issue_client`).

When run as root, mosquitto drops to the ``mosquitto`` user and then cannot read root-only files;
this private broker says ``user root`` instead, and its files live in its own folder.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from assets import ASSETS_DIR
from drivers.simtools import run_until_signal
from fleet.errors import FleetError
from fleet.mqtt.client import CONSOLE_USER, BrokerAccess, TlsFiles
from fleet.trust.pki import CONSOLE_CN, CertificateAuthority, write_cert, write_key
from sandbox.process import free_port, stop_process

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


SHIPPED_CONF = ASSETS_DIR / "mosquitto" / "mosquitto.conf"
SHIPPED_ACL = ASSETS_DIR / "mosquitto" / "fleet.acl"


class BrokerError(FleetError):
    translation_key = "error.broker"


def derive_tls_config(shipped: str, *, host: str, port: int, root: Path, user_root: bool) -> str:
    """The shipped mosquitto.conf with its paths in ``root`` and its listener on ``host:port``.

    Every other line is kept as shipped. A directive naming a path this function does not know
    how to move is an error, so a change to the shipped file cannot silently escape the tests.
    """
    moved = {
        "pid_file": f"pid_file {root / 'mosquitto.pid'}",
        "persistence_location": f"persistence_location {root / 'data'}/",
        "log_dest": f"log_dest file {root / 'mosquitto.log'}",
        "acl_file": f"acl_file {root / 'acl'}",
        "listener": f"listener {port} {host}",
        "cafile": f"cafile {root / 'ca.crt'}",
        "certfile": f"certfile {root / 'server.crt'}",
        "keyfile": f"keyfile {root / 'server.key'}",
        "crlfile": f"crlfile {root / 'fleet.crl'}",
    }
    out: list[str] = []
    for raw in shipped.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if key == "user":
            if user_root:
                line = "user root"
        elif key in moved:
            line = moved[key]
        elif "/" in value:
            raise BrokerError(
                f"the shipped config names a path the test broker cannot move: {line}"
            )
        out.append(line)
    return "\n".join(out) + "\n"


class MosquittoBroker:
    def __init__(self, root: Path, *, port: int = 0, tls: bool = False) -> None:
        self.root = Path(root).resolve()
        self.host = "127.0.0.1"
        self.port = port
        self.tls = tls
        self.console_password = ""
        self._ca: CertificateAuthority | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca(self) -> CertificateAuthority:
        """The fleet CA of a TLS broker (made on first use, kept in the broker's folder)."""
        if self._ca is None:
            key_file = self.root / "ca" / "ca.key"
            if key_file.exists():
                self._ca = CertificateAuthority.load(self.ca_file, key_file)
            else:
                self._ca = CertificateAuthority.create("kiosk test fleet CA")
                self._ca.save(self.ca_file, key_file)
        return self._ca

    def issue_client(
        self, cn: str, folder: Path, *, valid_for: timedelta = timedelta(days=30)
    ) -> TlsFiles:
        """Key and certificate for ``cn`` (a station id or ``console``) written into ``folder``."""
        if cn == CONSOLE_CN:
            key, cert = self.ca.issue_console(valid_for=valid_for)
        else:
            key, cert = self.ca.issue_station(cn, valid_for=valid_for)
        folder = Path(folder)
        creds = TlsFiles(self.ca_file, folder / f"{cn}.crt", folder / f"{cn}.key")
        write_cert(creds.cert_file, cert)
        write_key(creds.key_file, key)
        return creds

    def console_access(self) -> BrokerAccess:
        """How the centre reaches this broker: the console's certificate (TLS) or password."""
        if self.tls:
            return BrokerAccess(self.host, self.port, tls=self.console_credentials())
        return BrokerAccess(self.host, self.port, self.console_password)

    def console_credentials(self) -> TlsFiles:
        return self.issue_client(CONSOLE_CN, self.root / "clients")

    def write_tls_config(self) -> Path:
        """The shipped configuration, moved into this folder (see :func:`derive_tls_config`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        if not (self.root / "server.key").exists():
            key, cert = self.ca.issue_server((self.host, "localhost"))
            write_cert(self.root / "server.crt", cert)
            write_key(self.root / "server.key", key)
        acl = self.root / "acl"
        acl.write_text(SHIPPED_ACL.read_text())
        acl.chmod(0o600)
        conf = self.root / "mosquitto.conf"
        conf.write_text(
            derive_tls_config(
                SHIPPED_CONF.read_text(),
                host=self.host,
                port=self.port,
                root=self.root,
                user_root=os.geteuid() == 0,
            )
        )
        return conf

    def write_config(self) -> Path:
        if self.tls:
            return self.write_tls_config()
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
        stop_process(proc)
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
    parser.add_argument("--tls", action="store_true", help="the shipped TLS configuration")
    args = parser.parse_args(argv)
    broker = MosquittoBroker(args.root, tls=args.tls)
    broker.start()
    return run_until_signal({"host": broker.host, "port": broker.port}, broker.stop)


if __name__ == "__main__":
    sys.exit(main())
