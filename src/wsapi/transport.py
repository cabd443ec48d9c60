"""The asyncio adapter: a pump between a socket and the sans-I/O engine.

``WebSocketTransport`` is an ``asyncio.Protocol``. It feeds what it reads to the engine,
writes what the engine queues, and hands the engine's events to a ``ConnectionHandler`` (the
API layer) one event per event-loop callback, in order. Because the engine parses lazily
(see ``protocol.engine``), the handler's reaction to message N (a reply, a close) is written
before frame N+1 is even parsed.

Flow control: reading pauses while more than ``READ_HIGH_WATER`` bytes wait unparsed and the
pump still has events to hand over, and resumes once the engine needs more bytes. Memory per
connection is thus bounded by that mark, one read and one maximal message.

Timeouts: ``open_timeout`` covers TCP, TLS and the opening handshake; ``close_timeout``
bounds the wait for the peer's Close after ours, and for the peer's TCP close after the
closing handshake (RFC 6455 7.1.1: the server closes first; the client may close after "a
reasonable time period").
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import Callable
from typing import Protocol

from .protocol.constants import CloseCode
from .protocol.engine import ClientConnection, State
from .protocol.events import CloseReceived, Failed, Opened, PingReceived, PongReceived

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_OPEN_TIMEOUT",
    "READ_HIGH_WATER",
    "ConnectionHandler",
    "WebSocketTransport",
    "open_connection",
]

logger = logging.getLogger("wsapi")

DEFAULT_OPEN_TIMEOUT = 30.0
"""Seconds for DNS, TCP, TLS and the opening handshake together. Browsers give up after
roughly this long on an unanswered handshake; long enough for a slow network, short enough
that a black-holed server does not hang a program."""

DEFAULT_CLOSE_TIMEOUT = 10.0
"""Seconds to wait for the peer's Close frame, then for its TCP close."""

READ_HIGH_WATER = 1024 * 1024
"""Unparsed bytes past which reading pauses while messages wait to be handed over: a
peer that floods a slow consumer fills the socket buffers, not our memory."""


class ConnectionHandler(Protocol):
    """What the transport tells the layer above. Each call is made from its own event-loop
    callback, in the order the events happened."""

    def on_open(self, event: Opened) -> None:
        """The opening handshake succeeded."""

    def on_message(self, data: str | bytes) -> None:
        """A message arrived."""

    def on_close_frame(self, event: CloseReceived) -> None:
        """The peer's Close frame arrived (the closing handshake started, or completed)."""

    def on_failure(self, event: Failed) -> None:
        """The connection failed; ``on_closed`` follows."""

    def on_closed(self, was_clean: bool, code: int, reason: str) -> None:
        """The TCP connection is closed: the last call."""


class WebSocketTransport(asyncio.Protocol):
    """Drives one ``ClientConnection`` over an asyncio transport."""

    def __init__(
        self,
        engine: ClientConnection,
        handler: ConnectionHandler,
        *,
        close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        self.engine = engine
        self.handler = handler
        self.close_timeout = close_timeout
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._pump_scheduled = False
        self._reading_paused = False
        self._lost = False
        self._closed_reported = False
        self._timer: asyncio.TimerHandle | None = None
        self.last_pong: bytes | None = None

    # asyncio.Protocol.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._flush()

    def data_received(self, data: bytes) -> None:
        engine = self.engine
        engine.receive_data(data)
        if engine.buffered > READ_HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._schedule_pump()

    def eof_received(self) -> bool:
        self.engine.receive_eof()
        self._schedule_pump()
        # Keep the transport open: the pump still writes what the engine queued, then closes.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._cancel_timer()
        self.engine.receive_eof()
        if exc is not None:
            logger.debug("connection lost: %s", exc)
        self._schedule_pump()

    # Calls from the layer above.

    def send_text(self, data: str) -> None:
        self.engine.send_text(data)
        self._flush()

    def send_binary(self, data: bytes | bytearray | memoryview) -> None:
        self.engine.send_binary(data)
        self._flush()

    def send_ping(self, data: bytes = b"") -> None:
        self.engine.send_ping(data)
        self._flush()

    def close(self, code: int | None = None, reason: str = "") -> None:
        """Start the closing handshake; the TCP connection is dropped if the peer's Close
        does not arrive within ``close_timeout``."""
        self.engine.send_close(code, reason)
        self._flush()
        self._start_timer(self._abort, "the peer did not answer our Close frame")

    def abort(self) -> None:
        """Drop the TCP connection now (no closing handshake)."""
        if self.transport is not None:
            self.transport.abort()

    def fail(self, code: int | None, reason: str) -> None:
        """_Fail the WebSocket Connection_ for a local reason (e.g. a timeout)."""
        if self.engine.state is State.CLOSED:
            return
        failure = self.engine.fail(code, reason)
        self._flush()
        self._dispatch_failure(failure)

    # The pump.

    def _schedule_pump(self) -> None:
        if not self._pump_scheduled:
            self._pump_scheduled = True
            self.loop.call_soon(self._pump)

    def _pump(self) -> None:
        """Hand over one event, then come back in a later callback for the next one."""
        self._pump_scheduled = False
        engine = self.engine
        event = engine.next_event()
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
        handler = self.handler
        if type(event) is str or type(event) is bytes:
            self._call(handler.on_message, event)
        elif isinstance(event, Opened):
            self._cancel_timer()
            self._call(handler.on_open, event)
        elif isinstance(event, CloseReceived):
            self._cancel_timer()
            self._call(handler.on_close_frame, event)
            # RFC 6455 7.1.1: the server closes TCP first; wait for it, but not forever.
            self._start_timer(self._close_transport, "the peer did not close TCP in time")
        elif isinstance(event, Failed):
            # The next pump step reports the close if TCP is already gone.
            self._dispatch_failure(event)
        elif isinstance(event, PongReceived):
            self.last_pong = event.data
        elif isinstance(event, PingReceived):
            pass  # The engine answered it.
        self._flush()
        self._schedule_pump()

    def _dispatch_failure(self, event: Failed) -> None:
        logger.info("WebSocket connection failed: %s", event.reason)
        self._cancel_timer()
        self._call(self.handler.on_failure, event)
        self._close_transport()

    def _report_closed(self) -> None:
        if self._closed_reported:
            return
        self._closed_reported = True
        engine = self.engine
        # RFC 6455 7.1.5: the close code is the one in the peer's Close frame, else 1006;
        # 7.1.4: the close is clean when the closing handshake completed before TCP closed.
        clean = engine.closing_handshake_complete and engine.failure is None
        received = engine.close_received
        if received is not None and engine.failure is None:
            code, reason = received.code, received.reason
        else:
            code, reason = CloseCode.ABNORMAL_CLOSURE, ""
        self._call(self.handler.on_closed, clean, int(code), reason)

    # Helpers.

    def _flush(self) -> None:
        data = self.engine.data_to_send()
        if data and self.transport is not None and not self._lost:
            self.transport.writelines(data)

    def _close_transport(self, reason: str = "") -> None:
        if reason:
            logger.debug("closing TCP: %s", reason)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _abort(self, reason: str) -> None:
        logger.info("dropping the connection: %s", reason)
        if self.transport is not None:
            self.transport.abort()

    def _start_timer(self, callback: Callable[[str], None], reason: str) -> None:
        self._cancel_timer()
        if self.close_timeout is not None and not self._lost:
            self._timer = self.loop.call_later(self.close_timeout, callback, reason)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _call(self, callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception as exc:  # A handler bug must not stop the pump.
            self.loop.call_exception_handler(
                {"message": "WebSocket handler raised", "exception": exc, "protocol": self}
            )


async def open_connection(
    host: str,
    port: int,
    engine: ClientConnection,
    handler: ConnectionHandler,
    *,
    ssl: ssl_module.SSLContext | None = None,
    server_hostname: str | None = None,
    open_timeout: float | None = DEFAULT_OPEN_TIMEOUT,
    close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT,
) -> WebSocketTransport | None:
    """Connect, run the opening handshake and keep pumping in the background.

    Never raises for a network failure: a refused connection, a DNS failure or a timeout is
    reported to ``handler`` as ``on_failure`` then ``on_closed`` (1006), and None is returned.
    """
    loop = asyncio.get_running_loop()
    protocol: WebSocketTransport | None = None

    def factory() -> WebSocketTransport:
        nonlocal protocol
        protocol = WebSocketTransport(engine, handler, close_timeout=close_timeout)
        return protocol

    deadline = None if open_timeout is None else loop.time() + open_timeout
    try:
        connect = loop.create_connection(
            factory, host, port, ssl=ssl, server_hostname=server_hostname if ssl else None
        )
        await asyncio.wait_for(connect, open_timeout)
    except (OSError, asyncio.TimeoutError, ssl_module.SSLError) as exc:
        reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else str(exc)
        _report_failure(engine, handler, f"could not connect to {host}:{port}: {reason}")
        return None
    assert protocol is not None
    if deadline is not None and engine.state is State.CONNECTING:
        opened = protocol

        def handshake_timeout() -> None:
            if opened.engine.state is State.CONNECTING:
                opened.fail(None, f"the opening handshake took more than {open_timeout} s")

        protocol._timer = loop.call_at(deadline, handshake_timeout)
    return protocol


def _report_failure(engine: ClientConnection, handler: ConnectionHandler, reason: str) -> None:
    failure = engine.fail(None, reason)
    logger.info("WebSocket connection failed: %s", reason)
    for callback, args in (
        (handler.on_failure, (failure,)),
        (handler.on_closed, (False, int(CloseCode.ABNORMAL_CLOSURE), "")),
    ):
        try:
            callback(*args)
        except Exception as exc:
            asyncio.get_running_loop().call_exception_handler(
                {"message": "WebSocket handler raised", "exception": exc}
            )
