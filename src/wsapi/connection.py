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
with`` it (or ``await`` it) opens one; ``async for`` over it opens one after another.

Reconnecting (``async for conn in wsapi.connect(url, policy=...)``)
--------------------------------------------------------------------
Rule 1: each iteration yields a new open ``Connection``. The next iteration looks at how the
previous one ended and asks the reconnect policy (``wsapi.reconnect``, the one
``ReconnectingWebSocket`` uses) for the wait: a connection that ended by itself is judged by
its ``ConnectionClosed`` (close code, failure); a failed attempt by its ``ConnectionFailure``.

Rule 2: the program's own ending of a connection (``conn.close()``, or asking for the next
one while it is still open, which closes it with 1000) is a reconnection it asked for: the
next connection opens at once, the backoff started over, as ``reconnect()`` does.

Rule 3: the iteration stops when the policy says so. After an open connection's ending
that does not reconnect (the server's close 1000, say), it ends (``StopAsyncIteration``):
the program has seen that ending already, from ``recv()``. After a failed attempt that does
not reconnect (HTTP 403, a TLS failure, ``max_retries`` attempts), it raises that attempt's
``WebSocketError``, whose ``failure`` says why. ``break`` leaves the current connection
open: close it, or the end of ``asyncio.run()`` closes it with 1001.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Sequence
from types import TracebackType
from typing import Any

from .agent import UserAgent
from .errors import ConnectionFailure, DOMException, WebSocketError
from .protocol.constants import CloseCode
from .reconnect import Backoff, ReconnectPolicy
from .streams import ReadableStreamDefaultReader, WritableStreamDefaultWriter
from .websocket import WebSocket, ping_payload
from .websocket import ping as ping_websocket
from .websocketstream import OPEN, WebSocketCloseInfo, WebSocketStream

__all__ = ["Connect", "Connection", "ConnectionClosed", "Reconnecting", "connect", "ping"]

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

    __slots__ = ("_closed_by_program", "_extensions", "_protocol", "_reader", "_stream", "_writer")

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
        self._closed_by_program = False  # close() was called (a reconnecting loop's rule 2).

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
        self._closed_by_program = True
        return await self.closed

    def __repr__(self) -> str:
        return f"<Connection {self._stream.url}>"


class Connect:
    """``wsapi.connect(url, protocols=(), *, agent=None, policy=None)``: ``async with`` it
    (or ``await`` it) to open a ``Connection``; a failure raises ``WebSocketError``. Leaving
    the block closes with 1000 (1001 if the block raised) and waits for the close. ``async
    for`` over it yields a new connection after each drop (the module's rules), with
    ``policy``'s backoff and rules (a ``ReconnectPolicy``; None: its defaults)."""

    __slots__ = ("_agent", "_connection", "_policy", "_protocols", "_url")

    def __init__(
        self,
        url: str,
        protocols: Sequence[str] = (),
        *,
        agent: UserAgent | None = None,
        policy: ReconnectPolicy | None = None,
    ) -> None:
        if isinstance(protocols, str):
            protocols = [protocols]
        if policy is not None and not isinstance(policy, ReconnectPolicy):
            raise TypeError(f"policy must be a ReconnectPolicy, not {type(policy).__name__}")
        self._url = url
        self._protocols = tuple(protocols)
        self._agent = agent
        self._policy = ReconnectPolicy() if policy is None else policy
        self._connection: Connection | None = None

    async def _open(
        self, make_stream: Callable[..., WebSocketStream] = WebSocketStream
    ) -> Connection:
        """Open one connection: a new WebSocketStream (made by ``make_stream``: a subclass's
        for ``wsapi.sync``), once its handshake succeeded."""
        stream = make_stream(self._url, protocols=self._protocols, agent=self._agent)
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

    def __aiter__(self) -> Reconnecting:
        return Reconnecting(self)


class Reconnecting:
    """``async for conn in wsapi.connect(url)``: a new ``Connection`` after each drop (the
    module's rules for reconnecting)."""

    __slots__ = ("_backoff", "_connect", "_current", "_stopped")

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._backoff = Backoff(connect._policy)
        self._current: Connection | None = None
        self._stopped = False

    @property
    def retryCount(self) -> int:
        """Consecutive attempts since a connection last stayed open ``min_uptime``."""
        return self._backoff.retries(asyncio.get_running_loop().time())

    def __aiter__(self) -> Reconnecting:
        return self

    async def __anext__(self) -> Connection:
        if self._stopped:
            raise StopAsyncIteration
        loop = asyncio.get_running_loop()
        backoff = self._backoff
        previous, self._current = self._current, None
        delay: float | None = 0.0
        if previous is not None:
            stream = previous.stream
            if stream._ready_state == OPEN:
                # The program moves on while it is open (rule 2): closed with 1000.
                stream._start_closing(int(CloseCode.NORMAL_CLOSURE), "")
                previous._closed_by_program = True
            ending = await previous.closed
            if previous._closed_by_program:
                backoff.reset()
            else:
                delay = self._next_delay(ending, loop.time())
                if delay is None:
                    raise StopAsyncIteration
        while True:
            if delay:
                await asyncio.sleep(delay)
            try:
                connection = await self._connect._open()
            except WebSocketError as error:
                failure = getattr(error, "failure", None)
                delay = self._next_delay(error if failure is None else failure, loop.time())
                if delay is None:
                    raise
                continue
            backoff.opened(loop.time())
            self._current = connection
            return connection

    def _next_delay(self, ending: Any, now: float) -> float | None:
        """The backoff's wait after ``ending``; None stops the iteration for good."""
        delay = self._backoff.next_delay(ending, now)
        if delay is None:
            self._stopped = True
        return delay


def connect(
    url: str,
    protocols: Sequence[str] = (),
    *,
    agent: UserAgent | None = None,
    policy: ReconnectPolicy | None = None,
) -> Connect:
    """Connect to ``url``: ``async with wsapi.connect(url) as conn: ...`` (see
    ``Connection``), or ``async for conn in wsapi.connect(url): ...`` to reconnect after
    each drop, with ``policy`` (a ``wsapi.reconnect.ReconnectPolicy``). ``protocols``: the
    subprotocols to offer (a str is one)."""
    return Connect(url, protocols, agent=agent, policy=policy)


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
