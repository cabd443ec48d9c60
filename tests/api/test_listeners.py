"""Event listeners on a WebSocket: errors they raise, close() from inside them, async
listeners, event handler order and once."""

from __future__ import annotations

import asyncio

from support import (
    WAIT,
    Log,
    Reader,
    Writer,
    agent,
    answer_close,
    capture_reports,
    close_and_wait,
    close_payload,
    echo_server,
    open_socket,
    raw_server,
    read_request,
    server_frame,
    switching_protocols,
    wait_closed,
    wait_opened,
    wait_until,
)
from wsapi import Event, MessageEvent, WebSocket

# --- listeners -------------------------------------------------------------------------------


async def test_raising_listener_is_reported_and_others_run() -> None:
    """A raising listener is reported to the loop's exception handler; later listeners run."""
    reports = capture_reports()
    calls: list[str] = []

    def bad(_event: Event) -> None:
        calls.append("bad")
        raise ValueError("listener bug")

    async with echo_server() as server:
        ws = WebSocket(server.url, agent=agent())
        ws.addEventListener("open", bad)
        ws.addEventListener("open", lambda _e: calls.append("good"))
        ws.addEventListener("close", bad)
        ws.onclose = lambda _e: calls.append("onclose")
        await wait_opened(ws)
        event = await close_and_wait(ws)
    assert calls == ["bad", "good", "bad", "onclose"]
    assert event.code == 1005
    exceptions = [r.get("exception") for r in reports]
    assert len(exceptions) == 2
    assert all(isinstance(e, ValueError) and str(e) == "listener bug" for e in exceptions)


async def test_close_from_message_listener() -> None:
    """close() in a message listener: messages already read are not dispatched afterwards."""
    payloads: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        request = await read_request(reader)
        writer.write(
            switching_protocols(request) + server_frame(0x1, b"a") + server_frame(0x1, b"b")
        )
        await writer.drain()
        payloads.append(await answer_close(reader, writer))

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=agent())

        def on_message(_event: MessageEvent) -> None:
            ws.close(3000, "enough")
            assert ws.readyState == WebSocket.CLOSING

        ws.onmessage = on_message
        log = Log(ws)
        event = await wait_closed(ws)
    assert log.types() == ["open", "message", "close"]
    assert log.entries[1] == ("message", WebSocket.CLOSING, "a")
    assert payloads == [close_payload(3000, "enough")]
    assert (event.wasClean, event.code) == (True, 3000)


async def test_async_listener_runs_as_task() -> None:
    """An async def listener runs as a task; its failure is reported too."""
    reports = capture_reports()
    async with echo_server() as server:
        ws = WebSocket(server.url, agent=agent())
        log = Log(ws)
        done = asyncio.Event()

        async def reply(event: MessageEvent) -> None:
            await asyncio.sleep(0)
            if event.data == "ping":
                ws.send("pong")
            elif event.data == "pong":
                done.set()
                raise RuntimeError("async listener bug")

        ws.addEventListener("message", reply)
        await wait_opened(ws)
        ws.send("ping")
        await asyncio.wait_for(done.wait(), WAIT)
        await asyncio.sleep(0.01)
        await close_and_wait(ws)
    assert [d for t, _, d in log.entries if t == "message"] == ["ping", "pong"]
    assert [type(r.get("exception")) for r in reports] == [RuntimeError]


async def test_event_handler_keeps_its_first_position() -> None:
    """An on* handler keeps the listener slot where it was first set until it is cleared."""
    order: list[str] = []
    async with echo_server() as server:
        ws = WebSocket(server.url, agent=agent())
        ws.onopen = lambda _e: order.append("onopen-1")
        ws.addEventListener("open", lambda _e: order.append("listener"))
        ws.onopen = lambda _e: order.append("onopen-2")
        ws.onmessage = lambda _e: order.append("onmessage-1")
        ws.addEventListener("message", lambda _e: order.append("message-listener"))
        ws.onmessage = None
        ws.onmessage = lambda _e: order.append("onmessage-2")
        await wait_opened(ws)
        ws.send("x")
        await wait_until(lambda: len(order) >= 4)
        await close_and_wait(ws)
    assert order == ["onopen-2", "listener", "message-listener", "onmessage-2"]


async def test_add_event_listener_once() -> None:
    """A listener added with once runs for the first message only."""
    calls: list[str] = []
    async with echo_server() as server:
        ws, log = await open_socket(server.url, agent=agent())
        ws.addEventListener("message", lambda e: calls.append(e.data), {"once": True})
        ws.send("first")
        ws.send("second")
        assert await log.message() == "first"
        assert await log.message() == "second"
        await close_and_wait(ws)
    assert calls == ["first"]
