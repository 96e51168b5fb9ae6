"""Catalog downloads that end by a deadline measured from their start, not from the last byte.

python-tuf's ``Urllib3Fetcher`` bounds each socket operation (the connect, every read) by its
``socket_timeout``, never a whole download: a mirror that drips ``timestamp.json`` at one byte a
second stays under a 3 s timeout for every read, and holds the terminal's catalog worker for the
whole drip while later revisions queue behind it. Whoever controls the network path can do that,
so the terminal must not depend on the mirror's good manners.

:class:`DeadlineFetcher` gives every download (each metadata file and the catalog) a deadline from
its start, and may cap all the downloads of one update with a deadline of their own (``until``).
The blocking I/O runs on a reader thread per download; the calling thread (the updater's worker)
only waits on a queue of chunks, never past the deadline, so no phase (connect, headers, body)
outlasts it. At the deadline the caller raises :class:`DownloadDeadline`, a
``SlowRetrievalError`` as python-tuf knows it, and the reader is told to stop: the response is
shut down (a read in progress returns at once), or, if the reader is still waiting for the
headers, it shuts down whatever arrives. The reader is a daemon thread and holds only its socket.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator

import urllib3
from tuf.api import exceptions as tuf_errors
from tuf.ngclient.fetcher import FetcherInterface
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

CHUNK_BYTES = 64 * 1024
_QUEUED_CHUNKS = 8  # between the reader and the caller; the caller writes them to a file
_POLL_S = 0.1  # how often a blocked reader looks whether it was told to stop

_END = object()  # the reader's last item: the body is complete


class DownloadDeadline(tuf_errors.SlowRetrievalError):
    """A download that had not completed by its deadline."""

    def __init__(self, url: str, seconds: float, received: int) -> None:
        super().__init__(
            f"{url}: not complete {seconds:.1f} s after its start ({received} bytes received)"
        )
        self.url = url
        self.received = received


class _Recording(Urllib3Fetcher):
    """python-tuf's own fetcher (proxies from the environment, HTTP errors, user agent) that hands
    each response to ``opened`` before reading its body, so that it can be shut down."""

    def __init__(
        self,
        opened: Callable[[urllib3.BaseHTTPResponse], None],
        *,
        socket_timeout: int,
        chunk_size: int,
        app_user_agent: str,
    ) -> None:
        super().__init__(socket_timeout, chunk_size, app_user_agent)
        self._opened = opened

    def _chunks(self, response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
        self._opened(response)  # called by _fetch as soon as the headers are in
        return super()._chunks(response)


class _Reader:
    """One download on a thread of its own; items arrive on ``items``: ``True`` once the headers
    are in, then each chunk, then ``_END`` or the exception that ended it."""

    def __init__(self, url: str, socket_timeout: int, user_agent: str, chunk_bytes: int) -> None:
        self.url = url
        self.items: queue.Queue[object] = queue.Queue(maxsize=_QUEUED_CHUNKS)
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._response: urllib3.BaseHTTPResponse | None = None
        self._fetcher = _Recording(
            self._opened,
            socket_timeout=socket_timeout,
            chunk_size=chunk_bytes,
            app_user_agent=user_agent,
        )
        self._thread = threading.Thread(target=self._run, name="agent-catalog-fetch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """From the caller: no more is wanted. Unblocks a read in progress."""
        self._stopped.set()
        with self._lock:
            response = self._response
        if response is not None:
            _shut(response)

    def _opened(self, response: urllib3.BaseHTTPResponse) -> None:
        with self._lock:
            self._response = response
        if self._stopped.is_set():  # stopped while it waited for the headers
            _shut(response)

    def _put(self, item: object) -> bool:
        while not self._stopped.is_set():
            try:
                self.items.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            chunks = self._fetcher.fetch(self.url)
            if not self._put(True):
                return
            for chunk in chunks:
                if not self._put(chunk):
                    return
            self._put(_END)
        except Exception as err:  # handed to the caller, which raises it (or has gone)
            self._put(err)


def _shut(response: urllib3.BaseHTTPResponse) -> None:
    with contextlib.suppress(Exception):  # already closed: nothing left to unblock
        response.shutdown()


class DeadlineFetcher(FetcherInterface):
    """python-tuf's ``FetcherInterface`` with a deadline per download (``deadline_s`` from its
    start) and, optionally, one for every download it makes (``until``, on ``clock``)."""

    def __init__(
        self,
        deadline_s: float,
        *,
        socket_timeout: int = 30,
        user_agent: str = "station-kiosk",
        until: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.deadline_s = deadline_s
        self.socket_timeout = max(1, min(socket_timeout, int(deadline_s) + 1))
        self.user_agent = user_agent
        self.until = until
        self.clock = clock
        self.chunk_bytes = chunk_bytes

    def _fetch(self, url: str) -> Iterator[bytes]:
        start = self.clock()
        deadline = start + self.deadline_s
        if self.until is not None:
            deadline = min(deadline, self.until)
        reader = _Reader(url, self.socket_timeout, self.user_agent, self.chunk_bytes)
        reader.start()
        try:
            self._next(reader, deadline, start, 0)  # the headers: HTTP errors are raised here
        except BaseException:
            reader.stop()
            raise
        return self._body(reader, deadline, start)

    def _body(self, reader: _Reader, deadline: float, start: float) -> Iterator[bytes]:
        received = 0
        try:
            while True:
                item = self._next(reader, deadline, start, received)
                if item is _END:
                    return
                assert isinstance(item, bytes)
                received += len(item)
                yield item
        finally:  # complete, failed, past its deadline, or abandoned by python-tuf (too long)
            reader.stop()

    def _next(self, reader: _Reader, deadline: float, start: float, received: int) -> object:
        try:
            item = reader.items.get(timeout=max(0.0, deadline - self.clock()))
        except queue.Empty:
            raise DownloadDeadline(reader.url, self.clock() - start, received) from None
        if isinstance(item, BaseException):
            if isinstance(item, tuf_errors.DownloadError):
                raise item
            raise tuf_errors.DownloadError(f"Failed to download {reader.url}") from item
        return item
