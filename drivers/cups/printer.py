"""The A4 printer driver: pycups talks IPP to CUPS; deadlines and the error policy are ours.

pycups has no timeouts of its own, so every call runs on a worker thread watched by a deadline
(a stuck call is abandoned on its daemon thread and reported as a timeout). A job is followed to
the end (``job-state``): completed, or failed with a reason the resident is told (translation
key) and the centre sees. ``printer-state-reasons`` and marker levels become typed health. A
queue that CUPS paused (the ``stop-printer`` error policy) is re-enabled once the printer reports
nothing wrong; queues should be created with ``printer-error-policy=retry-job``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import cups

from flows.errors import DeviceError, DeviceOffline, DeviceTimeout
from flows.models import DeviceHealth, DeviceState, JobState, PrintOutcome

log = logging.getLogger("kiosk.drivers.cups")
wire = logging.getLogger("kiosk.wire.a4_printer")  # IPP operations, job ids and states: no titles

T = TypeVar("T")

# IPP job-state values
PENDING, HELD, PROCESSING, STOPPED, CANCELED, ABORTED, COMPLETED = 3, 4, 5, 6, 7, 8, 9
PRINTER_STOPPED = 5
_JOB_STATE_NAMES = {
    PENDING: "job_pending",
    HELD: "job_held",
    PROCESSING: "job_processing",
    STOPPED: "job_stopped",
}

_FAULTS = {
    "media-empty": "paper_out",
    "media-needed": "paper_out",
    "media-jam": "paper_jam",
    "toner-empty": "toner_out",
    "marker-supply-empty": "toner_out",
    "door-open": "door_open",
    "cover-open": "door_open",
}
_DEGRADED = {"media-low": "paper_low", "toner-low": "toner_low", "marker-supply-low": "toner_low"}
_OFFLINE = {"offline": "offline", "connecting-to-device": "unreachable", "shutdown": "offline"}


def _incomplete(attrs: dict[str, Any]) -> bool:
    """A job CUPS created but whose document never came (held, ``job-incoming``)."""
    reasons = attrs.get("job-state-reasons", ())
    reasons = [reasons] if isinstance(reasons, str) else list(reasons)
    return int(attrs.get("job-state", 0)) == HELD and "job-incoming" in reasons


_KEYS = {
    "paper_out": "error.a4.paper_out",
    "paper_jam": "error.a4.paper_jam",
    "toner_out": "error.a4.toner_out",
    "door_open": "error.a4.door_open",
    "offline": "error.a4.offline",
    "unreachable": "error.a4.offline",
    "cups_unreachable": "error.a4.offline",
    "timeout": "error.a4.timeout",
    "queue_missing": "error.a4.queue_missing",
}

_FINAL_CALL_S = 1.0  # budget of each call made once the deadline has passed (state, cancel)


class QueueMissing(DeviceError):
    """CUPS answers but has no such queue: a configuration or installation fault, not an outage."""

    translation_key = "error.a4.queue_missing"


def _reason(raw: str) -> str:
    for suffix in ("-error", "-warning", "-report"):
        if raw.endswith(suffix):
            return raw[: -len(suffix)]
    return raw


def classify(
    state: int, reasons: list[str], accepting: bool
) -> tuple[DeviceState, tuple[str, ...]]:
    """Map IPP printer attributes to a typed state and short reasons."""
    names = [_reason(r) for r in reasons if r and r != "none"]
    faults = [_FAULTS[n] for n in names if n in _FAULTS]
    if faults:
        return DeviceState.FAULT, tuple(dict.fromkeys(faults))
    offline = [_OFFLINE[n] for n in names if n in _OFFLINE]
    if offline:
        return DeviceState.OFFLINE, tuple(dict.fromkeys(offline))
    if state == PRINTER_STOPPED or "paused" in names:
        return DeviceState.FAULT, ("paused",)
    if not accepting:
        return DeviceState.FAULT, ("not_accepting",)
    degraded = [_DEGRADED[n] for n in names if n in _DEGRADED]
    if degraded:
        return DeviceState.DEGRADED, tuple(dict.fromkeys(degraded))
    return DeviceState.OK, ()


class CupsPrinter:
    """Implements :class:`flows.ports.A4Printer` for one CUPS queue."""

    def __init__(
        self,
        queue: str,
        *,
        server: str | None = None,
        name: str = "a4_printer",
        call_timeout_s: float = 5.0,
        poll_s: float = 0.3,
    ) -> None:
        self.name = name
        self.queue = queue
        self.host, _, port = (server or "").rpartition(":") if server else ("", "", "")
        self.port = int(port) if port else 0
        self.call_timeout_s = call_timeout_s
        self.poll_s = poll_s
        # a printer that cannot tell us its state (a raw socket one) still failed a job: until a
        # job completes again, health says so, with the reasons of that failure
        self._last_failure: tuple[str, ...] = ()

    # --- port ----------------------------------------------------------------------------------

    def health(self, *, timeout_s: float | None = None) -> DeviceHealth:
        try:
            attrs = self._call(
                lambda c: c.getPrinterAttributes(
                    self.queue,
                    requested_attributes=[
                        "printer-state",
                        "printer-state-reasons",
                        "printer-is-accepting-jobs",
                        "marker-names",
                        "marker-levels",
                    ],
                ),
                timeout_s=timeout_s,
            )
        except QueueMissing:
            return DeviceHealth(self.name, "a4_printer", DeviceState.FAULT, ("queue_missing",))
        except (DeviceOffline, DeviceTimeout) as err:
            reason = "timeout" if isinstance(err, DeviceTimeout) else "cups_unreachable"
            return DeviceHealth(self.name, "a4_printer", DeviceState.OFFLINE, (reason,))
        state, reasons = classify(
            int(attrs.get("printer-state", 0)),
            list(attrs.get("printer-state-reasons", [])),
            bool(attrs.get("printer-is-accepting-jobs", True)),
        )
        if reasons == ("paused",):
            state, reasons = self._resume()
        markers = dict(
            zip(attrs.get("marker-names", []), attrs.get("marker-levels", []), strict=False)
        )
        detail = {"queue": self.queue, "markers": markers}
        if state is DeviceState.OK and self._last_failure:
            state, reasons = DeviceState.DEGRADED, ("last_job_failed", *self._last_failure)
        return DeviceHealth(self.name, "a4_printer", state, reasons, detail)

    def print_pdf(self, pdf: bytes, *, title: str, job_key: str, deadline_s: float) -> PrintOutcome:
        deadline = time.monotonic() + deadline_s
        fd, path = tempfile.mkstemp(prefix="kiosk-", suffix=".pdf")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(pdf)
            job_id = int(
                self._call(
                    lambda c: c.printFile(self.queue, path, job_key, {"document-name": title}),
                    timeout_s=self._budget(deadline),
                )
            )
        except DeviceTimeout:
            # the submission may still have reached CUPS: say so rather than guess a job id
            return self._failed("", ("timeout", "submission_unconfirmed"))
        except DeviceError:
            # CUPS refused or was not there; ask it why (a missing queue is not an outage)
            return self._failed("", self._printer_reasons() or ("cups_unreachable",))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        log.info("job %s submitted to %s (%s, %d bytes)", job_id, self.queue, job_key, len(pdf))
        return self._follow(job_id, deadline)

    def _budget(self, deadline: float) -> float:
        """A call's timeout: ``call_timeout_s``, cut to what is left before the deadline."""
        return max(_FINAL_CALL_S, min(self.call_timeout_s, deadline - time.monotonic()))

    def follow(self, job_key: str, *, deadline_s: float) -> PrintOutcome | None:
        """Find the job named ``job_key`` (any state) and follow it; None if CUPS never had it."""
        deadline = time.monotonic() + deadline_s
        # getJobs does not hand back job-name; ask each recent job for its attributes
        try:
            jobs = self._call(
                lambda c: c.getJobs(which_jobs="all", requested_attributes=["job-id", "job-state"])
            )
            for job_id in sorted(jobs, reverse=True)[:100]:
                attrs: dict[str, Any] = self._call(self._job_name_query(int(job_id)))
                if attrs.get("job-name") != job_key:
                    continue
                if _incomplete(attrs):
                    # the submitter died between Create-Job and its document: CUPS would hold
                    # the empty job forever, and nothing of it can print
                    return self._cancel_incomplete(int(job_id))
                return self._follow(int(job_id), deadline)
        except (DeviceOffline, DeviceTimeout):
            return PrintOutcome(JobState.FAILED, "", ("cups_unreachable",), "error.a4.offline")
        return None

    @staticmethod
    def _job_name_query(job_id: int) -> Callable[[Any], dict[str, Any]]:
        return lambda c: dict(
            c.getJobAttributes(
                job_id, requested_attributes=["job-name", "job-state", "job-state-reasons"]
            )
        )

    def _cancel_incomplete(self, job_id: int) -> PrintOutcome:
        try:
            self._call(lambda c: c.cancelJob(job_id), timeout_s=_FINAL_CALL_S)
        except DeviceError:
            return self._failed(str(job_id), ("submission_incomplete", "cancel_failed"))
        log.warning("job %s never received its document; cancelled", job_id)
        return self._failed(str(job_id), ("submission_incomplete", "job_cancelled"))

    # --- internals -----------------------------------------------------------------------------

    def _follow(self, job_id: int, deadline: float) -> PrintOutcome:
        reasons: tuple[str, ...] = ()
        while True:
            try:
                attrs = self._call(
                    lambda c: c.getJobAttributes(
                        job_id, requested_attributes=["job-state", "job-state-reasons"]
                    ),
                    timeout_s=self._budget(deadline),
                )
                state = int(attrs.get("job-state", 0))
            except DeviceError:
                state = 0
            wire.debug("job %s state %s", job_id, state)
            if state == COMPLETED:
                self._last_failure = ()
                return PrintOutcome(JobState.COMPLETED, str(job_id))
            if state in (CANCELED, ABORTED):
                return self._failed(str(job_id), self._printer_reasons() or ("aborted",))
            if time.monotonic() > deadline:
                # what the printer says, else that time ran out; then where the job was stuck
                reasons = self._printer_reasons() or ("timeout",)
                if state in _JOB_STATE_NAMES:
                    reasons += (_JOB_STATE_NAMES[state],)
                try:
                    self._call(lambda c: c.cancelJob(job_id), timeout_s=_FINAL_CALL_S)
                    reasons += ("job_cancelled",)
                except DeviceError:
                    # the job may still print later: the outcome must not pretend it is gone
                    reasons += ("cancel_failed",)
                log.warning("job %s did not complete in time: %s", job_id, reasons)
                return self._failed(str(job_id), reasons)
            time.sleep(self.poll_s)

    def _printer_reasons(self) -> tuple[str, ...]:
        health = self.health(timeout_s=_FINAL_CALL_S)
        return () if health.state is DeviceState.OK else health.reasons

    def _failed(self, job_id: str, reasons: tuple[str, ...]) -> PrintOutcome:
        key = next((_KEYS[r] for r in reasons if r in _KEYS), "error.print_failed")
        self._last_failure = tuple(r for r in reasons if not r.startswith("job_")) or ("failed",)
        return PrintOutcome(JobState.FAILED, job_id, reasons, key)

    def _resume(self) -> tuple[DeviceState, tuple[str, ...]]:
        """CUPS paused the queue; the printer itself reports nothing wrong: take it up again."""
        try:
            self._call(lambda c: c.enablePrinter(self.queue))
            self._call(lambda c: c.acceptJobs(self.queue))
        except DeviceError:
            return DeviceState.FAULT, ("paused",)
        log.warning("queue %s was paused by CUPS; re-enabled it", self.queue)
        return DeviceState.OK, ()

    def _where(self) -> str:
        return f"{self.host}:{self.port}" if self.host else "(default server)"

    def _connect(self) -> Any:
        if self.host:
            # libcups looks destinations up on the process-wide server (cupsPrintFile2 calls
            # cupsGetNamedDest on CUPS_HTTP_DEFAULT), so set it too: one CUPS server per process
            cups.setServer(self.host)
            cups.setPort(self.port)
            return cups.Connection(host=self.host, port=self.port)
        return cups.Connection()

    def _call(self, fn: Callable[[Any], T], *, timeout_s: float | None = None) -> T:
        """Run one pycups call on a worker thread, within ``timeout_s`` (``call_timeout_s``).

        A call that overruns is abandoned on its daemon thread: pycups cannot be interrupted.
        """
        timeout = self.call_timeout_s if timeout_s is None else timeout_s
        box: dict[str, Any] = {}
        started = time.monotonic()

        def work() -> None:
            try:
                box["value"] = fn(self._connect())
            except BaseException as err:  # handed back to the caller below
                box["error"] = err

        worker = threading.Thread(target=work, name="cups-call", daemon=True)
        worker.start()
        worker.join(timeout)
        elapsed_ms = (time.monotonic() - started) * 1000
        if worker.is_alive():
            wire.warning("no answer from CUPS %s within %.1fs", self._where(), timeout)
            raise DeviceTimeout(f"CUPS did not answer within {timeout}s")
        if "error" in box:
            err = box["error"]
            wire.debug("CUPS %s error %r after %.0f ms", self._where(), err, elapsed_ms)
            if isinstance(err, cups.IPPError) and err.args and err.args[0] == cups.IPP_NOT_FOUND:
                raise QueueMissing(f"CUPS has no queue {self.queue!r}") from err
            if isinstance(err, cups.IPPError | RuntimeError | OSError):
                raise DeviceOffline(f"CUPS: {err}") from err
            raise err
        wire.debug("CUPS %s answered in %.0f ms", self._where(), elapsed_ms)
        value: T = box["value"]
        return value
