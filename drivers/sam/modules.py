"""How GA 467 SAM modules differ from one another, as data: the simulator's module profiles.

The base of the protocol (status, find, select, read base information) is the same in every
module; what varies by vendor and firmware generation is everything around it. The public
protocol documents of the modules (see ``docs/hardware.md`` for the sources) give the UART at
115200 baud by default and settable to 57600, 38400, 19200 or 9600, the optional commands
*read SAM management information* (``12 FF``), *read the appended address* (``30 03``) and
*set baud rate* (``60 xx``), and ``80`` as the answer to *find card* when no card is there.
Modules in the field also:

- do not implement ``30 03`` (older firmware) and answer ``21`` "invalid command or parameter",
  or ``91`` "no such content", or nothing at all;
- do not implement ``12 FF`` or ``60 xx`` in the same ways;
- stay silent on *find card* while no card is there instead of answering ``80``;
- run at 9600 baud (and answer nothing at another rate: the UART sees garbage).

A :class:`ModuleProfile` names one such combination; :data:`PROFILES` holds those the tests run
the identity matrix on. The driver (:mod:`drivers.sam.reader`) knows none of them by name: it
learns what the module on its port can do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.sam import protocol as p

Answer = str
"""How a module answers a command it does not implement: ``"21"`` (invalid command or
parameter), ``"91"`` (no such content) or ``"silence"``."""

ANSWERS = ("21", "91", "silence")
OPTIONAL = ("sam_id", "appended_address", "set_baud")
"""The optional commands, by the names the driver reports (``12 FF``, ``30 03``, ``60 xx``)."""


@dataclass(frozen=True, slots=True)
class ModuleProfile:
    """One kind of SAM module, as the simulator plays it."""

    name: str
    baud: int = 115200  # the rate the module starts at
    lacks: dict[str, Answer] = field(default_factory=dict)  # optional command -> its answer
    silent_when_empty: bool = False  # find card with no card: silence instead of 80
    paced: bool = False  # answers take as long as they would on the wire at ``baud``
    note: str = ""

    def __post_init__(self) -> None:
        if self.baud not in p.BAUD_CODES:
            raise ValueError(f"a module runs at one of {sorted(p.BAUD_CODES)} baud")
        for name, answer in self.lacks.items():
            if name not in OPTIONAL or answer not in ANSWERS:
                raise ValueError(f"lacks: {name!r} -> {answer!r}; one of {OPTIONAL} -> {ANSWERS}")


def command_name(command: tuple[int, int]) -> str:
    """The optional command ``command`` is, or ``""`` for the base commands."""
    if command == p.SAM_ID:
        return "sam_id"
    if command == p.READ_ADDRESS:
        return "appended_address"
    if command[0] == p.SET_BAUD:
        return "set_baud"
    return ""


STANDARD = ModuleProfile("standard", note="every command of the public protocol, at 115200 baud")

PROFILES: dict[str, ModuleProfile] = {
    profile.name: profile
    for profile in (
        STANDARD,
        ModuleProfile(
            "no_address_21",
            lacks={"appended_address": "21"},
            note="older firmware: 30 03 is an invalid command",
        ),
        ModuleProfile(
            "no_address_silent",
            lacks={"appended_address": "silence"},
            note="30 03 is never answered",
        ),
        ModuleProfile(
            "no_address_91",
            lacks={"appended_address": "91"},
            note="30 03 always answers 'no such content'",
        ),
        ModuleProfile(
            "no_sam_id",
            lacks={"sam_id": "21"},
            note="12 FF (management information) is an invalid command",
        ),
        ModuleProfile(
            "baud_9600",
            baud=9600,
            paced=True,
            note="starts at 9600 baud and accepts 60 00 (switch to 115200)",
        ),
        ModuleProfile(
            "baud_9600_fixed",
            baud=9600,
            paced=True,
            lacks={"set_baud": "21"},
            note="runs at 9600 baud only: 60 xx is an invalid command",
        ),
        ModuleProfile(
            "silent_when_empty",
            silent_when_empty=True,
            note="find card is not answered while no card is on the reader",
        ),
        ModuleProfile(
            "minimal",
            baud=9600,
            paced=True,
            lacks={"sam_id": "silence", "appended_address": "21", "set_baud": "silence"},
            silent_when_empty=True,
            note="only status, find, select and read base, at 9600 baud, silent when empty",
        ),
    )
}
