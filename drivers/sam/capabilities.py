"""What the SAM module on a port can do, learnt once per session of the port.

Only status, find, select and read base are required of a module. Every other command
(``12 FF`` SAM management information, ``30 03`` appended address, ``60 xx`` baud rate) is
optional: the first time the module answers one with ``21`` (invalid command or parameter), with
``91`` (no such content, for a command about the module rather than the card) or not at all, it
is written down as missing and never asked again until the port is opened anew (a replug may
bring another module). The health report names what is missing (``lacks_appended_address``).
"""

from __future__ import annotations

from drivers.sam import protocol as p

LACKS_PREFIX = "lacks_"


class ModuleCapabilities:
    """Optional commands by name: supported, missing (with how the module said so) or unknown."""

    def __init__(self) -> None:
        self._supported: set[str] = set()
        self._missing: dict[str, str] = {}  # name -> "21", "91" or "silence"
        self.module_id = ""  # the answer to 12 FF, hex: a module number, not personal data
        self.no_card_answer = ""  # how find card says "no card": "80" or "silence"

    def lacks(self, name: str) -> bool:
        return name in self._missing

    def supported(self, name: str) -> None:
        self._supported.add(name)

    def missing(self, name: str, how: str) -> None:
        self._supported.discard(name)
        self._missing[name] = how

    def judge(self, name: str, status: int, *, card_item: bool) -> bool:
        """Learn from an answer to optional command ``name``: True when it holds data to use.

        ``21`` means the module lacks the command. ``91`` means it lacks it too, unless the
        command asks for an item of the card (``card_item``): then this card has none. Any other
        failure is raised as its typed error (a card pulled mid-read is not a missing command).
        """
        if status == p.SW_OK:
            self.supported(name)
            return True
        if status == p.SamCommandRejected.code:
            self.missing(name, "21")
            return False
        if status == p.SW_NO_CONTENT:
            if card_item:
                self.supported(name)
            else:
                self.missing(name, "91")
            return False
        raise p.status_error(status)

    def reasons(self) -> tuple[str, ...]:
        """Health reasons: ``lacks_<name>`` for each missing optional command, sorted."""
        return tuple(LACKS_PREFIX + name for name in sorted(self._missing))

    def detail(self) -> dict[str, object]:
        return {
            "lacks": {name: self._missing[name] for name in sorted(self._missing)},
            "supports": sorted(self._supported),
            "module_id": self.module_id,
            "no_card_answer": self.no_card_answer,
        }
