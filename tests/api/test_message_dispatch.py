"""The message event as a script sees it, over a real connection to a raw server that writes a
burst of frames in one write: every attribute inside and after its listeners, and the
browser's semantics of listeners added, removed, replaced, once, capture and
stopImmediatePropagation during a dispatch. They run on whichever receive path is active
(``WSAPI_PURE_PYTHON=1`` selects the pure one)."""

from __future__ import annotations

import asyncio

import pytest

from support import (
    TIMEOUT,
    WAIT,
    agent,
    burst_server,
    capture_reports,
    close_cleanly,
    now_ms,
    server_frame,
    texts,
    until,
)
from wsapi import Blob, DOMException, Event, MessageEvent, WebSocket
from wsapi.websocket import BinaryType


def snapshot(event: MessageEvent, ws: WebSocket) -> dict[str, object]:
    """The event as a listener sees it."""
    return {
        "type": event.type,
        "isTrusted": event.isTrusted,
        "eventPhase": event.eventPhase,
        "target": event.target is ws,
        "currentTarget": event.currentTarget is ws,
        "srcElement": event.srcElement is ws,
        "composedPath": event.composedPath() == [ws],
        "bubbles": event.bubbles,
        "cancelable": event.cancelable,
        "composed": event.composed,
        "defaultPrevented": event.defaultPrevented,
        "cancelBubble": event.cancelBubble,
        "origin": event.origin,
        "lastEventId": event.lastEventId,
        "source": event.source,
        "ports": event.ports,
        "readyState": ws.readyState,
        "redispatch": redispatch_error(event, ws),
    }


def redispatch_error(event: MessageEvent, ws: WebSocket) -> str:
    """What dispatching the event again raises (its dispatch flag is set during dispatch)."""
    try:
        ws.dispatchEvent(event)
    except DOMException as exc:
        return exc.name
    return "nothing"


def during(origin: str) -> dict[str, object]:
    """The snapshot every message event must give inside its listener."""
    return {
        "type": "message",
        "isTrusted": True,
        "eventPhase": Event.AT_TARGET,
        "target": True,
        "currentTarget": True,
        "srcElement": True,
        "composedPath": True,
        "bubbles": False,
        "cancelable": False,
        "composed": False,
        "defaultPrevented": False,
        "cancelBubble": False,
        "origin": origin,
        "lastEventId": "",
        "source": None,
        "ports": (),
        "readyState": WebSocket.OPEN,
        "redispatch": "InvalidStateError",
    }


BURST = [
    (0x1, b"one"),
    (0x2, b"\x00\x01\xff"),
    (0x1, b""),
    (0x2, b""),
    (0x1, "h\u00e9llo \U0001f600".encode()),
    (0x2, bytes(range(256)) * 2),  # a 16-bit length
    (0x1, b"x" * 70000),  # a 64-bit length
]


@pytest.mark.parametrize("binary_type", ["arraybuffer", "blob"])
async def test_message_event_during_and_after_dispatch(binary_type: BinaryType) -> None:
    """Every attribute of the message event inside ``onmessage`` and after its dispatch, for
    a burst of text and binary messages: trusted, AT_TARGET with target and currentTarget
    the WebSocket during it, NONE and no currentTarget after; not canceled although the
    handler cancels it; the URL's origin; timeStamp taken at delivery, non-decreasing; data
    a str, bytes ("arraybuffer") or a Blob ("blob")."""
    sent_at: list[float] = []
    burst = b"".join(server_frame(op, payload) for op, payload in BURST)
    events: list[MessageEvent] = []
    seen: list[dict[str, object]] = []
    handled_at: list[float] = []
    done = asyncio.get_running_loop().create_future()
    async with burst_server(burst, sent_at) as url:
        ws = WebSocket(url, agent=agent())
        ws.binaryType = binary_type

        def onmessage(event: MessageEvent) -> bool:
            handled_at.append(now_ms())
            seen.append(snapshot(event, ws))
            event.preventDefault()
            event.stopPropagation()
            events.append(event)
            if len(events) == len(BURST):
                done.set_result(None)
            return False  # HTML: would cancel a cancelable event

        ws.onmessage = onmessage
        await until(done)
        port = url.rsplit(":", 1)[1].strip("/")
        assert seen == [during(f"ws://127.0.0.1:{port}")] * len(BURST)
        for event in events:
            assert event.eventPhase == Event.NONE
            assert event.currentTarget is None
            assert event.target is ws
            assert event.composedPath() == []
            assert event.defaultPrevented is False
            assert event.cancelBubble is False
            assert event.isTrusted is True
            assert type(event) is MessageEvent
        stamps = [event.timeStamp for event in events]
        assert stamps == sorted(stamps)
        assert sent_at[0] - 1.0 <= stamps[0]
        for stamp, handled in zip(stamps, handled_at, strict=True):
            assert -0.001 <= handled - stamp < 1000 * TIMEOUT  # taken at delivery
        for event, (opcode, payload) in zip(events, BURST, strict=True):
            if opcode == 0x1:
                assert type(event.data) is str
                assert event.data == payload.decode()
            elif binary_type == "arraybuffer":
                assert type(event.data) is bytes
                assert event.data == payload
            else:
                assert isinstance(event.data, Blob)
                assert await event.data.bytes() == payload
        await close_cleanly(ws)


async def test_redispatching_a_delivered_event_is_untrusted() -> None:
    """After its dispatch, the delivered event can be dispatched again by the program: it is
    then untrusted and runs the listeners again."""
    done = asyncio.get_running_loop().create_future()
    async with burst_server(texts("once")) as url:
        ws = WebSocket(url, agent=agent())
        calls: list[tuple[object, bool]] = []

        def onmessage(event: MessageEvent) -> None:
            calls.append((event.data, event.isTrusted))
            if not done.done():
                done.set_result(event)

        ws.onmessage = onmessage
        event = await until(done)
        assert ws.dispatchEvent(event) is True
        assert calls == [("once", True), ("once", False)]
        assert event.isTrusted is False
        await close_cleanly(ws)


async def test_handler_exception_is_reported_and_next_message_delivered() -> None:
    """An ``onmessage`` that raises is reported to the loop's exception handler (with the
    exception, the event and the WebSocket), and the next message of the burst is still
    delivered."""
    loop = asyncio.get_running_loop()
    reports = capture_reports()
    bug = RuntimeError("handler bug")
    received: list[str] = []
    done = loop.create_future()
    async with burst_server(texts("boom", "next", "last")) as url:
        ws = WebSocket(url, agent=agent())

        def onmessage(event: MessageEvent) -> None:
            assert isinstance(event.data, str)
            received.append(event.data)
            if event.data == "boom":
                raise bug
            if event.data == "last":
                done.set_result(None)

        ws.onmessage = onmessage
        await until(done)
        assert received == ["boom", "next", "last"]
        assert len(reports) == 1
        context = reports[0]
        assert context["message"].startswith("Exception in 'message' event listener")
        assert context["exception"] is bug
        assert isinstance(context["event"], MessageEvent)
        assert context["event"].data == "boom"
        assert context["target"] is ws
        await close_cleanly(ws)
    assert len(reports) == 1


async def test_async_onmessage_runs_as_a_task() -> None:
    """An ``async def`` onmessage runs as a task, once per message, in order; what it raises
    is reported to the loop's exception handler."""
    loop = asyncio.get_running_loop()
    reports = capture_reports()
    runs: list[tuple[object, bool, int]] = []
    done = loop.create_future()
    async with burst_server(texts("a", "b", "c")) as url:
        ws = WebSocket(url, agent=agent())

        async def onmessage(event: MessageEvent) -> None:
            task = asyncio.current_task()
            runs.append((event.data, task is not None, event.eventPhase))
            await asyncio.sleep(0)
            if event.data == "b":
                raise ValueError("async bug")
            if event.data == "c":
                done.set_result(None)

        ws.onmessage = onmessage
        await until(done)
        # Each task started after its event's dispatch ended.
        assert runs == [("a", True, Event.NONE), ("b", True, Event.NONE), ("c", True, Event.NONE)]
        for _ in range(10):
            if reports:
                break
            await asyncio.sleep(0)
        assert len(reports) == 1
        assert reports[0]["message"].startswith("Exception in 'message' async event listener")
        assert isinstance(reports[0]["exception"], ValueError)
        assert isinstance(reports[0]["task"], asyncio.Task)
        await close_cleanly(ws)


async def test_listener_added_inside_onmessage_gets_the_next_message() -> None:
    """A listener added with addEventListener inside onmessage does not get the message
    being dispatched, but gets the next one."""
    log: list[tuple[str, object]] = []
    done = asyncio.get_running_loop().create_future()
    async with burst_server(texts("1", "2", "3")) as url:
        ws = WebSocket(url, agent=agent())

        def added(event: MessageEvent) -> None:
            log.append(("added", event.data))
            if event.data == "3":
                done.set_result(None)

        def onmessage(event: MessageEvent) -> None:
            log.append(("onmessage", event.data))
            if event.data == "1":
                ws.addEventListener("message", added)

        ws.onmessage = onmessage
        await until(done)
        assert log == [
            ("onmessage", "1"),
            ("onmessage", "2"),
            ("added", "2"),
            ("onmessage", "3"),
            ("added", "3"),
        ]
        await close_cleanly(ws)


async def test_onmessage_replaced_inside_the_handler() -> None:
    """onmessage set to another function inside the handler: the next message goes to the
    new one, the current one is not given to it."""
    log: list[tuple[str, object]] = []
    done = asyncio.get_running_loop().create_future()
    async with burst_server(texts("1", "2", "3")) as url:
        ws = WebSocket(url, agent=agent())

        def second(event: MessageEvent) -> None:
            log.append(("second", event.data))
            if event.data == "3":
                done.set_result(None)

        def first(event: MessageEvent) -> None:
            log.append(("first", event.data))
            ws.onmessage = second

        ws.onmessage = first
        await until(done)
        assert log == [("first", "1"), ("second", "2"), ("second", "3")]
        assert ws.onmessage is second
        await close_cleanly(ws)


async def test_close_inside_onmessage_ends_the_message_events() -> None:
    """close() in the handler of message 1 of a burst of 5: readyState is CLOSING at once,
    no further message event is fired, then the close event comes."""
    log: list[tuple[str, object, int]] = []
    async with burst_server(texts("1", "2", "3", "4", "5")) as url:
        ws = WebSocket(url, agent=agent())

        def onmessage(event: MessageEvent) -> None:
            log.append(("message", event.data, ws.readyState))
            ws.close(1000, "enough")
            log.append(("closed-called", None, ws.readyState))

        ws.onmessage = onmessage
        ws.onclose = lambda event: log.append(("close", event.code, ws.readyState))
        close_event = await asyncio.wait_for(asyncio.shield(ws.closed), WAIT)
        assert close_event.wasClean
        assert log == [
            ("message", "1", WebSocket.OPEN),
            ("closed-called", None, WebSocket.CLOSING),
            ("close", 1000, WebSocket.CLOSED),
        ]


async def test_once_listener_gets_only_the_first_message() -> None:
    """A ``once`` listener gets the first message only; onmessage gets them all, after it
    (it was added first)."""
    log: list[tuple[str, object]] = []
    done = asyncio.get_running_loop().create_future()
    async with burst_server(texts("1", "2", "3")) as url:
        ws = WebSocket(url, agent=agent())

        def once(event: MessageEvent) -> None:
            log.append(("once", event.data))

        def onmessage(event: MessageEvent) -> None:
            log.append(("onmessage", event.data))
            if event.data == "3":
                done.set_result(None)

        ws.addEventListener("message", once, {"once": True})
        ws.onmessage = onmessage
        await until(done)
        assert log == [("once", "1"), ("onmessage", "1"), ("onmessage", "2"), ("onmessage", "3")]
        await close_cleanly(ws)


async def test_once_listener_alone() -> None:
    """A ``once`` listener as the only listener gets the first message; the later ones are
    dispatched to nothing (not to a listener added after they were received)."""
    log: list[MessageEvent] = []
    pong = asyncio.get_running_loop().create_future()
    # The Ping's Pong tells that the engine has parsed every message before it.
    burst = texts("1", "2", "3") + server_frame(0x9, b"sync")
    async with burst_server(burst, pong=pong) as url:
        ws = WebSocket(url, agent=agent())
        ws.addEventListener("message", log.append, {"once": True})
        await until(pong)
        assert [event.data for event in log] == ["1"]
        ws.onmessage = log.append
        await asyncio.sleep(0)
        assert [event.data for event in log] == ["1"]
        await close_cleanly(ws)


async def test_capture_listener_runs_before_onmessage() -> None:
    """A capture listener runs before onmessage (added earlier or not), both AT_TARGET."""
    log: list[tuple[str, object, int]] = []
    done = asyncio.get_running_loop().create_future()
    async with burst_server(texts("1", "2")) as url:
        ws = WebSocket(url, agent=agent())

        def onmessage(event: MessageEvent) -> None:
            log.append(("onmessage", event.data, event.eventPhase))
            if event.data == "2":
                done.set_result(None)

        def capture(event: MessageEvent) -> None:
            log.append(("capture", event.data, event.eventPhase))

        ws.onmessage = onmessage
        ws.addEventListener("message", capture, True)
        await until(done)
        at = Event.AT_TARGET
        assert log == [
            ("capture", "1", at),
            ("onmessage", "1", at),
            ("capture", "2", at),
            ("onmessage", "2", at),
        ]
        await close_cleanly(ws)


async def test_stop_immediate_propagation_in_the_first_of_two_listeners() -> None:
    """stopImmediatePropagation() in the first listener keeps the second from running, for
    that event only: each message reaches the first listener again."""
    log: list[tuple[str, object]] = []
    done = asyncio.get_running_loop().create_future()
    async with burst_server(texts("1", "2", "3")) as url:
        ws = WebSocket(url, agent=agent())

        def first(event: MessageEvent) -> None:
            log.append(("first", event.data))
            if event.data != "2":
                event.stopImmediatePropagation()
            if event.data == "3":
                done.set_result(event)

        def second(event: MessageEvent) -> None:
            log.append(("second", event.data))

        ws.onmessage = first
        ws.addEventListener("message", second)
        event = await until(done)
        assert log == [("first", "1"), ("first", "2"), ("second", "2"), ("first", "3")]
        assert event.cancelBubble is False  # the flags are unset after the dispatch
        await close_cleanly(ws)


async def test_handle_event_objects() -> None:
    """An object with handleEvent is a listener; handleEvent is looked up at each dispatch,
    so replacing it takes effect for the next message."""
    log: list[tuple[str, object, bool]] = []
    done = asyncio.get_running_loop().create_future()
    async with burst_server(texts("1", "2", "3")) as url:
        ws = WebSocket(url, agent=agent())

        class Listener:
            def handleEvent(self, event: MessageEvent) -> None:
                log.append(("original", event.data, event.currentTarget is ws))
                self.handleEvent = self.replacement  # type: ignore[method-assign]

            def replacement(self, event: MessageEvent) -> None:
                log.append(("replacement", event.data, event.currentTarget is ws))
                if event.data == "3":
                    done.set_result(None)

        ws.addEventListener("message", Listener())
        await until(done)
        assert log == [
            ("original", "1", True),
            ("replacement", "2", True),
            ("replacement", "3", True),
        ]
        await close_cleanly(ws)


async def test_listener_removed_during_dispatch_does_not_run() -> None:
    """A listener removed by an earlier listener of the same dispatch does not run, neither
    for that message nor for the next ones."""
    log: list[tuple[str, object]] = []
    done = asyncio.get_running_loop().create_future()
    async with burst_server(texts("1", "2")) as url:
        ws = WebSocket(url, agent=agent())

        def removed(event: MessageEvent) -> None:
            log.append(("removed", event.data))

        def remover(event: MessageEvent) -> None:
            log.append(("remover", event.data))
            ws.removeEventListener("message", removed)
            if event.data == "2":
                done.set_result(None)

        ws.addEventListener("message", remover)
        ws.addEventListener("message", removed)
        await until(done)
        assert log == [("remover", "1"), ("remover", "2")]
        await close_cleanly(ws)


async def test_plain_add_event_listener_return_value_is_ignored() -> None:
    """One listener added with addEventListener (not an event handler): it gets every
    message of the burst, and returning False does not cancel anything."""
    events: list[MessageEvent] = []
    done = asyncio.get_running_loop().create_future()
    async with burst_server(texts("1", "2")) as url:
        ws = WebSocket(url, agent=agent())

        def listener(event: MessageEvent) -> bool:
            events.append(event)
            if event.data == "2":
                done.set_result(None)
            return False

        ws.addEventListener("message", listener)
        await until(done)
        assert [event.data for event in events] == ["1", "2"]
        assert [event.defaultPrevented for event in events] == [False, False]
        await close_cleanly(ws)
