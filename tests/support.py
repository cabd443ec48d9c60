"""Shared test helpers: real servers on 127.0.0.1 and a handler that records events."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from wsapi.agent import UserAgent
from wsapi.connect import establish_a_websocket_connection
from wsapi.errors import ConnectionFailure
from wsapi.protocol.events import CloseReceived, Opened
from wsapi.pump import ConnectionPump
from wsapi.url import parse_websocket_url

TIMEOUT = float(os.environ.get("WSAPI_TEST_TIMEOUT_SCALE", "1"))
"""One unit of test time, in seconds; raise WSAPI_TEST_TIMEOUT_SCALE on a slow machine."""

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
