"""Shared test helpers: real servers on 127.0.0.1 and a handler that records events."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.util
import os
import re
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

import wsapi.events as events_module
from wsapi import CloseEvent, DOMException, Event, MessageEvent, WebSocket
from wsapi.agent import UserAgent
from wsapi.echo import EchoServer, start_echo_server
from wsapi.errors import ConnectionFailure
from wsapi.opening import establish_a_websocket_connection
from wsapi.protocol import codec
from wsapi.protocol.events import CloseReceived, Opened
from wsapi.pump import ConnectionPump
from wsapi.url import parse_websocket_url

TIMEOUT = float(os.environ.get("WSAPI_TEST_TIMEOUT_SCALE", "1"))
"""One unit of test time, in seconds; raise WSAPI_TEST_TIMEOUT_SCALE on a slow machine."""

COMPILED = not codec.PURE_PYTHON and importlib.util.find_spec("wsapi._reading") is not None
"""Whether the compiled hot path is in use (built, and not refused by WSAPI_PURE_PYTHON)."""
compiled_only = pytest.mark.skipif(not COMPILED, reason="the compiled extensions are not in use")

KEY = b"\x37\xfa\x21\x3d"
"""A masking key for frames the tests build by hand."""

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Recorder:
    """A ConnectionHandler that logs every call, for assertions on order."""

    log: list[tuple[str, object]] = field(default_factory=list)
    closed: asyncio.Future[tuple[bool, int, str]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    opened: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    transport: ConnectionPump | None = None
    on_message_hook: Callable[[str | bytes], None] | None = None

    def _on_connect(self, transport: ConnectionPump) -> None:
        self.transport = transport

    def _on_open(self, event: Opened) -> None:
        self.log.append(("open", event.protocol))
        self.opened.set_result(None)

    def _on_message(self, data: str | bytes) -> None:
        self.log.append(("message", data))
        if self.on_message_hook is not None:
            self.on_message_hook(data)

    def _on_close_frame(self, event: CloseReceived) -> None:
        self.log.append(("close_frame", (event.code, event.reason)))

    def _on_failure(self, failure: ConnectionFailure) -> None:
        self.log.append(("failure", failure))

    def _on_close_timeout(self, failure: ConnectionFailure) -> None:
        self.log.append(("close_timeout", failure))

    def _on_closed(self, was_clean: bool, code: int, reason: str) -> None:
        self.log.append(("closed", (was_clean, code, reason)))
        self.closed.set_result((was_clean, code, reason))

    def _on_drained(self) -> None:
        pass

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.log]

    def failure(self) -> ConnectionFailure:
        failures = [value for kind, value in self.log if kind == "failure"]
        assert len(failures) == 1, self.log
        assert isinstance(failures[0], ConnectionFailure)
        return failures[0]


def capture_reports() -> list[dict[str, Any]]:
    """Route the running loop's exception handler into a list, for a test that expects a
    report (otherwise a report fails the test, see conftest.py)."""
    reports: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: reports.append(ctx))
    return reports


def assert_only_dropped_tls_handshakes(reports: list[dict[str, Any]]) -> None:
    """Assert that the loop reported nothing but a test TLS server's handshakes that the
    client dropped (asyncio reports those on the server's side when a client refuses the
    certificate)."""
    for context in reports:
        assert context["message"] == "Error on transport creation for incoming connection", context
        assert isinstance(context["exception"], (ConnectionError, ssl.SSLError)), context


def send(transport: ConnectionPump, message: str | bytes) -> None:
    """Send a message through the transport, counting its size as the API does."""
    if isinstance(message, str):
        transport.send_message(message.encode(), text=True)
    else:
        transport.send_message(message, text=False)


async def connect(
    url: str,
    *,
    protocols: tuple[str, ...] = (),
    open_timeout: float | None = 10 * TIMEOUT,
    close_timeout: float | None = 10 * TIMEOUT,
    max_message_size: int | None = 64 * 1024 * 1024,
    on_message: Callable[[Recorder, str | bytes], None] | None = None,
) -> tuple[ConnectionPump | None, Recorder]:
    """Open a connection with a Recorder as handler; ``on_message(recorder, data)`` is called
    for each message (set before connecting: messages may arrive with the 101)."""
    agent = UserAgent(
        proxy=None,
        open_timeout=open_timeout,
        close_timeout=close_timeout,
        max_message_size=max_message_size,
    )
    recorder = Recorder()
    if on_message is not None:
        hook = on_message
        recorder.on_message_hook = lambda data: hook(recorder, data)
    transport = await establish_a_websocket_connection(
        agent, parse_websocket_url(url), recorder, protocols=protocols
    )
    recorder.transport = transport
    return transport, recorder


def accept_for(request: bytes) -> bytes:
    """The Sec-WebSocket-Accept value for a raw request's key."""
    match = re.search(rb"(?i)sec-websocket-key:\s*(\S+)", request)
    assert match is not None, request
    return base64.b64encode(hashlib.sha1(match.group(1) + GUID).digest())


def switching_protocols(request: bytes, extra: bytes = b"") -> bytes:
    """A correct 101 response to ``request``."""
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_for(request) + b"\r\n" + extra + b"\r\n"
    )


def server_frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    """An unmasked frame as a server sends it."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        header = bytes([first, n])
    elif n < 65536:
        header = bytes([first, 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([first, 127]) + n.to_bytes(8, "big")
    return header + payload


async def read_client_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one masked client frame; return (opcode, unmasked payload)."""
    first, second = await reader.readexactly(2)
    assert second & 0x80, "client frames must be masked"
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    key = await reader.readexactly(4)
    masked = await reader.readexactly(length)
    payload = bytes(b ^ key[i % 4] for i, b in enumerate(masked))
    return first & 0x0F, payload


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


HANDLER_GRACE = 2 * TIMEOUT
"""How long raw_server waits, once its test is done, for its handlers to finish."""


def lookup_done_at_once(loop: asyncio.AbstractEventLoop) -> Callable[..., asyncio.Future[Any]]:
    """A stand-in for ``loop.getaddrinfo`` (set it on the loop with ``monkeypatch``) whose
    answer, 127.0.0.1 for any name, is there before anyone awaits it: the connecting task
    still waits a turn on it, and a cancellation in that turn meets a lookup that is done."""

    def getaddrinfo(host: str, port: int, **_: Any) -> asyncio.Future[Any]:
        answer = loop.create_future()
        answer.set_result([(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))])
        return answer

    return getaddrinfo


async def _take_in_accepted(server: asyncio.Server) -> None:
    """Let ``server`` take in the connections the kernel accepted for it: a server closed
    before would fail them ("Error on transport creation"). A client connected on loopback
    without a turn of its own loop can end its test that early."""
    listener = server.sockets[0].fileno()
    for _ in range(100):  # (One turn of the loop accepts all that wait.)
        if not select.select([listener], [], [], 0)[0]:
            break
        await asyncio.sleep(0)
    # Then a turn for the task that makes each one's transport, and one for connection_made.
    for _ in range(2):
        await asyncio.sleep(0)


@asynccontextmanager
async def raw_server(handler: RawHandler, *, cut_off: bool = False) -> AsyncIterator[str]:
    """A raw TCP server on 127.0.0.1 that runs ``handler`` per connection (a misbehaving
    peer written byte by byte); yields its ws:// URL.

    On exit every handler is awaited and what one raised (an assertion on the client's
    frames, a read past the end of the stream) fails the test; a handler still running
    ``HANDLER_GRACE`` seconds later fails it too. ``cut_off=True`` says the handlers are
    meant to outlive the test (a silent peer): they are cancelled on exit instead, and what
    they raised before that still fails the test."""
    tasks: set[asyncio.Task[None]] = set()
    errors: list[BaseException] = []

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except Exception as exc:
            errors.append(exc)
        finally:
            writer.close()

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(run(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def stop(*, cancel: bool) -> int:
        """Close the server and end its handlers: cancel them, or wait for them and cancel
        (and count) those still running after the grace time."""
        await _take_in_accepted(server)
        server.close()
        pending: set[asyncio.Task[None]] = set(tasks)
        overdue = 0
        if pending and not cancel:
            _, pending = await asyncio.wait(pending, timeout=HANDLER_GRACE)
            overdue = len(pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()
        return overdue

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/"
    except BaseException as failure:
        # The test failed; a handler's own failure, when there is one, is likely why: it is
        # raised, with the test's failure shown alongside.
        await stop(cancel=True)
        if errors:
            raise errors[0] from failure
        raise
    overdue = await stop(cancel=cut_off)
    if errors:
        raise errors[0]
    assert not overdue, (
        f"raw_server: {overdue} handler(s) still running {HANDLER_GRACE} s after the test; "
        "pass cut_off=True if the test means to leave them running"
    )


def xor(data: bytes, key: bytes) -> bytes:
    """RFC 6455 5.3 masking, written out independently of the codec."""
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def client_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Decode the client's frames: (first byte, unmasked payload); every frame must be masked."""
    frames = []
    pos = 0
    while pos < len(data):
        first, second = data[pos], data[pos + 1]
        assert second & 0x80, "a client frame is not masked"
        length = second & 0x7F
        pos += 2
        if length == 126:
            length = int.from_bytes(data[pos : pos + 2], "big")
            assert length >= 126, "non-minimal length encoding"
            pos += 2
        elif length == 127:
            length = int.from_bytes(data[pos : pos + 8], "big")
            assert length >= 65536, "non-minimal length encoding"
            pos += 8
        key = data[pos : pos + 4]
        pos += 4
        payload = data[pos : pos + length]
        assert len(payload) == length, "truncated client frame"
        frames.append((first, xor(payload, key)))
        pos += length
    return frames


# --- the WebSocket API's tests: settings, recorders, peers -----------------------------------

Standard = Literal["cr-2011", "whatwg"]
STANDARDS: tuple[Standard, ...] = ("cr-2011", "whatwg")
both_standards = pytest.mark.parametrize("standard", STANDARDS)

WAIT = 10 * TIMEOUT
"""How long a test waits for something that should happen promptly."""
SHORT = 3 * TIMEOUT
"""The bound for local things that need no network round trip (still generous)."""

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter


def agent(standard: Standard = "cr-2011", **settings: Any) -> UserAgent:
    """A UserAgent that never uses the environment's proxies."""
    return UserAgent(proxy=None, standard=standard, **settings)


class Log:
    """Records every open, message, error and close event with the readyState it saw."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.entries: list[tuple[str, int, object]] = []
        self.events: list[Event] = []
        self.messages: asyncio.Queue[Any] = asyncio.Queue()
        for type_ in ("open", "message", "error", "close"):
            ws.addEventListener(type_, self.record)

    def record(self, event: Event) -> None:
        detail: object = None
        if isinstance(event, MessageEvent):
            detail = event.data
            self.messages.put_nowait(event.data)
        elif isinstance(event, CloseEvent):
            detail = (event.wasClean, event.code, event.reason)
        self.events.append(event)
        self.entries.append((event.type, self.ws.readyState, detail))

    def types(self) -> list[str]:
        return [type_ for type_, _, _ in self.entries]

    async def message(self) -> Any:
        return await asyncio.wait_for(self.messages.get(), WAIT)


async def wait_closed(ws: WebSocket, within: float = WAIT) -> CloseEvent:
    """The close event, waited for with a bound."""
    return await asyncio.wait_for(asyncio.shield(ws.closed), within)


async def wait_opened(ws: WebSocket) -> None:
    await asyncio.wait_for(asyncio.shield(ws.opened), WAIT)


async def wait_until(predicate: Callable[[], bool], within: float = WAIT) -> None:
    """Poll ``predicate`` between callbacks until it holds (bounded)."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def discard(ws: WebSocket) -> None:
    """End a WebSocket that is still connecting and wait for its close event."""
    await asyncio.sleep(0)  # let the background connection start
    ws.close()
    await wait_closed(ws)


async def refused_url() -> str:
    """A ws: URL on 127.0.0.1 where nothing listens."""
    server = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return f"ws://127.0.0.1:{port}/"


@asynccontextmanager
async def echo_server() -> AsyncIterator[EchoServer]:
    async with await start_echo_server() as server:
        yield server


async def open_socket(url: str, *args: Any, **kwargs: Any) -> tuple[WebSocket, Log]:
    """A WebSocket with a Log, once open."""
    ws = WebSocket(url, *args, **kwargs)
    log = Log(ws)
    await wait_opened(ws)
    return ws, log


async def close_and_wait(ws: WebSocket, *args: Any) -> CloseEvent:
    ws.close(*args)
    return await wait_closed(ws)


async def accept(reader: Reader, writer: Writer, extra: bytes = b"") -> bytes:
    """Read the handshake request and answer 101; return the request."""
    request = await read_request(reader)
    writer.write(switching_protocols(request, extra))
    await writer.drain()
    return request


async def answer_close(reader: Reader, writer: Writer) -> bytes:
    """Read client frames up to its Close, answer with the same payload; return it."""
    while True:
        opcode, payload = await read_client_frame(reader)
        if opcode == 0x8:
            writer.write(server_frame(0x8, payload))
            await writer.drain()
            return payload


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


def header_lines(request: bytes) -> list[tuple[str, str]]:
    """The (lower-cased name, value) pairs of a raw handshake request."""
    lines = request.decode("latin-1").split("\r\n")[1:]
    pairs = []
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            pairs.append((name.strip().lower(), value.strip()))
    return pairs


def raises_dom(name: str, code: int) -> Callable[[pytest.ExceptionInfo[DOMException]], None]:
    def check(info: pytest.ExceptionInfo[DOMException]) -> None:
        assert info.value.name == name
        assert info.value.code == code

    return check


def events_of(ws: WebSocket) -> list[str]:
    """Record the events of ``ws`` as short strings."""
    log: list[str] = []
    ws.onopen = lambda event: log.append("open")
    ws.onerror = lambda event: log.append("error")
    ws.onclose = lambda event: log.append(f"close {event.code} {event.wasClean}")
    return log


def texts(*messages: str) -> bytes:
    """Server frames of text messages, one frame each."""
    return b"".join(server_frame(0x1, m.encode()) for m in messages)


@asynccontextmanager
async def burst_server(
    burst: bytes,
    sent_at: list[float] | None = None,
    pong: asyncio.Future[None] | None = None,
) -> AsyncIterator[str]:
    """A raw server that answers the handshake, writes ``burst`` in one write (recording the
    time in ``sent_at``), then reads the client's frames (setting ``pong`` at its first Pong)
    and answers its Close; yields its URL."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        writer.write(switching_protocols(request))
        await writer.drain()
        if sent_at is not None:
            sent_at.append(now_ms())
        writer.write(burst)
        await writer.drain()
        while True:
            opcode, payload = await read_client_frame(reader)
            if opcode == 0xA and pong is not None and not pong.done():
                pong.set_result(None)
            if opcode == 0x8:
                writer.write(server_frame(0x8, payload))
                await writer.drain()
                return

    async with raw_server(handler) as url:
        yield url


def now_ms() -> float:
    """The clock of ``Event.timeStamp``."""
    return (time.monotonic() - events_module._TIME_ORIGIN) * 1000.0


async def until(future: asyncio.Future[Any]) -> Any:
    """The future's result, waited for with a bound."""
    return await asyncio.wait_for(future, WAIT)


async def close_cleanly(ws: WebSocket) -> None:
    """Close and wait for a clean close event."""
    event = await close_and_wait(ws)
    assert event.wasClean


@contextmanager
def blocking_server(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A blocking server on a thread, which answers while the client's loop is blocked:
    it opens the connection, then ``answer(connection)``, then reads until the client's end
    of stream."""
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve() -> None:
            connection, _ = listener.accept()
            with connection:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += connection.recv(4096)
                connection.sendall(switching_protocols(request))
                answer(connection)
                while connection.recv(1 << 16):
                    pass

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        yield f"ws://127.0.0.1:{listener.getsockname()[1]}/"
        server.join(WAIT)
