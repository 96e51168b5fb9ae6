"""What the session asks the shell to do (its effects), and what a resident can pick.

The session (:mod:`flows.session`) does no I/O; it returns these values and the shell
(``kiosk/``) carries them out: show a screen, speak, stop speaking, build a preview, print,
write to the journal. A journal effect carries only the keyed hash of a resident's ID number,
never the identity (the session is given the pseudonymiser).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flows.catalog import IdentityKind, Output, Service, Text
from flows.models import Identity


@dataclass(frozen=True, slots=True)
class Show:
    screen: str


@dataclass(frozen=True, slots=True)
class Speak:
    """Speak the prompt with this translation key; params are never personal data."""

    key: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StopSpeech:
    pass


@dataclass(frozen=True, slots=True)
class ReadCard:
    """Read the card that lies on the reader now, even one read before: a new session reads a
    card that is present, whether it was placed before the session began or left there by the
    previous resident (the readers announce it again and read it)."""


@dataclass(frozen=True, slots=True)
class Selection:
    """What the resident picked: one service, or a bundle of several under one confirmation."""

    code: str
    name: Text
    description: Text
    spoken: Text
    services: tuple[Service, ...]
    is_bundle: bool = False

    @property
    def notice(self) -> Service | None:
        """The service whose materials notice this is, if the selection is a notice."""
        if len(self.services) == 1 and self.services[0].notice is not None:
            return self.services[0]
        return None

    @property
    def needs_identity(self) -> bool:
        return any(s.identity is not IdentityKind.NONE for s in self.services)

    @property
    def outputs(self) -> frozenset[Output]:
        return frozenset(o for s in self.services for o in s.outputs)


@dataclass(frozen=True, slots=True)
class Offer:
    """A selection on the choose screen, and whether it can be served now (and why not)."""

    selection: Selection
    available: bool
    reason: str = ""  # translation key when not available
    # the reason's parameters, in no language (when it opens: day, date, time)
    params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PrintDocuments:
    txn_id: str
    selection: Selection
    identity: Identity | None = field(repr=False)
    lang: str = "zh"  # the session's language: the slips are printed in it


@dataclass(frozen=True, slots=True)
class BuildPreview:
    """Fetch the records and build the documents of the selection (the shell does it off-thread)."""

    txn_id: str
    selection: Selection
    identity: Identity | None = field(repr=False)
    lang: str = "zh"


@dataclass(frozen=True, slots=True)
class JournalBegin:
    txn_id: str
    lang: str
    elder: bool


@dataclass(frozen=True, slots=True)
class JournalUpdate:
    """What a session learns as it goes. The resident is only the keyed hash of the ID number
    (the session's pseudonymiser makes it): no name, number or photo reaches the journal's
    write queue, by construction."""

    txn_id: str
    service: str | None = None
    identity_hash: str | None = field(default=None, repr=False)
    lang: str | None = None  # the language and elder mode as the resident changed them
    elder: bool | None = None


@dataclass(frozen=True, slots=True)
class JournalFinish:
    txn_id: str
    outcome: str
    outputs: tuple[str, ...] = ()
    abandoned_state: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class JournalRate:
    txn_id: str
    rating: int
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JournalHelp:
    screen: str
    txn_id: str | None


Effect = (
    Show
    | Speak
    | StopSpeech
    | ReadCard
    | BuildPreview
    | PrintDocuments
    | JournalBegin
    | JournalUpdate
    | JournalFinish
    | JournalRate
    | JournalHelp
)
