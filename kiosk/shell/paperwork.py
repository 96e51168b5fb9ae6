"""Documents and paper: the preview of a selection, and printing it, on worker threads.

:class:`Paperwork` fetches a resident's records from the document provider, builds the
certificates (what prints) and the masked copy the preview shows, prints the A4 pages once and
then the thermal slip (receipt, materials notice or queue ticket), and posts the outcome on the
runtime's queue (:class:`PreviewDone`, :class:`PrintDone`). No kivy, no session state: the
runtime decides when, this module does the work.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flows import documents
from flows.catalog import Catalog, Output, Service
from flows.errors import KioskError
from flows.models import Identity, JobState, PrintOutcome, Receipt, Record
from flows.ports import A4Printer, DocumentProvider, ThermalPrinter
from flows.session import BuildPreview, PrintDocuments, Selection
from flows.tokens import Signer
from kiosk.shell import printing
from statedir.journal import Journal

log = logging.getLogger("kiosk.shell.runtime")


@dataclass(frozen=True, slots=True)
class Preview:
    """What the preview screen shows: a rendered page (PNG) or the lines of a slip."""

    png: bytes | None = None
    lines: tuple[str, ...] = ()
    pages: int = 0


@dataclass(frozen=True, slots=True)
class PreviewDone:
    """The documents of a selection were built (``preview``) or could not be (``error_key``)."""

    txn_id: str
    preview: Preview | None = None
    document: documents.Document | None = None
    error_key: str = ""


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
        self.ticket_number = 0

    def slip(
        self,
        selection: Selection,
        identity: Identity | None,
        pages: int,
        document: documents.Document | None = None,
    ) -> Receipt:
        """The thermal slip of a selection: materials notice, receipt of an A4 service or queue
        ticket."""
        now = self.now()
        notice = selection.notice
        if notice is not None:
            return documents.materials_notice(catalog=self.catalog(), service=notice, issued=now)
        if Output.A4 in selection.outputs:
            return documents.service_receipt(
                catalog=self.catalog(),
                services=selection.services,
                identity=identity,
                doc_id=document.doc_id if document else "-",
                issued=now,
                pages=pages,
            )
        self.ticket_number += 1
        return documents.queue_ticket(
            catalog=self.catalog(),
            service=selection.services[0],
            number=self.ticket_number,
            issued=now,
        )

    def build_preview(self, effect: BuildPreview) -> None:
        """Fetch the records and build the documents off the UI thread; post the result."""
        selection, identity = effect.selection, effect.identity
        try:
            a4 = [s for s in selection.services if Output.A4 in s.outputs]
            if not a4:
                slip = self.slip(selection, identity, 0)
                preview = Preview(lines=tuple(line.text for line in slip.lines))
                self.post(PreviewDone(effect.txn_id, preview))
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
            shown = build([documents.masked_record(r, identity) for r in records])  # the screen
            preview = Preview(png=printing.render_page(shown.pdf), pages=document.pages)
            self.post(PreviewDone(effect.txn_id, preview, document))
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
        """Print ``document`` (the A4 pages, if any) and the slip on a worker thread."""
        pages = document.pages if document else 0
        receipt = self.slip(effect.selection, effect.identity, pages, document)
        worker = threading.Thread(
            target=self._print_worker,
            args=(effect.txn_id, effect.selection, document, receipt),
            name="print",
            daemon=True,
        )
        worker.start()

    def _print_worker(
        self,
        txn_id: str,
        selection: Selection,
        document: documents.Document | None,
        receipt: Receipt,
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
            if outcome.ok and Output.THERMAL in selection.outputs:
                outcome = printing.print_slip_once(
                    self.journal,
                    self.thermal,
                    key=f"{txn_id}:thermal",
                    txn_id=txn_id,
                    receipt=receipt,
                    deadline_s=20.0,
                )
                if outcome.ok:
                    outputs.append("thermal")
        except Exception as err:  # a driver must not take the session down with it
            log.exception("printing failed")
            outcome = PrintOutcome(
                JobState.FAILED,
                translation_key=getattr(err, "translation_key", "error.print_failed"),
            )
        self.post(PrintDone(txn_id, outcome, tuple(outputs)))
