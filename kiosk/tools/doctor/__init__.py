"""``kiosk doctor``: a table of what this station needs and the state of each, with a fix.

Every check asks the real thing: ``fc-list`` for the font, ``espeak-ng`` synthesising each voice
the kiosk speaks with, ``lpstat`` against the CUPS server of the configured queue, a TCP (and, with
the station's certificate, a TLS and MQTT) connection to the broker. Nothing is assumed installed
because a package is.

Where it looks can be moved, for stations built differently and for tests:
``--font-path`` (the font files the app tries first, before fontconfig) and the environment the
kiosk itself runs with: ``FONTCONFIG_FILE`` (fontconfig) and ``ESPEAK_DATA_PATH`` (espeak-ng's
data folder; a folder that does not exist makes espeak-ng fall back to the system's data without
a word, which the doctor reports).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from kiosk.config import Config, load_config
from kiosk.tools.doctor.base import Check, Options
from kiosk.tools.doctor.devices import check_a4, check_id_reader, check_thermal
from kiosk.tools.doctor.files import check_catalog, check_font, check_state_dir, check_voice
from kiosk.tools.doctor.fleet import check_broker, check_certificate

__all__ = [
    "CHECKS",
    "Check",
    "Options",
    "check_a4",
    "check_broker",
    "check_catalog",
    "check_certificate",
    "check_font",
    "check_id_reader",
    "check_state_dir",
    "check_thermal",
    "check_voice",
    "render",
    "run_doctor",
]


CHECKS: list[Callable[[Config, Options], Check]] = [
    check_state_dir,
    check_catalog,
    check_font,
    check_voice,
    check_id_reader,
    check_a4,
    check_thermal,
    check_certificate,
    check_broker,
]


def render(rows: Sequence[Check]) -> str:
    width = max(len(r.name) for r in rows)
    lines = []
    for r in rows:
        status = "ok  " if r.ok else "FAIL"
        lines.append(f"{r.name:<{width}}  {status}  {r.detail}")
        if not r.ok and r.fix:
            lines.append(f"{'':<{width}}        fix: {r.fix}")
    return "\n".join(lines)


def run_doctor(config_path: str | None, options: Options | None = None) -> int:
    opts = options or Options()
    # a wrong configuration is no table row: kiosk's main says every mistake on stderr and
    # exits with the configuration's status, as every other command does
    config = load_config(Path(config_path) if config_path else None)
    rows = [Check("config", True, config_path or "defaults (simulated station)")]
    for check in CHECKS:
        try:
            rows.append(check(config, opts))
        except Exception as err:  # a doctor that crashes on a broken machine helps nobody
            name = check.__name__.removeprefix("check_").replace("_", " ")
            rows.append(Check(name, False, f"the check itself failed: {err!r}"[:160]))
    print(render(rows))
    return 0 if all(r.ok for r in rows) else 1
