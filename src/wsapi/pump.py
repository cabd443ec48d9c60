"""The pump between a socket and the sans-I/O engine: ``ConnectionPump``.

``ConnectionPump`` is the asyncio protocol (a buffered one: ``get_buffer`` and
``buffer_updated``) of a WebSocket's TCP (or TLS, or tunnelled) connection. It feeds what it
reads to the engine, writes what the engine queues, and hands the engine's events to a
``ConnectionHandler`` (the API layer) one event per event-loop callback, in order. Because the
engine parses lazily (see ``protocol.engine``), the handler's reaction to message N (a reply,
a close) is written before frame N+1 is even parsed. No handler call is ever made from inside
a call the handler made (``send_message``, ``start_the_closing_handshake``,
``fail_the_websocket_connection``): those only queue work for the pump.

Flow control: reading pauses while more than ``READ_HIGH_WATER`` bytes wait unparsed and the
pump still has events to hand over, and resumes once the engine needs more bytes. Memory per
connection is thus bounded by that mark, one read and one maximal message. A handler that
queues messages for a program to pull (WebSocketStream) pauses delivery while its queue is
full (``pause_delivery``): the bytes then wait unparsed behind the same mark.

The timers (the phase that may hang, keepalive) are the pump's base class, ``PumpTimers``.

The compiled build: Cython compiles this file itself, with ``pump.pxd``, as it does the
engine (see ``protocol/engine.py``); ``WSAPI_PURE_PYTHON=1`` runs this file as Python.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Protocol, cast

from .errors import ConnectionFailure, FailureKind
from .protocol.constants import CloseCode

# (The compiled build calls the C twin of this function instead: pump.pxd cimports it from
# _reading, which reads a read's frames in place.)
from .protocol.engine import ClientConnection, State, deliver_messages
from .protocol.events import (
    CloseReceived,
    Failed,
    Opened,
    PingReceived,
    PongReceived,
    RefusalBodyExpected,
)
from .socket_transport import SocketTransport, peek_end_of_stream, write_to_socket
from .timers import PumpTimers

__all__ = [
    "MESSAGES_PER_CALLBACK",
    "PONG_BACKLOG_HIGH_WATER",
    "READ_HIGH_WATER",
    "ConnectionHandler",
    "ConnectionPump",
    "fail_without_a_connection",
]

logger = logging.getLogger("wsapi")

# The engine's states as module globals (a global read, not an enum class attribute).
_OPEN = State.OPEN
_CLOSED = State.CLOSED
payload_logger = logging.getLogger("wsapi.payload")
"""Messages, truncated, at DEBUG: silent unless a program enables this logger on purpose
(``logging.getLogger("wsapi.payload").setLevel(logging.DEBUG)``); the "wsapi" logger itself
never shows payloads."""
# Its own level, INFO, so that DEBUG on the root logger (logging.basicConfig(level=DEBUG))
# or on "wsapi" does not log messages, which may hold secrets.
payload_logger.setLevel(logging.INFO)

PAYLOAD_LOG_LIMIT = 200
"""Characters of a message shown by the payload logger."""

MESSAGES_PER_CALLBACK = 512
"""Messages handed over per event-loop callback. One per callback would cost a turn of the
loop (a system call to poll the sockets) per message; a bounded batch keeps other
connections and timers served within about a millisecond (the pure-Python path; the
compiled one takes a tenth of that)."""

READ_BUFFER_SIZE = 256 * 1024
"""Size of the buffer a socket read goes into: the default loop's own read size. One buffer
per thread serves every connection (reads never overlap on a loop), so an idle connection
holds none."""

JOIN_WRITES_UP_TO = 64 * 1024
"""Bytes up to which the chunks of one write (a frame header and its payload) are joined
into one ``write()``: copying them costs less than a second system call."""

READ_HIGH_WATER = 1024 * 1024
"""Unparsed bytes past which reading pauses while messages wait to be handed over: a
peer that floods a slow consumer fills the socket buffers, not our memory."""

PONG_BACKLOG_HIGH_WATER = 64 * 1024
"""Bytes of Pongs written while the write buffer never emptied past which reading pauses
until it has: a peer that floods Pings and never reads our Pongs fills the socket buffers,
not our send buffer (which then holds at most this plus the Pongs of the Pings already read,
``READ_HIGH_WATER`` and a read)."""


class ConnectionHandler(Protocol):
    """What the pump tells the layer above. Each call is made from its own event-loop
    callback, in the order the events happened; ``_on_failure`` is followed by ``_on_closed``
    in the same callback or a later one."""

    def _on_connect(self, pump: ConnectionPump) -> None:
        """TCP (and TLS) is up and the handshake request is on its way: the first call,
        before any event, made from inside ``connection_made``."""

    def _on_open(self, event: Opened) -> None:
        """The opening handshake succeeded."""

    def _on_message(self, data: str | bytes) -> None:
        """A message arrived."""

    def _on_close_frame(self, event: CloseReceived) -> None:
        """The peer's Close frame arrived (the closing handshake started, or completed)."""

    def _on_failure(self, failure: ConnectionFailure) -> None:
        """The connection failed; ``_on_closed`` follows. (Every connection that closes
        before it opened failed: this comes first.)"""

    def _on_close_timeout(self, failure: ConnectionFailure) -> None:
        """Our Close went unanswered for ``close_timeout``: the pump drops the TCP
        connection. Not a failure: ``_on_closed`` follows, unclean, with 1006; ``failure``
        (kind ``close_timeout``) says why."""

    def _on_closed(self, was_clean: bool, code: int, reason: str) -> None:
        """The TCP connection is closed: the last call."""

    def _on_drained(self) -> None:
        """The write buffer went down to the mark of ``watch_drain()`` (by default: all
        written so far has been handed to the operating system)."""


class _ReadBuffer(threading.local):
    """The per-thread buffer socket reads land in (``asyncio.BufferedProtocol``), instead of
    a fresh ``bytes`` per read: the engine copies what it needs out of it."""

    def __init__(self) -> None:
        self.array = bytearray(READ_BUFFER_SIZE)
        self.view = memoryview(self.array)  # (Exported: the bytearray never moves.)


_read_buffer = _ReadBuffer()


class ConnectionPump(PumpTimers):
    """The asyncio protocol that drives one ``ClientConnection`` over an asyncio transport
    (``transport``) and reports to one ``ConnectionHandler`` (``handler``).

    It has the methods of ``asyncio.BufferedProtocol`` without subclassing it (the compiled
    build makes it an extension type, which cannot): uvloop's transports and wsapi's socket
    transport see a buffered protocol; asyncio's own (TLS, proxies) call ``data_received``."""

    # (In the compiled build, pump.pxd declares these fields, typed.)
    __slots__ = (
        "_after_pump",
        "_closed_reported",
        "_delivery_paused",
        "_failure_kind",
        "_fd",
        "_in_flight",
        "_in_flight_total",
        "_log_payload",
        "_on_message",
        "_own_transport",
        "_pong_backlog",
        "_pump_scheduled",
        "_pumping",
        "_read_view",
        "_reading_paused",
        "_release_connecting_slot",
        "_report_error",
        "_wire_written",
        "_written_to_transport",
        "transport",
    )

    def __init__(
        self,
        engine: ClientConnection,
        handler: ConnectionHandler,
        *,
        close_timeout: float | None,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        release_connecting_slot: Callable[[], None] | None = None,
    ) -> None:
        """``release_connecting_slot`` is called once the connection leaves CONNECTING (RFC
        6455 4.1 step 2: the next connection to the same address may go)."""
        super().__init__(engine, handler, close_timeout, ping_interval, ping_timeout)
        self._on_message: Callable[[str | bytes], object] = handler._on_message
        self.transport: asyncio.Transport | None = None
        # The plain TCP socket's file descriptor, for the peek at its end of stream and the
        # first send(2) of a frame to another loop's transport (_flush); -1: none.
        self._fd = -1
        # The transport when it is wsapi's own socket transport (see _flush), else None.
        self._own_transport: SocketTransport | None = None
        # Whether another loop's transport may still hold bytes we gave it (see _flush).
        self._written_to_transport = False
        self._release_connecting_slot = release_connecting_slot
        # This thread's read buffer (the pump reads on its loop's thread only).
        self._read_view = _read_buffer.view
        self._pump_scheduled = False
        self._pumping = False
        # Whether payloads are logged: read when a callback of the pump starts, and holds
        # for the messages and sends of that callback.
        self._log_payload = False
        self._report_error = self._report_handler_error  # (Bound once: the pump's argument.)
        self._after_pump: Callable[[], None] | None = None
        self._reading_paused = False
        # Bytes of Pongs written since the write buffer was last empty.
        self._pong_backlog = 0
        self._delivery_paused = False
        self._closed_reported = False
        self._failure_kind: FailureKind | None = None
        # bufferedAmount accounting: the wire offsets at which each message's bytes start and
        # end, and its application bytes, for messages not yet wholly handed to the OS.
        self._wire_written = 0
        self._in_flight: deque[tuple[int, int, int]] = deque()
        self._in_flight_total = 0

    # asyncio.Protocol.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self._own_transport = transport if isinstance(transport, SocketTransport) else None
        # pause_writing() as soon as anything stays buffered, resume_writing() once the buffer
        # is empty: exact drain notifications for bufferedAmount and drained().
        self.transport.set_write_buffer_limits(high=0, low=0)
        self._fd = _plain_socket_fd(self.transport)
        self._flush()
        self._call(self.handler._on_connect, self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_view

    def buffer_updated(self, nbytes: int) -> None:
        self._received(self._read_view, nbytes)

    def data_received(self, data: bytes | memoryview) -> None:
        self._received(data, len(data))

    def _received(self, data: bytes | memoryview, size: int) -> None:
        """The first ``size`` bytes of ``data`` were read."""
        if self._ping_deadline is not None:
            # Any byte from the peer proves it alive; its Pong may be queued behind
            # messages that the application has not taken yet.
            self._ping_deadline.cancel()
            self._ping_deadline = None
        engine = self.engine
        if self._pump_scheduled or self._pumping or self._delivery_paused:
            # Behind what the scheduled pump has yet to hand over.
            engine.receive_data(memoryview(data)[:size])
        else:
            # This read is a callback of its own: its events are handed over now, rather
            # than a turn of the loop later (a turn per read is a poll system call).
            self._pump(data, size)
        if self._pump_scheduled or self._delivery_paused:
            self._pause_reading_if_behind()

    def _pause_reading_if_behind(self) -> None:
        if self.engine.buffered > READ_HIGH_WATER and not self._reading_paused and self.transport:
            # Messages wait to be handed over (the pump is scheduled, or the handler paused
            # delivery): stop reading until the pump has caught up (it resumes when nothing
            # parseable is left). Without a pump to come, what is buffered is an incomplete
            # frame, which the message size limit bounds.
            self._reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.engine.receive_eof()
        if not (self._pump_scheduled or self._pumping):
            # As for a read: what the end of the stream brings is handed over in this
            # callback (after the closing handshake, our side closes now).
            self._pump()
        # Keep the transport open: the pump still writes what the engine queued, then closes.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._cancel_timer(ended=True)
        self._stop_keepalive()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            # Mark it closed: Python 3.10's TLS transport, lost without close(), warns
            # "unclosed transport" when collected.
            transport.close()
        self.engine.receive_eof()
        if exc is not None:
            logger.debug("connection lost: %s", exc)
        if self._pump_scheduled or self._pumping:
            return
        self._pump()  # The last callback: what is left is handed over now.

    def pause_writing(self) -> None:
        pass  # Sends are never refused here; the API layer watches bufferedAmount.

    def resume_writing(self) -> None:
        if self._pong_backlog:
            # Our Pongs went out: reading may go on (the pump resumes it when it has
            # nothing left to parse).
            self._pong_backlog = 0
            if self._reading_paused:
                self._schedule_pump()
        self._call(self.handler._on_drained)

    def _pong_queued(self, size: int) -> None:
        """The engine answered a Ping with a Pong of ``size`` bytes, just flushed: if it
        stays buffered behind more than ``PONG_BACKLOG_HIGH_WATER`` bytes of Pongs, stop
        reading until the write buffer is empty (``resume_writing``)."""
        transport = self.transport
        if transport is None or self._lost or not transport.get_write_buffer_size():
            return
        self._pong_backlog += size
        if self._pong_backlog > PONG_BACKLOG_HIGH_WATER:
            if not self._reading_paused:
                self._reading_paused = True
                transport.pause_reading()
            # resume_writing() when the buffer is empty (whatever mark watch_drain() set;
            # the handler's drain waiters check their own mark and set it again).
            transport.set_write_buffer_limits(high=0, low=0)

    # Calls from the layer above: they queue work, they never call the handler.

    def send_message(self, payload: bytes | bytearray | memoryview, text: bool) -> None:
        """Send a message: ``text`` with ``payload`` the UTF-8 of the string, else binary."""
        self.engine.send_message(payload, text)
        self._flush(len(payload))
        if self._log_payload if self._pumping else _payloads_logged():
            _log_payload(">", bytes(payload).decode() if text else bytes(payload))

    def send_ping(self, data: bytes = b"") -> None:
        self.engine.send_ping(data)
        self._flush()

    def can_send(self) -> bool:
        """Whether the connection is established and the closing handshake has not started
        (RFC 6455 7.1.3: neither Close frame has been sent or received)."""
        engine = self.engine
        return (
            engine.state is _OPEN and engine.close_sent is None and engine.close_received is None
        )

    def start_the_closing_handshake(self, code: int | None = None, reason: str = "") -> None:
        """RFC 6455 7.1.2 "Start the WebSocket Closing Handshake": "an endpoint MUST send a
        Close control frame, as described in Section 5.5.1, whose status code is set to
        /code/ and whose close reason is set to /reason/" (``code`` None: a Close frame
        without a body, as the API's close() asks). The TCP connection is dropped if the
        peer's Close does not arrive within ``close_timeout``."""
        self.engine.send_close(code, reason)
        self._flush()
        self._start_timer(self._close_timed_out)

    def fail_the_websocket_connection(
        self, code: int | None, reason: str, kind: FailureKind
    ) -> None:
        """RFC 6455 7.1.7 "Fail the WebSocket Connection", for a reason of ours (a timeout,
        close() while connecting, the end of the program); the engine does the same for the
        peer's violations. The report comes from the pump's next callback (``kind`` says
        what failed), then the connection closes."""
        if self.engine.state is _CLOSED:
            return
        self._failure_kind = kind
        # "If _The WebSocket Connection is Established_ ..., the endpoint SHOULD send a Close
        # frame with an appropriate status code" (``code``; None sends none), and "MUST NOT
        # continue to attempt to process data ... from the remote endpoint": the engine.
        self.engine.fail(code, reason)
        self._flush()
        self._schedule_pump()

    def abort(self) -> None:
        """Drop the TCP connection now, without a closing handshake."""
        if self.transport is not None:
            self.transport.abort()

    def pause_delivery(self) -> None:
        """Stop handing events to the handler (its queue of unread messages is full) until
        ``resume_delivery()``: the pump stops at the end of its current batch, what is read
        stays unparsed in the engine, and reading pauses past ``READ_HIGH_WATER``, so a
        peer that sends faster than the program reads is held back by TCP. Everything the
        peer sent after (a Ping, its Close, the end of the stream) waits behind the
        messages, in order."""
        self._delivery_paused = True

    def resume_delivery(self) -> None:
        """Hand events over again, from the pump's next callback (reading resumes once the
        engine has nothing left to parse)."""
        if self._delivery_paused:
            self._delivery_paused = False
            self._schedule_pump()

    def _keepalive_expired(self) -> None:
        if self._reading_paused:
            # Reading is paused (the handler's queue is full, or the pump is behind): what
            # the peer sent, its Pong perhaps among it, waits unread in the socket. It is not
            # the peer that is silent; the next ping interval tries again.
            self._ping_deadline = None
            return
        super()._keepalive_expired()

    def watch_drain(self, mark: int) -> None:
        """Have ``resume_writing()``, and so the handler's ``_on_drained``, come once at most
        ``mark`` bytes wait in the write buffer; with 0 (the default), once it is empty."""
        transport = self.transport
        if transport is None or self._lost:
            return
        if mark and transport.get_write_buffer_size() <= mark:
            mark = 0  # Already below it, yet more is pending (compressed data): wait for empty.
        transport.set_write_buffer_limits(high=mark, low=mark)

    def untransmitted(self) -> int:
        """Application bytes of sent messages not yet handed to the operating system."""
        if not self._in_flight:
            return 0
        transport = self.transport
        buffered = 0 if transport is None or self._lost else transport.get_write_buffer_size()
        if self._lost:
            # Nothing more will be transmitted: what is left stays counted.
            return self._in_flight_total
        transmitted = self._wire_written - buffered
        in_flight = self._in_flight
        while in_flight and in_flight[0][1] <= transmitted:
            self._in_flight_total -= in_flight.popleft()[2]
        if not in_flight:
            return 0
        start, end, size = in_flight[0]
        remaining = end - max(start, transmitted)
        if end - start >= size:
            # Uncompressed: the payload is the tail of the frame, so what is not yet out of
            # the frame is payload, up to its size.
            partial = min(size, remaining)
        else:
            # Compressed: the wire bytes stand for more application bytes; count the share
            # of the message not yet out.
            partial = -(-size * remaining // (end - start))
        return self._in_flight_total - size + partial

    # The pump.

    def _schedule_pump(self) -> None:
        if not self._pump_scheduled:
            self._pump_scheduled = True
            self.loop.call_soon(self._pump)

    def _pump(self, data: bytes | memoryview | None = None, size: int = 0) -> None:
        """Hand over the next events, each as if it were its own task, then come back in a
        later callback. Messages are handed over in batches of up to
        ``MESSAGES_PER_CALLBACK``: each is dispatched completely (its listeners' sends
        written) before the engine parses the next, as one task per message would; any
        other event ends the batch. ``data``, ``size`` bytes just read, go to the engine
        first."""
        self._pump_scheduled = False
        self._pumping = True
        try:
            self._pump_events(data, size)
        finally:
            self._pumping = False
            if self._after_pump is not None:
                after_pump, self._after_pump = self._after_pump, None
                after_pump()

    def pumping(self) -> bool:
        """Whether the current callback is the pump's (the handler's calls come from it)."""
        return self._pumping

    def call_after_pump(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the pump's current callback ends (instead of in a callback
        of its own, a turn of the loop later). Only while ``pumping``; one at a time."""
        assert self._pumping, "call_after_pump() outside the pump"
        self._after_pump = callback

    def _pump_events(
        self, data: bytes | memoryview | None, size: int, budget: int = MESSAGES_PER_CALLBACK
    ) -> None:
        engine = self.engine
        handler = self.handler
        on_message = self._on_message
        log_payload = self._log_payload = _payloads_logged()
        # The fast path, deliver_messages, takes the plain messages (and logs none: it is
        # not used while payloads are logged); next_event gives everything else.
        if data is not None:
            if log_payload:
                engine.receive_data(memoryview(data)[:size])
            else:
                budget -= deliver_messages(
                    engine, on_message, self._report_error, budget, data, size
                )
        while budget > 0:
            if self._delivery_paused:
                break  # The handler takes no more for now (pause_delivery).
            may_have_events = engine.may_have_events()
            if may_have_events and not log_payload:
                budget -= deliver_messages(engine, on_message, self._report_error, budget)
                if budget <= 0:
                    break
                may_have_events = engine.may_have_events()
            budget -= 1
            event = engine.next_event() if may_have_events else None
            if type(event) is str or type(event) is bytes:
                if log_payload:
                    _log_payload("<", event)
                try:
                    on_message(event)
                except Exception as exc:  # A handler bug must not stop the pump.
                    self._report_handler_error(exc)
                continue
            self._flush()
            if event is None:
                if (
                    self._reading_paused
                    and not self._lost
                    and self.transport is not None
                    and self._pong_backlog <= PONG_BACKLOG_HIGH_WATER
                ):
                    self._reading_paused = False
                    self.transport.resume_reading()
                    self._reading_resumed()
                if self._lost:
                    self._the_connection_is_closed()
                elif engine.state is _CLOSED and self.transport is not None:
                    # End of stream after the closing handshake: close our side too.
                    self.transport.close()
                return
            if isinstance(event, Opened):
                self._cancel_timer()
                self._left_connecting()
                logger.debug(
                    "WebSocket open: protocol %r, extensions %r", event.protocol, event.extensions
                )
                self._start_keepalive()
                self._call(handler._on_open, event)
            elif isinstance(event, CloseReceived):
                self._stop_keepalive()
                self._call(handler._on_close_frame, event)
                if (
                    engine.closing_handshake_complete
                    and not self._lost
                    and peek_end_of_stream(self._fd)
                ):
                    # The server's end of stream is already there behind its Close: it is
                    # taken now rather than by a read a turn of the loop later (a peek,
                    # which reads nothing; the transport is closed next, as on any end of
                    # stream after the closing handshake).
                    self._cancel_timer(ended=True)
                    engine.receive_eof()
                    continue
                # RFC 6455 7.1.1: the server closes TCP first; wait for it, but not forever.
                # (This timer replaces the one waiting for this Close, if we sent ours first.)
                self._start_timer(self._close_transport)
            elif isinstance(event, Failed):
                self._report_failure(event)
            elif isinstance(event, RefusalBodyExpected):
                self._wait_for_refusal_body()
                continue
            elif isinstance(event, PongReceived):
                self._pong_received(event.data)
                continue  # Not an event of the API: the batch goes on.
            else:  # A Ping: the engine answered it (5.5.2 and 5.5.3).
                ping = cast(PingReceived, event)
                self._pong_queued(len(ping.data) + 6)  # (A masked Pong's header: 6 bytes.)
                continue
            break
        self._flush()
        if (engine.may_have_events() or self._lost) and not self._delivery_paused:
            self._schedule_pump()
        # Else the next read runs the pump (data_received), or resume_delivery() does.

    def _report_failure(self, event: Failed) -> None:
        """The end of RFC 6455 7.1.7 "Fail the WebSocket Connection", whoever failed it (the
        engine, for the peer's violations, or ``fail_the_websocket_connection``): "the client
        MUST _Close the WebSocket Connection_, and MAY report the problem to the user"."""
        self._cancel_timer(ended=True)
        self._stop_keepalive()
        self._left_connecting()
        kind: FailureKind
        if event.kind == "handshake":
            kind = "http_status" if event.status_code is not None else "handshake"
        elif event.kind == "local":
            kind = self._failure_kind or "aborted"
        else:
            kind = "connection_lost" if event.kind == "connection_lost" else "protocol"
        failure = ConnectionFailure(
            kind, event.reason, event.status_code, event.headers, event.body
        )
        logger.info("WebSocket connection failed (%s): %s", kind, event.reason)
        self._call(self.handler._on_failure, failure)
        self._close_transport()

    def _the_connection_is_closed(self) -> None:
        """RFC 6455 7.1.4 "The WebSocket Connection is Closed": "When the underlying TCP
        connection is closed"; told to the handler once, as its last call."""
        if self._closed_reported:
            return
        self._closed_reported = True
        self._left_connecting()
        engine = self.engine
        # RFC 6455 7.1.5: the close code is the one in the peer's Close frame, else 1006;
        # 7.1.4: the close is clean when the closing handshake completed before TCP closed.
        clean = engine.closing_handshake_complete and engine.failure is None
        received = engine.close_received
        if received is not None and engine.failure is None:
            code, reason = received.code, received.reason
        else:
            code, reason = CloseCode.ABNORMAL_CLOSURE, ""
        logger.debug("WebSocket closed: code %d, clean %s", code, clean)
        self._call(self.handler._on_closed, clean, int(code), reason)
        # The last event: let go of the bound method that made this object a cycle, so that
        # it, its engine and its transport are freed now, not by the cycle collector.
        self._report_error = _report_without_pump

    # Helpers.

    def _flush(self, message_size: int = 0) -> None:
        data = self.engine.data_to_send()
        if not data:
            return
        transport = self.transport
        if transport is None or self._lost:
            return
        start = self._wire_written
        for chunk in data:
            self._wire_written += len(chunk)
        own = self._own_transport
        if own is not None and len(data) == 1:
            # One frame to wsapi's own socket transport, the common case: what follows,
            # with the transport's methods called at C level in the compiled build.
            own.write(data[0])
            if message_size and (own.get_write_buffer_size() or own.is_closing()):
                self._remember_in_flight(start, message_size)
            return
        # write(), not writelines(): from Python 3.12 the default loop's writelines() never
        # calls pause_writing(), and without it resume_writing() (our drain signal) never
        # comes. Small chunks are joined into one write (one send() system call); a large
        # payload is written as it is rather than copied.
        if len(data) == 1:
            frame = data[0]
            if (
                self._fd >= 0
                and not self._transport_holds_data(transport)
                and not transport.is_closing()
            ):
                # Another loop's transport (uvloop's, asyncio's) of a plain TCP socket that
                # holds nothing and is not closing (so the socket is still its own): the
                # send(2) its write() would start with, made here (one call less); only what
                # the socket did not take goes to the transport.
                sent = _try_send(self._fd, frame)
                if sent == len(frame):
                    return
                frame = frame[sent:]
            transport.write(frame)
        elif self._wire_written - start <= JOIN_WRITES_UP_TO:
            transport.write(b"".join(data))
        else:
            for chunk in data:
                transport.write(chunk)
        self._written_to_transport = True
        if message_size and (transport.get_write_buffer_size() or transport.is_closing()):
            self._remember_in_flight(start, message_size)

    def _transport_holds_data(self, transport: asyncio.Transport) -> bool:
        """Whether ``transport`` (another loop's) holds bytes not yet sent: asked of it only
        after a write to it, until it says none (the frames sent to the socket directly
        never pass through it)."""
        if self._written_to_transport:
            self._written_to_transport = transport.get_write_buffer_size() > 0
        return self._written_to_transport

    def _remember_in_flight(self, start: int, message_size: int) -> None:
        """Part of the message just written (its bytes from ``start`` on the wire) waits in
        the transport, or the write failed: remember where it lies, for ``untransmitted()``.
        (When all of it went to the OS, untransmitted() would drop the record at once.)"""
        self._in_flight.append((start, self._wire_written, message_size))
        self._in_flight_total += message_size

    def _left_connecting(self) -> None:
        """The connection left CONNECTING: let the next one to the same address go."""
        if self._release_connecting_slot is not None:
            release, self._release_connecting_slot = self._release_connecting_slot, None
            release()

    def _close_transport(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()
            if transport.get_write_buffer_size():
                # close() waits for the buffer to drain: a peer that stopped reading would
                # hold the connection open forever.
                self._abort_later(transport)

    def _call(self, callback: Callable[..., None], *args: object) -> None:
        _call_handler(self.loop, callback, args, self)

    def _report_handler_error(self, exc: Exception) -> None:
        _report_handler_error(self.loop, exc, self)


def _try_send(fd: int, frame: bytes) -> int:
    """The bytes of ``frame`` the socket ``fd`` takes now: 0 when it takes none, or on an
    error, which the transport then meets itself as its own write's."""
    try:
        return write_to_socket(fd, frame)
    except OSError:
        return 0


def _plain_socket_fd(transport: asyncio.BaseTransport) -> int:
    """The file descriptor of the TCP socket under ``transport`` when the transport writes
    to it as it is (no TLS), on a POSIX system; else -1. With it, the end of stream behind
    the peer's Close is peeked at (``socket_transport.peek_end_of_stream``), and a frame to
    another loop's transport that holds nothing goes to the socket first (``_flush``)."""
    if sys.platform == "win32" or transport.get_extra_info("ssl_object") is not None:
        return -1
    # (A TCP socket: the transport is socket_transport's, create_connection's, or a proxy
    # tunnel's.)
    sock = transport.get_extra_info("socket")
    if sock is None:
        return -1
    fd: int = sock.fileno()
    return fd


_PAYLOAD_LOG_CACHE: dict[int, bool] = payload_logger._cache  # type: ignore[attr-defined]
"""The answers of ``payload_logger.isEnabledFor``, which ``logging`` keeps (and clears on every
change of level or handlers): read first, as ``isEnabledFor`` would, without its call."""


_DEBUG = logging.DEBUG


def _payloads_logged() -> bool:
    """``payload_logger.isEnabledFor(logging.DEBUG)``, read once per callback of the pump."""
    answer = _PAYLOAD_LOG_CACHE.get(_DEBUG)
    return payload_logger.isEnabledFor(_DEBUG) if answer is None else answer


def _log_payload(direction: str, message: str | bytes) -> None:
    kind = "text" if isinstance(message, str) else "binary"
    shown = repr(message[:PAYLOAD_LOG_LIMIT])
    more = "..." if len(message) > PAYLOAD_LOG_LIMIT else ""
    payload_logger.debug("%s %s (%d): %s%s", direction, kind, len(message), shown, more)


def fail_without_a_connection(handler: ConnectionHandler, failure: ConnectionFailure) -> None:
    """RFC 6455 7.1.7 "Fail the WebSocket Connection" before any TCP connection exists (a
    blocked URL, DNS, a refusal, a cancelled connect): reported as ``_on_failure`` then
    ``_on_closed`` with 1006 (7.1.4: "If the WebSocket connection could not be established,
    it is also said that _The WebSocket Connection is Closed_, but not _cleanly_"), in the
    caller's callback."""
    logger.info("WebSocket connection failed (%s): %s", failure.kind, failure.reason)
    loop = asyncio.get_running_loop()
    _call_handler(loop, handler._on_failure, (failure,))
    _call_handler(loop, handler._on_closed, (False, int(CloseCode.ABNORMAL_CLOSURE), ""))


def _call_handler(
    loop: asyncio.AbstractEventLoop,
    callback: Callable[..., None],
    args: tuple[object, ...],
    pump: ConnectionPump | None = None,
) -> None:
    """Call a handler; what it raises is reported, never raised: a handler bug must not
    stop the pump (or a failure's report)."""
    try:
        callback(*args)
    except Exception as exc:
        _report_handler_error(loop, exc, pump)


def _report_without_pump(exc: Exception) -> None:
    _report_handler_error(asyncio.get_running_loop(), exc, None)


def _report_handler_error(
    loop: asyncio.AbstractEventLoop, exc: Exception, pump: ConnectionPump | None
) -> None:
    context: dict[str, object] = {"message": "WebSocket handler raised", "exception": exc}
    if pump is not None:
        context["protocol"] = pump  # (The key asyncio gives a protocol.)
    loop.call_exception_handler(context)
