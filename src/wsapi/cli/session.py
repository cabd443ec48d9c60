"""One connection as the command line drives it, and the non-interactive conversation.

``Session`` wraps a ``WebSocket`` made through the public API: it shows each event through an
``Output``, counts messages, and knows when to stop (the close event, ``--count``, a signal,
a closed standard output) and which exit status the close event means.

``converse`` is pipe mode, ``-x`` and the demo: send the messages of a source, then wait for
the replies before starting the closing handshake, because the API drops messages that
arrive once it has started (``readyState`` CLOSING).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

from wsapi import CloseEvent, Event, MessageEvent, WebSocket, WebSocketError

from .output import Output

__all__ = [
    "EXIT_CLOSE_CODE",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "LineReader",
    "Session",
    "converse",
]

EXIT_OK: Final = 0
"""The connection closed cleanly (``wasClean`` true) with 1000, 1001 or no code, or with the
code the user chose."""
EXIT_FAILURE: Final = 1
"""The connection failed or closed uncleanly (an error event, close code 1006)."""
EXIT_USAGE: Final = 2
"""Bad arguments: an unknown option, a URL the constructor refuses (SyntaxError), ..."""
EXIT_CLOSE_CODE: Final = 3
"""The server closed the connection cleanly with a code other than 1000, 1001 or none
(4000 "unauthorized", 1011 "internal error", ...): a script can tell it from success."""

SEND_HIGH_WATER = 1024 * 1024
"""``bufferedAmount`` past which pipe mode waits for the network before it sends the next
line: input faster than the network is held in the pipe, not in memory."""

QUEUE_LINES = 256
"""Lines read ahead from standard input: enough to keep the connection busy, few enough that
a huge input file is read at the pace of the network."""

_SLOW_CLOSE = 2.0
"""Seconds after which a close that has not finished gets a note (the wait is bounded by the
agent's close_timeout; Ctrl-C again leaves at once)."""

T = TypeVar("T")


class _Stopped:
    """What ``until_stopped`` returns when the session stopped first."""


STOPPED: Final = _Stopped()


class Session:
    """A ``WebSocket`` with its events shown, and what ends its use."""

    def __init__(self, ws: WebSocket, output: Output, *, count: int | None = None) -> None:
        self.ws = ws
        self.output = output
        self.count = count
        self.received = 0
        self.sent_codes: set[int] = set()
        """Close codes this side sent: a close event with one of them is no server verdict."""
        self.signal: int | None = None
        """The signal (SIGINT, SIGTERM) that asked the session to end."""
        loop = asyncio.get_running_loop()
        self.stopped: asyncio.Future[None] = loop.create_future()
        self._activity = asyncio.Event()
        self._error_shown = False
        output.on_broken_pipe = self.stop
        ws.addEventListener("open", self._on_open)
        ws.addEventListener("message", self._on_message)
        ws.addEventListener("error", self._on_error)
        ws.addEventListener("close", self._on_close)

    def _on_open(self, event: Event) -> None:
        self.output.on_open(self.ws, event.timeStamp)

    def _on_message(self, event: MessageEvent) -> None:
        self.received += 1
        self._activity.set()
        self.output.on_message(event)
        if self.count is not None and self.received >= self.count:
            # Close now, in this task: a message already read is then not dispatched (the
            # API drops messages once closing has started), so exactly N are shown.
            self.close(1000)
            self.stop()

    def _on_error(self, event: Event) -> None:
        self._error_shown = True
        self.output.on_error(self.ws, event.timeStamp)

    def _on_close(self, event: CloseEvent) -> None:
        # A failure no error event showed (a closing handshake that close_timeout ended):
        # the close line is the only place left to say why it was not clean.
        unshown = None if self._error_shown else self.ws.failure
        self.output.on_close(event, unshown)
        self.stop()

    def stop(self) -> None:
        """Ask the conversation to end (it then closes the connection)."""
        if not self.stopped.done():
            self.stopped.set_result(None)

    def interrupt(self, signum: int) -> None:
        """A signal asks to leave: close cleanly, then exit with 128 + the signal."""
        self.signal = signum
        self.stop()

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """``ws.close()``, remembered (see ``sent_close``)."""
        if self.ws.readyState in (WebSocket.CONNECTING, WebSocket.OPEN):
            self.ws.close(code, reason)
            self.sent_close(code)

    def sent_close(self, code: int | None) -> None:
        """This side started the closing handshake with ``code`` (None: a Close with no
        code, which the server's echo reports as 1005)."""
        self.sent_codes.add(1005 if code is None else code)

    async def until_stopped(self, awaitable: Awaitable[T]) -> T | _Stopped:
        """The result of ``awaitable``, or ``STOPPED`` if the session stops first."""
        # A future is shielded: stopping must not cancel a future that others may await.
        if isinstance(awaitable, asyncio.Future):
            task: asyncio.Future[T] = asyncio.shield(awaitable)
        else:
            task = asyncio.ensure_future(awaitable)
        if not self.stopped.done():
            either: set[asyncio.Future[Any]] = {task, self.stopped}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # Retrieved: nobody wants the result any more.
        return STOPPED

    async def wait_for_replies(
        self, *, linger: float, wait: float | None, expected: int | None
    ) -> None:
        """After the last message sent: wait ``wait`` seconds if given (``inf``: until the
        server closes); else until ``expected`` messages have arrived, or none has for
        ``linger`` seconds. The session stopping ends any wait."""
        if wait is not None:
            if wait == float("inf"):
                await self.stopped
            else:
                await self.until_stopped(asyncio.sleep(wait))
            return
        while not self.stopped.done():
            if expected is not None and self.received >= expected:
                return
            self._activity.clear()
            arrived = await self.until_stopped(_wait_event(self._activity, linger))
            if arrived is False:
                return

    async def finish(self) -> int:
        """Close with 1000 unless closed already, wait for the close event (bounded by the
        agent's close_timeout), and return the exit status it means."""
        self.close(1000)
        if self.ws.readyState != WebSocket.CLOSED:
            try:
                await asyncio.wait_for(self.ws.closed, _SLOW_CLOSE)
            except asyncio.TimeoutError:
                self.output.info("waiting for the server to close (Ctrl-C to leave now)")
        event = await self.ws.closed
        await self.output.flush()
        return self.status(event)

    def status(self, event: CloseEvent) -> int:
        if self.signal is not None:
            return 128 + self.signal
        if not event.wasClean:
            return EXIT_FAILURE
        # A code the server chose says how it ended the conversation; the one it echoes
        # back from us says nothing. (Comparing codes rather than remembering who closed
        # first also gets a server's 4000 right when both sides close at once.)
        if event.code in (1000, 1001, 1005) or event.code in self.sent_codes:
            return EXIT_OK
        return EXIT_CLOSE_CODE


async def _wait_event(event: asyncio.Event, timeout: float) -> bool:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:
        return False
    return True


class LineReader:
    """The lines of a file descriptor (standard input), read by a daemon thread.

    A thread, because asyncio's pipe support refuses regular files (``wsapi URL < file``) and
    a terminal; ``os.read`` rather than ``sys.stdin``, because a daemon thread blocked inside
    a buffered reader makes the interpreter's exit fail on the reader's lock. Reading stays
    at most ``QUEUE_LINES`` lines ahead of the consumer.
    """

    def __init__(self, fd: int = 0) -> None:
        self._fd = fd
        self._queue: asyncio.Queue[list[bytes] | None] = asyncio.Queue()
        self._room = threading.Semaphore(QUEUE_LINES)
        self._loop = asyncio.get_running_loop()
        self._eof = False
        self._held: list[bytes] | None = None
        threading.Thread(target=self._run, daemon=True, name="wsapi stdin").start()

    def _post(self, item: list[bytes] | None) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # The event loop is closed: the program is ending.
            return False
        return True

    def _run(self) -> None:
        pending = bytearray()
        batch: list[bytes] = []
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                chunk = b""  # EIO from a terminal that went away: the end of input.
            if not chunk:
                break
            start = len(pending)
            pending += chunk
            while (end := pending.find(b"\n", start)) >= 0:
                line = bytes(pending[:end])
                del pending[: end + 1]
                start = 0
                if not self._room.acquire(blocking=False):
                    # The consumer is behind: hand over what is read, then wait for room.
                    if batch and not self._post(batch):
                        return
                    batch = []
                    self._room.acquire()
                batch.append(line.removesuffix(b"\r"))
            # One wake-up of the event loop per read, not per line.
            if batch and not self._post(batch):
                return
            batch = []
        if pending:
            self._room.acquire()
            if not self._post([bytes(pending).removesuffix(b"\r")]):
                return
        self._post(None)

    async def has_input(self) -> bool:
        """Whether there is a line at all (it waits for the first one, and keeps it)."""
        if self._held is None:
            self._held = await self.read_lines()
        return self._held is not None

    async def read_lines(self) -> list[bytes] | None:
        """The lines read so far (at least one, waiting for it) without their line
        endings, or None at the end of input."""
        held = self._held
        if held is not None:
            self._held = None
            return held
        if self._eof:
            return None
        lines = await self._queue.get()
        while lines is not None and not self._queue.empty():
            more = self._queue.get_nowait()
            if more is None:
                self._eof = True  # These lines first; None on the next call.
                break
            lines += more
        if lines is None:
            self._eof = True
            return None
        self._room.release(len(lines))
        return lines


MessageSource = Callable[[], Awaitable[Sequence[str | bytes] | None]]
"""The next messages to send (all those ready, at least one), or None when there are no
more. Batches, so that a fast input costs one event-loop wake-up per read, not per line."""


def messages_from(items: Sequence[str | bytes]) -> MessageSource:
    """A source of the given messages (``-x``, the demo)."""
    remaining: list[Sequence[str | bytes]] = [items] if items else []

    async def next_messages() -> Sequence[str | bytes] | None:
        return remaining.pop() if remaining else None

    return next_messages


def messages_from_lines(reader: LineReader, output: Output, *, binary: bool) -> MessageSource:
    """A source of the lines of ``reader``: text (UTF-8), or bytes with ``binary``."""
    number = 0

    def decode(line: bytes) -> str:
        nonlocal number
        number += 1
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            output.problem(
                f"input line {number} is not UTF-8: sent with U+FFFD for the bad bytes "
                "(-b sends lines as binary messages)"
            )
            return line.decode("utf-8", "replace")

    async def next_messages() -> Sequence[str | bytes] | None:
        lines = await reader.read_lines()
        if lines is None or binary:
            return lines
        return [decode(line) for line in lines]

    return next_messages


async def converse(
    session: Session,
    next_messages: MessageSource,
    *,
    linger: float,
    wait: float | None = None,
    echo: bool = False,
) -> int:
    """Send every message of the source once open, wait for the replies, close; return the
    exit status. ``echo``: the server answers each message once (the embedded server), so
    the wait ends when every answer is in."""
    ws = session.ws
    try:
        await session.until_stopped(ws.opened)
    except WebSocketError:
        return await session.finish()
    sent = 0
    while not session.stopped.done() and ws.readyState == WebSocket.OPEN:
        batch = await session.until_stopped(next_messages())
        if batch is None or isinstance(batch, _Stopped):
            break
        for message in batch:
            if session.stopped.done() or ws.readyState != WebSocket.OPEN:
                break
            ws.send(message)
            sent += 1
            if ws.bufferedAmount > SEND_HIGH_WATER:
                await session.until_stopped(ws.drained())
    if not session.stopped.done():
        await session.until_stopped(ws.drained())
        await session.wait_for_replies(linger=linger, wait=wait, expected=sent if echo else None)
    return await session.finish()
