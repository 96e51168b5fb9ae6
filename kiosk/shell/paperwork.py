"""Documents and paper: the preview of a selection, and printing it, on worker threads.

:class:`Paperwork` fetches a resident's records from the document provider, builds the
certificates (what prints) and the masked copy the preview shows, prints the A4 pages once and
then every thermal slip of the selection (:mod:`flows.slips`: the receipt, a materials notice
per notice, a queue ticket per open window), each once, in the session's language, and posts
the outcome on the runtime's queue (:class:`PreviewDone`, :class:`PrintDone`). No kivy, no
session state: the runtime decides when, this module does the work.

Queue numbers are reserved in the journal when the preview is built (the screen shows the
number the paper will carry), issued when the ticket has printed, and released when the
resident leaves without printing (:meth:`Paperwork.release`).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flows import documents, slips
from flows.catalog import Catalog, Output, Service
from flows.errors import KioskError
from flows.hours import closure, station_time
from flows.models import Identity, JobState, PrintOutcome, Receipt, Record
from flows.ports import A4Printer, DocumentProvider, ThermalPrinter
from flows.session import BuildPreview, PrintDocuments, Selection, Speak
from flows.tokens import Signer
from kiosk.shell import printing
from statedir.journal import Journal
from statedir.queue_numbers import ticket_job_key

log = logging.getLogger("kiosk.shell.runtime")


@dataclass(frozen=True, slots=True)
class Preview:
    """What the preview screen shows: rendered pages (PNG) or the lines of a slip.

    ``png`` is the first page; ``page_pngs`` every page, and ``records`` the masked records
    they were built from, one per page, for the reading view (:mod:`kiosk.reading`)."""

    png: bytes | None = None
    lines: tuple[str, ...] = ()
    pages: int = 0
    page_pngs: tuple[bytes, ...] = ()
    records: tuple[Record, ...] = ()


@dataclass(frozen=True, slots=True)
class PreviewDone:
    """The documents of a selection were built (``preview``) or could not be (``error_key``)."""

    txn_id: str
    preview: Preview | None = None
    document: documents.Document | None = None
    error_key: str = ""
    said: tuple[Speak, ...] = ()  # told with the preview: a window closed, when it opens


@dataclass(frozen=True, slots=True)
class PrintDone:
    txn_id: str
    outcome: PrintOutcome
    outputs: tuple[str, ...]


class Paperwork:
    """Previews and print jobs of one station, each on a thread of its own."""

    def __init__(
        self,
        *,
        catalog: Callable[[], Catalog],
        a4: A4Printer,
        thermal: ThermalPrinter,
        providers: dict[str, DocumentProvider],
        journal: Journal,
        font: Path,
        signer: Signer | None,
        now: Callable[[], dt.datetime],
        post: Callable[[PreviewDone | PrintDone], None],
        tr: Callable[..., str],
        print_deadline_s: float = 90.0,
        provider_deadline_s: float = 15.0,
    ) -> None:
        self.catalog = catalog
        self.a4 = a4
        self.thermal = thermal
        self.providers = providers
        self.journal = journal
        self.font = font
        self.signer = signer
        self.now = now
        self.post = post
        self.print_deadline_s = print_deadline_s
        self.provider_deadline_s = provider_deadline_s
        self.tr = tr
        self._tickets: dict[str, dict[str, slips.Ticket]] = {}  # txn → service → its ticket

    def tickets(self, txn_id: str, selection: Selection) -> dict[str, slips.Ticket]:
        """The tickets of a selection: a number reserved in the journal for each window that
        is open now (the same number when asked again), none for a closed one."""
        held = self._tickets.get(txn_id)
        if held is not None:
            return held
        catalog = self.catalog()
        now = station_time(self.now(), catalog)
        out = {}
        for service in slips.parts(selection).tickets:
            prefix = slips.prefix(service, catalog)
            closed = closure(service, catalog, now)
            if closed is not None:
                out[service.code] = slips.Ticket(service, prefix, None, closed.opens)
                continue
            number = self.journal.reserve_number(
                day=now.date().isoformat(), prefix=prefix, txn_id=txn_id, service=service.code
            )
            out[service.code] = slips.Ticket(service, prefix, number)
        self._tickets = {txn_id: out}  # one session at a time
        return out

    def release(self) -> None:
        """The resident left without printing (or after): numbers still reserved are freed."""
        for txn_id in list(self._tickets):
            try:
                self.journal.release_numbers(txn_id)
            except Exception:
                log.exception("releasing the queue numbers failed")
        self._tickets = {}

    def slips(
        self,
        txn_id: str,
        selection: Selection,
        identity: Identity | None,
        lang: str,
        document: documents.Document | None = None,
    ) -> list[tuple[str, Receipt]]:
        """The thermal slips of a selection, in ``lang``: (what it is, the slip)."""
        if Output.THERMAL not in selection.outputs:
            return []
        return slips.slips(
            catalog=self.catalog(),
            selection=selection,
            tickets=self.tickets(txn_id, selection),
            identity=identity,
            doc_id=document.doc_id if document else documents.document_id(txn_id, "slip"),
            issued=self.now(),
            say=slips.Say(lang, self.tr),
        )

    def _closed(self, txn_id: str, selection: Selection, lang: str) -> tuple[Speak, ...]:
        """What is said with the preview: each window that is closed, and when it opens."""
        catalog, say = self.catalog(), slips.Say(lang, self.tr)
        now = station_time(self.now(), catalog)
        return tuple(
            Speak("preview.closed", {"text": slips.closed_text(t, catalog, now, say)})
            for t in self.tickets(txn_id, selection).values()
            if t.number is None
        )

    def build_preview(self, effect: BuildPreview) -> None:
        """Fetch the records and build the documents off the UI thread; post the result."""
        selection, identity = effect.selection, effect.identity
        try:
            a4 = [s for s in selection.services if Output.A4 in s.outputs]
            said = self._closed(effect.txn_id, selection, effect.lang)
            if not a4:
                lines: list[str] = []
                for _, slip in self.slips(effect.txn_id, selection, identity, effect.lang):
                    lines += [*(["", ""] if lines else []), *(line.text for line in slip.lines)]
                self.post(PreviewDone(effect.txn_id, Preview(lines=tuple(lines)), said=said))
                return
            if identity is None:
                raise documents.DocumentError("certificates need an identity")
            records = [
                self._provider(s).fetch(s.code, identity, deadline_s=self.provider_deadline_s)
                for s in a4
            ]
            issued = self.now()

            def build(recs: list[Record]) -> documents.Document:
                return documents.record_certificates(
                    recs,
                    catalog=self.catalog(),
                    txn_id=effect.txn_id,
                    issued=issued,
                    font=self.font,
                    signer=self.signer,
                )

            document = build(records)  # what prints
            masked = [documents.masked_record(r, identity) for r in records]
            shown = build(masked)  # the screen
            pngs = printing.render_pages(shown.pdf)
            preview = Preview(pngs[0], pages=document.pages, page_pngs=pngs, records=tuple(masked))
            self.post(PreviewDone(effect.txn_id, preview, document, said=said))
        except KioskError as err:
            log.warning("preview of %s failed: %s", selection.code, type(err).__name__)
            self.post(PreviewDone(effect.txn_id, error_key=err.translation_key))
        except Exception:
            log.exception("preview of %s failed", selection.code)
            self.post(PreviewDone(effect.txn_id, error_key="error.document"))

    def _provider(self, service: Service) -> DocumentProvider:
        provider = self.providers.get(service.provider)
        if provider is None:
            raise documents.DocumentError(f"no provider {service.provider!r} is configured")
        return provider

    def start_printing(self, effect: PrintDocuments, document: documents.Document | None) -> None:
        """Print ``document`` (the A4 pages, if any) and the slips on a worker thread."""
        papers = self.slips(effect.txn_id, effect.selection, effect.identity, effect.lang, document)
        worker = threading.Thread(
            target=self._print_worker,
            args=(effect.txn_id, effect.selection, document, papers),
            name="print",
            daemon=True,
        )
        worker.start()

    def _print_worker(
        self,
        txn_id: str,
        selection: Selection,
        document: documents.Document | None,
        papers: list[tuple[str, Receipt]],
    ) -> None:
        outputs: list[str] = []
        outcome = PrintOutcome(JobState.COMPLETED)
        try:
            if Output.A4 in selection.outputs and document is not None:
                outcome = printing.print_a4_once(
                    self.journal,
                    self.a4,
                    key=f"{document.doc_id}:a4",
                    txn_id=txn_id,
                    pdf=document.pdf,
                    title=document.doc_id,
                    deadline_s=self.print_deadline_s,
                )
                if outcome.ok:
                    outputs.append("a4")
            for what, receipt in papers if outcome.ok else []:
                kind, _, code = what.partition(":")
                outcome = printing.print_slip_once(
                    self.journal,
                    self.thermal,
                    key=_slip_key(txn_id, what),
                    txn_id=txn_id,
                    receipt=receipt,
                    deadline_s=20.0,
                )
                if kind == "ticket":
                    self.journal.end_number(txn_id, code, state="issued" if outcome.ok else "void")
                if not outcome.ok:
                    break
                if "thermal" not in outputs:
                    outputs.append("thermal")
        except Exception as err:  # a driver must not take the session down with it
            log.exception("printing failed")
            outcome = PrintOutcome(
                JobState.FAILED,
                translation_key=getattr(err, "translation_key", "error.print_failed"),
            )
        self.post(PrintDone(txn_id, outcome, tuple(outputs)))


def _slip_key(txn_id: str, what: str) -> str:
    """A slip's print job key: the first slip keeps ``TXN:thermal``; tickets are named so that a
    crash is settled by their key (:func:`statedir.queue_numbers.ticket_job_key`)."""
    kind, _, code = what.partition(":")
    if kind == "ticket":
        return ticket_job_key(txn_id, code)
    return f"{txn_id}:thermal" if kind == "receipt" else f"{txn_id}:{kind}:{code}"
