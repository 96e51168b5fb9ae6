"""deploy/coturn/turnserver.conf is checked by turnserver itself.

coturn (4.6, Debian 12) has no switch to check a configuration, and a misspelt directive does not
stop it: it logs ``Bad configuration format: NAME`` and runs on without that line, so a relay
could run for months without, say, its ``denied-peer-ip`` lines. The check is to start it on the
shipped file (placeholders filled, ports and paths moved: sandbox/coturn.py) and read its log:
no error, no alert, no warning but the two a loopback test relay must give. The relay calls go
through it in tests/kiosk/shell/test_call_turn.py.
"""

from __future__ import annotations

import re
import socket
import ssl
from pathlib import Path

import pytest

from sandbox.coturn import (
    PLACEHOLDERS,
    SHIPPED_CONF,
    TurnError,
    TurnServer,
    TurnUsers,
    complaints,
    derive_config,
)

REPO = Path(__file__).resolve().parents[2]


def directives(conf: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in conf.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def derived(shipped: str, root: Path) -> str:
    return derive_config(
        shipped,
        host="127.0.0.1",
        port=3478,
        tls_port=5349,
        relay_ports=(20000, 20039),
        root=root,
        realm="turn.test",
        users=TurnUsers(),
    )


def test_turnserver_accepts_the_shipped_configuration(tmp_path: Path) -> None:
    relay = TurnServer(tmp_path / "coturn")
    relay.start()
    try:
        assert relay.running
        assert complaints(relay.log()) == []
        log = relay.log()
        # the shipped lines took effect: the private ranges are refused, TLS has its certificate
        for denied in ("10.0.0.0-10.255.255.255", "192.168.0.0-192.168.255.255"):
            assert f"Black listing: {denied}" in log
        assert f"Certificate file found: {relay.root / 'turn.crt'}" in log
        # `turns:` works: the TLS listener hands out the certificate the test CA signed
        context = ssl.create_default_context(cafile=str(relay.ca_file))
        with (
            socket.create_connection((relay.host, relay.tls_port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=relay.host) as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")  # no-tlsv1, no-tlsv1_1
    finally:
        relay.stop()
    assert not relay.running


def test_a_misspelt_directive_is_caught_in_turnservers_words(tmp_path: Path) -> None:
    """coturn runs on with a directive it does not know; the check must not."""
    shipped = SHIPPED_CONF.read_text()
    assert "\nno-multicast-peers\n" in shipped
    typo = shipped.replace("\nno-multicast-peers\n", "\nno-multicast-peer\n")
    relay = TurnServer(tmp_path / "coturn", shipped=typo)
    with pytest.raises(TurnError, match=r"Bad configuration format: no-multicast-peer$"):
        relay.start()
    assert not relay.running


def test_a_value_turnserver_refuses_stops_the_check_with_its_words(tmp_path: Path) -> None:
    """The few mistakes that make coturn exit (here a boolean that is neither on nor off)."""
    shipped = SHIPPED_CONF.read_text().replace("\nfingerprint\n", "\nfingerprint=perhaps\n")
    relay = TurnServer(tmp_path / "coturn", shipped=shipped)
    with pytest.raises(TurnError, match=r"exited with \d+: .*Unknown boolean value: perhaps"):
        relay.start()


def test_the_test_relay_changes_only_ports_paths_and_the_loopback_lines(tmp_path: Path) -> None:
    """What docs/decisions.md records: every other directive reaches turnserver as shipped."""
    shipped = directives(SHIPPED_CONF.read_text())
    test = directives(derived(SHIPPED_CONF.read_text(), tmp_path))
    added = {"listening-ip", "relay-ip", "allow-loopback-peers", "verbose", "userdb", "pidfile"}
    assert set(test) - set(shipped) == added
    assert set(shipped) <= set(test)
    moved = {"listening-port", "tls-listening-port", "min-port", "max-port", "cert", "pkey"}
    filled = {"realm", "user"}
    for key in set(shipped) - moved - filled:
        assert test[key] == shipped[key], key
    assert test["realm"] == ["turn.test"]
    assert test["user"] == ["station:station-test-secret", "console:console-test-secret"]


def test_the_shipped_file_is_fit_for_production() -> None:
    text = SHIPPED_CONF.read_text()
    conf = directives(text)
    # every secret and name an installer must set is a placeholder the tests know
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    assert set(re.findall(r"@[A-Z_]+@", "\n".join(lines))) == set(PLACEHOLDERS)
    assert "allow-loopback-peers" not in conf and "listening-ip" not in conf
    assert {"lt-cred-mech", "fingerprint", "no-multicast-peers", "no-cli"} <= set(conf)
    for private in ("10.0.0.0-", "172.16.0.0-", "192.168.0.0-", "0.0.0.0-"):
        assert any(v.startswith(private) for v in conf["denied-peer-ip"]), private
    assert [u.split(":")[0] for u in conf["user"]] == ["station", "console"]


def test_a_path_or_placeholder_the_test_cannot_fill_is_an_error(tmp_path: Path) -> None:
    shipped = SHIPPED_CONF.read_text()
    with pytest.raises(TurnError, match=re.escape("cannot move: dh-file=/etc/coturn/dh.pem")):
        derived(shipped + "dh-file=/etc/coturn/dh.pem\n", tmp_path)
    with pytest.raises(TurnError, match="do not fill: static-auth-secret=@AUTH_SECRET@"):
        derived(shipped + "static-auth-secret=@AUTH_SECRET@\n", tmp_path)


def test_the_deploy_guide_installs_the_shipped_file() -> None:
    guide = (REPO / "docs" / "deploy.md").read_text()
    section = guide.split("## Remote help calls", 1)[1].split("\n## ", 1)[0]
    assert "deploy/coturn/turnserver.conf" in section
    assert "cat > /etc/turnserver.conf" not in section  # no second copy to drift apart
