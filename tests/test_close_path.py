"""The closing handshake against real peers that end it in unusual ways, in both modes: a
peer that never answers our Close, a peer that keeps TCP open after the handshake, and the
Close frame we send back to a server's. Chromium's behaviour is the reference (docs/parity.md
has the side-by-side scenarios)."""

from __future__ import annotations

import asyncio
import time

import pytest
from websockets.asyncio.server import ServerConnection, serve

from support import (
    STANDARDS,
    TIMEOUT,
    Standard,
    raw_server,
    read_client_frame,
    read_request,
    server_frame,
)
from support import switching_protocols as accept
from wsapi import CloseEvent, Event, UserAgent, WebSocket


def events_and_states_of(ws: WebSocket) -> list[str]:
    """Record the events of ``ws`` with readyState at dispatch, as short strings."""
    log: list[str] = []

    def record(event: Event) -> None:
        text = f"{event.type} {ws.readyState}"
        if isinstance(event, CloseEvent):
            text += f" {event.code} {event.wasClean} {event.reason!r}"
        log.append(text)

    for kind in ("open", "message", "error", "close"):
        ws.addEventListener(kind, record)
    return log


@pytest.mark.parametrize("standard", STANDARDS)
async def test_unanswered_close_ends_without_error(standard: Standard) -> None:
    """Our Close unanswered: close_timeout ends it with close 1006, wasClean false and no
    error event (not a failure of the connection); ws.failure says close_timeout."""
    received: list[tuple[int, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(accept(await read_request(reader)))
        received.append(await read_client_frame(reader))
        assert await reader.read() == b""  # Silent until the client drops TCP.

    async with raw_server(handler) as url:
        agent = UserAgent(standard=standard, proxy=None, close_timeout=0.3)
        ws = WebSocket(url, agent=agent)
        log = events_and_states_of(ws)
        await ws.opened
        start = time.monotonic()
        ws.close(1000, "bye")
        event = await asyncio.wait_for(ws.closed, 10 * TIMEOUT)
        elapsed = time.monotonic() - start
    assert received == [(0x8, (1000).to_bytes(2, "big") + b"bye")]
    assert log == ["open 1", "close 3 1006 False ''"]
    assert (event.code, event.wasClean) == (1006, False)
    assert ws.failure is not None
    assert ws.failure.kind == "close_timeout"
    assert "0.3 s" in ws.failure.reason
    assert 0.25 <= elapsed < 0.3 + 2 * TIMEOUT


@pytest.mark.parametrize("standard", STANDARDS)
async def test_tcp_kept_open_after_closing_handshake_is_clean(standard: Standard) -> None:
    """A server that sends its Close, reads ours and keeps TCP open is dropped after
    close_timeout, and the close is clean with its code and reason (as Chromium's)."""
    replies: list[tuple[int, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(accept(await read_request(reader)))
        writer.write(server_frame(0x8, (4000).to_bytes(2, "big") + b"done"))
        replies.append(await read_client_frame(reader))
        assert await reader.read() == b""  # Never closes TCP itself.

    async with raw_server(handler) as url:
        agent = UserAgent(standard=standard, proxy=None, close_timeout=0.3)
        ws = WebSocket(url, agent=agent)
        log = events_and_states_of(ws)
        start = time.monotonic()
        event = await asyncio.wait_for(ws.closed, 10 * TIMEOUT)
        elapsed = time.monotonic() - start
    assert replies == [(0x8, (4000).to_bytes(2, "big") + b"done")]
    assert log == ["open 1", "close 3 4000 True 'done'"]
    assert (event.code, event.wasClean, event.reason) == (4000, True, "done")
    assert ws.failure is None
    assert 0.25 <= elapsed < 0.3 + 2 * TIMEOUT


REASONS = [
    pytest.param((1000).to_bytes(2, "big") + b"bye", id="code-and-reason"),
    pytest.param((4001).to_bytes(2, "big") + ("\u00e9" * 61 + "x").encode(), id="123-bytes"),
    pytest.param((1001).to_bytes(2, "big"), id="code-only"),
    pytest.param(b"", id="no-body"),
]


@pytest.mark.parametrize("standard", STANDARDS)
@pytest.mark.parametrize("payload", REASONS)
async def test_reply_to_server_close_echoes_code_and_reason(
    standard: Standard, payload: bytes
) -> None:
    """The Close sent in reply to a raw server's carries its code and reason, byte for byte
    (no body when the server's had none)."""
    replies: list[tuple[int, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(accept(await read_request(reader)))
        writer.write(server_frame(0x8, payload))
        replies.append(await read_client_frame(reader))
        writer.close()

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=UserAgent(standard=standard, proxy=None))
        log = events_and_states_of(ws)
        event = await asyncio.wait_for(ws.closed, 10 * TIMEOUT)
    assert replies == [(0x8, payload)]
    code = int.from_bytes(payload[:2], "big") if payload else 1005
    reason = payload[2:].decode()
    assert log == ["open 1", f"close 3 {code} True {reason!r}"]
    assert (event.code, event.reason, event.wasClean) == (code, reason, True)


@pytest.mark.parametrize("standard", STANDARDS)
async def test_websockets_server_receives_its_reason_back(standard: Standard) -> None:
    """The websockets library's server, closing with 4000 and a reason, gets both back."""
    received: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

    async def handler(connection: ServerConnection) -> None:
        await connection.close(4000, "custom")
        assert connection.protocol.close_rcvd is not None
        rcvd = connection.protocol.close_rcvd
        received.set_result((rcvd.code, rcvd.reason))

    async with serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        ws = WebSocket(f"ws://127.0.0.1:{port}/", agent=UserAgent(standard=standard, proxy=None))
        event = await asyncio.wait_for(ws.closed, 10 * TIMEOUT)
        assert await asyncio.wait_for(received, 10 * TIMEOUT) == (4000, "custom")
    assert (event.code, event.reason, event.wasClean) == (4000, "custom", True)
