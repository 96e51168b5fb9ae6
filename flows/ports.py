"""Ports: what the domain needs from each kind of device, as ``typing.Protocol``.

Drivers in ``drivers/`` implement these; the composition root in ``kiosk/`` picks one per device
by name from the ``[devices]`` section of the configuration. A port never exposes a device
library's types or exceptions: errors are :mod:`flows.errors` types, health is
:class:`flows.models.DeviceHealth`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from flows.models import DeviceEvent, DeviceHealth, Identity, PrintOutcome, Receipt, Record

EventSink = Callable[[DeviceEvent], None]
"""Where a driver posts its events: the flow's queue. Called from the driver's own thread."""


class IdentityReader(Protocol):
    """A card reader that yields identities (GA 467 SAM reader or PC/SC smart-card reader)."""

    name: str

    def start(self, sink: EventSink) -> None:
        """Start watching for cards on a thread of the driver's own; events go to ``sink``."""

    def stop(self) -> None:
        """Stop watching and release the device. Returns within a couple of seconds."""

    def read_again(self) -> None:
        """A new session begins: a card lying on the reader now, even one read (or failed)
        before, is announced and read again. Any thread; returns at once; nothing happens
        when no card is there."""

    def health(self) -> DeviceHealth: ...


class A4Printer(Protocol):
    """A document printer, reached through CUPS."""

    name: str

    def print_pdf(self, pdf: bytes, *, title: str, job_key: str, deadline_s: float) -> PrintOutcome:
        """Submit a PDF and follow it until it completes, fails or the deadline passes."""

    def follow(self, job_key: str, *, deadline_s: float) -> PrintOutcome | None:
        """After a restart: find the job submitted under ``job_key`` and follow it to its end;
        None if the printing system never received it."""

    def health(self) -> DeviceHealth: ...


class ThermalPrinter(Protocol):
    """A receipt and ticket printer speaking ESC/POS."""

    name: str

    def print_receipt(self, receipt: Receipt, *, deadline_s: float) -> PrintOutcome:
        """Check status, send the receipt, check status again."""

    def health(self) -> DeviceHealth: ...


class Speech(Protocol):
    """Spoken guidance. Never blocks the caller; ``stop`` silences at once."""

    name: str

    def speak(self, text: str, *, lang: str, elder: bool = False) -> None:
        """Queue ``text`` in ``lang`` ("zh" or "en"), interrupting whatever is playing."""

    def stop(self) -> None:
        """Stop playback now and drop anything queued."""

    def busy(self) -> bool:
        """Is something being synthesised or played? (A resident listening is not idle.)"""

    def prewarm(self, items: list[tuple[str, str]]) -> None:
        """Synthesise (text, lang) prompts into a cache in the background, ahead of need."""

    def set_volume(self, level: float) -> None:
        """Loudness (0..1) of what is spoken from now on."""

    def route(self, headphones: bool) -> bool:
        """Speak into the headphone jack only (True) or the loudspeaker (False), from now on;
        False when there is no headphone output to speak into privately."""

    def close(self) -> None:
        """Stop and release the engine and the player."""

    def health(self) -> DeviceHealth: ...


class DocumentProvider(Protocol):
    """Where a service gets the resident's records: a government platform, or the demo data."""

    name: str

    def fetch(self, service: str, identity: Identity, *, deadline_s: float) -> Record:
        """The record of ``service`` for ``identity``; raises :class:`flows.errors.ProviderError`
        subclasses (unavailable, no record) with translation keys."""

    def health(self) -> DeviceHealth: ...


class PhotoDecoder(Protocol):
    """Turns the 1024-byte encrypted card photo (WLT) into an image. Decoders are licensed by
    the card authority, so none ships; a station that has one names it in the configuration."""

    def decode(self, wlt: bytes) -> bytes:
        """The photo as image bytes (PNG or BMP); raises :class:`flows.errors.DeviceError`."""
