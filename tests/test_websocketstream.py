"""WebSocketStream (wsapi.websocketstream): the proposal's steps against real servers, and
backpressure both ways, measured."""

from __future__ import annotations

import asyncio
import gc
import select
import socket
import threading
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from websockets.asyncio.server import ServerConnection

from api.test_lifecycle import server_thread
from support import (
    TIMEOUT,
    WAIT,
    Reader,
    Writer,
    accept,
    agent,
    blocking_server,
    close_payload,
    raw_server,
    read_client_frame,
    server_frame,
)
from wsapi import (
    DOMException,
    UserAgent,
    WebSocketCloseInfo,
    WebSocketError,
    WebSocketOpenInfo,
    WebSocketStream,
)
from wsapi.echo import start_echo_server
from wsapi.pump import READ_BUFFER_SIZE, READ_HIGH_WATER
from wsapi.websocketstream import RECEIVE_HIGH_WATER_MARK, SEND_HIGH_WATER_MARK


def whatwg() -> UserAgent:
    return agent("whatwg")


async def opened(url: str, **options: object) -> tuple[WebSocketStream, WebSocketOpenInfo]:
    wss = WebSocketStream(url, agent=whatwg(), **options)  # type: ignore[arg-type]
    info = await asyncio.wait_for(wss.opened, WAIT)
    return wss, info


async def test_messages_round_trip_as_str_and_bytes() -> None:
    """Text is read as str and binary as bytes, in order; the open info names the
    subprotocol and extensions; a clean close gives the server's code and reason."""
    async with await start_echo_server() as server:
        wss, info = await opened(server.url)
        assert wss.url == server.url
        assert (info.extensions, info.protocol) == ("", "")
        writer = info.writable.getWriter()
        reader = info.readable.getReader()
        for message in ("hello", b"\x00\xff", bytearray(b"ba"), memoryview(b"mv")):
            await writer.write(message)
        values = [(await reader.read()).value for _ in range(4)]
        assert values == ["hello", b"\x00\xff", b"ba", b"mv"]
        wss.close(closeCode=4000, reason="done")
        assert await asyncio.wait_for(wss.closed, WAIT) == WebSocketCloseInfo(4000, "done")
        assert await reader.read() == (None, True)


async def test_async_for_over_the_readable_ends_at_a_clean_close() -> None:
    """`async for` over the readable yields every message and ends when the server closes
    cleanly."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        writer.write(server_frame(0x1, b"one") + server_frame(0x2, b"two"))
        writer.write(server_frame(0x8, close_payload(1000)))
        opcode, _ = await read_client_frame(reader)
        assert opcode == 0x8

    async with raw_server(handler) as url:
        wss, info = await opened(url)
        received = [message async for message in info.readable]
        assert received == ["one", b"two"]
        assert await asyncio.wait_for(wss.closed, WAIT) == (1000, "")


async def test_failure_rejects_opened_and_closed_with_websocket_error() -> None:
    """A refused handshake rejects opened and closed with WebSocketError (1006), whose
    failure says why."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    async with raw_server(handler) as url:
        wss = WebSocketStream(url, agent=whatwg())
        with pytest.raises(WebSocketError) as opened_error:
            await asyncio.wait_for(wss.opened, WAIT)
        with pytest.raises(WebSocketError) as closed_error:
            await wss.closed
        assert opened_error.value.failure.status_code == 404
        assert closed_error.value.closeCode == 1006
        assert closed_error.value.failure.kind == "http_status"


async def test_unawaited_failure_leaves_no_unretrieved_exception() -> None:
    """A WebSocketStream whose failure nobody awaits reports nothing to the loop (the test
    harness fails on any report)."""
    async with await start_echo_server() as server:
        wss = WebSocketStream(server.url, agent=whatwg())
        wss.close()
        while wss._ready_state != 3:
            await asyncio.sleep(0.01)


async def test_cancelled_await_of_opened_changes_nothing() -> None:
    """A timed-out await of opened does not cancel the outcome: a later await gets it."""
    async with await start_echo_server() as server:
        wss = WebSocketStream(server.url, agent=whatwg())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(wss.opened, 0)
        info = await asyncio.wait_for(wss.opened, WAIT)
        assert isinstance(info, WebSocketOpenInfo)
        wss.close()
        await asyncio.wait_for(wss.closed, WAIT)


async def test_constructor_misuse_raises_at_once() -> None:
    """Misuse raises in the constructor: TypeError for types (protocols must be a
    sequence, not a str), SyntaxError for URLs and protocols."""
    with pytest.raises(TypeError, match="protocols"):
        WebSocketStream("ws://127.0.0.1:1/", protocols="chat")
    with pytest.raises(TypeError, match="signal"):
        WebSocketStream("ws://127.0.0.1:1/", signal=object())  # type: ignore[arg-type]
    for url in ("invalid:", "ws://127.0.0.1:1/#fragment"):
        with pytest.raises(DOMException) as info:
            WebSocketStream(url)
        assert info.value.name == "SyntaxError"
    with pytest.raises(DOMException) as info:
        WebSocketStream("ws://127.0.0.1:1/", protocols=["a", "A"])
    assert info.value.name == "SyntaxError"


def test_constructor_needs_a_running_loop() -> None:
    """Without a running event loop the constructor raises RuntimeError saying so."""
    with pytest.raises(RuntimeError, match="running asyncio event loop"):
        WebSocketStream("ws://127.0.0.1:1/")


async def test_http_url_becomes_ws_whatever_the_agent_standard() -> None:
    """The living standard's URL rules apply with a "cr-2011" agent too: http: is ws:."""
    async with await start_echo_server() as server:
        url = server.url.replace("ws://", "http://")
        wss = WebSocketStream(url, agent=agent("cr-2011"))
        assert wss.url == server.url
        await asyncio.wait_for(wss.opened, WAIT)
        wss.close()
        await asyncio.wait_for(wss.closed, WAIT)


async def test_blocked_port_fails_the_connection() -> None:
    """A blocked port fails the connection (the living standard), rather than raising."""
    wss = WebSocketStream("ws://127.0.0.1:25/", agent=agent("cr-2011"))
    with pytest.raises(WebSocketError) as info:
        await asyncio.wait_for(wss.opened, WAIT)
    assert info.value.failure.kind == "blocked"


# --- Backpressure, measured ------------------------------------------------------------------

PUMP_BUFFERING = 2 * (READ_HIGH_WATER + READ_BUFFER_SIZE) + 1024 * 1024
"""What a connection holds of a flood besides its readable's queue: the engine's unparsed
bytes (reading pauses past READ_HIGH_WATER, after one more read of READ_BUFFER_SIZE), as
much again while a batch the pump hands over exists both as bytes and as messages, and 1 MiB
for the event loop's and tracemalloc's own allocations during the test."""

MESSAGE_SIZE = 16 * 1024
FLOOD_SECONDS = 3.0


@dataclass
class Flood:
    """What the flooding server saw."""

    stop: threading.Event
    sent: int = 0
    stalls: int = 0


def flood_with(flood: Flood, frame: bytes) -> Callable[[socket.socket], None]:
    """A blocking server's answer (support.blocking_server, on a thread): send ``frame`` as
    fast as the socket takes it until told to stop, counting the bytes sent and the times
    its send buffer was full (a send refused with EAGAIN). It allocates nothing per send,
    so the client's tracemalloc measures the client."""

    def answer(connection: socket.socket) -> None:
        connection.setblocking(False)
        view = memoryview(frame)
        offset = 0
        while not flood.stop.is_set():
            try:
                offset += connection.send(view[offset:])
            except BlockingIOError:
                flood.stalls += 1
                select.select([], [connection], [], 0.05)
                continue
            if offset == len(frame):
                flood.sent += len(frame)
                offset = 0
        connection.setblocking(True)

    return answer


@pytest.mark.slow(FLOOD_SECONDS)
async def test_a_slow_reader_slows_a_fast_server() -> None:
    """A server that sends as fast as it can to a client that reads one message per 10 ms:
    the client's memory stays below the readable's high-water mark plus the largest message
    plus PUMP_BUFFERING, and the server's send buffer fills (TCP holds it back)."""
    flood = Flood(stop=threading.Event())
    frame = server_frame(0x2, b"x" * MESSAGE_SIZE)
    with blocking_server(flood_with(flood, frame)) as url:
        # (The server never answers the Close: close_timeout ends the connection.)
        wss = WebSocketStream(url, agent=agent("whatwg", close_timeout=0.5 * TIMEOUT))
        info = await asyncio.wait_for(wss.opened, WAIT)
        reader = info.readable.getReader()
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            read = 0
            deadline = time.monotonic() + FLOOD_SECONDS
            while time.monotonic() < deadline:
                value, _ = await asyncio.wait_for(reader.read(), WAIT)
                assert value == b"x" * MESSAGE_SIZE
                read += 1
                await asyncio.sleep(0.01)
            peak = tracemalloc.get_traced_memory()[1] - baseline
        finally:
            tracemalloc.stop()
        flood.stop.set()
        wss.close()
        with pytest.raises(WebSocketError):
            await asyncio.wait_for(wss.closed, WAIT)
    bound = RECEIVE_HIGH_WATER_MARK + MESSAGE_SIZE + PUMP_BUFFERING
    assert peak < bound, f"peak {peak} bytes, bound {bound}"
    assert flood.stalls > 0
    # What the server sent beyond what was read sits in the client and the kernel's buffers.
    assert flood.sent - read * len(frame) < 32 * 1024 * 1024, (flood.sent, read)


async def test_writer_ready_waits_while_the_server_does_not_read() -> None:
    """While the server reads nothing, writer.ready stays pending once the untransmitted
    bytes pass the writable's high-water mark, the program's memory stays bounded, and
    ready resolves once the server reads again."""
    reading = asyncio.Event()
    got: list[int] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        await reading.wait()
        while True:
            opcode, payload = await read_client_frame(reader)
            if opcode == 0x8:
                writer.write(server_frame(0x8, payload))
                return
            got.append(len(payload))

    async with raw_server(handler) as url:
        wss, info = await opened(url)
        writer = info.writable.getWriter()
        chunk = b"y" * MESSAGE_SIZE
        written = 0
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            while True:
                try:
                    await asyncio.wait_for(writer.ready, 0.5 * TIMEOUT)
                except asyncio.TimeoutError:
                    break
                writer.write(chunk)
                written += 1
                assert written < 10_000, "ready never stayed pending"
            used = tracemalloc.get_traced_memory()[1] - baseline
        finally:
            tracemalloc.stop()
        assert wss._pump is not None
        assert wss._pump.untransmitted() > SEND_HIGH_WATER_MARK
        assert used < SEND_HIGH_WATER_MARK + MESSAGE_SIZE + 512 * 1024, used
        reading.set()
        await asyncio.wait_for(writer.ready, WAIT)
        await writer.close()
        assert await asyncio.wait_for(wss.closed, WAIT) == (1005, "")
    assert got == [MESSAGE_SIZE] * written


def index_of(message: str | bytes) -> int:
    assert isinstance(message, bytes)
    return int.from_bytes(message[:4], "big")


async def test_reads_resume_where_they_stopped_and_close_follows_the_messages() -> None:
    """With delivery paused, every message is still read in order, and the server's Close,
    sent behind them, is seen only after them."""
    count = 400
    payload = b"z" * 8192

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        for index in range(count):
            writer.write(server_frame(0x2, index.to_bytes(4, "big") + payload))
        writer.write(server_frame(0x8, close_payload(4001, "end")))
        await writer.drain()
        opcode, _ = await read_client_frame(reader)
        assert opcode == 0x8

    async with raw_server(handler) as url:
        wss, info = await opened(url)
        await asyncio.sleep(0.3 * TIMEOUT)  # Let the queue fill and delivery pause.
        assert wss._pump is not None
        assert wss._pump._delivery_paused
        assert not wss._closed.done()
        indices = [index_of(message) async for message in info.readable]
        assert indices == list(range(count))
        assert await asyncio.wait_for(wss.closed, WAIT) == (4001, "end")


async def test_close_while_paused_completes_the_handshake() -> None:
    """close() while the readable is full drops the messages still to come, so the
    server's Close reply is read and the close is clean."""
    stop = asyncio.Event()

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        frame = server_frame(0x2, b"w" * 8192)

        async def flood() -> None:
            while not stop.is_set():
                writer.write(frame)
                await writer.drain()

        task = asyncio.ensure_future(flood())
        try:
            while True:
                opcode, payload = await read_client_frame(reader)
                if opcode == 0x8:
                    stop.set()
                    await task
                    writer.write(server_frame(0x8, payload))
                    return
        finally:
            stop.set()
            await task

    async with raw_server(handler) as url:
        wss, _ = await opened(url)
        await asyncio.sleep(0.3 * TIMEOUT)
        wss.close(closeCode=4002)
        assert await asyncio.wait_for(wss.closed, WAIT) == (4002, "")


def test_open_stream_says_going_away_when_asyncio_run_ends() -> None:
    """A WebSocketStream left open at the end of asyncio.run() is made to disappear as a
    WebSocket is: Close 1001, a clean close, and no unclosed transport."""
    codes: list[int | None] = []
    closed = threading.Event()
    outcome: list[object] = []

    async def handler(connection: ServerConnection) -> None:
        await connection.wait_closed()
        codes.append(connection.close_code)
        closed.set()

    async def program(url: str) -> None:
        wss = WebSocketStream(url, agent=whatwg())
        await wss.opened
        outcome.append(wss)

    with server_thread(handler) as url, warnings.catch_warnings():
        warnings.simplefilter("error")
        asyncio.run(program(url), debug=True)
        assert closed.wait(10 * TIMEOUT)
        gc.collect()
    assert codes == [1001]
    wss = outcome[0]
    assert isinstance(wss, WebSocketStream)
    assert wss._closed.result() == (1001, "")


async def test_keepalive_does_not_fail_a_connection_the_reader_holds_back() -> None:
    """With keepalive on, a reader that holds messages back until reading pauses does not
    fail the connection, not even when a Ping's deadline is due as reading resumes."""
    count = 256

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        frame = server_frame(0x2, bytes(32 * 1024))
        for _ in range(count):
            writer.write(frame)
            await writer.drain()
        # (Its Pongs come late: the client's Pings wait in the socket behind its frames.)
        while True:
            opcode, payload = await read_client_frame(reader)
            if opcode == 0x9:
                writer.write(server_frame(0xA, payload))
            elif opcode == 0x8:
                writer.write(server_frame(0x8, payload))
                return

    async with raw_server(handler) as url:
        keepalive = agent("whatwg", ping_interval=0.1 * TIMEOUT, ping_timeout=0.1 * TIMEOUT)
        wss = WebSocketStream(url, agent=keepalive)
        info = await asyncio.wait_for(wss.opened, WAIT)
        await asyncio.sleep(1.0 * TIMEOUT)  # Several ping intervals without reading.
        pump = wss._pump
        assert pump is not None
        assert pump._reading_paused
        reader = info.readable.getReader()
        for _ in range(count):
            read = reader.read()  # (Its pull, when delivery was paused, schedules the pump.)
            deadline = pump._ping_deadline
            if pump._reading_paused and pump._pump_scheduled and deadline is not None:
                # The loop is held past the outstanding Ping's deadline before the pump,
                # which may resume reading, runs: the deadline is due in that same turn,
                # before the socket (the Pong and every frame waiting in it) is read.
                time.sleep(max(0.0, deadline.when() - asyncio.get_running_loop().time()) + 0.01)
            value, _ = await asyncio.wait_for(read, WAIT)
            assert len(value) == 32 * 1024
        wss.close(closeCode=4000)
        assert await asyncio.wait_for(wss.closed, WAIT) == (4000, "")
