"""A lean MQTT v5 subscriber for the console's ingest: batches in, acknowledged after the commit.

paho-mqtt stays the fleet's client everywhere else (the agent, the console's commands, the
rollout driver, the simulator). For the console's inbound stream it falls short twice: it reads
one packet per ``select()`` with several ``recv()`` calls and builds a ``Properties`` object per
message (about 15,000 messages/s here against ``mosquitto_sub``'s 80,000–120,000), and it
acknowledges a QoS 1 message when the callback returns, so a console that commits in batches
either acknowledges before its commit (a crash loses what the broker already let go) or commits
once per message. gmqtt reads faster but acknowledges per message through one asyncio task each.
See ``docs/decisions.md``.

This module speaks only what a subscriber needs (MQTT v5, OASIS 2019): CONNECT with a persistent
session (clean start off, session expiry, a Receive Maximum bounding the messages held without an
acknowledgement), SUBSCRIBE, PUBLISH in (QoS 0 and 1), PUBACK, PINGREQ and DISCONNECT, over TCP
or TLS with a client certificate. One asyncio loop thread does all socket I/O (so TLS is never
read and written from two threads); a worker thread hands each batch of messages to
``on_batch``; only when it returns are the batch's PUBACKs written, in one write. If ``on_batch``
raises (the database is down), the same batch is offered again after a pause and nothing is
acknowledged meanwhile: the broker holds the rest. After a reconnect the broker redelivers every
unacknowledged message, so the handler must be idempotent (the console's is: events are unique by
id).

A handler may come in two steps: ``prepare`` (parsing, in Python) returns the step that stores
(the database, which releases the GIL while it writes). They run in two threads, so the next batch
is parsed while this one is written; batches are stored, and acknowledged, in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar

from fleet.mqtt.backoff import Backoff
from fleet.mqtt.client import TlsFiles, client_context
from fleet.protocol.models import MAX_PACKET_BYTES

log = logging.getLogger("fleet.console.stream")
_T = TypeVar("_T")

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 8, 9
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
MAX_PACKET = MAX_PACKET_BYTES  # announced at CONNECT: a broker must not send the console more
_HEAD = 2 + 65535 + 2 + 16  # topic length, topic, packet id, the start of the properties
# Subscription option (MQTT v5, 3.8.3.1), or'ed with the QoS: Retain Handling 1, "send retained
# messages only if the subscription does not currently exist". A persistent session keeps its
# subscriptions, so a reconnect does not replay every retained message.
RETAIN_IF_NEW = 0x10


class StreamError(Exception):
    """The broker refused or broke the protocol."""


class Message(NamedTuple):  # a tuple: made for every message, so it must be cheap to make
    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    oversize: int = 0  # > 0: a packet of this many bytes, over MAX_PACKET, its payload unread


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + _varint(len(body)) + body


def connect_packet(
    client_id: str,
    *,
    username: str | None,
    password: str | None,
    keepalive_s: int,
    session_expiry_s: int,
    receive_maximum: int,
    clean_start: bool,
    max_packet: int = MAX_PACKET,
) -> bytes:
    flags = (0x02 if clean_start else 0) | (0x80 if username else 0) | (0x40 if password else 0)
    props = (
        b"\x11" + struct.pack("!I", session_expiry_s) + b"\x21" + struct.pack("!H", receive_maximum)
    )
    props += b"\x27" + struct.pack("!I", max_packet)  # Maximum Packet Size (MQTT v5, 3.1.2.11.4)
    body = _string("MQTT") + bytes([5, flags]) + struct.pack("!H", keepalive_s)
    body += _varint(len(props)) + props + _string(client_id)
    if username:
        body += _string(username)
    if password:
        body += _string(password)
    return _packet(CONNECT, 0, body)


def subscribe_packet(packet_id: int, topics: Sequence[tuple[str, int]]) -> bytes:
    """``topics``: (filter, options): the QoS, or'ed with :data:`RETAIN_IF_NEW` if wanted."""
    body = struct.pack("!H", packet_id) + b"\x00"
    for topic, options in topics:
        body += _string(topic) + bytes([options])
    return _packet(SUBSCRIBE, 2, body)


def puback_packets(packet_ids: Sequence[int]) -> bytes:
    return b"".join(struct.pack("!BBH", PUBACK << 4, 2, pid) for pid in packet_ids)


OVERSIZE = 16  # a pseudo packet type: the head of a PUBLISH over MAX_PACKET (its rest skipped)


class Parser:
    """Splits the byte stream into packets: ``feed`` returns (type, flags, body) tuples.

    A PUBLISH over ``max_packet`` (a broker that ignored the Maximum Packet Size announced at
    CONNECT) is not a reason to drop the connection, which would only bring it back: its head
    (topic, packet id) comes out as an :data:`OVERSIZE` packet, so that it is acknowledged and
    set aside, and the rest of it is read and thrown away (:attr:`oversize` holds its sizes).
    """

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self._buf = bytearray()
        self._discard = 0  # bytes of an oversize packet still to throw away
        self.max_packet = max_packet
        self.oversize: list[int] = []

    def feed(self, data: bytes) -> list[tuple[int, int, memoryview]]:
        # the bodies are views of one immutable copy, so they stay valid after this returns
        if self._discard:
            skipped = min(self._discard, len(data))
            self._discard -= skipped
            data = data[skipped:]
        if self._buf:
            self._buf += data
            data = bytes(self._buf)
        view = memoryview(data)
        out: list[tuple[int, int, memoryview]] = []
        pos, end = 0, len(data)
        while end - pos >= 2:
            i = pos + 1
            length = data[i]
            i += 1
            if length & 0x80:  # a remaining length of more than one byte
                length, shift, complete = length & 0x7F, 7, False
                while i < end:
                    byte = data[i]
                    i += 1
                    length |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        complete = True
                        break
                    shift += 7
                    if shift > 21:
                        raise StreamError("malformed remaining length")
                if not complete:
                    break
            if length > self.max_packet:
                if data[pos] >> 4 != PUBLISH:
                    raise StreamError(f"a packet of {length} bytes is larger than allowed")
                head = min(length, _HEAD)
                if end - i < head:
                    break
                out.append((OVERSIZE, data[pos] & 0x0F, view[i : i + head]))
                self.oversize.append(length)
                taken = min(length, end - i)
                self._discard = length - taken
                pos = i + taken
                continue
            if end - i < length:
                break
            header = data[pos]
            out.append((header >> 4, header & 0x0F, view[i : i + length]))
            pos = i + length
        self._buf = bytearray(view[pos:])
        return out


def _skip_properties(body: memoryview, at: int) -> int:
    length, shift = 0, 0
    while True:
        byte = body[at]
        at += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return at + length
        shift += 7


def decode_publish(flags: int, body: memoryview) -> tuple[Message, int]:
    """The message and its packet id (0 for QoS 0)."""
    topic_len = body[0] << 8 | body[1]
    at = 2 + topic_len
    topic = str(body[2:at], "utf-8")
    qos = (flags >> 1) & 3
    packet_id = 0
    if qos:
        packet_id = body[at] << 8 | body[at + 1]
        at += 2
    at = at + 1 if body[at] == 0 else _skip_properties(body, at)  # mostly none
    message = Message(topic, bytes(body[at:]), qos, bool(flags & 1), bool(flags & 8))
    return message, packet_id


class _Protocol(asyncio.Protocol):
    def __init__(self, stream: StreamSubscriber, generation: int) -> None:
        self.stream = stream
        self.generation = generation
        self.parser = Parser()
        self.transport: asyncio.Transport | None = None
        self.connack: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.suback: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.last_write = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self.last_write = time.monotonic()

    def data_received(self, data: bytes) -> None:
        try:
            packets = self.parser.feed(data)
        except StreamError as err:
            log.error("broker stream: %s", err)
            self._abort()
            return
        messages: list[tuple[int, Message, int]] = []  # (generation, message, packet id)
        generation = self.generation
        for kind, flags, body in packets:
            if kind == PUBLISH:
                message, packet_id = decode_publish(flags, body)
                messages.append((generation, message, packet_id))
            elif kind == OVERSIZE:
                try:
                    message, packet_id = decode_publish(flags, body)
                except (IndexError, UnicodeDecodeError):
                    log.error("broker stream: an oversize packet without a readable head")
                    self._abort()
                    return
                size = self.parser.oversize.pop(0)
                log.error("broker sent a message of %d bytes on %s; set aside", size, message.topic)
                messages.append(
                    (generation, message._replace(payload=b"", oversize=size), packet_id)
                )
            elif kind == CONNACK:
                self._connack(body)
            elif kind == SUBACK and not self.suback.done():
                self.suback.set_result(bytes(body[_skip_properties(body, 2) :]))
            elif kind == DISCONNECT:
                log.warning("broker disconnected the console: reason %s", body[0] if body else 0)
                self._abort()
        if messages:
            self.stream._received(messages)

    def _connack(self, body: memoryview) -> None:
        if self.connack.done():
            return
        if body[1] != 0:
            self.connack.set_exception(StreamError(f"broker refused the connection: {body[1]:#x}"))
        else:
            self.connack.set_result(bool(body[0] & 1))

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.connack, self.suback):
            if not future.done():
                future.set_exception(StreamError(f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)


class StreamSubscriber:
    """Subscribe, hand batches to ``on_batch`` in a worker thread, acknowledge after it returns."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        subscriptions: Sequence[tuple[str, int]] | Callable[[], Sequence[tuple[str, int]]],
        on_batch: Callable[[list[Message]], None] | None,
        *,
        prepare: Callable[[list[Message]], Callable[[], None]] | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: TlsFiles | None = None,
        keepalive_s: int = 30,
        session_expiry_s: int = 3600,
        receive_maximum: int = 10_000,
        max_batch: int = 5_000,
        retry_s: float = 1.0,
    ) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        # a callable is asked again at each connect (the console decides whether it needs the
        # retained messages replayed)
        self.subscriptions = subscriptions
        if (on_batch is None) == (prepare is None):
            raise ValueError("give on_batch, or prepare (which returns the step that stores)")
        self.on_batch = on_batch
        self.prepare = prepare
        self.username, self.password, self.tls = username, password, tls
        self.keepalive_s = keepalive_s
        self.session_expiry_s = session_expiry_s
        self.receive_maximum = receive_maximum
        self.max_batch = max_batch
        self.retry_s = retry_s
        self.connected = threading.Event()
        self.acknowledged = 0  # messages whose batch was handled and acknowledged
        self._pending: list[tuple[int, Message, int]] = []  # (generation, message, packet id)
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # made by start()
        self._protocol: _Protocol | None = None
        self._generation = 0
        self._io = threading.Thread(target=self._run_loop, name="console-stream-io", daemon=True)
        # prepared batches waiting for the store step: one at most, so little is held unsaved
        self._prepared: queue.Queue[tuple[list[tuple[int, Message, int]], Callable[[], None]]]
        self._prepared = queue.Queue(maxsize=1)
        self._worker = threading.Thread(
            target=self._prepare_loop, name="console-stream-prepare", daemon=True
        )
        self._storer = threading.Thread(
            target=self._store_loop, name="console-stream-batch", daemon=True
        )

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._io.start()
        self._worker.start()
        self._storer.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        for worker in (self._worker, self._storer):
            if worker.is_alive():
                worker.join(timeout_s)
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._close_connection)
        if self._io.is_alive():
            self._io.join(timeout_s)

    def _close_connection(self) -> None:
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            protocol.write(bytes([DISCONNECT << 4, 0]))  # normal: the session stays
            protocol.transport.close()

    def _run_loop(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._connect_forever())
        finally:
            loop.close()

    async def _connect_forever(self) -> None:
        backoff = Backoff(base_s=0.5, cap_s=30.0)
        while not self._stopping.is_set():
            try:
                await self._session()
                backoff.reset()
            except (TimeoutError, OSError, StreamError) as err:
                log.warning("console stream to %s:%s: %s", self.host, self.port, err)
            self.connected.clear()
            if self._stopping.is_set():
                return
            delay = backoff.next_delay()
            for _ in range(int(delay * 10) + 1):
                if self._stopping.is_set():
                    return
                await asyncio.sleep(0.1)

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()
        context = None
        if self.tls is not None:
            context = client_context(self.tls)
        self._generation += 1
        generation = self._generation
        _transport, protocol = await asyncio.wait_for(
            loop.create_connection(
                lambda: _Protocol(self, generation),
                self.host,
                self.port,
                ssl=context,
                server_hostname=self.host if context else None,
            ),
            timeout=15,
        )
        self._protocol = protocol
        protocol.write(
            connect_packet(
                self.client_id,
                username=self.username,
                password=self.password,
                keepalive_s=self.keepalive_s,
                session_expiry_s=self.session_expiry_s,
                receive_maximum=self.receive_maximum,
                clean_start=False,
            )
        )
        await asyncio.wait_for(protocol.connack, timeout=15)
        subscriptions = list(
            self.subscriptions() if callable(self.subscriptions) else self.subscriptions
        )
        protocol.write(subscribe_packet(1, subscriptions))
        granted = await asyncio.wait_for(protocol.suback, timeout=15)
        refused = [t for (t, _), code in zip(subscriptions, granted, strict=False) if code >= 0x80]
        if refused:
            raise StreamError(f"broker refused the subscriptions {refused}")
        self.connected.set()
        while not protocol.closed.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(protocol.closed), timeout=1.0)
            if time.monotonic() - protocol.last_write > self.keepalive_s / 2:
                protocol.write(bytes([PINGREQ << 4, 0]))
        with self._cond:  # unacknowledged: the broker sends them again on the next connection
            self._pending = [p for p in self._pending if p[0] != generation]

    # --- batches -------------------------------------------------------------------------------

    def _received(self, messages: list[tuple[int, Message, int]]) -> None:
        with self._cond:
            self._pending.extend(messages)
            self._cond.notify()

    def _prepare_loop(self) -> None:
        while not self._stopping.is_set():
            with self._cond:
                while not self._pending and not self._stopping.is_set():
                    self._cond.wait(0.5)
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
            if not batch:
                continue
            messages = [m for _, m, _ in batch]
            step = self._retrying(functools.partial(self._prepare_batch, messages), len(batch))
            if step is None:
                return  # stopping: unacknowledged, so the broker keeps them
            while not self._stopping.is_set():
                with contextlib.suppress(queue.Full):
                    self._prepared.put((batch, step), timeout=0.5)
                    break

    def _store_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                batch, step = self._prepared.get(timeout=0.5)
            except queue.Empty:
                continue
            if self._retrying(functools.partial(_stored, step), len(batch)) is None:
                return
            self.acknowledged += len(batch)
            acks = [(g, pid) for g, m, pid in batch if m.qos]
            if acks and self._loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed: unacknowledged
                    self._loop.call_soon_threadsafe(self._ack, acks)

    def _prepare_batch(self, messages: list[Message]) -> Callable[[], None]:
        if self.prepare is not None:
            return self.prepare(messages)
        assert self.on_batch is not None  # checked in __init__
        return functools.partial(self.on_batch, messages)

    def _retrying(self, attempt: Callable[[], _T], size: int) -> _T | None:
        """``attempt()`` until it returns (the database is back), or None when stopping."""
        while not self._stopping.is_set():
            try:
                return attempt()
            except Exception:
                log.exception("a batch of %d messages was not stored; trying again", size)
                self._stopping.wait(self.retry_s)
        return None

    def _ack(self, acks: list[tuple[int, int]]) -> None:
        protocol = self._protocol
        if protocol is None:
            return
        current = [pid for g, pid in acks if g == protocol.generation]
        if current:
            protocol.write(puback_packets(current))


def _stored(step: Callable[[], None]) -> bool:
    step()
    return True
