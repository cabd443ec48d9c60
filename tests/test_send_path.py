"""send() and the read path as the compiled build (websocket.py compiled, _reading.pyx,
_socket.pyx) and the Python code give them: the same frames on the wire, each with a fresh key,
and the same bufferedAmount, inside the pump's callback (onmessage) and outside it (a task),
with the transport's buffer empty or holding a message. The whole suite runs on both paths (CI
sets WSAPI_PURE_PYTHON=1 for the second run); test_socket_transport checks the socket calls
themselves in both forms, and test_compiled_twins which path is in use."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

import wsapi.opening as opening_module
import wsapi.pump as pump_module
from support import (
    TIMEOUT,
    WAIT,
    agent,
    blocking_server,
    raw_server,
    read_client_frame,
    read_request,
    server_frame,
    switching_protocols,
    xor,
)
from wsapi import MessageEvent, WebSocket
from wsapi.deadlines import deadlines_of


def wire_frames(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """The client's frames in ``data``: (first byte, masking key, unmasked payload; a
    payload over 1 MiB is left masked, only its length is checked)."""
    frames = []
    pos = 0
    while pos < len(data):
        first, second = data[pos], data[pos + 1]
        assert second & 0x80, "a client frame is not masked"
        length, pos = second & 0x7F, pos + 2
        if length == 126:
            length, pos = int.from_bytes(data[pos : pos + 2], "big"), pos + 2
        elif length == 127:
            length, pos = int.from_bytes(data[pos : pos + 8], "big"), pos + 8
        key, pos = data[pos : pos + 4], pos + 4
        payload = data[pos : pos + length]
        frames.append((first, key, xor(payload, key) if length <= 1 << 20 else payload))
        pos += length
    return frames


@asynccontextmanager
async def recording_server(
    received: list[bytes], hold: asyncio.Event | None = None
) -> AsyncIterator[str]:
    """A raw server that opens the connection, sends the text message "go", then (once
    ``hold`` is set, if given) records every byte the client sends until its Close frame,
    which it answers."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(switching_protocols(await read_request(reader)))
        writer.write(server_frame(0x1, b"go"))
        await writer.drain()
        if hold is not None:
            await hold.wait()
        data = bytearray()
        while not any(first == 0x88 for first, _, _ in wire_frames_complete(bytes(data))):
            chunk = await reader.read(1 << 20)
            if not chunk:
                break
            data += chunk
        received.append(bytes(data))
        writer.write(server_frame(0x8, b"\x03\xe8"))
        await writer.drain()

    async with raw_server(handler) as url:
        yield url


def wire_frames_complete(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """``wire_frames`` of the whole frames at the start of ``data``."""
    end = 0
    pos = 0
    while pos + 2 <= len(data):
        length, header = data[pos + 1] & 0x7F, 2
        if length == 126:
            if pos + 4 > len(data):
                break
            length, header = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
        elif length == 127:
            if pos + 10 > len(data):
                break
            length, header = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
        if pos + header + 4 + length > len(data):
            break
        pos += header + 4 + length
        end = pos
    return wire_frames(data[:end])


# (what send() is given, the frame's first byte, its payload) -- str in CR mode.
SENDS: list[tuple[str | bytes | bytearray | memoryview, int, bytes]] = [
    ("hello", 0x81, b"hello"),
    ("h\u00e9llo \u20ac", 0x81, "h\u00e9llo \u20ac".encode()),
    ("a\ud83d\ude00b", 0x81, "a\U0001f600b".encode()),  # a pair: the character it encodes
    ("\U0001f600" * 40, 0x81, "\U0001f600".encode() * 40),  # 160 bytes: a 16-bit length
    ("", 0x81, b""),
    (b"\x00\xff", 0x82, b"\x00\xff"),
    (b"", 0x82, b""),
    (bytearray(b"array"), 0x82, b"array"),
    (memoryview(b"0123456789")[2:5], 0x82, b"234"),
    ("x" * 70000, 0x81, b"x" * 70000),  # a 64-bit length
]


def send_all(ws: WebSocket, seen: list[int]) -> None:
    for data, _, _ in SENDS:
        ws.send(data)
        seen.append(ws.bufferedAmount)


def send_all_in_a_task(ws: WebSocket, seen: list[int]) -> asyncio.Task[None]:
    async def sends() -> None:
        send_all(ws, seen)

    return asyncio.ensure_future(sends())


def expected_amounts() -> list[int]:
    total, amounts = 0, []
    for _, _, payload in SENDS:
        total += len(payload)
        amounts.append(total)
    return amounts


Start = Callable[[WebSocket, list[int]], "asyncio.Task[None] | None"]


async def run_sends(start: Start) -> tuple[list[int], bytes]:
    """Open a connection to the recording server, call ``start`` when "go" arrives (and
    await the task it returns, if any), close; the bufferedAmount values ``start`` saw, then
    the value in a later callback, and what reached the server."""
    received: list[bytes] = []
    seen: list[int] = []
    async with recording_server(received) as url:
        ws = WebSocket(url, agent=agent())
        started: asyncio.Future[asyncio.Task[None] | None]
        started = asyncio.get_running_loop().create_future()

        def on_message(event: MessageEvent) -> None:
            assert event.data == "go"
            started.set_result(start(ws, seen))

        ws.onmessage = on_message
        task = await asyncio.wait_for(started, WAIT)
        if task is not None:
            await asyncio.wait_for(task, WAIT)
        await asyncio.sleep(0)
        seen.append(ws.bufferedAmount)  # a later callback: everything went out
        ws.close()
        event = await asyncio.wait_for(ws.closed, WAIT)
        assert event.wasClean
    return seen, received[0]


def check_wire(data: bytes) -> None:
    frames = wire_frames(data)
    assert [(first, payload) for first, _, payload in frames[:-1]] == [
        (first, payload) for _, first, payload in SENDS
    ]
    assert frames[-1][0] == 0x88
    keys = [key for _, key, _ in frames]
    assert len(set(keys)) == len(keys), "a masking key was used twice"
    assert b"\x00\x00\x00\x00" not in keys


def check_big_then_after(data: bytes, size: int) -> None:
    """``data`` holds a binary message of ``size`` bytes, the text "after", then a Close,
    each whole."""
    frames = wire_frames(data)
    assert [(first, len(payload)) for first, _, payload in frames] == [
        (0x82, size),
        (0x81, 5),
        (0x88, 0),
    ]
    assert frames[1][2] == b"after"


async def test_sends_inside_onmessage() -> None:
    """Sends in the pump's callback: each counted at once, all gone a callback later."""
    seen, data = await run_sends(send_all)  # (send_all returns None: no task)
    assert seen == [*expected_amounts(), 0]
    check_wire(data)


async def test_sends_from_a_task() -> None:
    """The same sends from a task of their own (outside the pump's callback)."""
    seen, data = await run_sends(send_all_in_a_task)
    assert seen == [*expected_amounts(), 0]
    check_wire(data)


async def test_send_behind_a_message_held_in_the_transport() -> None:
    """A message the transport still holds (the server does not read) stays counted; a
    send in a later callback adds to it; all of it goes once the server reads."""
    received: list[bytes] = []
    hold = asyncio.Event()
    big = b"\x01" * (32 << 20)  # more than the socket buffers take
    async with recording_server(received, hold) as url:
        ws = WebSocket(url, agent=agent())
        ws.binaryType = "arraybuffer"
        got: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()

        def on_message(event: MessageEvent) -> None:
            ws.send(big)
            amounts = [ws.bufferedAmount]
            asyncio.get_running_loop().call_soon(later, amounts)

        def later(amounts: list[int]) -> None:
            held = ws.bufferedAmount  # a new callback: measured afresh
            ws.send("after")
            got.set_result([*amounts, held, ws.bufferedAmount])

        ws.onmessage = on_message
        first, held, after = await asyncio.wait_for(got, WAIT)
        assert first == len(big)
        assert 0 < held <= len(big)
        assert after == held + 5
        hold.set()
        await asyncio.wait_for(ws.drained(), WAIT)
        assert ws.bufferedAmount == 0
        ws.close()
        assert (await asyncio.wait_for(ws.closed, WAIT)).wasClean
    check_big_then_after(received[0], len(big))


async def test_plain_tcp_frames_may_go_to_the_socket_directly() -> None:
    """On plain TCP (POSIX) the pump knows its socket's descriptor (for the end-of-stream
    peek; test_sends_* check the bytes on the wire); over TLS it never does (test_tls)."""
    received: list[bytes] = []
    async with recording_server(received) as url:
        ws = WebSocket(url, agent=agent())
        await asyncio.wait_for(ws.opened, WAIT)
        connection = ws._pump
        assert connection is not None
        assert connection.transport is not None
        sock = connection.transport.get_extra_info("socket")
        expected = -1 if sys.platform == "win32" else sock.fileno()
        assert connection._fd == expected
        ws.close()
        assert (await asyncio.wait_for(ws.closed, WAIT)).wasClean


async def test_subclass_and_own_attributes() -> None:
    """A script may set attributes of its own on a WebSocket, and subclass it."""

    class Tagged(WebSocket):
        def send(self, data: str | bytes) -> None:  # type: ignore[override]
            self.sent = getattr(self, "sent", 0) + 1
            super().send(data)

    received: list[bytes] = []
    async with recording_server(received) as url:
        ws = Tagged(url, agent=agent())
        ws.label = "mine"  # type: ignore[attr-defined]
        ws.onmessage = lambda _event: ws.send("tagged")
        await asyncio.wait_for(ws.opened, WAIT)
        await asyncio.sleep(0.05 * TIMEOUT)
        ws.close()
        assert (await asyncio.wait_for(ws.closed, WAIT)).wasClean
        assert ws.label == "mine"  # type: ignore[attr-defined]
        assert ws.sent == 1
    assert [payload for _, _, payload in wire_frames(received[0])] == [b"tagged", b""]


async def test_payload_logging_follows_the_logger_while_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Payload logging is read afresh for each read and each send outside the pump: turned
    on mid-connection, the next messages both ways are logged; the logger disabled, none."""
    logger = logging.getLogger("wsapi.payload")
    level = logger.level  # (The library's own, INFO: the other tests rely on it.)

    async def exchange(ws: WebSocket, text: str) -> None:
        got: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        ws.onmessage = lambda event: got.set_result(event.data)
        ws.send(text)
        assert await asyncio.wait_for(got, WAIT) == text

    async with echo_url() as url:
        ws = WebSocket(url, agent=agent())
        await asyncio.wait_for(ws.opened, WAIT)
        try:
            with caplog.at_level(logging.DEBUG, logger="wsapi.payload"):
                logger.setLevel(logging.INFO)
                await exchange(ws, "quiet-1")
                logger.setLevel(logging.DEBUG)
                await exchange(ws, "loud-2")
                logger.disabled = True
                await exchange(ws, "quiet-3")
        finally:
            logger.disabled = False
            logger.setLevel(level)
        ws.close()
        assert (await asyncio.wait_for(ws.closed, WAIT)).wasClean
    text = caplog.text
    assert "> text (6): 'loud-2'" in text
    assert "< text (6): 'loud-2'" in text
    assert "quiet" not in text


@asynccontextmanager
async def echo_url() -> AsyncIterator[str]:
    """A raw echo server: every text frame back, unmasked; a Close answered."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(switching_protocols(await read_request(reader)))
        await writer.drain()
        while True:
            opcode, payload = await read_client_frame(reader)
            writer.write(server_frame(opcode, payload))
            await writer.drain()
            if opcode == 0x8:
                return

    async with raw_server(handler) as url:
        yield url


def receive_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        assert chunk, "the client's end of stream came early"
        data += chunk
    return data


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX peek")
async def test_the_end_of_stream_behind_a_close_is_taken_without_a_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In both builds, a server's end of stream already behind its Close (ours sent first)
    is taken in the callback that hands over the Close: no further read of the socket
    (eof_received never comes), and the close is clean."""
    ends: list[str] = []

    class Pump(pump_module.ConnectionPump):
        # (A subclass: the compiled pump's type cannot be patched.)
        def eof_received(self) -> bool:
            ends.append("eof_received")
            return super().eof_received()

    monkeypatch.setattr(opening_module, "ConnectionPump", Pump)
    answered = threading.Event()

    def answer(connection: socket.socket) -> None:
        receive_exactly(connection, 6)  # Our Close: no body, masked.
        connection.sendall(b"\x88\x02\x03\xe8")  # Its Close, 1000,
        connection.shutdown(socket.SHUT_WR)  # and its end of stream.
        answered.set()

    with blocking_server(answer) as url:
        ws = WebSocket(url, agent=agent())
        log: list[str] = []
        ws.onclose = lambda event: log.append(f"close {event.code} {event.wasClean}")
        await asyncio.wait_for(ws.opened, WAIT)
        ws.close()
        # The loop blocked here: the server's Close and end of stream both wait for the
        # client's next read.
        assert answered.wait(WAIT)
        await asyncio.wait_for(ws.closed, WAIT)
    assert log == ["close 1000 True"]
    assert ends == []


@pytest.mark.parametrize("size", [5, 70000])
async def test_a_send_on_an_idle_connection_reaches_the_socket_at_once(size: int) -> None:
    """In both builds, on every loop: while nothing waits to be written, send() hands the
    whole frame to the socket before it returns (the server has it while the client's loop
    is blocked right after the call), and the transport keeps none of it."""
    frames: list[bytes] = []
    received = threading.Event()
    header = 2 + (2 if size >= 126 else 0) + (6 if size >= 65536 else 0) + 4

    def answer(connection: socket.socket) -> None:
        frames.append(receive_exactly(connection, header + size))
        received.set()
        receive_exactly(connection, 6)  # Our Close, answered.
        connection.sendall(b"\x88\x02\x03\xe8")
        connection.shutdown(socket.SHUT_WR)

    with blocking_server(answer) as url:
        ws = WebSocket(url, agent=agent())
        await asyncio.wait_for(ws.opened, WAIT)
        ws.send("x" * size)
        buffered = ws._pump.transport.get_write_buffer_size()  # type: ignore[union-attr]
        assert received.wait(WAIT)  # (The loop blocked.)
        assert buffered == 0
        assert ws.bufferedAmount == size  # (Counted until the loop's turn ends.)
        ws.close()
        await asyncio.wait_for(ws.closed, WAIT)
    assert [(first, payload) for first, _, payload in wire_frames(frames[0])] == [
        (0x81, b"x" * size)
    ]


async def test_a_send_behind_bytes_the_transport_holds_goes_after_them() -> None:
    """On every loop: a frame sent while the transport still holds part of an earlier
    message goes behind that part, even when the socket has room again by then (the server
    read some while the client's loop was blocked, so the transport has not written since):
    the server reads both messages whole and in order."""
    big = b"\x01" * (32 << 20)  # more than the socket buffers take
    big_frame_size = 2 + 8 + 4 + len(big)
    sent_big, made_room = threading.Event(), threading.Event()
    data: list[bytes] = []

    def answer(connection: socket.socket) -> None:
        assert sent_big.wait(WAIT)
        start = receive_exactly(connection, 1 << 20)  # Room in the client's socket.
        made_room.set()
        rest = receive_exactly(connection, big_frame_size - len(start) + 2 + 4 + 5 + 6)
        data.append(start + rest)  # The big frame, "after" and our Close.
        connection.sendall(b"\x88\x02\x03\xe8")
        connection.shutdown(socket.SHUT_WR)

    with blocking_server(answer) as url:
        ws = WebSocket(url, agent=agent())
        await asyncio.wait_for(ws.opened, WAIT)
        ws.send(big)
        assert ws._pump.transport.get_write_buffer_size() > 0  # type: ignore[union-attr]
        sent_big.set()
        assert made_room.wait(WAIT)  # (The loop blocked: the transport wrote nothing since.)
        ws.send("after")
        ws.close()
        assert (await asyncio.wait_for(ws.closed, WAIT)).wasClean
    check_big_then_after(data[0], len(big))


async def test_the_end_of_stream_behind_a_close_frame_closes_cleanly() -> None:
    """A server that sends its Close and its end of stream together (the compiled path then
    takes the end of stream at once): a clean close, every event once, no timer left."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(switching_protocols(await read_request(reader)))
        await read_client_frame(reader)  # Our Close.
        writer.write(b"\x88\x02\x03\xe8")  # Its Close, 1000, and the end at once.
        writer.close()

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=agent())
        log: list[str] = []
        ws.onerror = lambda event: log.append("error")
        ws.onclose = lambda event: log.append(f"close {event.code} {event.wasClean}")
        await asyncio.wait_for(ws.opened, WAIT)
        ws.close()
        await asyncio.wait_for(ws.closed, WAIT)
    assert log == ["close 1000 True"]
    assert len(deadlines_of(asyncio.get_running_loop())) == 0
