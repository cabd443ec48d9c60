"""The asyncio adapter: a pump between a socket and the sans-I/O engine.

``WebSocketTransport`` is an ``asyncio.Protocol``. It feeds what it reads to the engine,
writes what the engine queues, and hands the engine's events to a ``ConnectionHandler`` (the
API layer) one event per event-loop callback, in order. Because the engine parses lazily
(see ``protocol.engine``), the handler's reaction to message N (a reply, a close) is written
before frame N+1 is even parsed. No handler call is ever made from inside a call the handler
made (``send``, ``close``, ``fail``): those only queue work for the pump.

Flow control: reading pauses while more than ``READ_HIGH_WATER`` bytes wait unparsed and the
pump still has events to hand over, and resumes once the engine needs more bytes. Memory per
connection is thus bounded by that mark, one read and one maximal message.

Timeouts: ``open_timeout`` covers TCP, TLS and the opening handshake; ``close_timeout``
bounds the wait for the peer's Close after ours, and for the peer's TCP close after the
closing handshake (RFC 6455 7.1.1: the server closes first; the client may close after "a
reasonable time period").

``establish_a_websocket_connection`` is the whole opening: DNS, the one-connection-in-
CONNECTING-per-address rule of RFC 6455 4.1, TCP, TLS and the handshake, with every failure
reported as a ``ConnectionFailure`` whose ``kind`` says which step failed. Plain TCP on the
default loop goes through wsapi's own socket transport (``socket_transport``); TLS, proxies
and other loops through asyncio's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import socket
import ssl
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol, cast

from .agent import UserAgent
from .deadlines import Timer, deadlines_of
from .errors import ConnectionFailure, FailureKind
from .protocol.codec import PURE_PYTHON
from .protocol.constants import CloseCode
from .protocol.engine import ClientConnection, State, deliver_messages
from .protocol.events import CloseReceived, Failed, Opened, PongReceived, RefusalBodyExpected
from .proxy import ProxyError, ProxyURL, open_tunnel, parse_proxy_url
from .socket_transport import SocketTransport, carries, open_connection
from .url import WebSocketURL

__all__ = [
    "READ_HIGH_WATER",
    "REFUSAL_BODY_WAIT",
    "ConnectionHandler",
    "WebSocketTransport",
    "establish_a_websocket_connection",
    "report_failure",
]

logger = logging.getLogger("wsapi")
payload_logger = logging.getLogger("wsapi.payload")
"""Messages, truncated, at DEBUG: silent unless a program enables this logger on purpose
(``logging.getLogger("wsapi.payload").setLevel(logging.DEBUG)``); the "wsapi" logger itself
never shows payloads."""

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

JOIN_BELOW = 64 * 1024
"""Writes of up to this many bytes in several chunks (a frame header and its payload) are
joined into one write: copying them costs less than a second system call."""

READ_HIGH_WATER = 1024 * 1024
"""Unparsed bytes past which reading pauses while messages wait to be handed over: a
peer that floods a slow consumer fills the socket buffers, not our memory."""

REFUSAL_BODY_WAIT = 0.25
"""Seconds the failure of a handshake answered with a status other than 101 waits for the
rest of that response's body (its start is ``ConnectionFailure.body``), at most: a body sent
with its head is there at once; a server that stalls delays the error event no longer."""


class ConnectionHandler(Protocol):
    """What the transport tells the layer above. Each call is made from its own event-loop
    callback, in the order the events happened; ``_on_failure`` is followed by ``_on_closed``
    in the same callback or a later one."""

    def _on_connect(self, transport: WebSocketTransport) -> None:
        """TCP (and TLS) is up and the handshake request is on its way: the first call,
        before any event, made from inside ``connection_made``."""

    def _on_open(self, event: Opened) -> None:
        """The opening handshake succeeded."""

    def _on_message(self, data: str | bytes) -> None:
        """A message arrived. (A handler may also have a ``_message_receiver()`` method that
        returns a callable to use instead, with the same behaviour, faster.)"""

    def _on_close_frame(self, event: CloseReceived) -> None:
        """The peer's Close frame arrived (the closing handshake started, or completed)."""

    def _on_failure(self, failure: ConnectionFailure) -> None:
        """The connection failed; ``_on_closed`` follows."""

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


class WebSocketTransport(asyncio.BufferedProtocol):
    """Drives one ``ClientConnection`` over an asyncio transport."""

    # (Slots: the compiled read path and send(), _reading.pyx and _sending.pyx, read them at
    # their offsets.)
    __slots__ = (
        "_after_pump",
        "_closed_reported",
        "_deadlines",
        "_failure_kind",
        "_fd",
        "_in_flight",
        "_in_flight_total",
        "_keepalive",
        "_log_payload",
        "_lost",
        "_on_message",
        "_on_settled",
        "_ping_deadline",
        "_pings_sent",
        "_pump_scheduled",
        "_pumping",
        "_reading_paused",
        "_report_error",
        "_timer",
        "_wire_written",
        "close_timeout",
        "engine",
        "handler",
        "last_pong",
        "loop",
        "ping_interval",
        "ping_timeout",
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
        on_settled: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.handler = handler
        # The handler may offer a faster receiver of its messages (a compiled twin of its
        # on_message); the pump calls it instead.
        receiver = getattr(handler, "_message_receiver", None)
        self._on_message: Callable[[str | bytes], None] = (
            handler._on_message if receiver is None else receiver()
        )
        self.close_timeout = close_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        # Keepalive: the timer of the next Ping, and the deadline of the outstanding one.
        self._keepalive: asyncio.TimerHandle | None = None
        self._ping_deadline: asyncio.TimerHandle | None = None
        self._pings_sent = 0
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        # The socket's file descriptor, for the compiled send()'s direct writes; -1: none.
        self._fd = -1
        self._on_settled = on_settled
        self._pump_scheduled = False
        self._pumping = False
        # Whether payloads are logged: read when a callback of the pump starts, and holds
        # for the messages and sends of that callback.
        self._log_payload = False
        self._report_error = self._report_handler_error  # (Bound once: the pump's argument.)
        self._after_pump: Callable[[], None] | None = None
        self._reading_paused = False
        self._lost = False
        self._closed_reported = False
        # The timer of the phase that may hang (opening, closing), on the loop's shared timer.
        self._deadlines = deadlines_of(self.loop)
        self._timer: Timer | None = None
        self._failure_kind: FailureKind | None = None
        # bufferedAmount accounting: the wire offsets at which each message's bytes start and
        # end, and its application bytes, for messages not yet wholly handed to the OS.
        self._wire_written = 0
        self._in_flight: deque[tuple[int, int, int]] = deque()
        self._in_flight_total = 0
        self.last_pong: bytes | None = None

    # asyncio.Protocol.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        # pause_writing() as soon as anything stays buffered, resume_writing() once the buffer
        # is empty: exact drain notifications for bufferedAmount and drained().
        self.transport.set_write_buffer_limits(high=0, low=0)
        self._fd = _plain_socket_fd(self.transport)
        self._flush()
        self._call(self.handler._on_connect, self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _read_buffer.view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(_read_buffer.view[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        if self._ping_deadline is not None:
            # Any byte from the peer proves it alive; its Pong may be queued behind
            # messages that the application has not taken yet.
            self._ping_deadline.cancel()
            self._ping_deadline = None
        engine = self.engine
        if self._pump_scheduled or self._pumping:
            engine.receive_data(data)  # Behind what the scheduled pump has yet to hand over.
        else:
            # This read is a callback of its own: its events are handed over now, rather
            # than a turn of the loop later (a turn per read is a poll system call).
            self._pump(data)
        if self._pump_scheduled:
            self._pause_reading_if_behind()

    def _pause_reading_if_behind(self) -> None:
        if self.engine.buffered > READ_HIGH_WATER and not self._reading_paused and self.transport:
            # Messages wait to be handed over: stop reading until the pump has caught up
            # (it resumes when nothing parseable is left). Without a pump to come, what is
            # buffered is an incomplete frame, which the message size limit bounds.
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
        self._cancel_timer()
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
        self._call(self.handler._on_drained)

    # Calls from the layer above: they queue work, they never call the handler.

    def send_message(self, payload: bytes | bytearray | memoryview, *, text: bool) -> None:
        """Send a message: ``text`` with ``payload`` the UTF-8 of the string, else binary."""
        self.engine.send_message(payload, text=text)
        self._flush(len(payload))
        if self._log_payload if self._pumping else payload_logger.isEnabledFor(logging.DEBUG):
            _log_payload(">", bytes(payload).decode() if text else bytes(payload))

    def send_ping(self, data: bytes = b"") -> None:
        self.engine.send_ping(data)
        self._flush()

    def close(self, code: int | None = None, reason: str = "") -> None:
        """Start the closing handshake; the TCP connection is dropped if the peer's Close
        does not arrive within ``close_timeout``."""
        self.engine.send_close(code, reason)
        self._flush()
        self._start_timer(self._close_timed_out)

    def fail(self, code: int | None, reason: str, kind: FailureKind) -> None:
        """_Fail the WebSocket Connection_ for a local reason: a Close with ``code`` goes out
        if it still can, and the failure is reported from the pump."""
        if self.engine.state is State.CLOSED:
            return
        self._failure_kind = kind
        self.engine.fail(code, reason)
        self._flush()
        self._schedule_pump()

    def abort(self) -> None:
        """Drop the TCP connection now, without a closing handshake."""
        if self.transport is not None:
            self.transport.abort()

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

    def _pump(self, data: bytes | memoryview | None = None) -> None:
        """Hand over the next events, each as if it were its own task, then come back in a
        later callback. Messages are handed over in batches of up to
        ``MESSAGES_PER_CALLBACK``: each is dispatched completely (its listeners' sends
        written) before the engine parses the next, as one task per message would; any
        other event ends the batch. ``data``, bytes just read, go to the engine first."""
        self._pump_scheduled = False
        self._pumping = True
        try:
            self._pump_events(data)
        finally:
            self._pumping = False
            if self._after_pump is not None:
                after_pump, self._after_pump = self._after_pump, None
                after_pump()

    @property
    def pumping(self) -> bool:
        """Whether the current callback is the pump's (the handler's calls come from it)."""
        return self._pumping

    def call_after_pump(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the pump's current callback ends (instead of in a callback
        of its own, a turn of the loop later). Only while ``pumping``; one at a time."""
        assert self._pumping, "call_after_pump() outside the pump"
        self._after_pump = callback

    def _pump_events(
        self, data: bytes | memoryview | None, budget: int = MESSAGES_PER_CALLBACK
    ) -> None:
        engine = self.engine
        handler = self.handler
        on_message = self._on_message
        log_payload = self._log_payload = payload_logger.isEnabledFor(logging.DEBUG)
        # The fast path takes the plain messages (and logs none: it is not used while
        # payloads are logged); next_event gives everything else.
        deliver = None if log_payload else deliver_messages
        if data is not None:
            if deliver is None:
                engine.receive_data(data)
            else:  # (The compiled twin parses the read's frames in place, uncopied.)
                budget -= deliver(engine, on_message, self._report_error, budget, data)
        while budget > 0:
            if deliver is not None:
                budget -= deliver(engine, on_message, self._report_error, budget)
                if budget <= 0:
                    break
            budget -= 1
            event = engine.next_event() if engine.may_have_events else None
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
                if self._reading_paused and not self._lost and self.transport is not None:
                    self._reading_paused = False
                    self.transport.resume_reading()
                if self._lost:
                    self._report_closed()
                elif engine.state is State.CLOSED and self.transport is not None:
                    # End of stream after the closing handshake: close our side too.
                    self.transport.close()
                return
            if isinstance(event, Opened):
                self._cancel_timer()
                self._settle()
                logger.debug(
                    "WebSocket open: protocol %r, extensions %r", event.protocol, event.extensions
                )
                if self.ping_interval is not None:
                    self._keepalive = self.loop.call_later(
                        self.ping_interval, self._send_keepalive
                    )
                self._call(handler._on_open, event)
            elif isinstance(event, CloseReceived):
                self._stop_keepalive()
                self._call(handler._on_close_frame, event)
                if (
                    _stream_ended is not None
                    and engine.closing_handshake_complete
                    and _stream_ended(self._fd)
                ):
                    # The server's end of stream is already there behind its Close: it is
                    # taken now rather than by a read a turn of the loop later (a peek,
                    # which reads nothing; the transport is closed next, as on any end of
                    # stream after the closing handshake).
                    self._cancel_timer()
                    engine.receive_eof()
                    continue
                # RFC 6455 7.1.1: the server closes TCP first; wait for it, but not forever.
                # (This timer replaces the one waiting for this Close, if we sent ours first.)
                self._start_timer(self._close_transport)
            elif isinstance(event, Failed):
                self._dispatch_failure(event)
            elif isinstance(event, RefusalBodyExpected):
                self._wait_for_refusal_body()
                continue
            elif isinstance(event, PongReceived):
                self.last_pong = event.data
                if self._ping_deadline is not None and event.data == self._ping_payload():
                    self._ping_deadline.cancel()
                    self._ping_deadline = None
                continue  # Not an event of the API: the batch goes on.
            else:
                continue  # A Ping: the engine answered it.
            break
        self._flush()
        if engine.may_have_events or self._lost:
            self._schedule_pump()
        # Else the next read runs the pump (data_received).

    def _dispatch_failure(self, event: Failed) -> None:
        self._cancel_timer()
        self._stop_keepalive()
        self._settle()
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

    def _report_closed(self) -> None:
        if self._closed_reported:
            return
        self._closed_reported = True
        self._settle()
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
        self._report_error = _report_without_protocol

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
        # write(), not writelines(): from Python 3.12 the default loop's writelines() never
        # calls pause_writing(), and without it resume_writing() (our drain signal) never
        # comes. Small chunks are joined into one write (one send() system call); a large
        # payload is written as it is rather than copied.
        if len(data) == 1:
            transport.write(data[0])
        elif self._wire_written - start <= JOIN_BELOW:
            transport.write(b"".join(data))
        else:
            for chunk in data:
                transport.write(chunk)
        if message_size and (transport.get_write_buffer_size() or transport.is_closing()):
            # Part of it waits in the transport (or the write failed): remember where it
            # lies on the wire. Otherwise all of it went to the OS, and untransmitted()
            # would drop the record at once.
            self._in_flight.append((start, self._wire_written, message_size))
            self._in_flight_total += message_size

    def _settle(self) -> None:
        """The connection left CONNECTING: let the next one to the same address go."""
        if self._on_settled is not None:
            on_settled, self._on_settled = self._on_settled, None
            on_settled()

    def _close_transport(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()
            if transport.get_write_buffer_size():
                # close() waits for the buffer to drain: a peer that stopped reading would
                # hold the connection open forever. Drop it after close_timeout.
                delay = self.close_timeout if self.close_timeout is not None else 10.0
                self._cancel_timer()
                self._timer = self._deadlines.call_later(delay, transport.abort)

    # Keepalive (the spec: "User agents may send ping and unsolicited pong frames as desired,
    # for example in an attempt to maintain local network NAT mappings, to detect failed
    # connections").

    def _ping_payload(self) -> bytes:
        return self._pings_sent.to_bytes(4, "big")

    def _send_keepalive(self) -> None:
        self._keepalive = None
        engine = self.engine
        if self._lost or engine.state is not State.OPEN or engine.close_sent is not None:
            return
        if self._ping_deadline is None:
            self._pings_sent = (self._pings_sent + 1) % 2**32
            engine.send_ping(self._ping_payload())
            self._flush()
            if self.ping_timeout is not None:
                self._ping_deadline = self.loop.call_later(
                    self.ping_timeout, self._keepalive_expired
                )
        assert self.ping_interval is not None
        self._keepalive = self.loop.call_later(self.ping_interval, self._send_keepalive)

    def _keepalive_expired(self) -> None:
        self._ping_deadline = None
        reason = f"no Pong (nor any data) arrived within {self.ping_timeout} s of a Ping"
        logger.info("WebSocket peer is unresponsive: %s", reason)
        # The peer is gone: say so with 1011 if the socket still takes it, and do not wait
        # for the write buffer of a dead connection to drain.
        self.fail(CloseCode.INTERNAL_ERROR, reason, "keepalive_timeout")
        self.abort()

    def _stop_keepalive(self) -> None:
        for handle in (self._keepalive, self._ping_deadline):
            if handle is not None:
                handle.cancel()
        self._keepalive = self._ping_deadline = None

    def _close_timed_out(self) -> None:
        logger.info("the peer did not answer our Close within %s s", self.close_timeout)
        reason = f"the peer did not answer our Close frame within {self.close_timeout} s"
        self.fail(None, reason, "close_timeout")
        self.abort()

    def _start_timer(self, callback: Callable[[], None]) -> None:
        # (The new timer is set before the old one goes: the shared timer of the loop then
        # never finds itself empty in between, which would cancel and re-arm it.)
        previous = self._timer
        self._timer = None
        if self.close_timeout is not None and not self._lost:
            self._timer = self._deadlines.call_later(self.close_timeout, callback)
        if previous is not None:
            self._deadlines.cancel(previous)

    def adopt_open_timer(self, timer: Timer) -> None:
        """``timer`` fails the opening handshake if it has not completed in time (it was set
        before the connection existed); it is cancelled once the connection opens or fails."""
        current = self._timer
        if current is not None and current.callback == self._refusal_body_waited:
            # A refusal came first: the shorter wait for its body is set already.
            self._deadlines.cancel(timer)
            return
        self._cancel_timer()
        self._timer = timer

    def open_timed_out(self, open_timeout: float) -> None:
        """Fail the connection if the opening handshake has not completed yet."""
        if self.engine.state is State.CONNECTING:
            self.fail(None, f"the connection did not open within {open_timeout} s", "timeout")

    def _wait_for_refusal_body(self) -> None:
        # The body of a refusal is worth a short wait, within open_timeout: this timer
        # replaces the open timer.
        when = self.loop.time() + REFUSAL_BODY_WAIT
        if self._timer is not None and self._timer.callback is not None:
            when = min(when, self._timer.when)
        self._cancel_timer()
        self._timer = self._deadlines.call_at(when, self._refusal_body_waited)

    def _refusal_body_waited(self) -> None:
        # Nothing more is read: to the engine the stream ends here, and the failure is
        # reported with the part of the body that arrived. (The TCP connection closes next.)
        self._timer = None
        self.engine.receive_eof()
        self._schedule_pump()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._deadlines.cancel(self._timer)
            self._timer = None

    def _call(self, callback: Callable[..., None], *args: object) -> None:
        _call_handler(self.loop, callback, args, self)

    def _report_handler_error(self, exc: Exception) -> None:
        _report_handler_error(self.loop, exc, self)


_stream_ended: Callable[[int], bool] | None = None
"""``_reading.stream_ended`` (a peek at a socket for its end of stream) when the compiled
read path is in use, else None: the end of stream then comes by the transport's next read."""


if not PURE_PYTHON:
    # The compiled read path for the common case (_reading.pyx), when it was built; it hands
    # every other case to data_received() and _pump_events(), the Python methods above.
    # (Imported here, not at the top: it takes names defined above from this module.)
    with contextlib.suppress(ImportError):
        from ._reading import buffer_updated, get_buffer, read_ready, stream_ended

        WebSocketTransport.get_buffer = get_buffer  # type: ignore[method-assign]
        WebSocketTransport.buffer_updated = buffer_updated  # type: ignore[method-assign]
        SocketTransport._read_ready = read_ready  # type: ignore[method-assign]
        _stream_ended = stream_ended


async def establish_a_websocket_connection(
    agent: UserAgent,
    url: WebSocketURL,
    handler: ConnectionHandler,
    *,
    protocols: Sequence[str] = (),
    headers: Sequence[tuple[str, str]] = (),
) -> WebSocketTransport | None:
    """RFC 6455 4.1 "establish a WebSocket connection", in the background of the API's
    constructor. Never raises for a network problem: a failure is reported to ``handler``
    (``_on_failure`` then ``_on_closed`` with 1006) and None is returned. Cancelling it (the
    program ends, or close() before open) reports an "aborted" failure and re-raises."""
    loop = asyncio.get_running_loop()
    open_timeout = agent.open_timeout

    def fail(
        kind: FailureKind, reason: str, status: int | None = None, hdrs: _HeaderPairs = ()
    ) -> None:
        report_failure(handler, ConnectionFailure(kind, reason, status, hdrs))

    try:
        proxy_url = agent.proxy_for(url.secure, url.host)
        proxy = None if proxy_url is None else parse_proxy_url(proxy_url)
    except ValueError as exc:
        fail("proxy", f"the proxy setting is not usable: {exc}")
        return None
    started = loop.time()
    if proxy is not None:
        logger.debug("connecting to %s through the proxy %s", url.href, proxy)
    else:
        logger.debug("connecting to %s", url.href)
    # The throttle of 4.1 step 2 is per IP address, "even if the remote host is known by
    # another name": resolve first -- unless the proxy resolves names, and then it is per
    # host name.
    if (proxy is not None and proxy.resolves_names) or _is_ip_address(url.host):
        # The proxy resolves the name, or there is no name to resolve (an IP literal needs
        # no trip through the resolver's thread pool).
        addresses = [url.host]
    else:
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(url.host, url.port, type=socket.SOCK_STREAM), open_timeout
            )
        except asyncio.TimeoutError:
            fail("timeout", f"resolving {url.host} took more than {open_timeout} s")
            return None
        except OSError as exc:
            fail("dns", f"could not resolve {url.host}: {exc.strerror or exc}")
            return None
        except UnicodeError:
            # The URL parser allows what DNS cannot carry (an empty label, one over 63
            # characters), and the resolver's IDNA step raises for it.
            fail("dns", f"could not resolve {url.host}: it is not a name DNS can carry")
            return None
        except asyncio.CancelledError:
            fail("aborted", "the connection was cancelled while resolving the host")
            raise
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    key = (addresses[0], url.port)
    # 4.1 step 2: "If the client already has a WebSocket connection to the remote host (IP
    # address) identified by /host/ and port /port/ pair, even if the remote host is known by
    # another name, the client MUST wait until that connection has been established or for
    # that connection to have failed."
    try:
        waited = (
            False if agent.try_connecting_slot(key) else await agent.acquire_connecting_slot(key)
        )
    except asyncio.CancelledError:
        fail("aborted", "the connection was cancelled while waiting for its turn")
        raise
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            agent.release_connecting_slot(key)

    # open_timeout covers DNS, TCP, the proxy, TLS and the handshake together; a connection
    # that had to wait in that queue gets it afresh from when it leaves the queue.
    deadline = None
    if open_timeout is not None:
        deadline = (loop.time() if waited else started) + open_timeout
    engine = ClientConnection(
        url.host_header,
        url.resource_name,
        protocols=protocols,
        headers=headers,
        max_message_size=agent.max_message_size,
        compression=agent.compression,
    )

    created: list[WebSocketTransport] = []

    def factory() -> WebSocketTransport:
        protocol = WebSocketTransport(
            engine,
            handler,
            close_timeout=agent.close_timeout,
            ping_interval=agent.ping_interval,
            ping_timeout=agent.ping_timeout,
            on_settled=release,
        )
        created.append(protocol)
        return protocol

    def connected() -> WebSocketTransport | None:
        # A protocol whose connection_made ran reports its own failure from now on.
        for protocol in created:
            if protocol.transport is not None:
                return protocol
        return None

    # open_timeout: one timer from here to the end of the opening handshake. Until the
    # connection exists it cancels this task, as asyncio.timeout() would (Task.uncancel(),
    # from Python 3.11, tells its cancellation from anyone else's); then it fails the
    # handshake. Python 3.10 takes asyncio.wait_for() to connect, then the timer.
    deadlines = deadlines_of(loop)
    task = asyncio.current_task()
    timer: Timer | None = None
    established: list[WebSocketTransport] = []  # The protocol, once connected.
    timed_out = False

    def expired() -> None:
        nonlocal timed_out
        if established:
            established[0].open_timed_out(open_timeout or 0.0)
        elif task is not None:
            timed_out = True
            task.cancel()

    if deadline is not None and _HAS_UNCANCEL:
        timer = deadlines.call_at(deadline, expired)
    error: BaseException | None = None
    try:
        if deadline is not None and timer is None:
            remaining = max(0.0, deadline - loop.time())
            connecting = _connect(agent, url, addresses, proxy, factory)
            protocol = await asyncio.wait_for(connecting, remaining)
        else:
            protocol = await _connect(agent, url, addresses, proxy, factory)
    except asyncio.CancelledError:
        if not (timed_out and task is not None and _only_ours(task)):
            if timer is not None:
                deadlines.cancel(timer)
            release()
            live = connected()
            if live is not None:
                live.fail(None, "the connection was cancelled while connecting", "aborted")
                live.abort()
            else:
                fail("aborted", "the connection was cancelled while connecting")
            raise
        error = asyncio.TimeoutError()  # Our timer's cancellation.
    except (OSError, asyncio.TimeoutError, ProxyError, TypeError) as exc:
        error = exc
    except Exception as exc:
        # No branch above knows it: a bug here or in a library below. It is reported as one,
        # and the connection still ends in its events instead of waiting forever.
        loop.call_exception_handler(
            {
                "message": f"wsapi: unexpected error while connecting to {url.href}",
                "exception": exc,
            }
        )
        error = exc
    if error is not None:
        if timer is not None:
            deadlines.cancel(timer)
        release()
        live = connected()
        if live is not None:
            kind, reason = _classify(error, url, open_timeout)
            live.fail(None, reason, kind)
            live.abort()
        elif isinstance(error, ProxyError):
            fail("proxy", error.reason, error.status_code, error.headers)
        else:
            fail(*_classify(error, url, open_timeout))
        return None
    established.append(protocol)
    if deadline is not None:
        if timer is None:
            timer = deadlines.call_at(deadline, expired)
        if engine.state is State.CONNECTING:
            protocol.adopt_open_timer(timer)
        else:
            deadlines.cancel(timer)
    return protocol


_HAS_UNCANCEL = sys.version_info >= (3, 11)


def _only_ours(task: asyncio.Task[object]) -> bool:
    """Withdraw our cancellation of ``task``; whether no one else cancelled it as well."""
    if sys.version_info >= (3, 11):
        return task.uncancel() == 0
    return False  # (Python 3.10 times the connection out with wait_for.)


_HeaderPairs = tuple[tuple[str, str], ...]


async def _connect(
    agent: UserAgent,
    url: WebSocketURL,
    addresses: list[str],
    proxy: ProxyURL | None,
    factory: Callable[[], WebSocketTransport],
) -> WebSocketTransport:
    """TCP (directly or through the proxy), then TLS for wss:, then the protocol starts the
    handshake. Raises what failed."""
    loop = asyncio.get_running_loop()
    context = _ssl_context(agent) if url.secure else None
    server_hostname = url.host if context is not None else None
    if proxy is None:
        error: BaseException | None = None
        # Plain TCP on the default loop: our own transport (socket_transport.py says why).
        own_transport = context is None and carries(loop)
        for address in addresses:
            try:
                if own_transport:
                    _, protocol = await open_connection(loop, factory, address, url.port)
                else:
                    _, protocol = await loop.create_connection(
                        factory, address, url.port, ssl=context, server_hostname=server_hostname
                    )
                return protocol
            except OSError as exc:
                error = exc
                if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
                    break  # The address answered: another one would answer the same.
        assert error is not None
        raise error
    target = url.host if proxy.resolves_names else addresses[0]
    transport, leftover = await open_tunnel(
        proxy, target, url.port, ssl_context=_ssl_context(agent), user_agent=agent.user_agent
    )
    try:
        if context is not None:
            # TLS with the server, inside the tunnel (TLS in TLS through an https proxy).
            try:
                tls = await loop.start_tls(
                    transport, transport.get_protocol(), context, server_hostname=server_hostname
                )
            except TypeError as exc:  # Python 3.10 cannot start TLS inside TLS.
                raise ProxyError(
                    f"TLS to the server inside the TLS connection to the proxy {proxy} needs "
                    "Python 3.11 or later"
                ) from exc
            if tls is None:
                raise ProxyError(f"the TLS handshake through the proxy {proxy} was cut off")
            transport = tls
        protocol = factory()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if leftover:
            protocol.data_received(leftover)
        return protocol
    except BaseException:
        transport.abort()
        raise


def _plain_socket_fd(transport: asyncio.BaseTransport) -> int:
    """The file descriptor of the TCP socket under ``transport`` when the transport writes
    to it as it is (no TLS), on a POSIX system; else -1. With it, a frame may be written
    with send(2) while the transport holds nothing: the write the transport would do first
    (``_sending.pyx``)."""
    if sys.platform == "win32" or transport.get_extra_info("ssl_object") is not None:
        return -1
    # (A TCP socket: the transport is socket_transport's, create_connection's, or a proxy
    # tunnel's.)
    sock = transport.get_extra_info("socket")
    if sock is None:
        return -1
    fd: int = sock.fileno()
    return fd


@functools.lru_cache(maxsize=256)
def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _log_payload(direction: str, message: str | bytes) -> None:
    kind = "text" if isinstance(message, str) else "binary"
    shown = repr(message[:PAYLOAD_LOG_LIMIT])
    more = "..." if len(message) > PAYLOAD_LOG_LIMIT else ""
    payload_logger.debug("%s %s (%d): %s%s", direction, kind, len(message), shown, more)


def _classify(
    error: BaseException, url: WebSocketURL, timeout: float | None
) -> tuple[FailureKind, str]:
    where = f"{url.host}:{url.port}"
    detail = (error.strerror if isinstance(error, OSError) else None) or str(error)
    detail = detail or type(error).__name__
    if isinstance(error, asyncio.TimeoutError):
        return "timeout", f"connecting to {where} took more than {timeout} s"
    if isinstance(error, ssl.SSLCertVerificationError):
        return "tls", f"the TLS certificate of {where} was refused: {error.verify_message}"
    if isinstance(error, (ssl.SSLError, ssl.CertificateError)):
        return "tls", f"the TLS handshake with {where} failed: {detail}"
    if isinstance(error, ConnectionRefusedError):
        return "refused", f"{where} refused the connection"
    if url.secure and isinstance(error, ConnectionError):
        # TCP was up (refusal is handled above): the server dropped the TLS handshake, as a
        # server that does not speak TLS does.
        return "tls", (
            f"the TLS handshake with {where} failed: the server closed the connection "
            f"({detail}; is it a TLS server?)"
        )
    return "unreachable", f"could not connect to {where}: {detail}"


_default_contexts: dict[int, ssl.SSLContext] = {}


def _ssl_context(agent: UserAgent) -> ssl.SSLContext:
    if agent.ssl_context is not None:
        return agent.ssl_context
    # One verifying context serves every agent without one: loading the trust store costs
    # milliseconds, and the context holds no per-connection state.
    context = _default_contexts.get(0)
    if context is None:
        context = _default_contexts[0] = ssl.create_default_context()
    return context


def report_failure(handler: ConnectionHandler, failure: ConnectionFailure) -> None:
    """Report a failure that happened before any transport existed: ``_on_failure`` then
    ``_on_closed`` (1006), in the caller's callback."""
    logger.info("WebSocket connection failed (%s): %s", failure.kind, failure.reason)
    loop = asyncio.get_running_loop()
    _call_handler(loop, handler._on_failure, (failure,))
    _call_handler(loop, handler._on_closed, (False, int(CloseCode.ABNORMAL_CLOSURE), ""))


def _call_handler(
    loop: asyncio.AbstractEventLoop,
    callback: Callable[..., None],
    args: tuple[object, ...],
    protocol: WebSocketTransport | None = None,
) -> None:
    """Call a handler; what it raises is reported, never raised: a handler bug must not
    stop the pump (or a failure's report)."""
    try:
        callback(*args)
    except Exception as exc:
        _report_handler_error(loop, exc, protocol)


def _report_without_protocol(exc: Exception) -> None:
    _report_handler_error(asyncio.get_running_loop(), exc, None)


def _report_handler_error(
    loop: asyncio.AbstractEventLoop, exc: Exception, protocol: WebSocketTransport | None
) -> None:
    context: dict[str, object] = {"message": "WebSocket handler raised", "exception": exc}
    if protocol is not None:
        context["protocol"] = protocol
    loop.call_exception_handler(context)
