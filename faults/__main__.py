"""``python -m faults``: run the fault and soak scenarios, print the table, write the record.

``make faults`` runs every scenario and writes ``docs/reliability.md``. ``--only NAME`` (repeatable)
runs some, ``--sessions N`` shortens the soak, ``--no-doc`` leaves the record alone (the smoke
test uses both). Exit status 0 only when every row that ran survived with nothing lost.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from faults import devices, environment, hostile, processes, services, soak
from faults.report import Row, guarded, table, write_doc

REPO = Path(__file__).resolve().parents[1]


def scenarios(sessions: int, every: int) -> dict[str, Callable[[Path], Row]]:
    return {
        "ui-kill": processes.ui_kill_mid_print,
        "agent-kill": processes.agent_kill_mid_outbox,
        "broker": services.broker_restart,
        "pcscd": services.pcscd_restart,
        "sam": devices.sam_unplug_replug,
        "cups": services.cups_stop_start,
        "paper": devices.a4_paper_out,
        "cover": devices.thermal_cover_open,
        "disk": environment.disk_nearly_full,
        "clock": environment.clock_jumps,
        "sqlite": processes.sqlite_kill_write,
        "hostile": hostile.scenario,
        "soak": lambda work: soak.soak(work, sessions=sessions, every=every),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__)
    parser.add_argument("--only", action="append", default=[], help="a scenario (repeatable)")
    parser.add_argument("--sessions", type=int, default=10_000, help="sessions in the soak")
    parser.add_argument("--every", type=int, default=0, help="sample every N sessions")
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/reliability.md")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = parser.parse_args(argv)
    every = args.every or max(1, args.sessions // 20)
    table_of = scenarios(args.sessions, every)
    names = args.only or list(table_of)
    unknown = [n for n in names if n not in table_of]
    if unknown:
        parser.error(f"unknown scenario {unknown}; known: {', '.join(table_of)}")
    work = Path(tempfile.mkdtemp(prefix="faults-"))
    work.chmod(0o755)  # cupsd's backends run as lp and must reach the spools below
    print(f"faults: work folder {work}", flush=True)
    started = time.monotonic()
    rows: list[Row] = []
    try:
        for name in names:
            print(f"faults: {name} …", flush=True)
            row = guarded(name, partial(table_of[name], work / name))
            print(
                f"faults: {name}: {'ok' if row.ok else 'NOT OK'} in {row.seconds:.0f} s", flush=True
            )
            rows.append(row)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = time.monotonic() - started
    print()
    print(table(rows))
    print(f"\nfaults: {len(rows)} scenarios in {total / 60:.1f} min")
    if not args.no_doc:
        command = "python -m faults " + " ".join(argv if argv is not None else sys.argv[1:])
        write_doc(REPO / "docs" / "reliability.md", rows, total_s=total, argv=command.strip())
        print("faults: recorded in docs/reliability.md")
    return 0 if all(r.ok or not r.ran for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
