"""Ping and Pong frames (CR 2011 section 6): ``wsapi.ping()``, the Python extension that
sends a Ping; Pongs give no event."""

from __future__ import annotations

import asyncio

import pytest

from support import (
    TIMEOUT,
    Reader,
    Writer,
    accept,
    agent,
    answer_close,
    close_and_wait,
    echo_server,
    open_socket,
    raises_dom,
    raw_server,
    read_client_frame,
    server_frame,
    wait_closed,
    wait_opened,
)
from wsapi import DOMException, WebSocket, ping


async def test_ping_on_open_connection_gives_no_event() -> None:
    """wsapi.ping() sends a Ping the websockets server answers; the Pong is no event."""
    async with echo_server() as server:
        ws, log = await open_socket(server.url, agent=agent())
        ping(ws)
        ping(ws, b"payload")
        ping(ws, b"x" * 125)
        ws.send("after")
        assert await log.message() == "after"
        await asyncio.sleep(0.05 * TIMEOUT)
        await close_and_wait(ws)
    assert log.types() == ["open", "message", "close"]


async def test_ping_frame_on_the_wire() -> None:
    """wsapi.ping() writes a masked Ping with the data; the peer's Pong fires no event."""
    frames: list[tuple[int, bytes]] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        frames.append(await read_client_frame(reader))
        writer.write(server_frame(0xA, frames[0][1]) + server_frame(0x1, b"after pong"))
        await writer.drain()
        await answer_close(reader, writer)

    async with raw_server(handler) as url:
        ws, log = await open_socket(url, agent=agent())
        ping(ws, b"hi")
        assert await log.message() == "after pong"
        await close_and_wait(ws)
    assert frames == [(0x9, b"hi")]
    assert log.types() == ["open", "message", "close"]


async def test_ping_errors() -> None:
    """ping() before open or after close() is InvalidStateError; over 125 bytes ValueError."""
    async with echo_server() as server:
        ws = WebSocket(server.url, agent=agent())
        with pytest.raises(DOMException) as info:
            ping(ws)
        raises_dom("InvalidStateError", 11)(info)
        await wait_opened(ws)
        with pytest.raises(ValueError, match="126"):
            ping(ws, b"x" * 126)
        with pytest.raises(TypeError):
            ping(ws, "text")  # type: ignore[arg-type]
        ws.close()
        with pytest.raises(DOMException) as info:
            ping(ws)
        raises_dom("InvalidStateError", 11)(info)
        await wait_closed(ws)
