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

Rule 2: receiving. The connection's stream (a ``WebSocketStream`` whose messages skip its
readable) hands each message to the connection's inbox, on the loop; once the inbox holds
``RECEIVE_HIGH_WATER_MARK`` bytes the pump stops handing messages over, and stops reading
the socket past its own mark, so a program that reads slowly slows the server. ``recv()``
takes from the inbox (resuming the pump once it is below the mark), waiting on a condition
variable in slices of ``WAIT_SLICE`` (so that Ctrl-C interrupts it everywhere).

Rule 3: sending. ``send()`` puts its message in the connection's outbox and returns; the
loop hands the outbox to the stream's write algorithm in order, and stops while the stream
holds more than its ``SEND_HIGH_WATER_MARK`` unsent. ``send()`` blocks first while the
outbox holds more than ``SEND_HIGH_WATER_MARK`` bytes (text counted in characters). So a
producer faster than the network waits, and holds about twice the mark of unsent data.

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
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from types import TracebackType
from typing import Any, Final

from .agent import UserAgent
from .connection import Connect, ConnectionClosed
from .connection import Connection as AsyncConnection
from .protocol.constants import CloseCode
from .websocketstream import OPEN, WebSocketStream, _message_size

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
"""Bytes of received messages (each counted as the memory it takes, as the stream's
readable counts them) a connection's inbox holds before the pump stops handing more over
(the stream's own mark): with the pump's ``READ_HIGH_WATER`` of unparsed bytes behind it,
a program that reads slowly holds about 2 MiB of a fast server's messages."""

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
        # Finalize the loop's async generators (wsapi's end-of-loop guard among them) on
        # the loop, as asyncio.run() does: left to the garbage collector at exit, their
        # aclose() would be scheduled on a stopped loop and never run.
        finalized = asyncio.run_coroutine_threadsafe(self.loop.shutdown_asyncgens(), self.loop)
        with contextlib.suppress(Exception):
            finalized.result(EXIT_CLOSE_TIMEOUT + 1.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(1.0)

    async def _close_all(self) -> None:
        waits = []
        for connection in list(self.connections):
            connection._stream._start_closing(int(CloseCode.GOING_AWAY), "")
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
            except FutureTimeoutError:  # (Not the built-in TimeoutError on Python 3.10.)
                continue
    except BaseException:
        future.cancel()
        raise


# -- Connections ----------------------------------------------------------------------------


class _Stream(WebSocketStream):
    """A WebSocketStream whose messages go straight to its blocking connection's inbox
    (rule 2) rather than through its readable, which stays empty."""

    __slots__ = ("_deliver",)

    def __init__(self, deliver: Callable[[Message], None], *args: Any, **options: Any) -> None:
        self._deliver = deliver
        super().__init__(*args, **options)

    def _on_message(self, data: str | bytes) -> None:
        # 1. "If stream's ready state is not OPEN (1), then return." (Once this side
        # closes, the messages still to come are dropped.)
        if self._ready_state == OPEN:
            self._deliver(data)


class Connection:
    """A blocking WebSocket connection: ``send()``, ``recv(timeout=None)``, iteration,
    ``close(code=None, reason="")``, ``protocol``, ``extensions``, a context manager.
    Made by ``wsapi.sync.connect()``; every method may be called from any thread."""

    __slots__ = (
        "__weakref__",
        "_background",
        "_condition",
        "_conn",
        "_delivery_paused",
        "_draining",
        "_ended",
        "_inbox",
        "_inbox_bytes",
        "_loop",
        "_outbox",
        "_outgoing_bytes",
        "_stream",
        "_writing_scheduled",
    )

    _conn: AsyncConnection
    _stream: _Stream

    def __init__(self, background: _Background) -> None:
        self._background = background
        self._loop = background.loop
        self._condition = threading.Condition(threading.Lock())
        # Received and not yet recv()'d (rule 2); how the connection closed, once it has.
        self._inbox: deque[tuple[Message, int]] = deque()
        self._inbox_bytes = 0
        self._delivery_paused = False
        self._ended: ConnectionClosed | None = None
        # Handed to the loop and not yet to the stream (rule 3); whether the stream holds
        # a write back until the connection's buffer drains.
        self._outbox: deque[tuple[Message, int]] = deque()
        self._outgoing_bytes = 0
        self._writing_scheduled = False
        self._draining = False

    async def _open(self, opening: Connect) -> None:
        """On the loop: open the connection (its messages come to this one's inbox)."""
        self._conn = await opening._open(functools.partial(_Stream, self._deliver))
        stream = self._conn.stream
        assert isinstance(stream, _Stream)
        self._stream = stream
        self._background.connections.add(self)
        asyncio.ensure_future(self._conn.closed).add_done_callback(self._on_ended)

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
        condition = self._condition
        with condition:
            inbox = self._inbox
            if not inbox:
                deadline = None if timeout is None else time.monotonic() + timeout
                while not inbox:
                    if self._ended is not None:
                        raise self._closed()
                    wait = WAIT_SLICE
                    if deadline is not None:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise TimeoutError(f"no message within {timeout} s")
                        wait = min(wait, left)
                    condition.wait(wait)
            message, size = inbox.popleft()
            self._inbox_bytes -= size
            resume = self._delivery_paused and self._inbox_bytes < RECEIVE_HIGH_WATER_MARK
            if resume:
                self._delivery_paused = False
        if resume:
            self._loop.call_soon_threadsafe(self._resume_delivery)
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

    def _deliver(self, data: Message) -> None:
        """On the loop: a message into the inbox; past the mark, the pump pauses."""
        size = _message_size(data)
        condition = self._condition
        with condition:
            self._inbox.append((data, size))
            self._inbox_bytes += size
            pause = self._inbox_bytes >= RECEIVE_HIGH_WATER_MARK
            if pause:
                self._delivery_paused = True
            condition.notify()
        if pause:
            pump = self._stream._pump
            if pump is not None:
                pump.pause_delivery()

    def _resume_delivery(self) -> None:
        pump = self._stream._pump
        if pump is not None and not self._delivery_paused:
            pump.resume_delivery()

    def _on_ended(self, closed: asyncio.Future[ConnectionClosed]) -> None:
        self._background.connections.discard(self)
        with self._condition:
            self._ended = closed.result()
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
        stream = self._stream
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
        """On the loop: hand the outbox to the stream in order, until a write waits for
        the connection's buffer to drain."""
        stream = self._stream
        condition = self._condition
        outbox = self._outbox
        with condition:
            self._writing_scheduled = False
        while not self._draining:
            with condition:
                if not outbox:
                    return
                message, size = outbox.popleft()
                was_full = self._outgoing_bytes > SEND_HIGH_WATER_MARK
                self._outgoing_bytes -= size
                if was_full and self._outgoing_bytes <= SEND_HIGH_WATER_MARK:
                    condition.notify_all()
            # The stream's write algorithm (its writable's sink), which sends the message
            # and says when its buffer is above the stream's mark; once closing, nothing.
            waiter = stream._write(message, None)
            if waiter is not None:
                self._draining = True
                waiter.add_done_callback(self._drained)

    def _drained(self, waiter: asyncio.Future[None]) -> None:
        self._draining = False
        if not waiter.cancelled():
            waiter.exception()  # The connection closed: the close tells it.
        self._write()

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
        self._loop.call_soon_threadsafe(self._stream._start_closing, int(code), "")
        self._wait_closed()

    def __repr__(self) -> str:
        return f"<wsapi.sync.Connection {self._stream.url}>"


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
    connection = Connection(background)
    opening = Connect(url, protocols, agent=agent)
    _wait_future(asyncio.run_coroutine_threadsafe(connection._open(opening), background.loop))
    return connection
