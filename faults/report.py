"""One row per scenario, the table, and ``docs/reliability.md``."""

from __future__ import annotations

import datetime as dt
import os
import platform
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Row:
    scenario: str
    survived: bool
    lost: list[str]
    recover_s: float | None
    note: str = ""
    seconds: float = 0.0  # how long the scenario ran
    ran: bool = True

    @property
    def lost_text(self) -> str:
        if not self.ran:
            return "not run"
        if not self.lost:
            return "nothing"
        head = "; ".join(self.lost[:3])
        return head + (f" (+{len(self.lost) - 3} more)" if len(self.lost) > 3 else "")

    @property
    def ok(self) -> bool:
        return self.ran and self.survived and not self.lost


def guarded(name: str, fn: Callable[[], Row]) -> Row:
    """Run a scenario; an exception is a row that did not survive, with the reason."""
    import time

    started = time.monotonic()
    try:
        row = fn()
    except Exception as err:
        traceback.print_exc()
        row = Row(
            name,
            False,
            [f"unknown: the scenario broke off ({type(err).__name__})"],
            None,
            f"{type(err).__name__}: {err}",
        )
    row.seconds = time.monotonic() - started
    return row


def table(rows: list[Row]) -> str:
    lines = [
        "| scenario | survived | data lost | time to recover | notes |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        survived = "not run" if not r.ran else ("yes" if r.survived else "**NO**")
        lost = r.lost_text if r.lost_text in ("nothing", "not run") else f"**{r.lost_text}**"
        recover = "—" if r.recover_s is None else f"{r.recover_s:.2f} s"
        note = r.note.replace("|", "/").replace("\n", " ")
        lines.append(f"| {r.scenario} | {survived} | {lost} | {recover} | {note} |")
    return "\n".join(lines)


def machine() -> str:
    cpus = os.cpu_count() or 0
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f", {int(line.split()[1]) // 1024 // 1024} GiB RAM"
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()} {platform.machine()}, {cpus} CPU{mem}, "
        f"Python {platform.python_version()}"
    )


HEADER = """# Reliability: the fault and soak suite

`make faults` (`python -m faults`) runs each scenario against the real processes and services —
the kiosk runtime as its own process (`faults/uiproc.py`: `kiosk.station.create_station`, pumped
without a window), `kiosk agent`, a private mosquitto, a private cupsd, pcscd with the virtual
card, the SAM simulator on a pty, the ESC/POS simulator — injects the fault, and checks the books:
every transaction and rating the harness drove must reach a subscriber at the centre exactly once
(by event id), every completed print job must have come out of its printer exactly once and
nothing else may have come out. *Time to recover* is from the end of the fault to the first
successful operation named in the notes. How each fault is made, and what each row means, is in
the docstring of its module (`faults/processes.py`, `services.py`, `devices.py`,
`environment.py`, `soak.py`, `hostile.py`). The *hostile station* row is the centre's side: one
enrolled station floods every topic it may write with 10,000 broken messages through the shipped
TLS broker configuration while a healthy station asks for help; its books are every help request
stored and alerted within 5 s, every broken message set aside under one alert, before and after
a console restart.
"""


def write_doc(path: Path, rows: list[Row], *, total_s: float, argv: str) -> None:
    now = dt.datetime.now().astimezone()
    verdict = (
        "every row survived with nothing lost"
        if all(r.ok for r in rows)
        else "NOT every row survived with nothing lost: see the rows in bold"
    )
    body = (
        HEADER
        + f"\n## Run of {now:%Y-%m-%d %H:%M %Z}\n\n"
        + f"- machine: {machine()}\n- command: `{argv}`\n- duration: {total_s / 60:.1f} min\n"
        + f"- verdict: {verdict}\n\n"
        + table(rows)
        + "\n"
    )
    path.write_text(body, encoding="utf-8")
