"""Issue 20, point 1, end to end: a card left on the reader, the console told, the next card read.

The real kiosk app on Xvfb (``journey_app.py``, scenario ``left_card``) with the GA 467 simulator
on a pseudo-terminal; beside it, as on a station, the real fleet agent on the kiosk's state
directory, a private mosquitto and a fleet console on SQLite. A resident rates and walks off
leaving the card: the station asks for it, on the screen and by voice (the caption check of the
journey), until the console has raised ``card_left_behind`` (``[station] card_left_alert_s`` is
2 s here); the card is taken, the alert resolves, a thank-you and home. The next resident places
a card before touching Start, and it is read without being placed again. Screenshots:
``test-artifacts/journey/left-*``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from drivers.escpos.simulator import EscposSimulator
from drivers.sam.simulator import SamSimulator
from fleet.agent import Agent, AgentConfig
from fleet.console import Console, Settings
from fleet.console.store import Alert
from flows.synthetic import DEMO_RESIDENT, SYNTHETIC_CARDS
from sandbox.cups import CupsSandbox
from sandbox.mosquitto import MosquittoBroker
from tests.kiosk.ui.test_journey import (  # noqa: F401  (fixtures)
    assert_everything_said_was_shown,
    assert_no_personal_data_left,
    cups,
    run_journey,
    sam,
    thermal,
)


def until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[tuple[Console, Agent]]:
    broker = MosquittoBroker(tmp_path / "broker")
    broker.start()
    console = Console(
        broker.host,
        broker.port,
        password=broker.console_password,
        db_url=f"sqlite:///{tmp_path / 'console.sqlite3'}",
        settings=Settings(sweep_s=0.2),
    )
    console.start()
    state = tmp_path / "state"  # the kiosk's state directory (test_journey.run_journey)
    state.mkdir()
    agent = Agent(
        AgentConfig(
            site="demo-site",
            station="demo-0001",
            host=broker.host,
            port=broker.port,
            state_dir=state,
            journal_path=state / "journal.sqlite3",
            health_interval_s=30.0,  # and on every change: the alert goes at once
        )
    )
    agent.start()
    try:
        yield console, agent
    finally:
        agent.stop()
        console.stop()
        broker.stop()


def alerts(console: Console) -> list[tuple[str, dict[str, Any], bool]]:
    with console.store.session() as db:
        return [
            (a.kind, dict(a.detail or {}), a.active_key is not None)
            for a in db.scalars(select(Alert).order_by(Alert.id))
        ]


@pytest.mark.gui
@pytest.mark.slow
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_left_card_is_asked_for_alerted_and_the_next_card_is_read(
    tmp_path: Path,
    xvfb: str,
    artifacts: Path,
    sam: SamSimulator,  # noqa: F811
    thermal: EscposSimulator,  # noqa: F811
    cups: CupsSandbox,  # noqa: F811
    centre: tuple[Console, Agent],
    lang: str,
) -> None:
    console, _agent = centre
    raised: list[tuple[str, dict[str, Any], bool]] = []
    next_card = SYNTHETIC_CARDS["neighbour"]

    def hands(line: str) -> None:
        if line == "AT identify" and not sam.card_present:
            sam.insert(DEMO_RESIDENT)
        elif line == "AT take_card" and not raised:  # the first resident walked off
            found = until(
                lambda: [a for a in alerts(console) if a[0] == "card_left_behind"],
                timeout=60,
                what="the console's card_left_behind alert",
            )
            raised.extend(found)
            sam.remove()  # a member of staff takes the card away
        elif line == "AT take_card":  # the second resident cancelled and takes their card
            sam.remove()
        elif line == "AT next-resident":
            sam.insert(next_card)  # on the reader before Start is touched

    state, seen = run_journey(
        tmp_path,
        xvfb,
        artifacts,
        (sam, thermal, cups),
        lang=lang,
        scenario="left_card",
        hands=hands,
    )
    [(kind, detail, _active)] = raised
    assert (kind, detail) == ("card_left_behind", {"device": "id_reader"})
    until(
        lambda: [a for a in alerts(console) if a[0] == "card_left_behind" and not a[2]],
        timeout=30,
        what="the alert resolved once the card was taken",
    )
    assert_everything_said_was_shown(
        seen, keys={"prompt.take_card", "prompt.thanks", "prompt.home", "prompt.choose"}
    )
    steps = [line for line in seen if line.startswith("AT ")]
    assert steps.count("AT take_card") == 2 and "AT next-resident" in steps
    for name in ("left-1-take-card", "left-2-thanks", "left-4-next-resident-read"):
        assert (artifacts / "journey" / f"{name}-{lang}.png").stat().st_size > 10_000
    assert_no_personal_data_left(state, cups)
