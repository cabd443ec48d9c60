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
readable) hands each message to the connection's inbox; once the inbox holds
``RECEIVE_HIGH_WATER_MARK`` bytes the pump stops handing messages over, and stops reading
the socket past its own mark, so a program that reads slowly slows the server. ``recv()``
takes from the inbox (resuming the pump once it is below the mark); with the inbox empty it
reads the socket itself (rule 5), or waits on a condition variable in slices of
``WAIT_SLICE`` (so that Ctrl-C interrupts it everywhere).

Rule 3: sending. ``send()`` encodes its message and hands it to the stream's write
algorithm (rule 5), which frames and writes it; while the stream holds more than its
``SEND_HIGH_WATER_MARK`` unsent, the next messages wait in the connection's outbox, which
the loop hands over as the connection drains, and ``send()`` blocks while the outbox holds
more than ``SEND_HIGH_WATER_MARK`` bytes (of UTF-8, for text). So a producer faster than
the network waits, and holds about twice the mark of unsent data.

Rule 4: any thread. Any thread may call any method: one may ``recv()`` while others
``send()``; ``close()`` from any thread closes the connection, and the end of the
connection wakes every ``recv()`` with ``ConnectionClosed``. A thread that is inside a
running event loop may not block it: ``connect()`` there raises ``RuntimeError``.

Rule 5: the program's threads do the I/O. A round trip handed from thread to thread (a
message to the loop's thread through its self-pipe, the answer back through a condition
variable) costs two thread wake-ups and most of the time of a round trip; so the program's
threads write and read the socket themselves, with the loop's engine and pump, under the
loop lock. The loop's thread holds that lock except while it waits in its selector (whose
poll lets go of it), so the pump, the engine and the transport are only ever worked by the
thread holding it; a callback or timer a program's thread schedules wakes the loop.
``send()`` runs the stream's write algorithm in its own thread (one ``send(2)`` when the
socket takes the frame). ``recv()`` with an empty inbox takes the socket's reading over:
the loop's reader goes off, one thread at a time polls the socket (without the lock) and
reads it into the pump (with it), which delivers to the inbox as the loop would (the first
message of a read made with the inbox empty goes straight to the reading thread; the others
wait on the condition); its reads land in the loop thread's read buffer, which the lock
keeps to one thread at a time. It reads before it polls, unless a read found nothing lately
(``POLL_FIRST_RUN``): then it polls first, and a round trip is one ``send(2)``, one
``poll(2)`` and one ``recv(2)``, with no other thread woken. A poll is interrupted by
Ctrl-C as a wait is; it lasts at most ``WAIT_SLICE``, so a socket the loop closed meanwhile
is seen. Reading stays with the program's threads between calls, so a round trip costs no
change of the loop's registrations; once no thread has called ``recv()`` for
``RECLAIM_AFTER``, or on ``close()``, the loop reads the socket again, so that Pings, the
server's Close and keepalive are answered while the program does not read. This is for
plain TCP on the socket transport of the default loop (with epoll or poll); elsewhere (TLS,
proxies, Windows) the loop's thread does all the I/O and the program's threads hand
messages to it (the outbox, ``call_soon_threadsafe``) and take them from the inbox.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import select
import selectors
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
from .socket_transport import SocketTransport
from .webidl import usv_utf8
from .websocketstream import OPEN, QUEUE_ENTRY_SIZE, WebSocketStream, _message_size

__all__ = [
    "EXIT_CLOSE_TIMEOUT",
    "RECEIVE_HIGH_WATER_MARK",
    "RECLAIM_AFTER",
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
"""Bytes (of UTF-8, for text) handed to the loop and not yet written, above which
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

RECLAIM_AFTER: Final = 0.05
"""Seconds after which the loop reads a connection's socket again once no thread has
called ``recv()`` (rule 5): how long a Ping, or the server's Close, may wait unread while
the program does not read (twice this at most)."""

POLL_FIRST_RUN: Final = 16
"""recv() calls that poll the socket before they read it once a read found nothing yet
(rule 5): a program that waits for each answer then makes one system call fewer per
message; the next read that comes first finds out whether that still holds."""

THREAD_START_TIMEOUT: Final = 10.0
"""Seconds ``connect()`` waits for the background thread's loop to start (it takes
milliseconds; the bound only turns a broken interpreter into an error)."""


# -- The background loop --------------------------------------------------------------------


class _LoopLock:
    """The lock of the background loop (rule 5): the loop's thread holds ``lock`` except
    while it waits in its selector, and a program's thread that works a connection's
    engine itself holds it meanwhile. A turnstile lets the loop's thread in first once it
    waits for the lock, so that a thread sending in a tight loop cannot keep it from its
    callbacks: a program's thread calls ``let_the_loop_first()`` before it takes the lock
    while ``loop_waits``."""

    __slots__ = ("gate", "lock", "loop_waits")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.gate = threading.Lock()
        self.loop_waits = False

    def let_the_loop_first(self) -> None:
        with self.gate:
            pass

    def acquire_for_loop(self) -> None:
        """The loop's thread, back from its selector: ahead of the program's threads."""
        with self.gate:
            self.loop_waits = True
            self.lock.acquire()
            self.loop_waits = False


class _UnlockingPoll:
    """A selector's poll object (``select.epoll`` or ``select.poll``) whose ``poll()`` lets
    go of the loop lock while it waits: the loop's selector registrations, like the rest
    of the loop, change only under the lock."""

    __slots__ = ("_lock", "_poll")

    def __init__(self, poll: Any, lock: _LoopLock) -> None:
        self._poll = poll
        self._lock = lock

    def poll(self, *args: Any) -> Any:
        lock = self._lock
        lock.lock.release()
        try:
            return self._poll.poll(*args)
        finally:
            lock.acquire_for_loop()

    def __getattr__(self, name: str) -> Any:
        # register, modify, unregister, fileno, close: the poll object's own.
        return getattr(self._poll, name)


def _unlocking_selector(lock: _LoopLock) -> selectors.BaseSelector | None:
    """A selector for the background loop whose waits let go of ``lock`` (epoll, else
    poll); None where the platform has neither (Windows): connections then do all their
    I/O on the loop's thread."""
    kind = getattr(selectors, "EpollSelector", None) or getattr(selectors, "PollSelector", None)
    if kind is None:
        return None
    selector: selectors.BaseSelector = kind()
    # (The poll-like selectors keep their poll object in _selector, on every supported
    # Python; they call its poll() from select(), after which they read their fd map.)
    poll = getattr(selector, "_selector", None)
    if poll is None or not hasattr(poll, "poll"):
        selector.close()
        return None
    selector._selector = _UnlockingPoll(poll, lock)  # type: ignore[attr-defined,unused-ignore]
    return selector


def _nothing() -> None:
    """A callback that only wakes the loop."""


class _Loop(asyncio.SelectorEventLoop):
    """The background event loop, run under its ``_LoopLock`` (rule 5). A program's thread
    holding the lock may schedule callbacks and timers: they wake the loop's selector."""

    def __init__(self, selector: selectors.BaseSelector, lock: _LoopLock) -> None:
        super().__init__(selector)
        self.lock = lock
        self.thread_ident = 0

    # (Typed loosely: the stubs' signatures use a TypeVarTuple, which Python 3.10 lacks.)
    def call_soon(  # type: ignore[override]
        self, callback: Any, *args: Any, context: Any = None
    ) -> asyncio.Handle:
        if threading.get_ident() != self.thread_ident:
            return self.call_soon_threadsafe(callback, *args, context=context)
        return super().call_soon(callback, *args, context=context)

    def call_at(  # type: ignore[override]
        self, when: float, callback: Any, *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        handle = super().call_at(when, callback, *args, context=context)
        if threading.get_ident() != self.thread_ident:
            self.call_soon_threadsafe(_nothing)  # (The selector's wait may end later.)
        return handle

    def _check_thread(self) -> None:
        # (Debug mode: a program's thread may call what the loop's may while it holds the
        # loop lock.)
        if not self.lock.lock.locked():
            super()._check_thread()  # type: ignore[misc]


class _Background:
    """The event loop thread the process's blocking connections share (rule 1)."""

    def __init__(self) -> None:
        lock = _LoopLock()
        selector = _unlocking_selector(lock)
        # The lock of the loop (rule 5), or None: no thread but the loop's touches it.
        self.lock: _LoopLock | None = None
        if selector is None:
            self.loop: asyncio.AbstractEventLoop = asyncio.new_event_loop()
        else:
            self.loop = _Loop(selector, lock)
            self.lock = lock
        self.connections: set[Connection] = set()
        started = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(started,), name="wsapi.sync", daemon=True
        )
        self.thread.start()
        if not started.wait(THREAD_START_TIMEOUT):
            raise RuntimeError("wsapi.sync: the background event loop did not start")

    def _run(self, started: threading.Event) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        if not isinstance(loop, _Loop):
            loop.call_soon(started.set)
            loop.run_forever()
            return
        loop.thread_ident = threading.get_ident()
        loop.call_soon(started.set)
        loop.lock.acquire_for_loop()
        try:
            loop.run_forever()
        finally:
            loop.lock.lock.release()

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
            connection._start_closing(int(CloseCode.GOING_AWAY))
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


def _wait_time(timeout: float | None, deadline: float | None) -> float:
    """How long a blocked recv() waits before it looks again: ``WAIT_SLICE``, or less
    before its ``deadline`` (``TimeoutError`` once that has passed)."""
    if deadline is None:
        return WAIT_SLICE
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"no message within {timeout} s")
    return min(WAIT_SLICE, left)


# -- Connections ----------------------------------------------------------------------------


class _Stream(WebSocketStream):
    """A WebSocketStream whose messages go straight to its blocking connection's inbox
    (rule 2) rather than through its readable, which stays empty."""

    # ``_on_message``, a slot, stands for the stream's method of that name: the
    # connection's ``_deliver``, which the pump then calls with each message (no call in
    # between).
    __slots__ = ("_connection", "_on_message")

    def __init__(self, connection: Connection, *args: Any, **options: Any) -> None:
        self._connection = connection
        self._on_message = connection._deliver  # type: ignore[method-assign]
        connection._stream = self
        super().__init__(*args, **options)


class Connection:
    """A blocking WebSocket connection: ``send()``, ``recv(timeout=None)``, iteration,
    ``close(code=None, reason="")``, ``protocol``, ``extensions``, a context manager.
    Made by ``wsapi.sync.connect()``; every method may be called from any thread."""

    __slots__ = (
        "__weakref__",
        "_background",
        "_catching",
        "_caught",
        "_condition",
        "_conn",
        "_delivery_paused",
        "_draining",
        "_ended",
        "_inbox",
        "_inbox_bytes",
        "_loop",
        "_loop_lock",
        "_mutex",
        "_outbox",
        "_outgoing_bytes",
        "_owned",
        "_poller",
        "_polling",
        "_polls_first",
        "_read_ready",
        "_reclaim_timer",
        "_recvs",
        "_recvs_seen",
        "_stream",
        "_transport",
        "_waiting",
        "_writing_scheduled",
    )

    _conn: AsyncConnection
    _stream: _Stream

    def __init__(self, background: _Background) -> None:
        self._background = background
        self._loop = background.loop
        # The lock of the inbox and the outbox, and its condition (notified only while a
        # thread waits: ``_waiting``).
        self._mutex = threading.Lock()
        self._condition = threading.Condition(self._mutex)
        # Received and not yet recv()'d (rule 2); how the connection closed, once it has.
        self._inbox: deque[tuple[Message, int]] = deque()
        self._inbox_bytes = 0
        self._delivery_paused = False
        self._ended: ConnectionClosed | None = None
        # Not yet handed to the stream, behind a write that waits for the connection's
        # buffer to drain (rule 3); whether one does.
        self._outbox: deque[tuple[bytes, bool]] = deque()
        self._outgoing_bytes = 0
        self._writing_scheduled = False
        self._draining = False
        # Rule 5: the loop lock, the socket transport and a poll object for its socket,
        # when the program's threads do this connection's I/O themselves (else None).
        self._loop_lock: _LoopLock | None = None
        self._transport: SocketTransport | None = None
        self._poller: Any = None
        self._read_ready: Callable[[], None] | None = None  # The transport's one read.
        # Rule 5: the loop's reader is off and recv() reads the socket; a thread does now;
        # recv() calls made, and their count at the loop's last look.
        self._owned = False
        self._polling = False
        self._recvs = 0
        self._recvs_seen = 0
        self._waiting = 0  # Threads waiting on the condition for a message.
        # Under the loop lock, while a thread in recv() reads the socket with the inbox
        # empty: the next message goes to that thread (_caught), not through the inbox.
        self._catching = False
        self._caught: Message | None = None
        # recv() calls left that poll the socket before they read it (POLL_FIRST_RUN).
        self._polls_first = 0
        self._reclaim_timer: asyncio.TimerHandle | None = None

    async def _open(self, opening: Connect) -> None:
        """On the loop: open the connection (its messages come to this one's inbox)."""
        self._conn = await opening._open(functools.partial(_Stream, self))
        stream = self._stream
        assert self._conn.stream is stream
        self._background.connections.add(self)
        asyncio.ensure_future(self._conn.closed).add_done_callback(self._on_ended)
        pump = stream._pump
        transport = None if pump is None else pump.transport
        lock = self._background.lock
        if lock is not None and isinstance(transport, SocketTransport):
            self._poller = select.poll()
            self._poller.register(transport._fd, select.POLLIN)
            self._transport = transport
            self._read_ready = transport._read_ready
            self._loop_lock = lock

    @property
    def protocol(self) -> str:
        """The subprotocol the server selected (``""`` if none)."""
        return self._conn.protocol

    @property
    def extensions(self) -> str:
        """The extensions in use."""
        return self._conn.extensions

    # Receiving (rules 2 and 5).

    def recv(self, timeout: float | None = None) -> Message:
        """The next message: ``str`` for text, ``bytes`` for binary. Waits at most
        ``timeout`` seconds (None: no limit) and raises ``TimeoutError`` then, leaving the
        connection open; ``ConnectionClosed`` once every message has been read and the
        connection is closed."""
        self._recvs += 1
        inbox = self._inbox
        mutex = self._mutex
        if inbox or self._ended is not None:  # (A look; the take is under the lock.)
            message = self._take()
            if message is not None:
                return message
        deadline = None if timeout is None else time.monotonic() + timeout
        loop_lock = self._loop_lock
        if loop_lock is None:
            while True:
                message = self._take()
                if message is not None:
                    return message
                with mutex:
                    if not inbox and self._ended is None:
                        self._wait(_wait_time(timeout, deadline))
        # The program's threads read the socket (rule 5): this one does, unless another
        # thread waits on it (whose messages then come through the inbox).
        transport = self._transport
        read_ready = self._read_ready
        assert transport is not None
        assert read_ready is not None
        lock = loop_lock.lock
        polling = False  # This thread is the one that waits on the socket.
        try:
            while True:
                if loop_lock.loop_waits:
                    loop_lock.let_the_loop_first()
                lock.acquire()
                try:
                    can_read = polling or not self._polling
                    if can_read:
                        if transport._reading:
                            if self._owned:
                                transport._stop_reading()  # (The pump resumed it meanwhile.)
                            else:
                                self._take_reading_over()
                        # Nothing to read while the pump holds reading back, or at the end.
                        can_read = self._owned and not (
                            transport._paused or transport._eof or transport._closing
                        )
                    message = None
                    read = can_read and (polling or not self._polls_first)
                    if read:
                        # One read (it does not block) into the pump, which hands its
                        # messages to the inbox; with the inbox empty, the first straight
                        # to this thread (_deliver).
                        if inbox:
                            read_ready()
                        else:
                            self._catching = True
                            try:
                                read_ready()
                            except BaseException:  # (Ctrl-C.)
                                self._catching = False
                                self._keep_caught()
                                raise
                            self._catching = False
                            message = self._caught
                            self._caught = None
                    elif can_read:
                        self._polls_first -= 1  # (The answer is seldom there yet: poll.)
                    if message is None and (inbox or self._ended is not None):
                        message = self._take()
                    if message is not None:
                        if polling:
                            polling = False
                            self._stop_polling()
                        return message
                    if can_read and not polling:
                        polling = self._polling = True
                        if read:  # It found nothing yet: the next calls poll first.
                            self._polls_first = POLL_FIRST_RUN
                finally:
                    lock.release()
                wait = WAIT_SLICE if deadline is None else _wait_time(timeout, deadline)
                if can_read:
                    self._poller.poll(wait * 1000.0)
                else:
                    with mutex:
                        if not inbox and self._ended is None:
                            self._wait(wait)
        finally:
            if polling:
                with lock:
                    self._stop_polling()

    def _keep_caught(self) -> None:
        """Under the loop lock, as an exception leaves recv(): the message the pump handed
        it goes to the front of the inbox (it was empty then), for the next call."""
        caught = self._caught
        if caught is not None:
            self._caught = None
            size = _message_size(caught)
            with self._mutex:
                self._inbox.appendleft((caught, size))
                self._inbox_bytes += size

    def _stop_polling(self) -> None:
        """Under the loop lock: this thread leaves the socket; a thread waiting in recv()
        may poll it in its turn."""
        self._polling = False
        if self._waiting:
            with self._mutex:
                self._condition.notify()

    def _wait(self, wait: float) -> None:
        """With the condition held: wait at most ``wait`` seconds for it to be notified
        (counted in ``_waiting``, so that a message delivered with no one waiting skips
        the notification)."""
        self._waiting += 1
        try:
            self._condition.wait(wait)
        finally:
            self._waiting -= 1

    def _take_reading_over(self) -> None:
        """Under the loop lock: the loop's reader off, the program's threads read the
        socket from now on, until ``_reclaim`` finds none did for ``RECLAIM_AFTER``."""
        assert self._transport is not None
        self._transport._stop_reading()
        self._owned = True
        self._recvs_seen = self._recvs
        self._reclaim_timer = self._loop.call_later(RECLAIM_AFTER, self._reclaim)

    def _reclaim(self) -> None:
        """On the loop: read the socket again unless a thread called recv() since the last
        look (rule 5), so that Pings and the server's Close are taken while none does."""
        if not self._owned:
            return
        if self._polling or self._recvs != self._recvs_seen:
            self._recvs_seen = self._recvs
            self._reclaim_timer = self._loop.call_later(RECLAIM_AFTER, self._reclaim)
            return
        self._give_reading_back()

    def _give_reading_back(self) -> None:
        """On the loop: the loop reads the socket again (unless the pump holds reading
        back, or the stream ended), unless a thread is waiting on it in recv() now."""
        transport = self._transport
        if self._owned and not self._polling and transport is not None:
            self._owned = False
            if self._reclaim_timer is not None:
                self._reclaim_timer.cancel()
                self._reclaim_timer = None
            transport.start_reading()

    def _start_closing(self, code: int) -> None:
        """On the loop: start the closing handshake with ``code``; the loop reads the
        server's answer unless a thread in recv() does."""
        self._give_reading_back()
        self._stream._start_closing(code, "")

    def _take(self) -> Message | None:
        """The inbox's next message, taken under the mutex; None while it is empty and the
        connection open; ``ConnectionClosed`` once it is empty and closed."""
        mutex = self._mutex
        mutex.acquire()
        try:
            inbox = self._inbox
            if not inbox:
                if self._ended is not None:
                    raise self._closed()
                return None
            message, size = inbox.popleft()
            self._inbox_bytes -= size
            if self._delivery_paused and self._inbox_bytes < RECEIVE_HIGH_WATER_MARK:
                self._delivery_paused = False
                self._loop.call_soon_threadsafe(self._resume_delivery)
            return message
        finally:
            mutex.release()

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
        """From the pump: a message into the inbox; past the mark, the pump pauses."""
        # 1. "If stream's ready state is not OPEN (1), then return." (Once this side
        # closes, the messages still to come are dropped.)
        if self._stream._ready_state != OPEN:
            return
        if self._catching:  # The thread reading the socket in recv() takes it.
            self._catching = False
            self._caught = data
            return
        # The stream's _message_size: sys.getsizeof(), which is __sizeof__() for str and
        # bytes (the garbage collector does not track them).
        size = data.__sizeof__() + QUEUE_ENTRY_SIZE
        mutex = self._mutex
        mutex.acquire()
        try:
            self._inbox.append((data, size))
            self._inbox_bytes += size
            pause = self._inbox_bytes >= RECEIVE_HIGH_WATER_MARK
            if pause:
                self._delivery_paused = True
            if self._waiting:
                self._condition.notify()
        finally:
            mutex.release()
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

    # Sending (rules 3 and 5).

    def send(self, message: str | bytes | bytearray | memoryview) -> None:
        """Send ``message`` (``str`` as text, bytes-like as binary). Blocks while more than
        ``SEND_HIGH_WATER_MARK`` bytes wait to be sent; ``ConnectionClosed`` once the
        connection is closing or closed."""
        # Steps 4-5 of the stream's write algorithm, in the calling thread: the message's
        # bytes (a copy of a buffer, which the caller may reuse), or the UTF-8 of its text
        # (lone surrogates replaced, as a USVString's are).
        data: bytes
        if isinstance(message, str):
            data = usv_utf8(message)
            text = True
        elif isinstance(message, bytes):
            data = message
            text = False
        elif isinstance(message, (bytearray, memoryview)):
            data = bytes(message)
            text = False
        else:
            raise TypeError(
                f"send() takes str, bytes, bytearray or memoryview, not {type(message).__name__}"
            )
        loop_lock = self._loop_lock
        if loop_lock is None:
            self._send_through_the_loop(data, text)
            return
        stream = self._stream
        lock = loop_lock.lock
        while True:
            if loop_lock.loop_waits:
                loop_lock.let_the_loop_first()
            lock.acquire()
            try:
                if stream._ready_state != OPEN:
                    break  # The close is on its way: ConnectionClosed once it is.
                if self._outgoing_bytes <= SEND_HIGH_WATER_MARK:
                    if self._draining:
                        # Behind the write that waits: the loop hands it over (_drained).
                        self._outbox.append((data, text))
                        self._outgoing_bytes += len(data)
                    else:
                        self._hand_over(data, text)  # Framed and written in this thread.
                    return
            finally:
                lock.release()
            with self._mutex:
                if self._outgoing_bytes > SEND_HIGH_WATER_MARK and self._ended is None:
                    self._condition.wait(WAIT_SLICE)
        self._wait_closed()
        raise self._closed()

    def _send_through_the_loop(self, data: bytes, text: bool) -> None:
        """send() where the loop's thread does the writing: through the outbox."""
        condition = self._condition
        stream = self._stream
        with condition:
            while True:
                if stream._ready_state != OPEN:
                    closing = True  # The close is on its way: ConnectionClosed once it is.
                    break
                if self._outgoing_bytes <= SEND_HIGH_WATER_MARK:
                    closing = False
                    self._outbox.append((data, text))
                    self._outgoing_bytes += len(data)
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
        condition = self._condition
        outbox = self._outbox
        with condition:
            self._writing_scheduled = False
        while not self._draining:
            with condition:
                if not outbox:
                    return
                data, text = outbox.popleft()
                was_full = self._outgoing_bytes > SEND_HIGH_WATER_MARK
                self._outgoing_bytes -= len(data)
                if was_full and self._outgoing_bytes <= SEND_HIGH_WATER_MARK:
                    condition.notify_all()
            self._hand_over(data, text)

    def _hand_over(self, data: bytes, text: bool) -> None:
        """On the loop, or under its lock: step 6 of the stream's write algorithm (its
        writable's sink), which sends the message (once closing, nothing) and says when
        its buffer is above the stream's mark: the next messages wait until it drains."""
        waiter = self._stream._send_data(data, text)
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
        future = asyncio.run_coroutine_threadsafe(self._close(code, reason), self._loop)
        closed: ConnectionClosed = _wait_future(future)
        self._wait_closed()
        return closed

    async def _close(self, code: int | None, reason: str) -> ConnectionClosed:
        """On the loop: close (the loop reads the server's answer unless a thread in recv()
        does)."""
        self._give_reading_back()
        return await self._conn.close(code, reason)

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
        self._loop.call_soon_threadsafe(self._start_closing, int(code))
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
