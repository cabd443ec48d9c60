"""The connection pump (pump.py) against real peers: the websockets library's server and raw
asyncio servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
import time

import pytest
from websockets.asyncio.server import ServerConnection, serve

from support import (
    TIMEOUT,
    Recorder,
    agent,
    connect,
    raw_server,
    read_client_frame,
    read_request,
    send,
    server_frame,
    switching_protocols,
    wait_closed,
)
from wsapi import MessageEvent, WebSocket
from wsapi.echo import start_echo_server
from wsapi.errors import ConnectionFailure
from wsapi.protocol.engine import State
from wsapi.pump import READ_HIGH_WATER


async def test_round_trip_with_websockets_server() -> None:
    """Text and binary messages of many sizes come back unchanged from a real server."""
    async with await start_echo_server() as server:
        transport, recorder = await connect(server.url)
        assert transport is not None
        await recorder.opened
        messages: list[str | bytes] = ["", "é" * 70_000, b"", bytes(range(256)) * 4096]
        for message in messages:
            send(transport, message)
        while len([k for k in recorder.kinds() if k == "message"]) < len(messages):
            await asyncio.sleep(0.01)
        transport.start_the_closing_handshake(1000, "done")
        assert await recorder.closed == (True, 1000, "done")
    received = [value for kind, value in recorder.log if kind == "message"]
    assert received == messages
    assert recorder.kinds()[0] == "open"


async def test_server_initiated_close_is_clean() -> None:
    """A server's Close is echoed; the close is clean with the server's code and reason."""

    async def handler(connection: ServerConnection) -> None:
        await connection.close(4001, "bye")

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        transport, recorder = await connect(f"ws://127.0.0.1:{port}/")
        assert await recorder.closed == (True, 4001, "bye")
    assert recorder.kinds() == ["open", "close_frame", "closed"]
    assert transport is not None
    assert transport.engine.state is State.CLOSED


async def test_subprotocol_selected() -> None:
    """The echo server selects the requested subprotocol and the handler sees it."""
    async with await start_echo_server() as server:
        transport, recorder = await connect(server.url, protocols=("chat", "superchat"))
        assert transport is not None
        await recorder.opened
        assert recorder.log[0] == ("open", "chat")
        transport.start_the_closing_handshake()
        assert await recorder.closed == (True, 1005, "")


async def test_connection_refused_fails() -> None:
    """A refused TCP connection ends in failure, then closed 1006, not clean."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    transport, recorder = await connect(f"ws://127.0.0.1:{port}/")
    assert transport is None
    assert await recorder.closed == (False, 1006, "")
    assert recorder.kinds() == ["failure", "closed"]
    assert recorder.failure().kind == "refused"
    assert f"127.0.0.1:{port} refused the connection" in recorder.failure().reason


async def test_http_404_fails_with_status() -> None:
    """A non-101 response fails the connection; the failure keeps the status and headers."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 404 Not Found\r\nX-Why: nope\r\nContent-Length: 0\r\n\r\n")
        await reader.read()

    async with raw_server(handler) as url:
        _, recorder = await connect(url)
        assert await recorder.closed == (False, 1006, "")
    failure = recorder.failure()
    assert failure.status_code == 404
    assert ("x-why", "nope") in failure.raw_headers
    assert failure.headers["X-Why"] == "nope"
    assert "404" in failure.reason
    assert failure.kind == "http_status"
    assert recorder.kinds() == ["failure", "closed"]


async def test_open_timeout_on_silent_server() -> None:
    """A server that accepts TCP and never answers fails within open_timeout."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with raw_server(handler) as url:
        start = time.monotonic()
        _, recorder = await connect(url, open_timeout=0.3 * TIMEOUT)
        assert await recorder.closed == (False, 1006, "")
        assert time.monotonic() - start < 5 * TIMEOUT
    assert recorder.failure().kind == "timeout"
    assert "did not open within" in recorder.failure().reason


async def test_abrupt_tcp_close_after_open_fails() -> None:
    """TCP closed without a Close frame after open: failure, then 1006 (RFC 6455 7.2.1)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(switching_protocols(await read_request(reader)) + server_frame(1, b"hi"))
        await writer.drain()

    async with raw_server(handler) as url:
        _, recorder = await connect(url)
        assert await recorder.closed == (False, 1006, "")
    assert recorder.kinds() == ["open", "message", "failure", "closed"]
    assert recorder.failure().kind == "connection_lost"


async def test_101_and_close_in_one_packet() -> None:
    """A 101 followed by a Close in the same write: open, the Close, a clean close."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        close = server_frame(8, (1000).to_bytes(2, "big") + b"now")
        writer.write(switching_protocols(request) + close)
        assert await read_client_frame(reader) == (8, (1000).to_bytes(2, "big") + b"now")

    async with raw_server(handler) as url:
        _, recorder = await connect(url)
        assert await recorder.closed == (True, 1000, "now")
    assert recorder.kinds() == ["open", "close_frame", "closed"]


async def test_reply_to_message_precedes_failure_on_next_frame() -> None:
    """A reply to message N goes out before a bad frame N+1 fails the connection."""
    server_saw: list[tuple[int, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        reserved_opcode = server_frame(3, b"")
        writer.write(switching_protocols(request) + server_frame(1, b"first") + reserved_opcode)
        server_saw.append(await read_client_frame(reader))
        server_saw.append(await read_client_frame(reader))

    def reply(recorder: Recorder, data: str | bytes) -> None:
        assert isinstance(data, str)
        assert recorder.transport is not None
        send(recorder.transport, "echo " + data)

    async with raw_server(handler) as url:
        _, recorder = await connect(url, on_message=reply)
        assert await recorder.closed == (False, 1006, "")
        while len(server_saw) < 2:  # Let the server read what was sent before it stops.
            await asyncio.sleep(0.01)
    assert server_saw == [(1, b"echo first"), (8, (1002).to_bytes(2, "big"))]
    assert recorder.kinds() == ["open", "message", "failure", "closed"]
    assert recorder.failure().kind == "protocol"


async def test_close_timeout_when_peer_never_answers_close() -> None:
    """Our Close unanswered: the connection is dropped within close_timeout, 1006, told
    through the close-timeout hook, not as a failure."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(switching_protocols(await read_request(reader)))
        await reader.read()

    async with raw_server(handler) as url:
        transport, recorder = await connect(url, close_timeout=0.3 * TIMEOUT)
        assert transport is not None
        await recorder.opened
        start = time.monotonic()
        transport.start_the_closing_handshake(1000)
        assert await recorder.closed == (False, 1006, "")
        assert time.monotonic() - start < 5 * TIMEOUT
    # Not a failure: its own hook, then the close.
    assert recorder.kinds() == ["open", "close_timeout", "closed"]
    timed_out = recorder.log[1][1]
    assert isinstance(timed_out, ConnectionFailure)
    assert timed_out.kind == "close_timeout"


async def test_peer_keeps_tcp_open_after_closing_handshake() -> None:
    """After both Close frames, a peer that keeps TCP open is dropped within close_timeout;
    the close is still clean (the handshake completed)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(switching_protocols(await read_request(reader)))
        assert (await read_client_frame(reader))[0] == 8
        writer.write(server_frame(8, (1000).to_bytes(2, "big")))
        await reader.read()

    async with raw_server(handler) as url:
        transport, recorder = await connect(url, close_timeout=0.3 * TIMEOUT)
        assert transport is not None
        await recorder.opened
        start = time.monotonic()
        transport.start_the_closing_handshake(1000)
        assert await recorder.closed == (True, 1000, "")
        assert time.monotonic() - start < 5 * TIMEOUT


async def test_reading_pauses_while_messages_wait() -> None:
    """A flood of messages does not grow the unparsed buffer far past the high-water mark."""
    count = 40_000
    payload = b"x" * 1000

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(switching_protocols(await read_request(reader)))
        frame = server_frame(2, payload)
        for _ in range(count // 100):
            writer.write(frame * 100)
            await writer.drain()
        writer.write(server_frame(8, (1000).to_bytes(2, "big")))
        await writer.drain()
        await read_client_frame(reader)

    peak = 0

    def watch(recorder: Recorder, data: str | bytes) -> None:
        nonlocal peak
        assert recorder.transport is not None
        peak = max(peak, recorder.transport.engine.buffered)

    async with raw_server(handler) as url:
        _, recorder = await connect(url, on_message=watch)
        assert await recorder.closed == (True, 1000, "")
    assert len([k for k in recorder.kinds() if k == "message"]) == count
    # One read (at most 256 KiB on the default loop) can land past the mark.
    assert peak <= READ_HIGH_WATER + 256 * 1024


async def test_message_larger_than_the_high_water_mark_arrives() -> None:
    """A single message bigger than the high-water mark, read in many pieces, is delivered:
    an incomplete frame never pauses reading (nothing would resume it)."""
    payload = b"y" * (4 * READ_HIGH_WATER)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(switching_protocols(await read_request(reader)))
        frame = server_frame(2, payload)
        for start in range(0, len(frame), 64 * 1024):
            writer.write(frame[start : start + 64 * 1024])
            await writer.drain()
        writer.write(server_frame(8, (1000).to_bytes(2, "big")))
        await writer.drain()
        await read_client_frame(reader)

    received: list[str | bytes] = []
    async with raw_server(handler) as url:
        _, recorder = await connect(url, on_message=lambda _, data: received.append(data))
        assert await asyncio.wait_for(recorder.closed, 20 * TIMEOUT) == (True, 1000, "")
    assert received == [payload]


async def test_handler_exception_is_reported_and_pump_continues() -> None:
    """A handler that raises is reported to the loop's exception handler; later events
    still arrive."""
    reported: list[object] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda loop, context: reported.append(context["exception"]))
    async with await start_echo_server() as server:
        transport, recorder = await connect(server.url)
        assert transport is not None

        def explode(data: str | bytes) -> None:
            raise RuntimeError(f"boom {data!r}")

        recorder.on_message_hook = explode
        await recorder.opened
        send(transport, "a")
        send(transport, "b")
        while len(reported) < 2:
            await asyncio.sleep(0.01)
        transport.start_the_closing_handshake(1000)
        assert await recorder.closed == (True, 1000, "")
    assert [str(exc) for exc in reported] == ["boom 'a'", "boom 'b'"]


# A frame that one read cuts in two: its start, then a pause, then the rest. What the start
# alone lets the client see (a violation, bad UTF-8, a size past the limit) fails the
# connection before the rest comes; otherwise the client waits for it, quietly.
EURO = "\u20ac\u20ac"
ACCENTS = "h\u00e9llo w\u00f6rld"
CUT_FRAMES: list[tuple[str, bytes, int, int | str | bytes]] = [
    # (case, frame, bytes in the first read, the client's Close code before the rest, or
    # the message it gets once it has waited for the rest)
    ("half a header", server_frame(0x1, b"hello"), 1, "hello"),
    ("ascii text", server_frame(0x1, b"hello world"), 7, "hello world"),
    ("binary", server_frame(0x2, bytes(range(200))), 60, bytes(range(200))),
    ("utf-8 text", server_frame(0x1, ACCENTS.encode()), 6, ACCENTS),
    ("text cut in a character", server_frame(0x1, EURO.encode()), 3, EURO),
    ("bad utf-8", server_frame(0x1, b"ab\xffcdef"), 5, 1007),
    ("past the size limit", server_frame(0x2, bytes(2000)), 100, 1009),
    ("an rsv bit", bytes([0xC1, 5]) + b"hello", 4, 1002),
    ("a masked frame", bytes([0x81, 0x85]) + bytes(4) + b"hello", 7, 1002),
]


@pytest.mark.parametrize(
    ("frame", "cut", "outcome"),
    [case[1:] for case in CUT_FRAMES],
    ids=[case[0] for case in CUT_FRAMES],
)
async def test_a_frame_cut_in_two_fails_early_or_waits(
    frame: bytes, cut: int, outcome: int | str | bytes
) -> None:
    """In both builds, a frame that arrives in two reads: the connection fails on its start
    alone when that start already breaks a rule (the Close goes out before the rest is
    sent), else nothing happens until the rest, and then the whole message arrives."""
    seen: list[object] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(switching_protocols(await read_request(reader)))
        writer.write(frame[:cut])
        await writer.drain()
        try:
            opcode, payload = await asyncio.wait_for(read_client_frame(reader), 0.2 * TIMEOUT)
        except asyncio.TimeoutError:  # (Not the builtin TimeoutError before 3.11.)
            seen.append("waited")
            writer.write(frame[cut:])
            await writer.drain()
            opcode, payload = await read_client_frame(reader)
            writer.write(server_frame(0x8, payload))
        seen.append((opcode, int.from_bytes(payload[:2], "big")))

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=agent(max_message_size=1000))
        ws.binaryType = "arraybuffer"
        messages: list[object] = []

        def on_message(event: MessageEvent) -> None:
            messages.append(event.data)
            ws.close(1000)

        ws.onmessage = on_message
        closed = await wait_closed(ws)
    if isinstance(outcome, int):
        assert seen == [(0x8, outcome)]
        assert messages == []
        assert not closed.wasClean
    else:
        assert seen == ["waited", (0x8, 1000)]
        assert messages == [outcome]
        assert closed.wasClean
