"""The life of a WebSocket around its program: what happens when the program drops it, uses
it from another thread, or ends with it still connected (the spec's "make disappear")."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import pytest
from websockets.asyncio.server import ServerConnection, serve

from support import TIMEOUT
from wsapi import MessageEvent, UserAgent, WebSocket

AGENT = UserAgent(proxy=None)


def void(_: object) -> None:
    """Discard a value (a lambda that must return None)."""


@contextmanager
def server_thread(
    handler: Callable[[ServerConnection], Awaitable[None]],
) -> Iterator[str]:
    """A websockets server on its own loop in another thread, so that the client's
    ``asyncio.run()`` can end while the server lives on; yields its URL."""
    ready = threading.Event()
    stop: list[Callable[[], None]] = []
    url: list[str] = []

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            url.append(f"ws://127.0.0.1:{port}/")
            done = asyncio.get_running_loop().create_future()
            loop = asyncio.get_running_loop()
            stop.append(lambda: void(loop.call_soon_threadsafe(done.set_result, None)))
            ready.set()
            await done

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10 * TIMEOUT)
    try:
        yield url[0]
    finally:
        stop[0]()
        thread.join(10 * TIMEOUT)


def test_open_websocket_says_going_away_when_asyncio_run_ends() -> None:
    """An open WebSocket left at the end of asyncio.run() sends Close 1001 and the run
    ends with no warning (no unclosed transport, no pending task)."""
    codes: list[int | None] = []
    closed = threading.Event()

    async def handler(connection: ServerConnection) -> None:
        await connection.wait_closed()
        codes.append(connection.close_code)
        closed.set()

    events: list[str] = []

    async def program(url: str) -> None:
        ws = WebSocket(url, agent=AGENT)
        ws.onclose = lambda event: events.append(f"close {event.code} {event.wasClean}")
        await ws.opened

    with server_thread(handler) as url, warnings.catch_warnings():
        warnings.simplefilter("error")
        asyncio.run(program(url), debug=True)
        assert closed.wait(10 * TIMEOUT)
        gc.collect()
    assert codes == [1001]
    assert events == ["close 1001 True"]


@pytest.mark.server_errors  # (The run ends during the handshake: the server sees it cut.)
def test_connecting_websocket_fails_when_asyncio_run_ends() -> None:
    """A WebSocket still connecting when asyncio.run() ends fails quietly: error, then
    close 1006, and no warning."""
    accepted = threading.Event()
    release = threading.Event()

    async def handler(connection: ServerConnection) -> None:
        await connection.wait_closed()

    async def slow_process_request(connection: ServerConnection, request: object) -> None:
        accepted.set()
        # Hold the handshake until the client is gone.
        while not release.is_set():
            await asyncio.sleep(0.01)

    events: list[str] = []

    async def program(url: str) -> None:
        ws = WebSocket(url, agent=AGENT)
        ws.onerror = lambda event: events.append("error")
        ws.onclose = lambda event: events.append(f"close {event.code}")
        while not accepted.is_set():
            await asyncio.sleep(0.01)

    ready = threading.Event()
    url: list[str] = []
    stop = threading.Event()

    async def server_main() -> None:
        async with serve(handler, "127.0.0.1", 0, process_request=slow_process_request) as srv:
            port = next(iter(srv.sockets)).getsockname()[1]
            url.append(f"ws://127.0.0.1:{port}/")
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.01)

    thread = threading.Thread(target=asyncio.run, args=(server_main(),), daemon=True)
    thread.start()
    assert ready.wait(10 * TIMEOUT)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            asyncio.run(program(url[0]), debug=True)
            gc.collect()
    finally:
        release.set()
        stop.set()
        thread.join(10 * TIMEOUT)
    assert events == ["error", "close 1006"]


async def test_unreferenced_websocket_keeps_delivering_events() -> None:
    """A WebSocket the program no longer references stays alive while it can still
    deliver events (the spec's garbage-collection rules)."""
    received: list[object] = []
    closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handler(connection: ServerConnection) -> None:
        await asyncio.sleep(0.2)
        gc.collect()
        await connection.send("late")
        await connection.close(4000)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]

        def start() -> None:
            ws = WebSocket(f"ws://127.0.0.1:{port}/", agent=AGENT)
            ws.onmessage = lambda event: received.append(event.data)
            ws.onclose = lambda event: closed.set_result(event.code)

        start()
        gc.collect()
        assert await asyncio.wait_for(closed, 10 * TIMEOUT) == 4000
    assert received == ["late"]


IN_A_CYCLE_WITH_ITS_CLOSE_EVENT = {
    "WebSocket",
    "CloseEvent",
    "_EventListener",
    "_EventHandlerCallback",
}
"""The objects a closed WebSocket may leave to the garbage collector: the close event's
``target`` is the WebSocket, which keeps the event for ``closed`` (and a bound method of
its own, ``_mark_stale``); with them, the listeners the program set."""


async def test_closed_connection_is_freed_without_the_garbage_collector() -> None:
    """Once its close event has fired, a WebSocket's connection (the opening, the pump, the
    engine, the transport and its socket) is freed as soon as nothing refers to it: no
    reference cycle leaves it for the garbage collector, whose runs cost a busy program
    more for every connection it holds up."""

    async def echo(connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    loop = asyncio.get_running_loop()
    async with serve(echo, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        gc.collect()
        gc.disable()
        try:
            ws = WebSocket(f"ws://127.0.0.1:{port}/", agent=AGENT)
            opened: asyncio.Future[None] = loop.create_future()
            ws.onopen = lambda _: opened.set_result(None)
            await asyncio.wait_for(opened, 10 * TIMEOUT)
            echoed: asyncio.Future[object] = loop.create_future()
            ws.onmessage = lambda event: echoed.set_result(event.data)
            ws.send("x")
            assert await asyncio.wait_for(echoed, 10 * TIMEOUT) == "x"
            closed: asyncio.Future[int] = loop.create_future()
            ws.onclose = lambda event: closed.set_result(event.code)
            ws.close(1000)
            assert await asyncio.wait_for(closed, 10 * TIMEOUT) == 1000
            await asyncio.sleep(0)  # (The loop drops the handles of the callbacks it ran.)
            del ws
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            left = {
                type(thing).__qualname__
                for thing in gc.garbage
                if str(getattr(type(thing), "__module__", "")).startswith("wsapi")
                or isinstance(thing, socket.socket)
            }
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    assert left - IN_A_CYCLE_WITH_ITS_CLOSE_EVENT == set()
    assert "WebSocket" in left  # (The test sees what the collector found.)


async def test_use_from_another_thread_raises() -> None:
    """send() and close() from a thread other than the loop's raise RuntimeError."""
    async with serve(lambda connection: connection.wait_closed(), "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with WebSocket(f"ws://127.0.0.1:{port}/", agent=AGENT) as ws:
            errors: list[BaseException] = []

            def other_thread() -> None:
                try:
                    ws.send("x")
                except RuntimeError as exc:
                    errors.append(exc)
                try:
                    ws.close()
                except RuntimeError as exc:
                    errors.append(exc)

            await asyncio.to_thread(other_thread)
            assert len(errors) == 2
            assert all("thread" in str(exc) for exc in errors)
            assert ws.readyState == WebSocket.OPEN


def test_constructor_outside_a_running_loop_raises() -> None:
    """WebSocket() with no running event loop raises RuntimeError saying so."""
    with pytest.raises(RuntimeError, match="running asyncio event loop"):
        WebSocket("ws://127.0.0.1:9/", agent=AGENT)


async def test_message_event_is_trusted_and_typed() -> None:
    """Events the library fires are trusted MessageEvents with the spec's fields."""
    async with serve(lambda c: c.send("x"), "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        ws = WebSocket(f"ws://127.0.0.1:{port}/", agent=AGENT)
        got: asyncio.Future[MessageEvent] = asyncio.get_running_loop().create_future()
        ws.onmessage = got.set_result
        event = await got
        assert event.isTrusted
        assert (event.type, event.data, event.lastEventId) == ("message", "x", "")
        assert event.source is None
        assert event.target is ws
        ws.close()
        await ws.closed
