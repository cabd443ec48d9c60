"""The Python conveniences beyond the IDL (DESIGN.md section 1): ``drained()``,
``opened``, ``closed``, ``async with`` and ``failure``, and the public names."""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from support import (
    TIMEOUT,
    WAIT,
    Log,
    Reader,
    Writer,
    accept,
    agent,
    answer_close,
    capture_reports,
    close_and_wait,
    close_payload,
    echo_server,
    open_socket,
    raw_server,
    read_request,
    refused_url,
    switching_protocols,
    wait_closed,
)
from wsapi import CloseEvent, WebSocket, WebSocketError


async def test_drained_returns_once_sent() -> None:
    """``await ws.drained()`` returns once a big message is written; bufferedAmount is then 0."""
    payload = bytes(range(256)) * 16384  # 4 MiB
    async with echo_server() as server:
        ws, log = await open_socket(server.url, agent=agent())
        ws.binaryType = "arraybuffer"
        ws.send(payload)
        assert ws.bufferedAmount == len(payload)
        await asyncio.wait_for(ws.drained(), WAIT)
        assert ws.bufferedAmount == 0
        assert await log.message() == payload
        await asyncio.wait_for(ws.drained(), WAIT)  # nothing pending: returns at once
        await close_and_wait(ws)


async def test_drained_refreshes_buffered_amount() -> None:
    """When ``await ws.drained()`` returns, bufferedAmount already shows what is left (0),
    even when the operating system took the message at once."""
    async with echo_server() as server:
        ws, _log = await open_socket(server.url, agent=agent())
        ws.send(b"x" * 1000)
        assert ws.bufferedAmount == 1000
        await ws.drained()  # (Not under wait_for(), whose own task would hide a missing turn.)
        assert ws.bufferedAmount == 0
        await close_and_wait(ws)


async def test_drained_loop_on_buffered_amount_ends_and_lets_others_run() -> None:
    """``while ws.bufferedAmount > 0: await ws.drained()`` ends after a few turns, and
    each turn lets other tasks run."""
    turns = 0

    async def other_task() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    async with echo_server() as server:
        ws, _log = await open_socket(server.url, agent=agent())
        ticker = asyncio.ensure_future(other_task())
        for size in (10, 4 * 1024 * 1024):
            ws.send(b"x" * size)
            iterations = 0
            while ws.bufferedAmount > 0 and iterations < 1000:
                iterations += 1
                turns_before = turns
                await ws.drained()
                assert turns > turns_before
            assert 1 <= iterations <= 3
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
        await close_and_wait(ws)


@pytest.mark.parametrize(
    ("low_water", "error"),
    [(-1, ValueError), ("10", TypeError), (1.5, TypeError), (True, TypeError), (None, TypeError)],
)
async def test_drained_low_water_is_checked(low_water: Any, error: type[Exception]) -> None:
    """``drained(low_water=...)`` takes an int of 0 or more; anything else is a TypeError
    or ValueError naming the argument."""
    async with echo_server() as server:
        ws, _log = await open_socket(server.url, agent=agent())
        with pytest.raises(error, match="low_water"):
            await ws.drained(low_water=low_water)
        await close_and_wait(ws)


async def test_drained_low_water_keeps_a_slow_reader_fed() -> None:
    """An upload loop on ``drained(low_water=N)`` against a server that reads slowly: a
    wait ends as the pending bytes cross N, before they reach 0 (the pipe stays full),
    never above N; bufferedAmount never passes N plus one message; every byte arrives."""
    chunk = b"u" * (256 * 1024)
    count = 48
    low_water = 1024 * 1024
    frame = 2 + 8 + 4 + len(chunk)  # a header with a 64-bit length and a mask
    received = 0

    async def handler(reader: Reader, writer: Writer) -> None:
        nonlocal received
        await accept(reader, writer)
        while received < count * frame:
            received += len(await reader.read(min(65536, count * frame - received)))
            await asyncio.sleep(0.001)
        await answer_close(reader, writer)

    async with raw_server(handler) as url:
        ws, _log = await open_socket(url, agent=agent())
        # A small kernel send buffer: the socket takes the backlog a little at a time, as
        # on a real network, rather than in bursts of megabytes as on loopback.
        transport = ws._pump
        assert transport is not None
        assert transport.transport is not None
        sock = transport.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        waited: list[int] = []  # bufferedAmount after each drained() that had to wait
        peak = 0
        for _ in range(count):
            before = ws.bufferedAmount
            await asyncio.wait_for(ws.drained(low_water=low_water), WAIT)
            assert ws.bufferedAmount <= low_water
            if before > low_water:
                waited.append(ws.bufferedAmount)
            ws.send(chunk)
            peak = max(peak, ws.bufferedAmount)
        await asyncio.wait_for(ws.drained(), WAIT)
        assert ws.bufferedAmount == 0
        event = await close_and_wait(ws)
    assert event.wasClean
    assert received == count * frame
    assert peak <= low_water + len(chunk)
    assert len(waited) >= count // 8, waited
    assert sum(1 for amount in waited if amount > 0) >= len(waited) // 2, waited


# --- Python conveniences ---------------------------------------------------------------------


async def test_async_with_opens_and_closes_with_1000() -> None:
    """``async with`` enters once open; leaving closes with 1000 and awaits the close event."""
    payloads: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        payloads.append(await answer_close(reader, writer))

    async with raw_server(handler) as url:
        async with WebSocket(url, agent=agent()) as ws:
            assert ws.readyState == WebSocket.OPEN
            log = Log(ws)
        assert ws.readyState == WebSocket.CLOSED
    assert payloads == [close_payload(1000)]
    assert log.entries == [("close", WebSocket.CLOSED, (True, 1000, ""))]


async def test_async_with_exception_closes_with_1001() -> None:
    """An exception out of the ``async with`` body closes with 1001 and propagates."""
    payloads: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        payloads.append(await answer_close(reader, writer))

    async with raw_server(handler) as url:
        with pytest.raises(ZeroDivisionError):
            async with WebSocket(url, agent=agent()) as ws:
                raise ZeroDivisionError
        assert ws.readyState == WebSocket.CLOSED
    assert payloads == [close_payload(1001)]


async def test_async_with_refused_raises_websocket_error() -> None:
    """``async with`` on a connection that fails raises WebSocketError with the failure."""
    with pytest.raises(WebSocketError) as info:
        async with WebSocket(await refused_url(), agent=agent()):
            pytest.fail("the body must not run")
    assert info.value.failure is not None
    assert info.value.failure.kind == "refused"


async def test_opened_raises_for_refused_connection() -> None:
    """``await ws.opened`` raises WebSocketError with ``.failure`` for a refused connection."""
    ws = WebSocket(await refused_url(), agent=agent())
    log = Log(ws)
    with pytest.raises(WebSocketError) as info:
        await asyncio.wait_for(ws.opened, WAIT)
    assert info.value.failure is ws.failure
    assert info.value.failure is not None
    assert info.value.failure.kind == "refused"
    await wait_closed(ws)
    assert log.types() == ["error", "close"]
    with pytest.raises(WebSocketError):
        await ws.opened  # settled: raises again at once


async def test_opened_resolves_after_open_event() -> None:
    """``await ws.opened`` returns once open has been dispatched."""
    async with echo_server() as server:
        ws = WebSocket(server.url, agent=agent())
        log = Log(ws)
        await asyncio.wait_for(ws.opened, WAIT)
        assert log.types() == ["open"]
        assert ws.readyState == WebSocket.OPEN
        await close_and_wait(ws)
        await ws.opened  # still resolved


async def test_unawaited_failure_leaves_nothing_behind() -> None:
    """An unawaited ``opened`` of a failed connection logs nothing when collected."""
    reports = capture_reports()
    url = await refused_url()
    touched = WebSocket(url, agent=agent())
    opened = touched.opened
    untouched = WebSocket(url, agent=agent())
    await wait_closed(touched)
    await wait_closed(untouched)
    del touched, untouched, opened
    for _ in range(3):
        gc.collect()
        await asyncio.sleep(0)
    assert reports == []


async def test_closed_returns_the_close_event() -> None:
    """``await ws.closed`` returns the dispatched CloseEvent, before or after it fired."""
    async with echo_server() as server:
        ws, log = await open_socket(server.url, agent=agent())
        pending = ws.closed
        ws.close(3003, "why")
        event = await asyncio.wait_for(pending, WAIT)
    assert isinstance(event, CloseEvent)
    assert event is log.events[-1]
    assert (event.wasClean, event.code, event.reason) == (True, 3003, "why")
    assert await ws.closed is event


WEBSOCKET_API = {
    # The IDL: constants, attributes, event handlers, methods.
    *("CONNECTING", "OPEN", "CLOSING", "CLOSED", "url", "readyState", "bufferedAmount"),
    *("extensions", "protocol", "binaryType", "send", "close"),
    *("onopen", "onerror", "onclose", "onmessage"),
    # EventTarget.
    *("addEventListener", "removeEventListener", "dispatchEvent"),
    # The documented Python conveniences (with async with's __aenter__/__aexit__).
    *("failure", "opened", "closed", "drained"),
}


async def test_public_names_are_the_documented_api() -> None:
    """Every public name of a WebSocket is the API or a documented convenience: the
    transport's hooks are private."""
    ws = WebSocket(await refused_url(), agent=agent())
    assert {name for name in dir(ws) if not name.startswith("_")} == WEBSOCKET_API
    assert hasattr(ws, "__aenter__")
    assert hasattr(ws, "__aexit__")
    await wait_closed(ws)


async def test_closed_after_a_timed_out_wait_gives_the_close_event() -> None:
    """A timed-out ``wait_for(ws.closed, ...)`` leaves ``await ws.closed`` giving the event."""
    async with echo_server() as server:
        ws, log = await open_socket(server.url, agent=agent())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.closed, 0.01)
        ws.close(1000)
        event = await asyncio.wait_for(ws.closed, WAIT)
        assert await asyncio.wait_for(ws.closed, 0.001) is event
    assert event is log.events[-1]
    assert (event.wasClean, event.code) == (True, 1000)


@asynccontextmanager
async def held_handshake(
    answer: bytes | None, *, dropped: bool = False
) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A raw server that answers the handshake once the event is set: 101 (then echoes the
    Close) when ``answer`` is None, else ``answer`` as the HTTP response. With ``dropped``,
    the client gives up first: the server checks that it closed the connection."""
    release = asyncio.Event()

    async def handler(reader: Reader, writer: Writer) -> None:
        request = await read_request(reader)
        if dropped:
            assert await reader.read() == b""
            return
        await release.wait()
        if answer is not None:
            writer.write(answer)
            await writer.drain()
            return
        writer.write(switching_protocols(request))
        await writer.drain()
        await answer_close(reader, writer)

    async with raw_server(handler) as url:
        yield url, release


async def test_opened_after_a_timed_out_wait_gives_the_opening() -> None:
    """A timed-out ``wait_for(ws.opened, ...)`` leaves ``await ws.opened`` returning None."""
    async with held_handshake(None) as (url, release):
        ws = WebSocket(url, agent=agent())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.opened, 0.01)
        release.set()
        result: object = await asyncio.wait_for(ws.opened, WAIT)
        assert result is None
        assert ws.readyState == WebSocket.OPEN
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.closed, 0.001)
        assert (await close_and_wait(ws)).wasClean


async def test_opened_after_a_timed_out_wait_raises_the_failure() -> None:
    """A timed-out ``wait_for(ws.opened, ...)`` leaves ``await ws.opened`` raising the
    connection's WebSocketError when the handshake then fails."""
    refusal = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
    async with held_handshake(refusal) as (url, release):
        ws = WebSocket(url, agent=agent())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.opened, 0.01)
        release.set()
        with pytest.raises(WebSocketError) as info:
            await asyncio.wait_for(ws.opened, WAIT)
        assert info.value.failure is ws.failure
        assert ws.failure is not None
        assert ws.failure.status_code == 403
        with pytest.raises(WebSocketError):
            await ws.opened
        assert (await wait_closed(ws)).code == 1006


async def test_cancelled_closed_awaiter_leaves_the_others() -> None:
    """Of two tasks awaiting ``ws.closed``, cancelling one leaves the other the event."""
    async with echo_server() as server:
        ws, log = await open_socket(server.url, agent=agent())

        async def wait() -> CloseEvent:
            return await ws.closed

        cancelled = asyncio.ensure_future(wait())
        waiting = asyncio.ensure_future(wait())
        await asyncio.sleep(0.01)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        ws.close(3001)
        event = await asyncio.wait_for(waiting, WAIT)
    assert event is log.events[-1]
    assert (event.wasClean, event.code) == (True, 3001)


async def test_async_with_after_a_timed_out_closed_wait_exits_cleanly() -> None:
    """``async with`` whose block timed out waiting on ``ws.closed`` exits without an
    exception, after a clean close with 1000."""
    async with echo_server() as server:
        async with WebSocket(server.url, agent=agent()) as ws:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.closed, 0.01)
        event = await ws.closed
    assert (event.wasClean, event.code) == (True, 1000)


async def test_cancelling_the_task_in_async_with_propagates() -> None:
    """Cancelling the task that runs an ``async with`` block raises CancelledError from it;
    the connection closes with 1001 on the way out."""
    async with echo_server() as server:
        inside = asyncio.Event()
        sockets: list[WebSocket] = []

        async def block() -> None:
            async with WebSocket(server.url, agent=agent()) as ws:
                sockets.append(ws)
                inside.set()
                await asyncio.sleep(60)

        task = asyncio.ensure_future(block())
        await asyncio.wait_for(inside.wait(), WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT)
        assert task.cancelled()
        event = await asyncio.wait_for(sockets[0].closed, WAIT)
    assert (event.wasClean, event.code) == (True, 1001)


async def test_cancelling_async_with_while_connecting_gives_up_the_connection() -> None:
    """Cancelling the task while ``async with`` waits for open raises CancelledError and
    fails the connection (aborted), rather than leaving it to open unowned."""
    async with held_handshake(None, dropped=True) as (url, release):
        ws = WebSocket(url, agent=agent())
        log = Log(ws)

        async def block() -> None:
            async with ws:
                pytest.fail("the body must not run")

        task = asyncio.ensure_future(block())
        await asyncio.sleep(0.05 * TIMEOUT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        event = await wait_closed(ws)
        release.set()
    assert log.types() == ["error", "close"]
    assert (event.wasClean, event.code) == (False, 1006)
    assert ws.failure is not None
    assert ws.failure.kind == "aborted"
