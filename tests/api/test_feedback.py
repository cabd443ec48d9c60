"""Feedback from the protocol (CR 2011 section 5): the open event once established, message
events and binaryType, and their order with close() around the opening handshake."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.server import ServerConnection, serve

from support import (
    SHORT,
    TIMEOUT,
    WAIT,
    Log,
    Reader,
    Standard,
    Writer,
    agent,
    both_standards,
    close_and_wait,
    close_payload,
    echo_server,
    open_socket,
    raises_dom,
    raw_server,
    read_client_frame,
    read_request,
    server_frame,
    switching_protocols,
    wait_closed,
    wait_opened,
    wait_until,
)
from wsapi import Blob, DOMException, Event, MessageEvent, WebSocket

# --- open and message events -------------------------------------------------------------------


@both_standards
async def test_open_event(standard: Standard) -> None:
    """open is a trusted plain Event fired with readyState OPEN and ``protocol`` already set."""
    seen: list[tuple[int, str, str, type, bool, object]] = []
    async with echo_server() as server:
        ws = WebSocket(server.url, ["p1", "p2"], agent=agent(standard))

        def on_open(event: Event) -> None:
            seen.append(
                (
                    ws.readyState,
                    ws.protocol,
                    ws.extensions,
                    type(event),
                    event.isTrusted,
                    event.target,
                )
            )

        ws.onopen = on_open
        await wait_opened(ws)
        await close_and_wait(ws)
    assert len(seen) == 1
    state, protocol, extensions, event_type, trusted, target = seen[0]
    assert (state, protocol, extensions, event_type, trusted) == (1, "p1", "", Event, True)
    assert target is ws


@both_standards
async def test_extensions_offered_by_default(standard: Standard) -> None:
    """cr-2011 offers no extension; whatwg offers permessage-deflate, set when open fires."""
    offers: list[str | None] = []
    extensions_at_open: list[str] = []

    async def handler(connection: ServerConnection) -> None:
        assert connection.request is not None
        offers.append(connection.request.headers.get("Sec-WebSocket-Extensions"))
        async for message in connection:
            await connection.send(message)

    async with serve(handler, "127.0.0.1", 0, compression="deflate") as server:
        port = next(iter(server.sockets)).getsockname()[1]
        ws = WebSocket(f"ws://127.0.0.1:{port}/", agent=agent(standard))
        ws.onopen = lambda _e: extensions_at_open.append(ws.extensions)
        log = Log(ws)
        await wait_opened(ws)
        ws.send("compressible " * 100)
        assert await log.message() == "compressible " * 100
        await close_and_wait(ws)
    if standard == "cr-2011":
        assert offers == [None]
        assert extensions_at_open == [""]
    else:
        assert offers[0] is not None
        assert "permessage-deflate" in offers[0]
        assert extensions_at_open[0].startswith("permessage-deflate")


@both_standards
async def test_message_events(standard: Standard) -> None:
    """message events: str text, Blob binary, the URL's serialized origin, readyState OPEN."""
    async with echo_server() as server:
        ws, log = await open_socket(server.url, agent=agent(standard))
        ws.send("héllo")
        ws.send(b"\x00\x01\xff")
        assert await log.message() == "héllo"
        blob = await log.message()
        assert isinstance(blob, Blob)
        assert blob.size == 3
        assert await blob.arrayBuffer() == b"\x00\x01\xff"
        await close_and_wait(ws)
    messages = [e for e in log.events if e.type == "message"]
    for event in messages:
        assert isinstance(event, MessageEvent)
        assert event.origin == f"ws://127.0.0.1:{server.port}"
        assert event.lastEventId == ""
        assert event.source is None
        assert event.ports == ()
        assert event.isTrusted
        assert not event.bubbles
        assert not event.cancelable
    assert [state for type_, state, _ in log.entries if type_ == "message"] == [1, 1]


async def test_binary_type_arraybuffer_gives_bytes() -> None:
    """With binaryType "arraybuffer" binary messages arrive as bytes; text stays str."""
    async with echo_server() as server:
        ws, log = await open_socket(server.url, agent=agent())
        ws.binaryType = "arraybuffer"
        ws.send(b"abc")
        ws.send("abc")
        first, second = await log.message(), await log.message()
        assert type(first) is bytes
        assert first == b"abc"
        assert second == "abc"
        await close_and_wait(ws)


async def test_binary_type_switch_between_messages() -> None:
    """binaryType switched in a listener applies to the next message, even one already read."""
    kinds: list[type] = []

    async def handler(connection: ServerConnection) -> None:
        for data in (b"1", b"2", b"3", b"4"):
            await connection.send(data)
        await connection.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        ws = WebSocket(f"ws://127.0.0.1:{port}/", agent=agent())

        def on_message(event: MessageEvent) -> None:
            kinds.append(type(event.data))
            ws.binaryType = "arraybuffer" if ws.binaryType == "blob" else "blob"

        ws.onmessage = on_message
        await wait_until(lambda: len(kinds) == 4)
        await close_and_wait(ws)
    assert kinds == [Blob, bytes, Blob, bytes]


@both_standards
@pytest.mark.parametrize("value", ["other", "", "Blob", "ARRAYBUFFER"])
async def test_binary_type_invalid_value(standard: Standard, value: str) -> None:
    """binaryType outside "blob"/"arraybuffer": SyntaxError in cr-2011, ignored in whatwg."""
    async with echo_server() as server:
        ws, _ = await open_socket(server.url, agent=agent(standard))
        ws.binaryType = "arraybuffer"
        if standard == "cr-2011":
            with pytest.raises(DOMException) as info:
                ws.binaryType = value  # type: ignore[assignment]
            raises_dom("SyntaxError", 12)(info)
        else:
            ws.binaryType = value  # type: ignore[assignment]
        assert ws.binaryType == "arraybuffer"
        await close_and_wait(ws)


async def test_listeners_added_after_constructor_see_open() -> None:
    """Listeners added after the constructor still see open: events are queued tasks."""
    async with echo_server() as server:
        ws = WebSocket(server.url, agent=agent())
        log = Log(ws)
        await wait_opened(ws)
        await close_and_wait(ws)
    assert log.types() == ["open", "close"]


async def test_close_in_same_callback_as_constructor() -> None:
    """close() right after the constructor: CLOSING, no event yet, later error and close 1006."""
    requests: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        requests.append(await reader.read(65536))

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=agent())
        log = Log(ws)
        ws.close()
        assert ws.readyState == WebSocket.CLOSING
        assert log.entries == []
        event = await wait_closed(ws, SHORT)
    assert log.entries == [
        ("error", WebSocket.CLOSED, None),
        ("close", WebSocket.CLOSED, (False, 1006, "")),
    ]
    assert (event.wasClean, event.code) == (False, 1006)
    assert ws.failure is not None
    assert ws.failure.kind == "aborted"


@both_standards
async def test_close_while_handshake_pending(standard: Standard) -> None:
    """close() during the handshake: CLOSING, no event yet, later error and close 1006."""
    got_request = asyncio.Event()

    async def handler(reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        got_request.set()
        await reader.read()  # until the client drops the connection

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=agent(standard))
        log = Log(ws)
        await asyncio.wait_for(got_request.wait(), WAIT)
        assert ws.readyState == WebSocket.CONNECTING
        ws.close()
        assert ws.readyState == WebSocket.CLOSING
        assert log.entries == []
        ws.close()  # CLOSING: nothing more
        await wait_closed(ws)
    assert log.entries == [
        ("error", WebSocket.CLOSED, None),
        ("close", WebSocket.CLOSED, (False, 1006, "")),
    ]
    assert ws.failure is not None
    assert ws.failure.kind == "aborted"


async def test_message_in_same_read_as_close_is_dispatched_while_open() -> None:
    """A message read together with the server's Close is dispatched with readyState OPEN."""
    client_close: list[bytes] = []
    states: list[int] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        request = await read_request(reader)
        writer.write(
            switching_protocols(request)
            + server_frame(0x1, b"last words")
            + server_frame(0x8, close_payload(1000, "bye"))
        )
        await writer.drain()
        _, payload = await read_client_frame(reader)
        client_close.append(payload)
        await asyncio.sleep(0.3 * TIMEOUT)  # keep TCP open: the client waits in CLOSING

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=agent())
        log = Log(ws)
        ws.addEventListener("message", lambda _e: states.append(ws.readyState))
        await log.message()
        await wait_until(lambda: ws.readyState != WebSocket.OPEN)
        assert ws.readyState == WebSocket.CLOSING
        assert "close" not in log.types()
        event = await wait_closed(ws)
    assert states == [WebSocket.OPEN]
    assert log.entries == [
        ("open", WebSocket.OPEN, None),
        ("message", WebSocket.OPEN, "last words"),
        ("close", WebSocket.CLOSED, (True, 1000, "bye")),
    ]
    assert (event.wasClean, event.code, event.reason) == (True, 1000, "bye")
    assert client_close[0][:2] == close_payload(1000)
