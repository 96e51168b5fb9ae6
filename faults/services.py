"""Services the terminal depends on, restarted under it: the broker, pcscd, CUPS.

- **Broker restart**: mosquitto is stopped (SIGTERM, as ``systemctl restart`` does) while the
  kiosk goes on serving residents; it comes back on the same port after 5 s. The subscriber
  keeps a persistent session (clean start off, a day's expiry), as the console does. Recovered:
  the first event that reached the subscriber after the broker came back.
- **pcscd restart**: the real pcscd with the vpcd reader is killed with SIGKILL while the kiosk
  runs with ``smartcard_reader = "pcsc:Virtual PCD"``; it is started again. Nothing of the kiosk
  is restarted. Recovered: the first social security card (the virtual card on vpcd) read by the
  kiosk after pcscd came back, i.e. the session reached ``choose``.
- **CUPS stopped and started**: the private cupsd is stopped (SIGTERM) and started again on the
  same port and spool after 5 s. While it is down the kiosk must say the certificates are
  unavailable (slips still work). Recovered: the first certificate printed after cupsd came back.
"""

from __future__ import annotations

import time
from pathlib import Path

from drivers.pcsc.vicc import VirtualCard
from faults.report import Row
from faults.rig import CERTIFICATE, Rig, Session, until
from flows.synthetic import DEMO_RESIDENT
from sandbox.pcscd import usable


def broker_restart(work: Path, outage_s: float = 120.0) -> Row:
    name = "broker restart"
    with Rig(work) as rig:
        rig.start_ui()
        rig.start_agent()
        for _ in range(5):
            rig.ticket_session()
        rig.certificate_session()
        rig.settle()
        rig.broker.stop()
        down = time.monotonic()
        during = 0
        while time.monotonic() - down < outage_s:  # residents are served during the outage
            rig.ticket_session()
            during += 1
        queued = rig.outbox_size()
        rig.broker.start()
        t0 = time.monotonic()
        until(lambda: rig.subscriber.first_after(t0) is not None, 120, "an event after restart")
        first = rig.subscriber.first_after(t0)
        for _ in range(5):
            rig.ticket_session()
        rig.settle()
        lost = rig.account()
    assert first is not None
    return Row(
        name,
        True,
        lost,
        first - t0,
        f"broker down {outage_s:.0f} s; {during} sessions served meanwhile, {queued} events"
        " queued in the outbox; recovered = first event at the subscriber after the restart",
    )


def _card_session(rig: Rig, port: int, timeout: float = 30.0) -> tuple[Session, float]:
    """A session identified by the social security card through pcscd; (session, read time)."""
    ui = rig._ui()
    st = ui.do("start", state=["identify"], timeout=timeout)
    session = Session(st["txn_id"], CERTIFICATE)
    rig.ledger.sessions.append(session)
    card = VirtualCard(port, DEMO_RESIDENT)
    card.insert()
    try:
        ui.wait(state=["choose"], timeout=timeout)
        read_at = time.monotonic()
        ui.do("pick", CERTIFICATE, state=["preview"], preview_ready=True, timeout=timeout)
        rig._print_and_rate(session, 5, timeout)
    finally:
        card.remove()
    time.sleep(1.0)  # the reader sees the card go
    return session, read_at


def pcscd_restart(work: Path) -> Row:
    name = "pcscd restart"
    why = usable()
    if why:
        return Row(name, False, [], None, f"not run: {why}", ran=False)
    with Rig(work, pcsc=True) as rig:
        ui = rig.start_ui()
        rig.start_agent()
        assert rig.pcscd is not None
        until(
            lambda: ui.status()["health"].get("smartcard_reader", [""])[0] == "ok",
            30,
            "the smart-card reader to be seen",
        )
        _card_session(rig, rig.pcscd.port)
        rig.pcscd.stop(hard=True)  # kill -9
        until(
            lambda: ui.status()["health"].get("smartcard_reader", [""])[0] == "offline",
            30,
            "the kiosk to see pcscd gone",
        )
        rig.pcscd.start()
        t0 = time.monotonic()
        until(
            lambda: ui.status()["health"].get("smartcard_reader", [""])[0] == "ok",
            60,
            "the reader to come back",
        )
        session, read_at = _card_session(rig, rig.pcscd.port, timeout=60)
        rig.settle()
        lost = rig.account()
    return Row(
        name,
        bool(session.print_ok),
        lost,
        read_at - t0,
        "pcscd killed with SIGKILL and started again; the kiosk was not restarted; recovered ="
        " the first card read through the new pcscd",
    )


def cups_stop_start(work: Path, outage_s: float = 5.0) -> Row:
    name = "CUPS stopped and started"
    with Rig(work) as rig:
        ui = rig.start_ui()
        rig.start_agent()
        rig.certificate_session()
        rig.cups.stop_scheduler()
        until(
            lambda: CERTIFICATE in ui.status()["unavailable"], 30, "certificates to be unavailable"
        )
        reason = ui.status()["unavailable"][CERTIFICATE]
        down = time.monotonic()
        during = 0
        while time.monotonic() - down < outage_s:  # slips still work meanwhile
            rig.ticket_session()
            during += 1
        rig.cups.start_scheduler()
        t0 = time.monotonic()
        until(
            lambda: CERTIFICATE not in ui.status()["unavailable"], 60, "certificates to come back"
        )
        session = rig.certificate_session()
        recovered = time.monotonic() - t0
        rig.settle()
        lost = rig.account()
    return Row(
        name,
        bool(session.print_ok),
        lost,
        recovered,
        f"cupsd down {outage_s:.0f} s: certificates shown unavailable ({reason}),"
        f" {during} slip sessions served meanwhile; recovered = the next certificate printed",
    )
