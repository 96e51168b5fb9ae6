"""The remote commands, once: where each runs and its default timeout.

The console offers exactly these to technicians (and sends ``timeout_s`` from here unless told
otherwise); the agent carries out the ``agent`` ones itself and hands the ``ui`` ones to the
kiosk through the journal (:mod:`fleet.agent.commands`, :mod:`kiosk.shell.remote`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

INSTALL_CERTIFICATE = "install_certificate"
"""The console's answer to a station's ``evt/csr`` (certificate renewal)."""


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    target: Literal["agent", "ui"]
    timeout_s: float
    by_hand: bool = True  # offered to technicians; False: the console sends it on its own


COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec("test_print", "ui", 120.0),
        CommandSpec("restart_ui", "ui", 300.0),
        CommandSpec("self_test", "ui", 60.0),
        CommandSpec("screenshot", "ui", 60.0),
        CommandSpec("reload_catalog", "ui", 120.0),
        CommandSpec("rebirth", "agent", 30.0),
        CommandSpec("collect_logs", "agent", 60.0),
        CommandSpec(INSTALL_CERTIFICATE, "agent", 60.0, by_hand=False),  # renewal's answer
        # a technician's answer to a help request, sent with its acknowledgement
        # (fleet.protocol.help); a resident is waiting: it is shown at once or not at all
        CommandSpec("help_reply", "ui", 120.0, by_hand=False),
        # a technician's call to a resident who asked for help (fleet.protocol.call); its
        # result carries the kiosk's WebRTC answer; sent from the call page, not by hand
        CommandSpec("call_offer", "ui", 30.0, by_hand=False),
    )
}
"""Every command a station understands, by name."""
