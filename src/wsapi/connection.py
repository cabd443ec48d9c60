"""``wsapi.connect``: the Python way to send and receive, on a ``WebSocketStream``.

::

    async with wsapi.connect(url, protocols=["chat"]) as conn:
        await conn.send("hello")          # waits under send backpressure
        reply = await conn.recv()         # str | bytes
        async for message in conn:        # ends at a clean close
            ...

``Connection`` reads the stream's readable and writes its writable, so both directions keep
WebSocketStream's backpressure: a program that receives slower than the server sends slows
the server, and ``send()`` returns once the connection holds at most
``SEND_HIGH_WATER_MARK`` unsent bytes. The end of the connection is ``ConnectionClosed``,
raised by ``recv()`` and ``send()`` once the connection is closed (``async for`` ends
quietly at a clean close and raises it after an unclean one) and given by
``await conn.closed``.

``connect()`` returns a ``Connect``, the description of the connection to make: ``async
with`` it (or ``await`` it) opens one. (It holds the URL, the protocols and the agent, so
that iterating over it can later open a new connection after each drop.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Sequence
from types import TracebackType
from typing import Any

from .agent import UserAgent
from .errors import ConnectionFailure, DOMException, WebSocketError
from .protocol.constants import CloseCode
from .streams import ReadableStreamDefaultReader, WritableStreamDefaultWriter
from .websocket import WebSocket, ping_payload
from .websocket import ping as ping_websocket
from .websocketstream import OPEN, WebSocketCloseInfo, WebSocketStream

__all__ = ["Connect", "Connection", "ConnectionClosed", "connect", "ping"]

Message = str | bytes
"""A received message: ``str`` for text, ``bytes`` for binary."""


class ConnectionClosed(Exception):
    """The connection is closed: ``code`` and ``reason`` (the server's Close frame's, 1005
    and ``""`` when it had none, 1006 when no Close frame came), ``wasClean`` (the closing
    handshake completed), and ``failure``, why the connection failed (None for a close)."""

    def __init__(
        self, code: int, reason: str, wasClean: bool, failure: ConnectionFailure | None = None
    ) -> None:
        super().__init__(code, reason, wasClean, failure)
        self.code = code
        self.reason = reason
        self.wasClean = wasClean
        self.failure = failure

    def __str__(self) -> str:
        how = "cleanly" if self.wasClean else "uncleanly"
        text = f"the connection closed {how} with code {self.code}"
        if self.reason:
            text += f" ({self.reason})"
        if self.failure is not None:
            text += f": {self.failure.reason}"
        return text

    @classmethod
    def _of(cls, outcome: WebSocketCloseInfo | BaseException) -> ConnectionClosed:
        """The close a WebSocketStream's ``closed`` gave: its close info, or its error."""
        if isinstance(outcome, WebSocketCloseInfo):
            return cls(outcome.closeCode, outcome.reason, True)
        if isinstance(outcome, WebSocketError):
            code = outcome.closeCode
            failure = getattr(outcome, "failure", None)
            return cls(
                CloseCode.ABNORMAL_CLOSURE if code is None else code,
                outcome.reason,
                False,
                failure,
            )
        return cls(CloseCode.ABNORMAL_CLOSURE, "", False)


class _ClosedOutcome:
    """``conn.closed``: the close as a ``ConnectionClosed``, returned (never raised).
    Cancelling an await of it cancels only that await."""

    __slots__ = ("_stream",)

    def __init__(self, stream: WebSocketStream) -> None:
        self._stream = stream

    def __await__(self) -> Generator[Any, None, ConnectionClosed]:
        try:
            info = yield from self._stream.closed.__await__()
        except WebSocketError as error:
            return ConnectionClosed._of(error)
        return ConnectionClosed._of(info)


class Connection:
    """An open WebSocket connection: ``send()``, ``recv()``, ``async for``, ``close()``,
    ``protocol``, ``extensions``, ``closed``. Made by ``wsapi.connect()``."""

    __slots__ = ("_extensions", "_protocol", "_reader", "_stream", "_writer")

    def __init__(
        self,
        stream: WebSocketStream,
        reader: ReadableStreamDefaultReader[Message],
        writer: WritableStreamDefaultWriter[Any],
        protocol: str,
        extensions: str,
    ) -> None:
        self._stream = stream
        self._reader = reader
        self._writer = writer
        self._protocol = protocol
        self._extensions = extensions

    @property
    def protocol(self) -> str:
        """The subprotocol the server selected (``""`` if none)."""
        return self._protocol

    @property
    def extensions(self) -> str:
        """The extensions in use."""
        return self._extensions

    @property
    def stream(self) -> WebSocketStream:
        """The ``WebSocketStream`` underneath."""
        return self._stream

    @property
    def closed(self) -> _ClosedOutcome:
        """Awaitable: the close, as a ``ConnectionClosed`` (returned, not raised), once the
        connection is closed."""
        return _ClosedOutcome(self._stream)

    async def send(self, message: str | bytes | bytearray | memoryview) -> None:
        """Send ``message`` (``str`` as text, bytes-like as binary) and return once the
        connection holds at most ``SEND_HIGH_WATER_MARK`` unsent bytes. ``ConnectionClosed``
        once the closing handshake has started (after it completes)."""
        if not isinstance(message, (str, bytes, bytearray, memoryview)):
            raise TypeError(
                f"send() takes str, bytes, bytearray or memoryview, not {type(message).__name__}"
            )
        if self._stream._ready_state != OPEN:
            raise await self.closed
        try:
            await self._writer.write(message)
        except (WebSocketError, DOMException, TypeError):
            raise await self.closed from None

    async def recv(self) -> Message:
        """The next message: ``str`` for text, ``bytes`` for binary. ``ConnectionClosed``
        once every message has been read and the connection is closed."""
        try:
            value, done = await self._reader.read()
        except WebSocketError as error:
            raise ConnectionClosed._of(error) from None
        if done:
            raise await self.closed
        message: Message = value
        return message

    def __aiter__(self) -> Connection:
        return self

    async def __anext__(self) -> Message:
        """The next message; the iteration ends at a clean close and raises
        ``ConnectionClosed`` after an unclean one."""
        try:
            return await self.recv()
        except ConnectionClosed as closed:
            if closed.wasClean:
                raise StopAsyncIteration from None
            raise

    async def close(self, code: int | None = None, reason: str = "") -> ConnectionClosed:
        """Close with ``code`` (1000 or 3000-4999) and ``reason`` (at most 123 bytes of
        UTF-8), wait until the connection is closed, and return how it closed."""
        self._stream.close(closeCode=code, reason=reason)
        return await self.closed

    def __repr__(self) -> str:
        return f"<Connection {self._stream.url}>"


class Connect:
    """``wsapi.connect(url, protocols=(), *, agent=None)``: ``async with`` it (or ``await``
    it) to open a ``Connection``; a failure raises ``WebSocketError``. Leaving the block
    closes with 1000 (1001 if the block raised) and waits for the close."""

    __slots__ = ("_agent", "_connection", "_protocols", "_url")

    def __init__(
        self, url: str, protocols: Sequence[str] = (), *, agent: UserAgent | None = None
    ) -> None:
        if isinstance(protocols, str):
            protocols = [protocols]
        self._url = url
        self._protocols = tuple(protocols)
        self._agent = agent
        self._connection: Connection | None = None

    async def _open(self) -> Connection:
        """Open one connection: a new WebSocketStream, once its handshake succeeded."""
        stream = WebSocketStream(self._url, protocols=self._protocols, agent=self._agent)
        try:
            info = await stream.opened
        except asyncio.CancelledError:
            stream.close(closeCode=CloseCode.NORMAL_CLOSURE)  # Given up: nobody will use it.
            raise
        return Connection(
            stream,
            info.readable.getReader(),
            info.writable.getWriter(),
            info.protocol,
            info.extensions,
        )

    def __await__(self) -> Generator[Any, None, Connection]:
        return self._open().__await__()

    async def __aenter__(self) -> Connection:
        self._connection = await self._open()
        return self._connection

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        # 1000 when the block ends normally; 1001 "going away" when it ends by an exception.
        code = CloseCode.NORMAL_CLOSURE if exc_type is None else CloseCode.GOING_AWAY
        connection.stream._start_closing(int(code), "")
        await connection.closed


def connect(url: str, protocols: Sequence[str] = (), *, agent: UserAgent | None = None) -> Connect:
    """Connect to ``url``: ``async with wsapi.connect(url) as conn: ...`` (see
    ``Connection``). ``protocols``: the subprotocols to offer (a str is one)."""
    return Connect(url, protocols, agent=agent)


def ping(target: WebSocket | WebSocketStream | Connection, data: bytes = b"") -> None:
    """Send a Ping on an open connection (outside the IDL, like undici's ``ping()``); the
    Pong is not an event. ``data`` is at most 125 bytes."""
    if isinstance(target, WebSocket):
        ping_websocket(target, data)
        return
    stream = target.stream if isinstance(target, Connection) else target
    if not isinstance(stream, WebSocketStream):
        raise TypeError(
            f"ping() takes a WebSocket, WebSocketStream or Connection, not {type(target).__name__}"
        )
    payload = ping_payload(data)
    pump = stream._pump
    if stream._ready_state != OPEN or pump is None or not pump.can_send():
        raise DOMException("ping() needs an open connection", "InvalidStateError")
    pump.send_ping(payload)
