"""A private coturn (TURN relay) for tests, on the configuration that ships.

The production file is ``deploy/coturn/turnserver.conf``. :func:`derive_config` turns it into
this relay's: the ``@NAME@`` placeholders get test values, the ports and paths move into this
relay's folder and onto free loopback ports, and a few lines are added that a test needs and
production must not have (listening on 127.0.0.1 only, ``allow-loopback-peers`` because every
peer of a test is on loopback, a private user database and pid file). Every other directive is
kept as shipped, so turnserver itself checks the shipped file at every start; a directive naming
a path or a placeholder this module does not know is an error, so a change to the shipped file
cannot silently escape the tests.

coturn has no switch to check a configuration, and an unknown directive does not stop it: it
logs ``Bad configuration format: NAME`` and runs on without that line (only a few mistakes, e.g.
a boolean that is neither on nor off, make it exit). So :meth:`TurnServer.start` waits until the
relay listens and then reads its log: any line that is an error, an alert or a warning not in
:data:`EXPECTED` fails the start (:func:`complaints`).
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from drivers.simtools import run_until_signal
from fleet.errors import FleetError
from fleet.trust.pki import CertificateAuthority, write_cert, write_key
from sandbox.process import free_port, stop_process

SHIPPED_CONF = Path(__file__).resolve().parent.parent / "deploy" / "coturn" / "turnserver.conf"

PLACEHOLDERS = ("@REALM@", "@STATION_PASSWORD@", "@CONSOLE_PASSWORD@")
"""What an installer replaces in the shipped file (docs/deploy.md), and what the tests fill."""

RELAY_PORTS = 40
"""The test relay's range of relay ports (production: 49160-49200, 41 ports)."""

EXPECTED = (
    # the test's own line: every peer of a test is on loopback
    "CONFIG WARNING: allow_loopback_peers opens a possible security vulnerability",
    # one listening address (a test's 127.0.0.1): no RFC 5780 NAT discovery, which calls need not
    "WARNING: I cannot support STUN CHANGE_REQUEST functionality",
)
"""Warnings a healthy test relay logs; any other warning, error or alert is a complaint."""

COMPLAINT = re.compile(
    r"bad configuration|error|alert|warning|cannot|unknown|wrong|not found", re.IGNORECASE
)


class TurnError(FleetError):
    """The test relay did not start, or complained of its configuration (its own words)."""


@dataclass(frozen=True, slots=True)
class TurnUsers:
    """The long-term credentials of the shipped file's two users (``user=NAME:PASSWORD``)."""

    station: str = "station-test-secret"
    console: str = "console-test-secret"


def derive_config(
    shipped: str,
    *,
    host: str,
    port: int,
    tls_port: int,
    relay_ports: tuple[int, int],
    root: Path,
    realm: str,
    users: TurnUsers,
) -> str:
    """The shipped turnserver.conf with test values, its ports and paths moved (see the module
    docstring); raises :class:`TurnError` for a path or placeholder it does not know."""
    filled = {
        "@REALM@": realm,
        "@STATION_PASSWORD@": users.station,
        "@CONSOLE_PASSWORD@": users.console,
    }
    moved = {
        "listening-port": str(port),
        "tls-listening-port": str(tls_port),
        "min-port": str(relay_ports[0]),
        "max-port": str(relay_ports[1]),
        "cert": str(root / "turn.crt"),
        "pkey": str(root / "turn.key"),
    }
    out: list[str] = []
    for raw in shipped.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        for placeholder, value in filled.items():
            line = line.replace(placeholder, value)
        if "@" in line:
            raise TurnError(f"the shipped config has a placeholder the tests do not fill: {line}")
        key, _, value = line.partition("=")
        if key in moved:
            line = f"{key}={moved[key]}"
        elif "/" in value and value != "stdout":
            raise TurnError(f"the shipped config names a path the test relay cannot move: {line}")
        out.append(line)
    out += [
        f"listening-ip={host}",
        f"relay-ip={host}",
        "allow-loopback-peers",
        "verbose",
        f"userdb={root / 'turndb'}",
        f"pidfile={root / 'turnserver.pid'}",
    ]
    return "\n".join(out) + "\n"


def complaints(log: str) -> list[str]:
    """The log's lines that are an error, an alert or an unexpected warning (see the module
    docstring)."""
    found = []
    for line in log.splitlines():
        text = line.split(": : ", 1)[-1].strip()  # coturn's "0: : " prefix (seconds up)
        if COMPLAINT.search(text) and not any(text.startswith(e) for e in EXPECTED):
            found.append(text)
    return found


class TurnServer:
    """coturn on 127.0.0.1 with the shipped configuration, derived (:func:`derive_config`)."""

    def __init__(
        self,
        root: Path,
        *,
        realm: str = "turn.test",
        users: TurnUsers = TurnUsers(),
        shipped: str | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.host = "127.0.0.1"
        self.port = 0
        self.tls_port = 0
        self.realm = realm
        self.users = users
        self.shipped = SHIPPED_CONF.read_text() if shipped is None else shipped
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        """Everything turnserver said (its log goes to stdout, as the shipped file says)."""
        return self.root / "turnserver.log"

    @property
    def ca_file(self) -> Path:
        """The test CA that signed the relay's TLS certificate (for ``turns:``)."""
        return self.root / "ca.crt"

    def url(self, transport: str = "udp") -> str:
        return f"turn:{self.host}:{self.port}?transport={transport}"

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def write_config(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.root / "turn.key").exists():
            ca = CertificateAuthority.create("kiosk test TURN CA")
            key, cert = ca.issue_server((self.host, "localhost"))
            write_cert(self.root / "turn.crt", cert)
            write_key(self.root / "turn.key", key)
            write_cert(self.ca_file, ca.cert)
        low = free_port()
        conf = self.root / "turnserver.conf"
        conf.write_text(
            derive_config(
                self.shipped,
                host=self.host,
                port=self.port,
                tls_port=self.tls_port,
                relay_ports=(low, low + RELAY_PORTS - 1),
                root=self.root,
                realm=self.realm,
                users=self.users,
            )
        )
        conf.chmod(0o600)
        return conf

    def start(self, timeout_s: float = 10.0) -> None:
        """Start and wait until the relay listens; :class:`TurnError` if it does not, or if its
        log complains of the configuration (with turnserver's own words)."""
        if shutil.which("turnserver") is None:
            raise TurnError("turnserver is missing: install the Debian package coturn")
        self.port = self.port or free_port()
        self.tls_port = self.tls_port or free_port()
        conf = self.write_config()
        with self.log_file.open("wb") as log:
            # `-l stdout` also on the command line: coturn reads the file twice, and before the
            # file's own log-file line it would log a complaint to /var/log/turn_PID_DATE.log
            self._proc = subprocess.Popen(
                ["turnserver", "-l", "stdout", "-c", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while not self._listening():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                exited = self._proc.poll()
                self.stop()
                said = "\n".join(complaints(self.log())) or self.log()[-500:]
                how = f"exited with {exited}" if exited is not None else "did not listen"
                raise TurnError(f"turnserver {how}: {said.strip()}")
            time.sleep(0.05)
        found = complaints(self.log())
        if found:
            self.stop()
            raise TurnError("turnserver complains of its configuration: " + "; ".join(found))

    def _listening(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_process(proc)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a private coturn on the shipped configuration")
    parser.add_argument("--root", type=Path, required=True)
    args = parser.parse_args(argv)
    relay = TurnServer(args.root)
    relay.start()
    return run_until_signal(
        {
            "url": relay.url(),
            "realm": relay.realm,
            "station": relay.users.station,
            "console": relay.users.console,
        },
        relay.stop,
    )


if __name__ == "__main__":
    sys.exit(main())
