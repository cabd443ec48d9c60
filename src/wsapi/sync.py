"""``wsapi.sync``: blocking connections, for programs without an event loop.

::

    from wsapi.sync import connect

    with connect("ws://127.0.0.1:8765/") as conn:
        conn.send("hello")
        print(conn.recv(timeout=5))
        for message in conn:          # ends at a clean close
            ...

Theory of operation
-------------------
Rule 1: one engine. Each blocking ``Connection`` is a ``wsapi.connect`` connection (a
``WebSocketStream``) living on one background event loop, in one daemon thread shared by
every blocking connection of the process. The thread starts with the first ``connect()``
and never keeps the interpreter alive; at exit, an ``atexit`` hook closes the connections
still open with 1001 (going away), waiting at most ``EXIT_CLOSE_TIMEOUT`` for them.

Rule 2: receiving. The loop moves messages from the stream's readable into the
connection's inbox while the inbox holds less than ``RECEIVE_HIGH_WATER_MARK`` bytes; past
it the loop stops reading the readable, whose own bound then stops the socket's reads, so a
program that reads slowly slows the server. ``recv()`` takes from the inbox, waiting on a
condition variable in slices of ``WAIT_SLICE`` (so that Ctrl-C interrupts it everywhere).

Rule 3: sending. ``send()`` hands its message to the loop and returns; it blocks first while
the messages handed over and not yet written, plus a write the stream holds back, exceed
``SEND_HIGH_WATER_MARK`` bytes (text counted in characters). So a producer faster than the
network waits, and holds at most about twice the mark of unsent data.

Rule 4: any thread. Any thread may call any method: one may ``recv()`` while others
``send()``; ``close()`` from any thread closes the connection, and the end of the
connection wakes every ``recv()`` with ``ConnectionClosed``. A thread that is inside a
running event loop may not block it: ``connect()`` there raises ``RuntimeError``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Final

from .agent import UserAgent
from .connection import Connect, ConnectionClosed
from .connection import Connection as AsyncConnection
from .protocol.constants import CloseCode
from .websocketstream import OPEN, _message_size

__all__ = [
    "EXIT_CLOSE_TIMEOUT",
    "RECEIVE_HIGH_WATER_MARK",
    "SEND_HIGH_WATER_MARK",
    "WAIT_SLICE",
    "Connection",
    "ConnectionClosed",
    "connect",
]

Message = str | bytes
"""A received message: ``str`` for text, ``bytes`` for binary."""

RECEIVE_HIGH_WATER_MARK: Final = 1024 * 1024
"""Bytes of received messages (each counted as the memory it takes) a connection's inbox
holds before the loop stops taking more from the stream (whose readable holds as much
again): a program that reads slowly holds a few MiB of a fast server's messages at most."""

SEND_HIGH_WATER_MARK: Final = 64 * 1024
"""Bytes (characters for text) handed to the loop and not yet written, above which
``send()`` blocks: the stream's own mark, so that a blocking producer holds about what an
async one does."""

WAIT_SLICE: Final = 0.1
"""Seconds a blocked call waits on its condition at a time before it looks again: the
longest a Ctrl-C can wait where a signal does not interrupt a lock (Windows); on POSIX it
interrupts at once."""

EXIT_CLOSE_TIMEOUT: Final = 2.0
"""Seconds the exit hook waits for the connections still open to finish their closing
handshake (1001) before the interpreter goes on exiting: a server that does not answer
delays the exit by this much at most."""

THREAD_START_TIMEOUT: Final = 10.0
"""Seconds ``connect()`` waits for the background thread's loop to start (it takes
milliseconds; the bound only turns a broken interpreter into an error)."""


# -- The background loop --------------------------------------------------------------------


class _Background:
    """The event loop thread the process's blocking connections share (rule 1)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.connections: set[Connection] = set()
        started = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(started,), name="wsapi.sync", daemon=True
        )
        self.thread.start()
        if not started.wait(THREAD_START_TIMEOUT):
            raise RuntimeError("wsapi.sync: the background event loop did not start")

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(started.set)
        self.loop.run_forever()

    def at_exit(self) -> None:
        """Close the connections still open with 1001, bounded by EXIT_CLOSE_TIMEOUT, then
        stop the loop and its thread."""
        if not self.thread.is_alive():
            return
        done = asyncio.run_coroutine_threadsafe(self._close_all(), self.loop)
        with contextlib.suppress(Exception):  # Exiting: nothing is left to tell it to.
            done.result(EXIT_CLOSE_TIMEOUT + 1.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(1.0)

    async def _close_all(self) -> None:
        waits = []
        for connection in list(self.connections):
            stream = connection._conn.stream
            stream._start_closing(int(CloseCode.GOING_AWAY), "")
            waits.append(asyncio.ensure_future(connection._conn.closed))
        if waits:
            _, pending = await asyncio.wait(waits, timeout=EXIT_CLOSE_TIMEOUT)
            for task in pending:
                task.cancel()


_background: _Background | None = None
_background_lock = threading.Lock()


def _get_background() -> _Background:
    global _background  # One per process, made on first use.
    background = _background
    if background is None:
        with _background_lock:
            background = _background
            if background is None:
                background = _background = _Background()
                atexit.register(background.at_exit)
    return background


def _wait_future(future: Future[Any]) -> Any:
    """The result of ``future`` (run on the loop), waited for in slices so that Ctrl-C
    interrupts the wait; an interrupted wait cancels it."""
    try:
        while True:
            try:
                return future.result(WAIT_SLICE)
            except TimeoutError:
                continue
    except BaseException:
        future.cancel()
        raise


# -- Connections ----------------------------------------------------------------------------


class Connection:
    """A blocking WebSocket connection: ``send()``, ``recv(timeout=None)``, iteration,
    ``close(code=None, reason="")``, ``protocol``, ``extensions``, a context manager.
    Made by ``wsapi.sync.connect()``; every method may be called from any thread."""

    __slots__ = (
        "__weakref__",
        "_background",
        "_condition",
        "_conn",
        "_ended",
        "_exhausted",
        "_inbox",
        "_inbox_bytes",
        "_loop",
        "_outbox",
        "_outgoing_bytes",
        "_reading",
        "_writing_scheduled",
    )

    def __init__(self, conn: AsyncConnection, background: _Background) -> None:
        self._conn = conn
        self._background = background
        self._loop = background.loop
        self._condition = threading.Condition(threading.Lock())
        # Received and not yet recv()'d (rule 2); the close once the stream has ended.
        self._inbox: deque[tuple[Message, int]] = deque()
        self._inbox_bytes = 0
        self._reading = False  # The loop waits on a read of the readable.
        self._exhausted = False  # The readable has ended: the inbox is all that is left.
        self._ended: ConnectionClosed | None = None  # How the connection closed.
        # Handed to the loop and not yet written (rule 3).
        self._outbox: deque[tuple[Message, int]] = deque()
        self._outgoing_bytes = 0
        self._writing_scheduled = False

    @property
    def protocol(self) -> str:
        """The subprotocol the server selected (``""`` if none)."""
        return self._conn.protocol

    @property
    def extensions(self) -> str:
        """The extensions in use."""
        return self._conn.extensions

    # Receiving (rule 2).

    def recv(self, timeout: float | None = None) -> Message:
        """The next message: ``str`` for text, ``bytes`` for binary. Waits at most
        ``timeout`` seconds (None: no limit) and raises ``TimeoutError`` then, leaving the
        connection open; ``ConnectionClosed`` once every message has been read and the
        connection is closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        condition = self._condition
        with condition:
            inbox = self._inbox
            while not inbox:
                if self._exhausted and self._ended is not None:
                    raise self._closed()
                wait = WAIT_SLICE
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(f"no message within {timeout} s")
                    wait = min(wait, left)
                condition.wait(wait)
            message, size = inbox.popleft()
            was_full = self._inbox_bytes >= RECEIVE_HIGH_WATER_MARK
            self._inbox_bytes -= size
            resume = was_full and self._inbox_bytes < RECEIVE_HIGH_WATER_MARK
        if resume:
            self._loop.call_soon_threadsafe(self._pull)
        return message

    def __iter__(self) -> Iterator[Message]:
        return self

    def __next__(self) -> Message:
        """The next message; the iteration ends at a clean close and raises
        ``ConnectionClosed`` after an unclean one."""
        try:
            return self.recv()
        except ConnectionClosed as closed:
            if closed.wasClean:
                raise StopIteration from None
            raise

    def _pull(self) -> None:
        """On the loop: move messages from the readable into the inbox, up to the mark."""
        if self._reading:
            return
        reader = self._conn._reader
        condition = self._condition
        while True:
            with condition:
                if self._inbox_bytes >= RECEIVE_HIGH_WATER_MARK or self._exhausted:
                    return
            read = reader.read()
            if not read.done():
                self._reading = True
                read.add_done_callback(self._on_read)
                return
            if not self._take(read):
                return

    def _on_read(self, read: asyncio.Future[Any]) -> None:
        self._reading = False
        if self._take(read):
            self._pull()

    def _take(self, read: asyncio.Future[Any]) -> bool:
        """A read's outcome into the inbox (True) or the end of the connection (False)."""
        error = None if read.cancelled() else read.exception()
        if error is None and not read.cancelled():
            value, done = read.result()
            if not done:
                size = _message_size(value)
                with self._condition:
                    self._inbox.append((value, size))
                    self._inbox_bytes += size
                    self._condition.notify()
                return True
        with self._condition:  # The readable ended (the close comes from _on_ended).
            self._exhausted = True
            self._condition.notify_all()
        return False

    def _watch_the_end(self) -> None:
        """On the loop: ``_on_ended`` once the connection is closed."""
        self._background.connections.add(self)
        asyncio.ensure_future(self._conn.closed).add_done_callback(self._on_ended)

    def _on_ended(self, task: asyncio.Future[ConnectionClosed]) -> None:
        self._background.connections.discard(self)
        with self._condition:
            self._ended = task.result()
            self._condition.notify_all()

    def _closed(self) -> ConnectionClosed:
        """A new ``ConnectionClosed`` telling the close (each raise gets its own)."""
        ended = self._ended
        assert ended is not None
        return ConnectionClosed(ended.code, ended.reason, ended.wasClean, ended.failure)

    # Sending (rule 3).

    def send(self, message: str | bytes | bytearray | memoryview) -> None:
        """Send ``message`` (``str`` as text, bytes-like as binary). Blocks while more than
        ``SEND_HIGH_WATER_MARK`` bytes wait to be sent; ``ConnectionClosed`` once the
        connection is closing or closed."""
        if isinstance(message, (str, bytes)):
            size = len(message)
        elif isinstance(message, (bytearray, memoryview)):
            message = bytes(message)  # Copied now: the caller may reuse its buffer.
            size = len(message)
        else:
            raise TypeError(
                f"send() takes str, bytes, bytearray or memoryview, not {type(message).__name__}"
            )
        condition = self._condition
        stream = self._conn.stream
        with condition:
            while True:
                if stream._ready_state != OPEN:
                    closing = True  # The close is on its way: ConnectionClosed once it is.
                    break
                if self._outgoing_bytes <= SEND_HIGH_WATER_MARK:
                    closing = False
                    self._outbox.append((message, size))
                    self._outgoing_bytes += size
                    if self._writing_scheduled:
                        return
                    self._writing_scheduled = True
                    break
                condition.wait(WAIT_SLICE)
        if closing:
            self._wait_closed()
            raise self._closed()
        self._loop.call_soon_threadsafe(self._write)

    def _write(self) -> None:
        """On the loop: hand the outbox to the stream's writer, in order."""
        writer = self._conn._writer
        condition = self._condition
        open_ = self._conn.stream._ready_state == OPEN
        with condition:
            self._writing_scheduled = False
            batch = list(self._outbox)
            self._outbox.clear()
        written = 0
        for message, size in batch:
            if not open_:
                written += size
                continue
            write = writer.write(message)
            if write.done():
                written += size
            else:
                write.add_done_callback(functools.partial(self._on_write, size))
        if written:
            self._written(written)

    def _on_write(self, size: int, _write: asyncio.Future[None]) -> None:
        self._written(size)

    def _written(self, size: int) -> None:
        with self._condition:
            was_full = self._outgoing_bytes > SEND_HIGH_WATER_MARK
            self._outgoing_bytes -= size
            if was_full:
                self._condition.notify_all()

    # Closing.

    def close(self, code: int | None = None, reason: str = "") -> ConnectionClosed:
        """Close with ``code`` (1000 or 3000-4999) and ``reason`` (at most 123 bytes of
        UTF-8), wait until the connection is closed (bounded by the agent's
        ``close_timeout``), and return how it closed."""
        future = asyncio.run_coroutine_threadsafe(self._conn.close(code, reason), self._loop)
        closed: ConnectionClosed = _wait_future(future)
        self._wait_closed()
        return closed

    def _wait_closed(self) -> None:
        """Until the loop has told the close (rule 4); bounded by the agent's
        ``close_timeout`` once the closing handshake has started."""
        with self._condition:
            while self._ended is None:
                self._condition.wait(WAIT_SLICE)

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # 1000 when the block ends normally; 1001 "going away" when it ends by an exception.
        code = CloseCode.NORMAL_CLOSURE if exc_type is None else CloseCode.GOING_AWAY
        stream = self._conn.stream
        self._loop.call_soon_threadsafe(stream._start_closing, int(code), "")
        self._wait_closed()

    def __repr__(self) -> str:
        return f"<wsapi.sync.Connection {self._conn.stream.url}>"


def connect(
    url: str, protocols: Sequence[str] = (), *, agent: UserAgent | None = None
) -> Connection:
    """Open a blocking connection to ``url`` (``protocols``: the subprotocols to offer, a
    str is one); ``WebSocketError`` (with ``failure``) if it fails. The open is bounded by
    the agent's ``open_timeout``. Not from inside a running event loop (``RuntimeError``):
    there, use ``wsapi.connect``."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "wsapi.sync.connect() blocks, and this thread runs an asyncio event loop: "
            "use `await wsapi.connect(...)` (or `async with wsapi.connect(...)`) instead"
        )
    background = _get_background()
    opening = Connect(url, protocols, agent=agent)

    async def open_() -> Connection:
        connection = Connection(await opening._open(), background)
        connection._watch_the_end()
        connection._pull()
        return connection

    future = asyncio.run_coroutine_threadsafe(open_(), background.loop)
    result: Connection = _wait_future(future)
    return result
