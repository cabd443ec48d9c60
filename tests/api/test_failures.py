"""Failing the WebSocket connection: refused connections, refused or malformed handshake
responses and protocol violations, each ending in error and close events."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable

import pytest

from support import (
    TIMEOUT,
    Log,
    Reader,
    Writer,
    accept,
    agent,
    answer_close,
    close_and_wait,
    close_payload,
    open_socket,
    raw_server,
    read_client_frame,
    read_request,
    refused_url,
    server_frame,
    switching_protocols,
    wait_closed,
    wait_opened,
)
from wsapi import Event, WebSocket

# --- failures --------------------------------------------------------------------------------


async def test_refused_connection() -> None:
    """A refused connection: error then close 1006 (not clean), both with readyState CLOSED."""
    ws = WebSocket(await refused_url(), agent=agent())
    log = Log(ws)
    event = await wait_closed(ws)
    assert log.entries == [
        ("error", WebSocket.CLOSED, None),
        ("close", WebSocket.CLOSED, (False, 1006, "")),
    ]
    assert type(log.events[0]) is Event
    assert log.events[0].isTrusted
    assert event is log.events[1]
    assert ws.failure is not None
    assert ws.failure.kind == "refused"


@pytest.mark.parametrize(("status", "phrase"), [(400, "Bad Request"), (404, "Not Found")])
async def test_http_error_status_fails(status: int, phrase: str) -> None:
    """A non-101 status fails the connection; the failure keeps the status code and headers."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        writer.write(
            f"HTTP/1.1 {status} {phrase}\r\nX-Probe: yes\r\nContent-Length: 0\r\n\r\n".encode()
        )
        await writer.drain()
        await reader.read()

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=agent())
        log = Log(ws)
        await wait_closed(ws)
    assert log.entries == [
        ("error", WebSocket.CLOSED, None),
        ("close", WebSocket.CLOSED, (False, 1006, "")),
    ]
    failure = ws.failure
    assert failure is not None
    assert failure.kind == "http_status"
    assert failure.status_code == status
    assert ("x-probe", "yes") in failure.raw_headers


async def test_redirect_is_not_followed() -> None:
    """A 301 fails the connection; the Location is not visited."""
    visits: list[bytes] = []

    async def target(reader: Reader, writer: Writer) -> None:
        visits.append(await read_request(reader))

    async with raw_server(target) as target_url:

        async def handler(reader: Reader, writer: Writer) -> None:
            await read_request(reader)
            location = target_url.replace("ws:", "http:")
            writer.write(
                b"HTTP/1.1 301 Moved Permanently\r\nLocation: "
                + location.encode()
                + b"\r\nContent-Length: 0\r\n\r\n"
            )
            await writer.drain()
            await reader.read()

        async with raw_server(handler) as url:
            ws = WebSocket(url, agent=agent())
            log = Log(ws)
            await wait_closed(ws)
            await asyncio.sleep(0.05 * TIMEOUT)
    assert visits == []
    assert log.types() == ["error", "close"]
    assert ws.failure is not None
    assert ws.failure.kind == "http_status"
    assert ws.failure.status_code == 301


def _bad_accept(request: bytes) -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )


def _selects(protocol: bytes) -> Callable[[bytes], bytes]:
    return lambda request: switching_protocols(
        request, b"Sec-WebSocket-Protocol: " + protocol + b"\r\n"
    )


@pytest.mark.parametrize(
    ("response", "protocols"),
    [
        (lambda _request: b"garbage\r\n\r\n", None),
        (lambda _request: b"HTTP/1.1 101 Switching Protocols\r\n\r\n", None),
        (_bad_accept, None),
        (_selects(b"other"), ["chat"]),
        (_selects(b"chat"), None),
        (_selects(b"CHAT"), ["chat"]),
        (switching_protocols, ["chat", "superchat"]),
    ],
    ids=[
        "garbage-status-line",
        "no-upgrade-headers",
        "wrong-accept",
        "unrequested-subprotocol",
        "subprotocol-when-none-requested",
        "subprotocol-case-differs",
        "no-subprotocol-when-requested",
    ],
)
async def test_bad_handshake_response_fails(
    response: Callable[[bytes], bytes], protocols: list[str] | None
) -> None:
    """A handshake response breaking RFC 6455 4.1 fails the connection: error, close 1006."""

    async def handler(reader: Reader, writer: Writer) -> None:
        request = await read_request(reader)
        writer.write(response(request))
        await writer.drain()
        await reader.read()

    async with raw_server(handler) as url:
        ws = WebSocket(url, protocols, agent=agent())
        log = Log(ws)
        await wait_closed(ws)
    assert log.entries == [
        ("error", WebSocket.CLOSED, None),
        ("close", WebSocket.CLOSED, (False, 1006, "")),
    ]
    assert ws.protocol == ""
    assert ws.failure is not None
    assert ws.failure.kind == "handshake"


async def test_delayed_handshake_still_opens() -> None:
    """A 101 that arrives 0.2 s later still opens the connection."""

    async def handler(reader: Reader, writer: Writer) -> None:
        request = await read_request(reader)
        await asyncio.sleep(0.2)
        writer.write(switching_protocols(request))
        await writer.drain()
        await answer_close(reader, writer)

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=agent())
        log = Log(ws)
        await wait_opened(ws)
        event = await close_and_wait(ws, 1000)
    assert log.types() == ["open", "close"]
    assert (event.wasClean, event.code) == (True, 1000)


async def test_abrupt_tcp_close_after_open() -> None:
    """TCP closed after open without a Close frame: error, then close 1006, not clean."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        await asyncio.sleep(0.05 * TIMEOUT)

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=agent())
        log = Log(ws)
        event = await wait_closed(ws)
    assert log.entries == [
        ("open", WebSocket.OPEN, None),
        ("error", WebSocket.CLOSED, None),
        ("close", WebSocket.CLOSED, (False, 1006, "")),
    ]
    assert (event.wasClean, event.code) == (False, 1006)
    assert ws.failure is not None
    assert ws.failure.kind == "connection_lost"


async def test_reserved_opcode_fails_with_1002() -> None:
    """A reserved opcode: the client sends Close 1002; the page sees error, then close 1006."""
    frames: list[tuple[int, bytes]] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        writer.write(server_frame(0x1, b"before") + server_frame(0x3, b"reserved"))
        await writer.drain()
        frames.append(await read_client_frame(reader))
        await reader.read()

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=agent())
        log = Log(ws)
        event = await wait_closed(ws)
    assert frames[0][0] == 0x8
    assert frames[0][1][:2] == struct.pack("!H", 1002)
    assert log.entries == [
        ("open", WebSocket.OPEN, None),
        ("message", WebSocket.OPEN, "before"),
        ("error", WebSocket.CLOSED, None),
        ("close", WebSocket.CLOSED, (False, 1006, "")),
    ]
    assert (event.wasClean, event.code) == (False, 1006)
    assert ws.failure is not None
    assert ws.failure.kind == "protocol"


async def test_server_never_answers_close() -> None:
    """A server that never answers our Close is dropped after close_timeout: close 1006."""
    received: list[tuple[int, bytes]] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        received.append(await read_client_frame(reader))
        await reader.read()  # silent until the client drops TCP

    async with raw_server(handler) as url:
        ws, log = await open_socket(url, agent=agent(close_timeout=0.5))
        start = time.monotonic()
        ws.close(1000)
        event = await wait_closed(ws)
        elapsed = time.monotonic() - start
    assert received == [(0x8, close_payload(1000))]
    assert (event.wasClean, event.code) == (False, 1006)
    assert log.types()[0] == "open"
    assert log.types()[-1] == "close"
    assert 0.4 <= elapsed < 5 * TIMEOUT
