"""send() (CR 2011 section 4): what it accepts and sends on the wire, and bufferedAmount."""

from __future__ import annotations

import array
import asyncio
import struct
import time
from typing import Any

import pytest

from support import (
    SHORT,
    TIMEOUT,
    Log,
    Standard,
    agent,
    both_standards,
    close_and_wait,
    echo_server,
    open_socket,
    raises_dom,
    wait_closed,
    wait_opened,
    wait_until,
)
from wsapi import Blob, DOMException, Event, WebSocket

# --- send() ----------------------------------------------------------------------------------


@both_standards
async def test_send_while_connecting_is_invalid_state_error(standard: Standard) -> None:
    """send() while CONNECTING raises InvalidStateError and counts nothing."""
    async with echo_server() as server:
        ws = WebSocket(server.url, agent=agent(standard))
        for data in ("text", b"bytes"):
            with pytest.raises(DOMException) as info:
                ws.send(data)
            raises_dom("InvalidStateError", 11)(info)
        assert ws.bufferedAmount == 0
        log = Log(ws)
        await wait_opened(ws)
        await close_and_wait(ws)
    assert log.types() == ["open", "close"]


@pytest.mark.parametrize(
    ("data", "expected", "size"),
    [
        ("text é€😀", "text é€😀", len("text é€😀".encode())),
        ("", "", 0),
        (b"\x00bytes\xff", b"\x00bytes\xff", 7),
        (b"", b"", 0),
        (bytearray(b"array"), b"array", 5),
        (memoryview(b"0123456789")[2:5], b"234", 3),
        (memoryview(array.array("H", [1, 2, 3, 4]))[1:3], struct.pack("=HH", 2, 3), 4),
        (memoryview(b"abcdef")[::2], b"ace", 3),
        (Blob(["ab", b"cd"]), b"abcd", 4),
        (Blob([b"0123456789"]).slice(3, 6), b"345", 3),
    ],
    ids=[
        "str",
        "empty-str",
        "bytes",
        "empty-bytes",
        "bytearray",
        "memoryview-window",
        "memoryview-of-array",
        "memoryview-strided",
        "blob",
        "blob-slice",
    ],
)
async def test_send_round_trip(data: Any, expected: str | bytes, size: int) -> None:
    """Each send() type round-trips; bufferedAmount grows by its byte size (a view: nbytes)."""
    async with echo_server() as server:
        ws, log = await open_socket(server.url, agent=agent())
        ws.binaryType = "arraybuffer"
        before = ws.bufferedAmount
        ws.send(data)
        assert ws.bufferedAmount - before == size
        assert await log.message() == expected
        await close_and_wait(ws)


async def test_send_bytearray_is_copied() -> None:
    """A bytearray changed after send() does not change the message sent."""
    async with echo_server() as server:
        ws, log = await open_socket(server.url, agent=agent())
        ws.binaryType = "arraybuffer"
        data = bytearray(b"before")
        ws.send(data)
        data[:] = b"AFTER!"
        assert await log.message() == b"before"
        await close_and_wait(ws)


@pytest.mark.parametrize(
    "data", [123, 1.5, None, [b"a"], object(), True], ids=lambda d: type(d).__name__
)
async def test_send_other_types_is_type_error(data: Any) -> None:
    """send() of anything but str, bytes, bytearray, memoryview or Blob raises TypeError."""
    async with echo_server() as server:
        ws, _ = await open_socket(server.url, agent=agent())
        with pytest.raises(TypeError):
            ws.send(data)
        assert ws.bufferedAmount == 0
        assert ws.readyState == WebSocket.OPEN
        await close_and_wait(ws)


@both_standards
@pytest.mark.parametrize(
    ("text", "replaced"),
    [("a\ud800b", "a\ufffdb"), ("\udfff", "\ufffd"), ("x\ude00\ud83d", "x\ufffd\ufffd")],
)
async def test_send_lone_surrogates(standard: Standard, text: str, replaced: str) -> None:
    """Unpaired surrogates in send(): SyntaxError in cr-2011, U+FFFD in whatwg."""
    async with echo_server() as server:
        ws, log = await open_socket(server.url, agent=agent(standard))
        if standard == "cr-2011":
            with pytest.raises(DOMException) as info:
                ws.send(text)
            raises_dom("SyntaxError", 12)(info)
            assert ws.bufferedAmount == 0
            ws.send("next")
            assert await log.message() == "next"
        else:
            ws.send(text)
            assert ws.bufferedAmount == len(replaced.encode())
            assert await log.message() == replaced
        await close_and_wait(ws)


@both_standards
async def test_send_surrogate_pair_is_the_astral_character(standard: Standard) -> None:
    """A surrogate pair spelled as two code points is the character it encodes."""
    async with echo_server() as server:
        ws, log = await open_socket(server.url, agent=agent(standard))
        ws.send("a\ud83d\ude00b")
        assert ws.bufferedAmount == 6
        assert await log.message() == "a😀b"
        await close_and_wait(ws)


async def test_buffered_amount_counts_current_callback() -> None:
    """bufferedAmount counts this callback's send() and drops to 0 in a later callback."""
    async with echo_server() as server:
        ws, log = await open_socket(server.url, agent=agent())
        assert ws.bufferedAmount == 0
        ws.send("hello")
        assert ws.bufferedAmount == 5
        time.sleep(0.05 * TIMEOUT)  # blocking on purpose: still the same callback
        assert ws.bufferedAmount == 5
        ws.send("é")
        assert ws.bufferedAmount == 7
        await wait_until(lambda: ws.bufferedAmount == 0, SHORT)
        assert await log.message() == "hello"
        await close_and_wait(ws)


async def test_buffered_amount_in_open_listener() -> None:
    """send() inside the open listener: bufferedAmount there includes it."""
    seen: list[int] = []
    async with echo_server() as server:
        ws = WebSocket(server.url, agent=agent())

        def on_open(_event: Event) -> None:
            ws.send("hello")
            seen.append(ws.bufferedAmount)
            ws.send(b"12345")
            seen.append(ws.bufferedAmount)

        ws.onopen = on_open
        log = Log(ws)
        assert await log.message() == "hello"
        await close_and_wait(ws)
    assert seen == [5, 10]


async def test_buffered_amount_after_close_only_grows() -> None:
    """After close() every send() adds to bufferedAmount, which never goes down."""
    async with echo_server() as server:
        ws, _ = await open_socket(server.url, agent=agent())
        await wait_until(lambda: ws.bufferedAmount == 0)
        ws.close()
        assert ws.readyState == WebSocket.CLOSING
        ws.send("abc")
        assert ws.bufferedAmount == 3
        ws.send(b"de")
        assert ws.bufferedAmount == 5
        await asyncio.sleep(0.05 * TIMEOUT)
        assert ws.bufferedAmount == 5
        await wait_closed(ws)
        assert ws.bufferedAmount == 5
        ws.send(Blob([b"xyz"]))
        assert ws.bufferedAmount == 8
        await asyncio.sleep(0.05 * TIMEOUT)
        assert ws.bufferedAmount == 8


async def test_send_past_buffer_limit_closes_with_prejudice() -> None:
    """A send() past max_buffered_amount closes with prejudice later: error, then close 1006."""
    async with echo_server() as server:
        ws, log = await open_socket(server.url, agent=agent(max_buffered_amount=1000))
        ws.send(b"x" * 2000)
        assert ws.bufferedAmount == 2000
        assert log.types() == ["open"]
        event = await wait_closed(ws)
    assert log.types() == ["open", "error", "close"]
    assert (event.wasClean, event.code) == (False, 1006)
    assert ws.failure is not None
    assert ws.failure.kind == "buffer_full"
