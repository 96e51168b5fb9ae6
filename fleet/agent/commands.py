"""Remote commands on the terminal: ``.../cmd/{id}`` in, ``.../cmd/{id}/result`` out.

The console publishes a command (QoS 1, with a message expiry) as
``{"name": "test_print", "args": {"printer": "a4"}, "timeout_s": 60}`` to the station's
``cmd/{id}``. The :class:`Dispatcher`, called from the agent's ``on_message``, checks it, records
it in the journal (table ``commands``) and answers at once with ``accepted``, later with
``succeeded``, ``failed`` or ``timed_out`` and a ``detail`` object. Results are QoS 1 with a message
expiry (:data:`RESULT_EXPIRY_S`) and never retained::

    {"id", "name", "status", "detail", "station", "ts", "repeat"}

Commands are idempotent by id: an id the journal has seen is never run again; a redelivered or
retried command (also after a restart of the agent) is answered with the stored result
(``repeat: true``), or with ``accepted`` while it is still running.

Handlers are registered by name (:meth:`Dispatcher.register`, :class:`Handler`). Two kinds:

- agent side (``target="agent"``): run by the agent on a worker thread: ``rebirth`` (publish the
  birth again), ``collect_logs`` (the tail of the kiosk's log files, redacted by :func:`redact`);
  other modules add theirs (e.g. certificate renewal's ``install_certificate``).
- UI side (``target="ui"``): the agent only writes them to the journal as ``pending``; the kiosk
  (``kiosk.shell.remote``) picks them up when it may, carries them out and writes the result, which
  the
  agent then publishes: ``test_print``, ``restart_ui``, ``self_test``, ``screenshot``,
  ``reload_catalog``, ``help_reply`` (a technician's answer shown to the resident).

A command without a result by its deadline is ``timed_out``; the first final result written wins.
A result the broker has not acknowledged yet is published again (also after a restart).
"""

from __future__ import annotations

import base64
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleet.protocol.call import parse_offer, parse_screen_args
from fleet.protocol.commands import COMMANDS
from fleet.protocol.help import parse_reply
from fleet.protocol.models import MAX_PAYLOAD_BYTES
from fleet.protocol.topics import StationTopics, dumps, loads
from statedir.journal import COMMAND_ID, CommandRecord, Journal

log = logging.getLogger("kiosk.agent.commands")

RESULT_EXPIRY_S = 3600
"""Message expiry of results: a console that is away longer asks again (idempotent by id)."""
MAX_PAYLOAD = MAX_PAYLOAD_BYTES
"""No result payload is larger than the protocol's limit (screenshots are downscaled by the kiosk
to fit)."""
MAX_LOG_BYTES = 128 * 1024
KEEP_RESULTS_S = 7 * 24 * 3600.0
REPUBLISH_S = 10.0
LOOP_S = 0.2
SCREENSHOT_DIR = "screenshots"

STATUS = {
    "pending": "accepted",
    "running": "accepted",
    "succeeded": "succeeded",
    "failed": "failed",
    "timed_out": "timed_out",
}


class CommandFailed(Exception):
    """A handler's way to say ``failed`` with a reason (a short code) and details."""

    def __init__(self, reason: str, **detail: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Command:
    id: str
    name: str
    args: dict[str, Any]
    deadline: float


def no_args(args: dict[str, Any]) -> dict[str, Any]:
    if args:
        raise CommandFailed("bad_args", unexpected=sorted(args))
    return {}


def _printer_arg(args: dict[str, Any]) -> dict[str, Any]:
    printer = args.get("printer")
    if printer not in ("a4", "thermal") or set(args) != {"printer"}:
        raise CommandFailed("bad_args", expected={"printer": ["a4", "thermal"]})
    return {"printer": printer}


def _lines_arg(args: dict[str, Any]) -> dict[str, Any]:
    lines = args.get("lines", 200)
    if set(args) - {"lines"} or not isinstance(lines, int) or not 1 <= lines <= 5000:
        raise CommandFailed("bad_args", expected={"lines": "1..5000"})
    return {"lines": lines}


AgentRun = Callable[[Command], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Handler:
    """A command by name: where it runs, its default deadline, its argument check."""

    name: str
    target: Literal["agent", "ui"]
    timeout_s: float = 60.0
    validate: Callable[[dict[str, Any]], dict[str, Any]] = no_args
    run: AgentRun | None = None  # agent side only


def _handler(
    name: str, validate: Callable[[dict[str, Any]], dict[str, Any]] = no_args, **more: Any
) -> Handler:
    """A handler for a command of :data:`fleet.protocol.commands.COMMANDS`, as listed there."""
    spec = COMMANDS[name]
    return Handler(spec.name, spec.target, spec.timeout_s, validate, **more)


def _help_reply_arg(args: dict[str, Any]) -> dict[str, Any]:
    reply = parse_reply(args)
    if reply is None:
        raise CommandFailed("bad_args", expected="fleet.protocol.help.HelpReply")
    return reply.args()


def _call_offer_arg(args: dict[str, Any]) -> dict[str, Any]:
    offer = parse_offer(args)
    if offer is None:
        raise CommandFailed("bad_args", expected="fleet.protocol.call.CallOffer")
    return offer.args()


def _screenshot_arg(args: dict[str, Any]) -> dict[str, Any]:
    screen = parse_screen_args(args)
    if screen is None:
        raise CommandFailed("bad_args", expected="fleet.protocol.call.ScreenArgs")
    return screen.args()


UI_HANDLERS: tuple[Handler, ...] = (
    _handler("test_print", _printer_arg),
    _handler("restart_ui"),
    _handler("self_test"),
    _handler("screenshot", _screenshot_arg),  # a call in progress may ask for the session's
    _handler("reload_catalog"),
    _handler("help_reply", _help_reply_arg),
    _handler("call_offer", _call_offer_arg),
)
"""Carried out by the kiosk (``kiosk.shell.remote``); most wait until no resident is in a
session."""


# --- redaction ---------------------------------------------------------------------------------

ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
"""An 18-character ID number (resident card, residence permit, 2023 permanent residence card)."""
FOREIGN_ID_2017 = re.compile(r"(?<![0-9A-Za-z])[A-Z]{3}\d{12}(?![0-9A-Za-z])")
"""A 2017-edition permanent residence card number: nationality letters and twelve digits."""
NAMED_VALUE = re.compile(r"""((?:\bname|姓名)\s*[=:：]\s*['"]?)([^'",;\s)}\]]+)""", re.IGNORECASE)
HEX64 = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


def redact(text: str, personal: Collection[str] = ()) -> tuple[str, int]:
    """Mask ID numbers, values labelled as a name, and the journal's personal values.

    ``personal`` are values the journal marks personal (identity hashes, 64 hex characters).
    Returns the masked text and how many places were masked.
    """
    count = 0

    def sub(pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str], s: str) -> str:
        nonlocal count
        out, n = pattern.subn(repl, s)
        count += n
        return out

    text = sub(ID_NUMBER, lambda m: "[id-number]", text)
    text = sub(FOREIGN_ID_2017, lambda m: "[id-number]", text)
    text = sub(NAMED_VALUE, lambda m: m.group(1) + "[name]", text)
    if personal:
        wanted = set(personal)
        masked = 0

        def hide(m: re.Match[str]) -> str:
            nonlocal masked
            if m.group(0) in wanted:
                masked += 1
                return "[personal]"
            return m.group(0)

        text = HEX64.sub(hide, text)
        count += masked
    return text, count


def tail_logs(
    log_dir: Path, lines: int, *, max_bytes: int = MAX_LOG_BYTES, base: str = "kiosk.log"
) -> tuple[list[str], str]:
    """The last ``lines`` lines of ``kiosk.log`` and its rotations (``.1`` is the newest)."""
    files = sorted(
        (p for p in log_dir.glob(f"{base}*") if p.is_file() and _rotation(p, base) >= 0),
        key=lambda p: _rotation(p, base),
    )
    kept: list[str] = []
    used: list[str] = []
    for path in files:  # newest first
        with path.open("rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - max_bytes))
            chunk = f.read().decode("utf-8", errors="replace").splitlines()
        if size > max_bytes and chunk:
            chunk = chunk[1:]  # the first line read is cut
        used.append(path.name)
        kept = chunk[-(lines - len(kept)) :] + kept
        if len(kept) >= lines:
            break
    text = "\n".join(kept)
    encoded = text.encode("utf-8")
    if len(encoded) > max_bytes:  # keep the newest lines
        text = encoded[-max_bytes:].decode("utf-8", errors="ignore").split("\n", 1)[-1]
    return used, text


def _rotation(path: Path, base: str) -> int:
    """0 for the live file, N for ``base.N``, -1 for anything else."""
    if path.name == base:
        return 0
    suffix = path.name.removeprefix(base + ".")
    return int(suffix) if suffix.isdigit() and path.name.startswith(base + ".") else -1


# --- the dispatcher ----------------------------------------------------------------------------


class Dispatcher:
    """Commands of one station: parse, record, answer, run (agent side) and report."""

    def __init__(
        self,
        *,
        journal: Journal,
        topics: StationTopics,
        client: mqtt.Client,
        birth: Callable[[], bytes],
        state_dir: Path,
        log_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.journal = journal
        self.topics = topics
        self.client = client
        self.state_dir = state_dir
        self.log_dir = log_dir or state_dir / "logs"
        self._birth = birth
        self._clock = clock
        self.handlers: dict[str, Handler] = {}
        self._prefix = f"{topics.root}/cmd/"
        self._work: queue.Queue[Command | None] = queue.Queue()
        self._sent: dict[str, tuple[str, mqtt.MQTTMessageInfo, float]] = {}
        self._sent_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        for handler in UI_HANDLERS:
            self.register(handler)
        self.register(_handler("rebirth", run=self._rebirth))
        self.register(_handler("collect_logs", _lines_arg, run=self._collect_logs))

    def register(self, handler: Handler) -> None:
        """Add (or replace) a command; agent-side handlers need ``run``."""
        if handler.target == "agent" and handler.run is None:
            raise ValueError(f"agent-side command {handler.name!r} needs a run function")
        self.handlers[handler.name] = handler

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        for cmd in self.journal.commands(target="agent"):
            if not cmd.final:  # the agent died while it ran: do not run it a second time
                self.journal.finish_command(cmd.id, "failed", {"reason": "interrupted"})
        for target, name in ((self._loop, "agent-commands"), (self._worker, "agent-command-run")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._work.put(None)
        for thread in self._threads:
            thread.join(timeout=5)

    # --- in: from the agent's on_message (paho's network thread) -------------------------------

    def command_id(self, topic: str) -> str | None:
        """The id of a ``.../cmd/{id}`` topic of this station (not of its results)."""
        if not topic.startswith(self._prefix):
            return None
        rest = topic[len(self._prefix) :]
        return rest if "/" not in rest else None

    def on_message(self, message: mqtt.MQTTMessage) -> bool:
        """Handle a command message; False if the topic is not a command of this station."""
        command_id = self.command_id(message.topic)
        if command_id is None:
            return False
        if not COMMAND_ID.match(command_id):
            log.warning("ignored a command with an unusable id")
            return True
        try:
            self.receive(command_id, bytes(message.payload))
        except Exception:
            log.exception("handling command %s failed", command_id)
        return True

    def receive(self, command_id: str, payload: bytes) -> CommandRecord:
        """Record a command (once per id) and answer; queue agent-side work."""
        known = self.journal.command(command_id)
        if known is not None:
            self._answer(known, repeat=True)
            return known
        now = self._clock()
        name = "?"
        try:
            body = loads(payload)
            name = str(body.get("name", "?"))[:64]
            handler = self.handlers.get(name)
            if handler is None:
                raise CommandFailed("unknown_command", known=sorted(self.handlers))
            args = body.get("args", {})
            if not isinstance(args, dict):
                raise CommandFailed("bad_args")
            args = handler.validate(args)
            timeout = body.get("timeout_s", handler.timeout_s)
            if not isinstance(timeout, int | float) or not 1 <= timeout <= 24 * 3600:
                raise CommandFailed("bad_timeout", expected="1..86400 s")
        except (ValueError, CommandFailed) as err:
            reason = err.reason if isinstance(err, CommandFailed) else "bad_payload"
            detail = {"reason": reason, **(err.detail if isinstance(err, CommandFailed) else {})}
            record, _ = self.journal.add_command(
                command_id, name, {}, target="agent", deadline=now, state="failed", detail=detail
            )
            log.warning("command %s refused: %s", command_id, reason)
            self._answer(record)
            return record
        state = "running" if handler.target == "agent" else "pending"
        record, new = self.journal.add_command(
            command_id, name, args, target=handler.target, deadline=now + timeout, state=state
        )
        self._answer(record, repeat=not new)
        if new and handler.target == "agent":
            self._work.put(Command(command_id, name, args, record.deadline))
        log.info("command %s (%s) accepted", command_id, name)
        return record

    # --- out -----------------------------------------------------------------------------------

    def result_payload(self, record: CommandRecord, *, repeat: bool = False) -> bytes:
        detail = dict(record.detail)
        if record.name == "screenshot" and record.state == "succeeded":
            detail = self._attach_png(detail)
        body = {
            "id": record.id,
            "name": record.name,
            "status": STATUS[record.state],
            "detail": detail,
            "station": self.topics.station,
            "ts": self._clock(),
            "repeat": repeat,
        }
        data = dumps(body)
        if len(data) > MAX_PAYLOAD:
            body["detail"] = {"reason": "too_large", "bytes": len(data)}
            data = dumps(body)
        return data

    def _attach_png(self, detail: dict[str, Any]) -> dict[str, Any]:
        name = str(detail.get("file", ""))
        path = (self.state_dir / name).resolve()
        shots = (self.state_dir / SCREENSHOT_DIR).resolve()
        if not name or path.parent != shots or not path.is_file():
            return {**detail, "png_base64": None, "image": "missing"}
        data = path.read_bytes()
        if len(data) * 4 // 3 > MAX_PAYLOAD - 4096:
            return {**detail, "png_base64": None, "image": "too_large"}
        return {**detail, "png_base64": base64.b64encode(data).decode("ascii")}

    def _publish(self, record: CommandRecord, *, repeat: bool = False) -> mqtt.MQTTMessageInfo:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.MessageExpiryInterval = RESULT_EXPIRY_S
        return self.client.publish(
            self.topics.command_result(record.id),
            self.result_payload(record, repeat=repeat),
            qos=1,
            properties=props,
        )

    def _answer(self, record: CommandRecord, *, repeat: bool = False) -> None:
        """Answer now; a final answer is then followed up by :meth:`flush` until acknowledged."""
        info = self._publish(record, repeat=repeat)
        if record.final and not record.published:
            with self._sent_lock:
                self._sent[record.id] = (record.state, info, time.monotonic())

    def _loop(self) -> None:
        last_prune = 0.0
        while not self._stop.wait(LOOP_S):
            try:
                self.journal.expire_commands()
                self.flush()
                if self._clock() - last_prune > 3600:
                    last_prune = self._clock()
                    self.journal.prune_commands(KEEP_RESULTS_S)
            except Exception:
                log.exception("the command loop failed")

    def flush(self) -> int:
        """Publish final results the broker has not acknowledged yet; returns how many sent."""
        if not self.client.is_connected():
            return 0
        sent = 0
        now = time.monotonic()
        for record in self.journal.commands(unpublished=True):
            if not record.final:
                continue
            with self._sent_lock:
                known = self._sent.get(record.id)
            if known is not None and known[0] == record.state:
                if known[1].is_published():
                    self.journal.mark_command_published(record.id, record.state)
                    with self._sent_lock:
                        self._sent.pop(record.id, None)
                    continue
                if now - known[2] < REPUBLISH_S:
                    continue
            info = self._publish(record)
            with self._sent_lock:
                self._sent[record.id] = (record.state, info, now)
            sent += 1
        return sent

    # --- agent-side handlers -------------------------------------------------------------------

    def _worker(self) -> None:
        while True:
            command = self._work.get()
            if command is None:
                return
            handler = self.handlers[command.name]
            assert handler.run is not None
            try:
                detail = handler.run(command)
                state = "succeeded"
            except CommandFailed as err:
                state, detail = "failed", {"reason": err.reason, **err.detail}
            except Exception as err:
                log.exception("command %s (%s) failed", command.id, command.name)
                state, detail = "failed", {"reason": "error", "error": type(err).__name__}
            if not self.journal.finish_command(command.id, state, detail):
                log.warning("command %s ended after its deadline", command.id)

    def _rebirth(self, command: Command) -> dict[str, Any]:
        info = self.client.publish(self.topics.birth, self._birth(), qos=1, retain=True)
        try:
            info.wait_for_publish(timeout=max(1.0, command.deadline - self._clock()))
        except (RuntimeError, ValueError) as err:
            raise CommandFailed("not_published") from err
        if not info.is_published():
            raise CommandFailed("not_published")
        return {"birth": "published"}

    def _collect_logs(self, command: Command) -> dict[str, Any]:
        if not self.log_dir.is_dir():
            raise CommandFailed("no_logs")
        files, text = tail_logs(self.log_dir, int(command.args.get("lines", 200)))
        text, masked = redact(text, self.journal.personal_values())
        return {
            "files": files,
            "lines": text.count("\n") + 1 if text else 0,
            "masked": masked,
            "text": text,
        }
