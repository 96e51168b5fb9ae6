"""10,000 sessions through the real kiosk process, its memory, descriptors and threads sampled.

The UI process (:mod:`faults.uiproc`, SpeechOff, every device a real driver on its simulator)
serves ``sessions`` residents: queue tickets (no card, one slip), and every 100th a certificate
(the ID card on the SAM simulator, an A4 PDF through cupsd, a slip). The agent runs beside it and
forwards every event. Every ``every`` sessions the harness samples, from ``/proc/PID``, the RSS,
the open descriptors and the threads of the UI process and of the agent (three quick samples,
the median, so a print thread that is just ending is not counted as a leak). After the warm-up
(the first 10 %, at least one sample) each figure must stay within 5 % of its value at the end
of the warm-up. Then the books: every transaction and rating at the centre once, every slip and
certificate out once.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from faults.report import Row
from faults.rig import Rig, sample_process

TOLERANCE = 0.05


def _sample(pid: int) -> dict[str, int]:
    samples = []
    for _ in range(3):
        samples.append(sample_process(pid))
        time.sleep(0.02)
    return {k: int(statistics.median(s[k] for s in samples)) for k in samples[0]}


def soak(work: Path, sessions: int = 10_000, every: int = 500, certificate_every: int = 100) -> Row:
    name = f"{sessions:,} sessions soak"
    rows: list[tuple[int, dict[str, int], dict[str, int]]] = []
    with Rig(work) as rig:
        ui = rig.start_ui()
        agent = rig.start_agent()
        started = time.monotonic()
        for n in range(1, sessions + 1):
            if n % certificate_every == 0:
                rig.certificate_session()
            else:
                rig.ticket_session()
            if n % every == 0:
                rows.append((n, _sample(ui.pid), _sample(agent.pid)))
        served_s = time.monotonic() - started
        rig.settle(timeout=300)
        lost = rig.account()
    warm = max(1, len(rows) // 10)
    base_ui, base_agent = rows[warm - 1][1], rows[warm - 1][2]
    drift: list[str] = []
    worst: dict[str, float] = {}
    for n, s_ui, s_agent in rows[warm:]:
        for who, base, now in (("ui", base_ui, s_ui), ("agent", base_agent, s_agent)):
            for key, value in now.items():
                ratio = value / base[key] if base[key] else 1.0
                worst[f"{who} {key}"] = max(worst.get(f"{who} {key}", 1.0), ratio)
                if ratio > 1 + TOLERANCE:
                    drift.append(f"{who} {key} {base[key]}→{value} at session {n}")
    first, last = rows[warm - 1], rows[-1]
    figures = (
        f"UI rss {first[1]['rss_kib'] // 1024}→{last[1]['rss_kib'] // 1024} MiB,"
        f" fds {first[1]['fds']}→{last[1]['fds']}, threads {first[1]['threads']}→"
        f"{last[1]['threads']}; agent rss {first[2]['rss_kib'] // 1024}→"
        f"{last[2]['rss_kib'] // 1024} MiB, fds {first[2]['fds']}→{last[2]['fds']}, threads"
        f" {first[2]['threads']}→{last[2]['threads']}"
    )
    worst_text = ", ".join(f"{k} ×{v:.3f}" for k, v in sorted(worst.items()) if v > 1.0)
    return Row(
        name,
        not drift,
        lost,
        None,
        f"{sessions} sessions in {served_s:.0f} s ({sessions // certificate_every} certificates);"
        f" samples every {every} from session {rows[warm - 1][0]}: {figures}; worst rise"
        f" {worst_text or 'none'}" + (f"; NOT FLAT: {'; '.join(drift[:4])}" if drift else ""),
    )
