"""Network reach without proxies: keepalive, timeouts and limits, each against a real peer
that misbehaves on purpose, each ending in the standard events within its configured time."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import tracemalloc
from typing import cast

import pytest
from websockets.asyncio.server import ServerConnection, serve

from support import (
    TIMEOUT,
    events_of,
    raw_server,
    read_client_frame,
    read_request,
    switching_protocols,
)
from wsapi import CloseEvent, UserAgent, WebSocket
from wsapi.deadlines import deadlines_of
from wsapi.echo import start_echo_server


async def silent_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A peer that accepts TCP and then says nothing."""
    await asyncio.sleep(60)


async def test_keepalive_detects_a_dead_peer() -> None:
    """A peer that stops answering (no Pong, no data) is detected within ping_interval +
    ping_timeout: error, close 1006, failure kind keepalive_timeout."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(switching_protocols(await read_request(reader)))
        await asyncio.sleep(60)  # Reads nothing, answers nothing: a dead peer.

    async with raw_server(handler, cut_off=True) as url:
        agent = UserAgent(proxy=None, ping_interval=0.2, ping_timeout=0.3)
        ws = WebSocket(url, agent=agent)
        log = events_of(ws)
        await ws.opened
        start = time.monotonic()
        event = await asyncio.wait_for(ws.closed, 10 * TIMEOUT)
        elapsed = time.monotonic() - start
    assert log == ["open", "error", "close 1006 False"]
    assert (event.code, event.wasClean) == (1006, False)
    assert ws.failure is not None
    assert ws.failure.kind == "keepalive_timeout"
    assert elapsed < 0.5 + 2 * TIMEOUT


async def test_keepalive_keeps_a_live_connection_open() -> None:
    """Pings answered by a real server keep the connection open past several intervals."""
    pings: list[float] = []

    async def handler(connection: ServerConnection) -> None:
        await connection.wait_closed()

    async with serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        agent = UserAgent(proxy=None, ping_interval=0.05, ping_timeout=0.5)
        async with WebSocket(f"ws://127.0.0.1:{port}/", agent=agent) as ws:
            for _ in range(6):
                await asyncio.sleep(0.05)
                if ws._pump is not None and ws._pump.last_pong is not None:
                    pings.append(time.monotonic())
            assert ws.readyState == WebSocket.OPEN
        assert (await ws.closed).code == 1000
    assert pings, "no Pong was ever received"


@pytest.mark.parametrize("scheme", ["ws", "wss"])
async def test_stalled_peer_fails_within_open_timeout(scheme: str) -> None:
    """A peer that accepts TCP and never answers the handshake (ws:) or the TLS handshake
    (wss:, where the timer cancels the connecting itself) fails within open_timeout, and
    leaves no timer behind."""

    async with raw_server(silent_peer, cut_off=True) as url:
        target = url.replace("ws://", f"{scheme}://")
        ws = WebSocket(target, agent=UserAgent(proxy=None, open_timeout=0.3))
        log = events_of(ws)
        start = time.monotonic()
        await asyncio.wait_for(ws.closed, 10 * TIMEOUT)
        elapsed = time.monotonic() - start
    assert log == ["error", "close 1006 False"]
    assert ws.failure is not None
    assert ws.failure.kind == "timeout"
    assert "0.3 s" in ws.failure.reason
    assert 0.3 <= elapsed < 0.3 + 2 * TIMEOUT
    assert len(deadlines_of(asyncio.get_running_loop())) == 0


async def test_close_while_tls_stalls_is_an_abort_not_a_timeout() -> None:
    """close() while the TLS handshake stalls aborts at once: the open timer, set for
    later, neither turns that into a timeout nor stays behind."""

    async with raw_server(silent_peer, cut_off=True) as url:
        ws = WebSocket(
            url.replace("ws://", "wss://"), agent=UserAgent(proxy=None, open_timeout=30)
        )
        log = events_of(ws)
        await asyncio.sleep(0.1)
        ws.close()
        await asyncio.wait_for(ws.closed, 10 * TIMEOUT)
    assert log == ["error", "close 1006 False"]
    assert ws.failure is not None
    assert ws.failure.kind == "aborted"
    assert len(deadlines_of(asyncio.get_running_loop())) == 0


async def test_an_open_connection_holds_no_timer_of_the_loop() -> None:
    """Once open (no keepalive), no timer of the connection is left, nor the loop's shared
    one: a loop with a timer looks at the clock on every turn. Once closed, no timer of the
    connection is left; the loop's stays armed for the next connection."""
    loop = asyncio.get_running_loop()
    deadlines = deadlines_of(loop)
    async with await start_echo_server() as server:
        ws = WebSocket(server.url, agent=UserAgent(proxy=None, open_timeout=30))
        assert len(deadlines) == 0  # The open timer is set when connecting starts.
        await ws.opened
        assert len(deadlines) == 0
        assert deadlines._armed is None
        ws.close()
        assert len(deadlines) == 1  # Waiting for the server's Close.
        await asyncio.wait_for(ws.closed, 10 * TIMEOUT)
        assert len(deadlines) == 0
        # (The timer descriptor's timer needs no asyncio timer at all.)
        assert (deadlines._armed is None) == (deadlines._timer_fd >= 0)


async def test_handshake_response_that_never_ends_is_bounded() -> None:
    """Headers that never end fail the connection once they pass the size limit."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\n")
        for _ in range(200):
            writer.write(b"X-Filler: " + b"a" * 1000 + b"\r\n")
            await writer.drain()
        await asyncio.sleep(60)

    async with raw_server(handler, cut_off=True) as url:
        ws = WebSocket(url, agent=UserAgent(proxy=None))
        log = events_of(ws)
        await asyncio.wait_for(ws.closed, 10 * TIMEOUT)
    assert log == ["error", "close 1006 False"]
    assert ws.failure is not None
    assert ws.failure.kind == "handshake"
    assert "exceeds" in ws.failure.reason


async def test_peer_that_stops_reading() -> None:
    """A peer that stops reading while we send: close() still ends within close_timeout,
    and bufferedAmount shows what never left."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(switching_protocols(await read_request(reader)))
        await asyncio.sleep(60)  # Never reads: the socket buffers fill up.

    async with raw_server(handler, cut_off=True) as url:
        ws = WebSocket(url, agent=UserAgent(proxy=None, close_timeout=0.3))
        events_of(ws)
        await ws.opened
        chunk = b"x" * (1024 * 1024)
        for _ in range(32):
            ws.send(chunk)
        await asyncio.sleep(0.1)
        assert ws.bufferedAmount > 0
        start = time.monotonic()
        ws.close(1000)
        event = await asyncio.wait_for(ws.closed, 10 * TIMEOUT)
        elapsed = time.monotonic() - start
    assert (event.code, event.wasClean) == (1006, False)
    assert elapsed < 0.3 + 2 * TIMEOUT


async def test_buffer_full_closes_with_prejudice() -> None:
    """send() past max_buffered_amount closes the connection: error, then close 1006."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(switching_protocols(await read_request(reader)))
        await asyncio.sleep(60)

    async with raw_server(handler, cut_off=True) as url:
        ws = WebSocket(url, agent=UserAgent(proxy=None, max_buffered_amount=4 * 1024 * 1024))
        log = events_of(ws)
        await ws.opened
        chunk = b"x" * (1024 * 1024)
        for _ in range(16):
            ws.send(chunk)
        assert ws.bufferedAmount == 16 * len(chunk)
        await asyncio.wait_for(ws.closed, 10 * TIMEOUT)
    assert log == ["open", "error", "close 1006 False"]
    assert ws.failure is not None
    assert ws.failure.kind == "buffer_full"


async def test_message_too_big_fails_with_1009() -> None:
    """A message over max_message_size fails the connection; the server sees Close 1009;
    a message of exactly the limit is delivered."""
    limit = 1000
    server_saw: list[tuple[int, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(switching_protocols(await read_request(reader)))
        writer.write(bytes([0x82, 126]) + limit.to_bytes(2, "big") + b"a" * limit)
        writer.write(bytes([0x82, 126]) + (limit + 1).to_bytes(2, "big"))
        server_saw.append(await read_client_frame(reader))

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=UserAgent(proxy=None, max_message_size=limit))
        ws.binaryType = "arraybuffer"
        log = events_of(ws)
        sizes: list[int] = []
        ws.onmessage = lambda event: sizes.append(len(cast(bytes, event.data)))
        await asyncio.wait_for(ws.closed, 10 * TIMEOUT)
        while not server_saw:  # Let the server read our Close before it stops.
            await asyncio.sleep(0.01)
    assert sizes == [limit]
    assert log == ["open", "error", "close 1006 False"]
    assert server_saw == [(8, (1009).to_bytes(2, "big"))]


async def test_flood_into_a_slow_consumer_keeps_memory_bounded() -> None:
    """A peer that floods 64 MiB at a consumer slower than the network: the unparsed input
    stays bounded (reading pauses), so traced memory stays far below the flood's size."""
    total = 64 * 1024 * 1024
    frame = bytes([0x82, 126]) + (4096).to_bytes(2, "big") + b"z" * 4096

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(switching_protocols(await read_request(reader)))
        burst = frame * 256
        for _ in range(total // len(burst)):
            writer.write(burst)
            await writer.drain()
        writer.write(bytes([0x88, 2]) + (1000).to_bytes(2, "big"))
        await writer.drain()
        await read_client_frame(reader)

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=UserAgent(proxy=None))
        ws.binaryType = "arraybuffer"
        count = 0

        def slow(event: object) -> None:
            nonlocal count
            count += 1
            if count % 64 == 0:
                time.sleep(0.001)  # A consumer slower than the loopback network.

        ws.onmessage = slow
        tracemalloc.start()
        try:
            closed: CloseEvent = await asyncio.wait_for(ws.closed, 60 * TIMEOUT)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert closed.code == 1000
    assert count == total // (len(frame) * 256) * 256
    assert peak < 16 * 1024 * 1024, f"peak traced memory {peak} bytes"


async def test_logging_shows_lifecycle_not_payload(caplog: pytest.LogCaptureFixture) -> None:
    """The "wsapi" logger tells the lifecycle at DEBUG and never the payload; the
    "wsapi.payload" logger shows messages only when enabled."""
    secret = "secret-payload-4711"

    async def run() -> None:
        async with await start_echo_server() as server:
            async with WebSocket(server.url, agent=UserAgent(proxy=None)) as ws:
                got: asyncio.Future[object] = asyncio.get_running_loop().create_future()
                ws.onmessage = lambda event: got.set_result(event.data)
                ws.send(secret)
                await got
            await ws.closed

    with caplog.at_level(logging.DEBUG, logger="wsapi"):
        logging.getLogger("wsapi.payload").setLevel(logging.INFO)
        await run()
    text = caplog.text
    assert "connecting to ws://127.0.0.1" in text
    assert "WebSocket open" in text
    assert "WebSocket closed: code 1000" in text
    assert secret not in text
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="wsapi.payload"):
        await run()
    assert f"> text (19): {secret!r}" in caplog.text
    assert f"< text (19): {secret!r}" in caplog.text


async def test_buffered_amount_of_a_compressed_message_in_flight() -> None:
    """A compressed message that a peer has not read yet still counts in bufferedAmount (as
    its share of application bytes not yet out), never more than was sent, and 0 once the
    peer has read it all."""
    size = 8 * 1024 * 1024
    # Half-compressible: random bytes over 16 symbols deflate to about half their size.
    data = bytes(0x41 + (b & 0x0F) for b in os.urandom(size))
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        writer.write(
            switching_protocols(request, b"Sec-WebSocket-Extensions: permessage-deflate\r\n")
        )
        await release.wait()  # Read nothing until told: the client's buffers fill up.
        while await reader.read(65536):
            pass

    async with raw_server(handler) as url:
        agent = UserAgent(proxy=None, compression="deflate", close_timeout=0.2)
        ws = WebSocket(url, agent=agent)
        await ws.opened
        assert ws.extensions == "permessage-deflate"
        ws.send(data)
        assert ws.bufferedAmount == size
        await asyncio.sleep(0.2)
        pending = ws.bufferedAmount
        assert 0 < pending <= size
        release.set()
        await asyncio.wait_for(ws.drained(), 10 * TIMEOUT)
        await asyncio.sleep(0)
        assert ws.bufferedAmount == 0
        ws.close()
        await ws.closed  # The peer never answers the Close: close_timeout ends it.
