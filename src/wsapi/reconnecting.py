"""``ReconnectingWebSocket``: a ``WebSocket`` that opens a new connection when one drops.

Theory of operation
-------------------
Rule 1: it *is* a ``WebSocket`` (a subclass), and each connection in turn is this one
object's connection: the pump reports to it as to any WebSocket, so every connection's
``open``, ``message``, ``error`` and ``close`` events fire on it as they happen, with
``event.target`` the ReconnectingWebSocket, and messages take exactly the WebSocket's path
(compiled or not): reconnecting adds nothing per message, nor per ``send()`` while open.

Rule 2: when a connection ends, its ``error`` and ``close`` events are dispatched first
(``readyState`` CLOSED, as on a WebSocket); then the policy (``wsapi.reconnect``) decides
from that ending. To reconnect, ``readyState`` goes back to CONNECTING, ``protocol`` and
``extensions`` to ``""``, and the next attempt starts after the backoff's wait. To stop,
the object stays CLOSED and ``closed`` resolves with that last close event. The program's
own ``close()`` (and the end of the event loop) always stops it.

Rule 3: between connections (CONNECTING, or CLOSING/CLOSED while a reconnection may still
follow), ``send()`` queues its message, up to ``max_enqueued_messages`` messages and the
agent's ``max_buffered_amount`` bytes; past either, the message is dropped (counted in
``bufferedAmount`` until the next attempt, logged once per outage). The queue goes out in
order on the next connection, before its ``open`` event is dispatched; when the object
stops instead, the queue is dropped. ``bufferedAmount`` is the queue's bytes plus the
current connection's untransmitted ones.

Rule 4: ``close()`` while waiting between connections cancels the wait: ``readyState``
goes to CLOSING at once, then a task sets CLOSED and fires ``close`` (1006, ``wasClean``
false, no ``error``: nothing failed), as for a WebSocket closed before it connected.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from .agent import UserAgent, _seconds, default_agent
from .blob import Blob
from .errors import ConnectionFailure, new_websocket_error
from .events import CloseEvent, report_an_exception
from .protocol.events import CloseReceived, Opened
from .reconnect import (
    DEFAULT_GROW_FACTOR,
    DEFAULT_JITTER,
    DEFAULT_MAX_DELAY,
    DEFAULT_MIN_DELAY,
    DEFAULT_MIN_UPTIME,
    Backoff,
    ReconnectPolicy,
)
from .reconnect import should_reconnect as default_should_reconnect
from .websocket import CLOSING, CONNECTING, OPEN, WebSocket, _Outcome, _size_of

__all__ = [
    "DEFAULT_CONNECTION_TIMEOUT",
    "DEFAULT_MAX_ENQUEUED_MESSAGES",
    "ReconnectingWebSocket",
]

logger = logging.getLogger("wsapi")

DEFAULT_CONNECTION_TIMEOUT: Final = 10.0
"""Seconds an attempt may take to open (DNS, TCP, proxy, TLS, handshake) before it fails
with ``"timeout"`` and the next one is scheduled; replaces the agent's ``open_timeout``. A
reconnecting client would rather try again than wait the agent's 30 s (the
reconnecting-websocket package waits 4 s; 10 s leaves room for a slow TLS handshake)."""

DEFAULT_MAX_ENQUEUED_MESSAGES: Final = 1000
"""Messages ``send()`` may queue between connections before it drops new ones. The
reconnecting-websocket package queues without bound; a bound keeps memory bounded through a
long outage (the agent's ``max_buffered_amount`` bounds the queue's bytes as well)."""


class ReconnectingWebSocket(WebSocket):
    """``ReconnectingWebSocket(url, protocols=None, *, agent=None, min_delay=1.0,
    max_delay=10.0, grow_factor=1.3, jitter=1.0, max_retries=None,
    connection_timeout=10.0, min_uptime=5.0, max_enqueued_messages=1000,
    should_reconnect=None)``: the ``WebSocket`` interface, reconnecting when a connection
    drops, plus ``reconnect()`` and ``retryCount``. Which endings reconnect, and the backoff
    between attempts: ``wsapi.reconnect``.
    """

    __slots__ = (
        "_backoff",
        "_ended",
        "_final_close",
        "_max_enqueued",
        "_next_open",
        "_overflow_logged",
        "_peer_closed_first",
        "_queue",
        "_queue_bytes",
        "_reconnect_asked",
        "_reconnect_now",
        "_stopped",
        "_timer",
    )

    def __init__(
        self,
        url: str,
        protocols: str | Sequence[str] | None = None,
        *,
        agent: UserAgent | None = None,
        min_delay: float = DEFAULT_MIN_DELAY,
        max_delay: float = DEFAULT_MAX_DELAY,
        grow_factor: float = DEFAULT_GROW_FACTOR,
        jitter: float = DEFAULT_JITTER,
        max_retries: int | None = None,
        connection_timeout: float | None = DEFAULT_CONNECTION_TIMEOUT,
        min_uptime: float = DEFAULT_MIN_UPTIME,
        max_enqueued_messages: int = DEFAULT_MAX_ENQUEUED_MESSAGES,
        should_reconnect: Callable[[ConnectionFailure | CloseEvent], bool] | None = None,
    ) -> None:
        policy = ReconnectPolicy(
            min_delay=min_delay,
            max_delay=max_delay,
            grow_factor=grow_factor,
            jitter=jitter,
            max_retries=max_retries,
            min_uptime=min_uptime,
            should_reconnect=default_should_reconnect
            if should_reconnect is None
            else should_reconnect,
        )
        if isinstance(max_enqueued_messages, bool) or not isinstance(max_enqueued_messages, int):
            raise TypeError(
                f"max_enqueued_messages must be an int, not {type(max_enqueued_messages).__name__}"
            )
        if max_enqueued_messages < 0:
            raise ValueError(f"max_enqueued_messages must be >= 0, not {max_enqueued_messages}")
        if agent is None:
            agent = default_agent()
        elif not isinstance(agent, UserAgent):
            raise TypeError(f"agent must be a UserAgent, not {type(agent).__name__}")
        connection_timeout = _seconds("connection_timeout", connection_timeout)
        if connection_timeout != agent.open_timeout:
            # A shallow copy: the same cookie jar and connection throttle, this timeout.
            agent = copy.copy(agent)
            agent.open_timeout = connection_timeout
        self._backoff = Backoff(policy)
        self._max_enqueued = max_enqueued_messages
        # Sends between connections: each message (as send() took it) and its size.
        self._queue: deque[tuple[str | bytes | Blob, int]] = deque()
        self._queue_bytes = 0
        self._overflow_logged = False
        self._stopped = False  # The program closed it (or the loop ended): no reconnection.
        self._ended = False  # Stopped and closed: the last close event has fired.
        self._reconnect_asked = False  # Inside reconnect(): _close() is its close.
        self._reconnect_now = False  # The current connection ends by reconnect().
        self._peer_closed_first = False  # The server started this connection's closing.
        self._timer: asyncio.TimerHandle | None = None  # The wait before the next attempt.
        # What ``opened`` and ``closed`` wait for: the next open, the last close.
        self._next_open: asyncio.Future[None] | None = None
        self._final_close: asyncio.Future[CloseEvent] | None = None
        super().__init__(url, protocols, agent=agent)

    # The interface's additions.

    @property
    def retryCount(self) -> int:
        """Consecutive reconnection attempts since a connection last stayed open for
        ``min_uptime`` seconds (0 before any)."""
        return self._backoff.retries(self._loop.time())

    def reconnect(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the current connection (with ``code`` and ``reason``, as ``close()``
        takes them) and open a new one at once, the backoff started over; on a closed
        ReconnectingWebSocket, start it again."""
        self._check_thread()
        self._reconnect_asked = True
        try:
            self.close(code, reason)
        finally:
            self._reconnect_asked = False

    @property
    def opened(self) -> Awaitable[None]:
        """Awaitable: done when a connection is open (this one, or the next while
        between connections or after ``reconnect()``); raises ``WebSocketError`` once the
        object stops without opening again. As on a WebSocket, each access is a new
        awaitable over one outcome."""
        opened = self._next_open
        if opened is None:
            opened = self._next_open = self._loop.create_future()
            if self._ready_state == OPEN or (self._ended and self._was_opened):
                opened.set_result(None)
            elif self._ended:
                self._settle_next_open()
        return _Outcome(opened)

    @property
    def closed(self) -> Awaitable[CloseEvent]:
        """Awaitable: the last close event, once the object has stopped reconnecting
        (``close()``, an ending that does not reconnect, or ``max_retries``)."""
        closed = self._final_close
        if closed is None:
            closed = self._final_close = self._loop.create_future()
            if self._ended and self._close_event is not None:
                closed.set_result(self._close_event)
        return _Outcome(closed)

    async def __aenter__(self) -> ReconnectingWebSocket:
        await super().__aenter__()
        return self

    def __repr__(self) -> str:
        state = ("CONNECTING", "OPEN", "CLOSING", "CLOSED")[self._ready_state]
        return f"<ReconnectingWebSocket {self.url} {state} retryCount={self.retryCount}>"

    # WebSocket's steps, extended.

    def send(self, data: str | bytes | bytearray | memoryview | Blob) -> None:
        """Transmit ``data`` (as ``WebSocket.send()``), or queue it between connections."""
        # Open, or stopped: a WebSocket's send().
        if self._ready_state == OPEN or self._stopped:
            WebSocket.send(self, data)
            return
        # Between connections: queue (rule 3), with send()'s checks and conversions.
        self._check_thread()
        converted = self._message_of(data)
        size = _size_of(converted)
        # (Text is queued as text: send() encodes it again when it goes.)
        message: str | bytes | Blob = data if isinstance(data, str) else converted
        self._refresh_buffered_amount()
        self._buffered_amount += size
        if (
            len(self._queue) >= self._max_enqueued
            or self._queue_bytes + size > self._agent.max_buffered_amount
        ):
            self._never_sent += size
            if not self._overflow_logged:
                self._overflow_logged = True
                logger.warning(
                    "ReconnectingWebSocket %s: the queue of sends between connections is "
                    "full (%d messages, %d bytes); new ones are dropped until it reconnects",
                    self.url,
                    len(self._queue),
                    self._queue_bytes,
                )
            return
        self._queue.append((message, size))
        self._queue_bytes += size

    def _pending_bytes(self) -> int:
        return super()._pending_bytes() + self._queue_bytes

    def _close(self, code: int | None, reason: str | None) -> None:
        if not self._reconnect_asked:
            # The program's close(): no reconnection after it.
            self._stopped = True
            self._reconnect_now = False
            if self._timer is not None:
                self._stop_waiting("close() was called while waiting to reconnect")
            else:
                super()._close(code, reason)
            return
        # reconnect(): a new connection at once, the backoff started over.
        self._backoff.reset()
        self._stopped = False
        if self._timer is not None:
            self._timer.cancel()
            self._attempt()
        elif self._ended:
            self._ended = False
            self._final_close = None
            self._begin_waiting(0.0)
        else:
            # The connection ends first (or is ending, or its close event is being
            # dispatched): _on_closed reconnects at once; ``opened`` waits for that one.
            self._reconnect_now = True
            if self._next_open is not None and self._next_open.done():
                self._next_open = None
            super()._close(code, reason)

    def _fail_the_websocket_connection(self, reason: str) -> None:
        # close() while connecting, or the end of the event loop: no reconnection after it
        # (unless reconnect() asked for it).
        if not self._reconnect_now:
            self._stopped = True
        if self._timer is not None:
            self._stop_waiting(reason)
        else:
            super()._fail_the_websocket_connection(reason)

    # Feedback from the protocol.

    def _on_open(self, event: Opened) -> None:
        if self._ready_state == CONNECTING:
            self._backoff.opened(self._loop.time())
            self._overflow_logged = False
            queue = self._queue
            if queue:
                # The queue goes first, in order, on the open connection (rule 3):
                # readyState is OPEN for those sends only; the open task sets it for good.
                self._ready_state = OPEN
                self._buffered_stale = True
                try:
                    while queue:
                        message, size = queue.popleft()
                        self._queue_bytes -= size
                        WebSocket.send(self, message)
                finally:
                    self._ready_state = CONNECTING
        super()._on_open(event)
        opened = self._next_open
        if self._ready_state == OPEN and opened is not None and not opened.done():
            opened.set_result(None)

    def _on_close_frame(self, event: CloseReceived) -> None:
        if self._ready_state == OPEN:
            self._peer_closed_first = True
        super()._on_close_frame(event)

    def _on_closed(self, was_clean: bool, code: int, reason: str) -> None:
        # The connection's own close task (its error and close events), then the decision
        # (rule 2). (The WebSocket's own opened and closed futures stay unused: this
        # object's ``opened`` and ``closed`` are its own.)
        # Ours: the program's close(), a closing handshake we started (the end of the
        # event loop starts one with 1001), or an abort (the loop's end cancelled the
        # attempt): never reconnected, whatever should_reconnect would say.
        failure = self._failure
        ours = (
            self._stopped
            or (self._ready_state == CLOSING and not self._peer_closed_first)
            or (failure is not None and failure.kind == "aborted")
        )
        super()._on_closed(was_clean, code, reason)
        delay: float | None = None
        if self._reconnect_now:
            self._reconnect_now = False
            delay = 0.0
        elif not (ours or self._stopped):
            delay = self._next_delay()
        if delay is None:
            self._end()
        else:
            self._begin_waiting(delay)

    # Internals.

    def _next_delay(self) -> float | None:
        failure = self._failure
        ending: ConnectionFailure | CloseEvent | None = (
            failure if failure is not None and (self._fail_required or self._full) else None
        )
        if ending is None:
            ending = self._close_event
        try:
            return self._backoff.next_delay(ending, self._loop.time())
        except Exception as exc:
            report_an_exception(
                exc, "should_reconnect raised: not reconnecting", ending=ending, target=self
            )
            return None

    def _begin_waiting(self, delay: float) -> None:
        """Between connections (rule 2): CONNECTING until the next attempt, ``delay``
        seconds from now."""
        self._ready_state = CONNECTING
        self._protocol = self._extensions = ""
        self._close_event = None
        self._peer_closed_first = False
        self._buffered_stale = True
        if self._next_open is not None and self._next_open.done():
            self._next_open = None  # ``opened`` now waits for the next connection.
        self._registry.add(self)
        logger.info(
            "ReconnectingWebSocket %s: reconnecting in %.3f s (attempt %d)",
            self.url,
            delay,
            self._backoff.retry_count,
        )
        self._timer = self._loop.call_later(delay, self._attempt)

    def _attempt(self) -> None:
        """The next connection: a fresh one for this object, as the constructor starts."""
        self._timer = None
        self._failure = None
        self._fail_required = self._full = self._was_opened = False
        self._abort_reason = None
        self._never_sent = 0
        self._buffered_stale = True
        task = self._loop.create_task(self._establish(None), name=f"wsapi connect {self.url}")
        self._connect_task = task
        task.add_done_callback(self._connect_task_done)

    def _stop_waiting(self, reason: str) -> None:
        """Rule 4: the wait ends with a close task of its own."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._ready_state = CLOSING
        self._failure = ConnectionFailure("aborted", reason)
        self._fail_required = self._full = False
        self._loop.call_soon(self._on_closed, False, 1006, "")

    def _end(self) -> None:
        """No reconnection: the last close event has fired; settle ``opened`` and
        ``closed``, and drop the queue (its bytes stay counted, as sends after close)."""
        self._stopped = self._ended = True
        self._never_sent += self._queue_bytes
        self._queue.clear()
        self._queue_bytes = 0
        self._settle_next_open()
        closed = self._final_close
        if closed is not None and not closed.done() and self._close_event is not None:
            closed.set_result(self._close_event)

    def _settle_next_open(self) -> None:
        """``opened`` fails: the object stopped without opening again."""
        opened = self._next_open
        if opened is None or opened.done():
            return
        failure = self._failure or ConnectionFailure(
            "connection_lost", "the connection closed before it opened"
        )
        opened.set_exception(new_websocket_error(failure.reason, failure))
        opened.exception()  # Retrieved: an unawaited failure logs nothing.
