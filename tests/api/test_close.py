"""close() (CR 2011 section 4): codes and reasons it accepts, the Close frame it sends, and
the closing handshake started by either side."""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from support import (
    TIMEOUT,
    Log,
    Reader,
    Standard,
    Writer,
    accept,
    agent,
    answer_close,
    both_standards,
    capture_reports,
    close_and_wait,
    close_payload,
    echo_server,
    lookup_done_at_once,
    open_socket,
    raises_dom,
    raw_server,
    read_client_frame,
    server_frame,
    wait_closed,
    wait_opened,
)
from wsapi import CloseEvent, DOMException, WebSocket

# --- close() ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "sent"),
    [
        (1000, 1000),
        (3000, 3000),
        (4999, 4999),
        (1000.4, 1000),
        (999.5, 1000),
        (3000.5, 3000),
        (3001.5, 3002),
        (4998.6, 4999),
    ],
)
async def test_close_valid_codes(code: float, sent: int) -> None:
    """close() takes 1000 and 3000-4999 after [Clamp] rounding half to even; the close is clean."""
    async with echo_server() as server:
        ws, log = await open_socket(server.url, agent=agent())
        ws.close(code, "reason")
        assert ws.readyState == WebSocket.CLOSING
        assert log.types() == ["open"]
        event = await wait_closed(ws)
    assert (event.wasClean, event.code, event.reason) == (True, sent, "reason")
    assert log.entries[-1] == ("close", WebSocket.CLOSED, (True, sent, "reason"))


@pytest.mark.parametrize(
    ("code", "converted"),
    [
        (999, 999),
        (1001, 1001),
        (1005, 1005),
        (1006, 1006),
        (2999, 2999),
        (5000, 5000),
        (0, 0),
        (65535, 65535),
        (-1, 0),
        (70000, 65535),
        (4999.5, 5000),
        (999.4, 999),
        (math.nan, 0),
        (math.inf, 65535),
        (-math.inf, 0),
    ],
)
async def test_close_invalid_codes_are_invalid_access_error(code: float, converted: int) -> None:
    """Other codes (after [Clamp]) raise InvalidAccessError naming the code and allowed ones."""
    async with echo_server() as server:
        ws, _ = await open_socket(server.url, agent=agent())
        with pytest.raises(DOMException) as info:
            ws.close(code)
        raises_dom("InvalidAccessError", 15)(info)
        message = info.value.message
        assert re.search(rf"\b{converted}\b", message), message
        for allowed in ("1000", "3000", "4999"):
            assert allowed in message
        assert ws.readyState == WebSocket.OPEN
        await close_and_wait(ws)


async def test_close_invalid_code_while_connecting() -> None:
    """The code is checked before the state: an invalid code while CONNECTING raises too."""
    async with echo_server() as server:
        ws = WebSocket(server.url, agent=agent())
        with pytest.raises(DOMException) as info:
            ws.close(2000)
        raises_dom("InvalidAccessError", 15)(info)
        assert ws.readyState == WebSocket.CONNECTING
        await wait_opened(ws)
        await close_and_wait(ws)


async def test_close_while_connecting_closes_a_connect_that_completes_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """close() cancels the connecting task; should its connect complete anyway (the name's
    lookup is done as the task is cancelled: asyncio.wait_for() before Python 3.12 then
    returns the result instead of the cancellation), the connection it made is failed at
    once: the server sees the end of the stream, and the events are those of a close()
    while connecting."""
    loop = asyncio.get_running_loop()

    async def waits_for_the_end(reader: Reader, writer: Writer) -> None:
        await reader.read()  # The request, if it came, then the end of the stream.

    async with raw_server(waits_for_the_end) as url:
        monkeypatch.setattr(loop, "getaddrinfo", lookup_done_at_once(loop))
        ws = WebSocket(url.replace("127.0.0.1", "localhost"), agent=agent())
        log = Log(ws)
        await asyncio.sleep(0)  # The task's first step: it waits on the lookup's result.
        ws.close()
        event = await wait_closed(ws)
        assert (event.code, event.wasClean) == (1006, False)
        assert log.types() == ["error", "close"]


@pytest.mark.parametrize(
    ("args"),
    [(True,), (False,), ("1000",), (b"\x03\xe8",), ([1000],), (1000, 5), (1000, b"bye")],
    ids=["true", "false", "str", "bytes", "list", "int-reason", "bytes-reason"],
)
async def test_close_wrong_types_are_type_error(args: tuple[Any, ...]) -> None:
    """close() with a bool or str code, or a non-str reason, raises TypeError."""
    async with echo_server() as server:
        ws, _ = await open_socket(server.url, agent=agent())
        with pytest.raises(TypeError):
            ws.close(*args)
        assert ws.readyState == WebSocket.OPEN
        await close_and_wait(ws)


@pytest.mark.parametrize(
    ("reason", "ok"),
    [
        ("a" * 122, True),
        ("a" * 123, True),
        ("a" * 124, False),
        ("é" * 61, True),  # 122 bytes
        ("é" * 61 + "a", True),  # 123 bytes
        ("é" * 62, False),  # 124 bytes
        ("€" * 41, True),  # 123 bytes
        ("€" * 41 + "a", False),  # 124 bytes
        ("😀" * 30 + "abc", True),  # 123 bytes
        ("😀" * 31, False),  # 124 bytes
    ],
    ids=lambda v: f"{len(v.encode())}B" if isinstance(v, str) else str(v),
)
async def test_close_reason_length(reason: str, ok: bool) -> None:
    """A reason of at most 123 UTF-8 bytes is sent; a longer one is a SyntaxError."""
    async with echo_server() as server:
        ws, _ = await open_socket(server.url, agent=agent())
        if not ok:
            with pytest.raises(DOMException) as info:
                ws.close(1000, reason)
            raises_dom("SyntaxError", 12)(info)
            assert ws.readyState == WebSocket.OPEN
            reason = ""
            ws.close(1000, reason)
        else:
            ws.close(1000, reason)
        event = await wait_closed(ws)
    assert (event.wasClean, event.code, event.reason) == (True, 1000, reason)


@both_standards
async def test_close_reason_lone_surrogate(standard: Standard) -> None:
    """An unpaired surrogate in the reason: SyntaxError in cr-2011, U+FFFD in whatwg."""
    payloads: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        payloads.append(await answer_close(reader, writer))

    async with raw_server(handler) as url:
        ws, _ = await open_socket(url, agent=agent(standard))
        if standard == "cr-2011":
            with pytest.raises(DOMException) as info:
                ws.close(1000, "a\ud800")
            raises_dom("SyntaxError", 12)(info)
            assert ws.readyState == WebSocket.OPEN
            await close_and_wait(ws, 1000, "a\ud83d\ude00")  # a pair is fine
            assert payloads == [close_payload(1000, "a😀")]
        else:
            event = await close_and_wait(ws, 1000, "a\ud800")
            assert payloads == [close_payload(1000, "a\ufffd")]
            assert event.reason == "a\ufffd"


async def test_close_without_arguments_sends_empty_close() -> None:
    """close() with no arguments sends an empty Close frame; the empty answer gives code 1005."""
    payloads: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        payloads.append(await answer_close(reader, writer))

    async with raw_server(handler) as url:
        ws, log = await open_socket(url, agent=agent())
        event = await close_and_wait(ws)
    assert payloads == [b""]
    assert (event.wasClean, event.code, event.reason) == (True, 1005, "")
    assert log.types() == ["open", "close"]


@pytest.mark.parametrize(
    ("args", "payload"),
    [
        ((4000, "bye"), close_payload(4000, "bye")),
        ((3000,), close_payload(3000)),
        ((1000, ""), close_payload(1000)),
        ((1000, "é€"), close_payload(1000, "é€")),
    ],
)
async def test_close_sends_code_and_reason(args: tuple[Any, ...], payload: bytes) -> None:
    """close(code[, reason]) sends the code and the reason's UTF-8 in the Close frame."""
    payloads: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        payloads.append(await answer_close(reader, writer))

    async with raw_server(handler) as url:
        ws, _ = await open_socket(url, agent=agent())
        event = await close_and_wait(ws, *args)
    assert payloads == [payload]
    assert (event.wasClean, event.code) == (True, args[0])


@pytest.mark.parametrize(
    ("standard", "payload"),
    [("cr-2011", b""), ("whatwg", close_payload(1000, "why"))],
)
async def test_close_with_a_reason_and_no_code(standard: Standard, payload: bytes) -> None:
    """close(None, reason): the CR sends a reason only after a code (empty Close); the
    living standard sets the code to 1000 and sends the reason."""
    payloads: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        payloads.append(await answer_close(reader, writer))

    async with raw_server(handler) as url:
        ws, _ = await open_socket(url, agent=agent(standard))
        await close_and_wait(ws, None, "why")
    assert payloads == [payload]


async def test_close_three_times_sends_one_close_frame() -> None:
    """close() called three times starts the closing handshake once: one Close frame."""
    payloads: list[bytes] = []
    rest: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        payloads.append(await answer_close(reader, writer))
        writer.write_eof()
        rest.append(await reader.read())

    async with raw_server(handler) as url:
        ws, log = await open_socket(url, agent=agent())
        ws.close(3000, "first")
        assert ws.readyState == WebSocket.CLOSING
        ws.close(3001, "second")
        ws.close()
        assert ws.readyState == WebSocket.CLOSING
        event = await wait_closed(ws)
        ws.close()  # CLOSED: nothing
        assert ws.readyState == WebSocket.CLOSED
    assert payloads == [close_payload(3000, "first")]
    assert rest == [b""]
    assert (event.wasClean, event.code, event.reason) == (True, 3000, "first")
    assert log.types() == ["open", "close"]


async def test_close_inside_onclose_does_nothing() -> None:
    """close() from the close listener does nothing: no exception, no further event."""
    reports = capture_reports()
    async with echo_server() as server:
        ws, log = await open_socket(server.url, agent=agent())

        def on_close(_event: CloseEvent) -> None:
            ws.close()
            ws.close(1000, "again")

        ws.onclose = on_close
        await close_and_wait(ws, 1000)
        await asyncio.sleep(0.05 * TIMEOUT)
    assert reports == []
    assert log.types() == ["open", "close"]
    assert ws.readyState == WebSocket.CLOSED


async def test_server_answer_gives_servers_code() -> None:
    """The close event carries the code and reason of the server's Close, cleanly."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        while (await read_client_frame(reader))[0] != 0x8:
            pass
        writer.write(server_frame(0x8, close_payload(4002, "server says")))
        await writer.drain()

    async with raw_server(handler) as url:
        ws, log = await open_socket(url, agent=agent())
        event = await close_and_wait(ws, 3000, "client says")
    assert (event.wasClean, event.code, event.reason) == (True, 4002, "server says")
    assert log.types() == ["open", "close"]


async def test_server_initiated_close_is_clean() -> None:
    """A websockets server that closes first: close event clean, with its code and reason."""

    async def handler(connection: ServerConnection) -> None:
        await connection.close(4001, "server bye")

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        ws = WebSocket(f"ws://127.0.0.1:{port}/", agent=agent())
        log = Log(ws)
        event = await wait_closed(ws)
    assert (event.wasClean, event.code, event.reason) == (True, 4001, "server bye")
    assert log.types() == ["open", "close"]
