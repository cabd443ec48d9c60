"""wsapi.connect and Connection (wsapi.connection): send, recv, async for, close, the
block's own close, ConnectionClosed, ping, and receive backpressure, against real servers."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosedOK

import wsapi
from servers import websocket_server
from support import (
    TIMEOUT,
    WAIT,
    Reader,
    Writer,
    accept,
    agent,
    close_payload,
    raw_server,
    read_client_frame,
    server_frame,
)
from wsapi import Connection, ConnectionClosed, DOMException, WebSocketError
from wsapi.echo import start_echo_server

WHATWG = agent("whatwg")


async def test_send_recv_and_protocol() -> None:
    """send() and recv() round-trip text as str and binary as bytes; protocol and extensions
    are the server's choice."""

    async def echo(connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async with (
        websocket_server(echo, subprotocols=["chat"]) as server,
        wsapi.connect(server.url, ["chat"], agent=WHATWG) as conn,
    ):
        assert isinstance(conn, Connection)
        assert conn.protocol == "chat"
        assert conn.extensions.startswith("permessage-deflate")
        await conn.send("hello")
        assert await conn.recv() == "hello"
        await conn.send(b"\x01\x02")
        assert await conn.recv() == b"\x01\x02"


async def test_async_for_ends_quietly_at_a_clean_close() -> None:
    """`async for` yields each message and ends at the server's clean close; recv() then
    raises ConnectionClosed with the server's code and reason."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        writer.write(server_frame(0x1, b"a") + server_frame(0x1, b"b"))
        writer.write(server_frame(0x8, close_payload(4000, "bye")))
        opcode, _ = await read_client_frame(reader)
        assert opcode == 0x8

    async with raw_server(handler) as url, wsapi.connect(url, agent=WHATWG) as conn:
        assert [message async for message in conn] == ["a", "b"]
        with pytest.raises(ConnectionClosed) as closed:
            await conn.recv()
        assert (closed.value.code, closed.value.reason) == (4000, "bye")
        assert closed.value.wasClean
        assert closed.value.failure is None
        with pytest.raises(ConnectionClosed):
            await conn.send("late")


async def test_async_for_raises_after_an_unclean_close() -> None:
    """After a lost connection, `async for` raises ConnectionClosed (1006, not clean, with
    the failure)."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        writer.write(server_frame(0x1, b"only"))
        await writer.drain()
        writer.transport.abort()

    async with raw_server(handler) as url, wsapi.connect(url, agent=WHATWG) as conn:
        received: list[str | bytes] = []

        async def read_all() -> None:
            async for message in conn:
                received.append(message)

        with pytest.raises(ConnectionClosed) as closed:
            await read_all()
        assert received == ["only"]
        assert closed.value.code == 1006
        assert not closed.value.wasClean
        assert closed.value.failure is not None
        assert closed.value.failure.kind == "connection_lost"
        assert "uncleanly" in str(closed.value)


async def test_leaving_the_block_closes_with_1000() -> None:
    """Leaving the block sends Close 1000 and waits until the connection is closed."""
    codes: list[int | None] = []

    async def handler(connection: ServerConnection) -> None:
        await connection.wait_closed()
        codes.append(connection.close_code)

    async with websocket_server(handler) as server:
        async with wsapi.connect(server.url, agent=WHATWG) as conn:
            pass
        result = await conn.closed
        assert (result.code, result.wasClean) == (1000, True)
        await asyncio.sleep(0.05)
    assert codes == [1000]


async def test_leaving_the_block_by_an_exception_closes_with_1001() -> None:
    """A block that raises closes with 1001 (going away) and the exception goes on."""
    codes: list[int | None] = []

    async def handler(connection: ServerConnection) -> None:
        await connection.wait_closed()
        codes.append(connection.close_code)

    async with websocket_server(handler) as server:
        with pytest.raises(KeyError):
            async with wsapi.connect(server.url, agent=WHATWG):
                raise KeyError("boom")
        await asyncio.sleep(0.05)
    assert codes == [1001]


async def test_connect_failure_raises_websocket_error() -> None:
    """A failed handshake raises WebSocketError from the `async with`, with the failure."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    async with raw_server(handler) as url:
        with pytest.raises(WebSocketError) as info:
            async with wsapi.connect(url, agent=WHATWG):
                pytest.fail("the block must not run")
    assert info.value.failure.status_code == 403


async def test_close_returns_the_close_and_closed_is_cancel_safe() -> None:
    """close(code, reason) waits for the close and returns it; a timed-out await of closed
    changes nothing for a later one."""
    async with await start_echo_server() as server:
        conn = await wsapi.connect(server.url, agent=WHATWG)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(conn.closed, 0.01)
        result = await asyncio.wait_for(conn.close(4321, "done"), WAIT)
        assert (result.code, result.reason, result.wasClean) == (4321, "done", True)
        again = await conn.closed
        assert (again.code, again.reason, again.wasClean) == (4321, "done", True)


async def test_close_validates_its_arguments() -> None:
    """close() refuses a code outside 1000 and 3000-4999 (InvalidAccessError)."""
    async with (
        await start_echo_server() as server,
        wsapi.connect(server.url, agent=WHATWG) as conn,
    ):
        with pytest.raises(DOMException) as info:
            await conn.close(1001)
        assert info.value.name == "InvalidAccessError"


async def test_send_refuses_other_types() -> None:
    """send() of anything but str or bytes-like raises TypeError, and the connection goes
    on."""
    async with (
        await start_echo_server() as server,
        wsapi.connect(server.url, agent=WHATWG) as conn,
    ):
        with pytest.raises(TypeError, match="send"):
            await conn.send(42)  # type: ignore[arg-type]
        await conn.send("still")
        assert await conn.recv() == "still"


async def test_ping_works_on_a_connection() -> None:
    """wsapi.ping() sends a Ping on a Connection; the server's Pong comes back."""
    pinged = asyncio.get_running_loop().create_future()

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        while True:
            opcode, payload = await read_client_frame(reader)
            if opcode == 0x9:
                pinged.set_result(payload)
                writer.write(server_frame(0xA, payload))
            elif opcode == 0x8:
                writer.write(server_frame(0x8, payload))
                return

    async with raw_server(handler) as url, wsapi.connect(url, agent=WHATWG) as conn:
        wsapi.ping(conn, b"are you there")
        assert await asyncio.wait_for(pinged, WAIT) == b"are you there"
        with pytest.raises(ValueError, match="125"):
            wsapi.ping(conn, bytes(126))
    with pytest.raises(DOMException) as info:
        wsapi.ping(conn)
    assert info.value.name == "InvalidStateError"
    with pytest.raises(TypeError):
        wsapi.ping(object())  # type: ignore[arg-type]


async def test_a_slow_consumer_slows_the_server() -> None:
    """A consumer slower than the server holds the server back: the server's sends wait
    (its drain blocks), so after a while it has sent far less than it would unthrottled."""
    message = b"m" * 65536
    sent = 0

    async def flood(connection: ServerConnection) -> None:
        nonlocal sent
        with contextlib.suppress(ConnectionClosedOK):  # Until the client closes.
            while True:
                await connection.send(message)
                sent += 1

    async with (
        websocket_server(flood, max_size=None, compression=None) as server,
        wsapi.connect(server.url, agent=WHATWG) as conn,
    ):
        received = 0
        deadline = time.monotonic() + 1.5 * TIMEOUT
        while time.monotonic() < deadline:
            assert await conn.recv() == message
            received += 1
            await asyncio.sleep(0.01)
        # Unthrottled, a loopback server sends thousands of these per second; held back,
        # it is ahead of the reader by the buffers between them (the readable's mark,
        # the pump's, the kernel's).
        assert (sent - received) * len(message) < 24 * 1024 * 1024, (sent, received)
