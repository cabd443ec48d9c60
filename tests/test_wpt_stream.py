"""The web-platform-tests of WebSocketStream (``websockets/stream/tentative/``: abort,
backpressure-receive, backpressure-send, close, constructor, remote-close, write), each
test's facts checked against real servers: wsapi's echo server for WPT's ECHOURL, raw
servers for its Python handlers (remote-close, delayed-passive-close, echo_exit, ...).

Left out, having no Python counterpart: writing a resizable ArrayBuffer or a view on shared
memory, and the realms of Uint8Array."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from support import (
    TIMEOUT,
    WAIT,
    Reader,
    Writer,
    accept,
    agent,
    close_payload,
    lookup_done_at_once,
    raw_server,
    read_client_frame,
    read_request,
    server_frame,
)
from wsapi import (
    AbortController,
    DOMException,
    ReadableStream,
    WebSocketCloseInfo,
    WebSocketError,
    WebSocketOpenInfo,
    WebSocketStream,
    WritableStream,
)
from wsapi.echo import start_echo_server

WHATWG = agent("whatwg")
JITTER = 0.2 * TIMEOUT
"""WPT's JITTER_ALLOWANCE_MS: how much earlier than a server's delay a timing may end."""


@asynccontextmanager
async def echo_url() -> AsyncIterator[str]:
    """WPT's ECHOURL: an echo server that reflects the client's close code and reason."""
    async with await start_echo_server() as server:
        yield server.url


async def open_stream(url: str) -> tuple[WebSocketStream, WebSocketOpenInfo]:
    wss = WebSocketStream(url, agent=WHATWG)
    return wss, await asyncio.wait_for(wss.opened, WAIT)


async def closed_error(wss: WebSocketStream) -> WebSocketError:
    """The WebSocketError that ``closed`` rejects with (it must reject)."""
    with pytest.raises(WebSocketError) as info:
        await asyncio.wait_for(wss.closed, WAIT)
    return info.value


async def rejection(future: asyncio.Future[object]) -> BaseException:
    """What ``future`` rejects with (it must reject)."""
    with pytest.raises(Exception) as info:  # noqa: PT011 (the caller checks the type)
        await asyncio.wait_for(future, WAIT)
    return info.value


def remote_close(code: int | None = None, reason: str = "", *, abrupt: bool = False):  # type: ignore[no-untyped-def]
    """WPT's remote-close handler: the server closes at once with ``code`` and ``reason``
    (no body when ``code`` is None), or drops TCP (``abrupt``), then ends without waiting
    for the client's Close."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        if abrupt:
            writer.transport.abort()
            return
        payload = b"" if code is None else close_payload(code, reason)
        writer.write(server_frame(0x8, payload))
        await writer.drain()

    return handler


async def answer_close_after(reader: Reader, writer: Writer, delay: float = 0.0) -> None:
    """Read client frames up to its Close; answer it after ``delay`` seconds."""
    while True:
        opcode, payload = await read_client_frame(reader)
        if opcode == 0x8:
            await asyncio.sleep(delay)
            writer.write(server_frame(0x8, payload))
            await writer.drain()
            return


# --- abort.any.js --------------------------------------------------------------------------


async def test_abort_before_constructing_should_prevent_connection() -> None:
    """A signal aborted before the constructor: opened and closed reject with AbortError,
    and the server never sees a connection."""
    connections: list[Reader] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        connections.append(reader)

    async with raw_server(handler) as url:
        controller = AbortController()
        controller.abort()
        wss = WebSocketStream(url, signal=controller.signal, agent=WHATWG)
        for outcome in (wss.opened, wss.closed):
            error = await rejection(outcome)  # type: ignore[arg-type]
            assert isinstance(error, DOMException)
            assert error.name == "AbortError"
        await asyncio.sleep(0.2 * TIMEOUT)
    assert connections == []


async def test_abort_during_handshake_should_work() -> None:
    """Aborting while the server sleeps before its 101: both promises reject with
    AbortError."""

    async def handshake_sleep_2(reader: Reader, writer: Writer) -> None:
        # (WPT's sleeps 2 s; this one waits for the client to go, which may be before the
        # whole request arrived.)
        await reader.read()

    async with raw_server(handshake_sleep_2) as url:
        controller = AbortController()
        wss = WebSocketStream(url, signal=controller.signal, agent=WHATWG)
        await asyncio.sleep(0)  # Give the connection a chance to start.
        controller.abort()
        for outcome in (wss.opened, wss.closed):
            error = await rejection(outcome)  # type: ignore[arg-type]
            assert isinstance(error, DOMException)
            assert error.name == "AbortError"


async def test_abort_as_the_lookup_completes_fails_what_the_connect_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not WPT's: aborting in the turn in which the name's lookup is done (asyncio.wait_for()
    before Python 3.12 then returns the result instead of the cancellation). The connection
    the task makes all the same is failed at once: the server sees the end of the stream,
    and both promises reject with AbortError."""
    loop = asyncio.get_running_loop()

    async def waits_for_the_end(reader: Reader, writer: Writer) -> None:
        await reader.read()

    async with raw_server(waits_for_the_end) as url:
        monkeypatch.setattr(loop, "getaddrinfo", lookup_done_at_once(loop))
        controller = AbortController()
        wss = WebSocketStream(
            url.replace("127.0.0.1", "localhost"), signal=controller.signal, agent=WHATWG
        )
        await asyncio.sleep(0)  # The task's first step: it waits on the lookup's result.
        controller.abort()
        for outcome in (wss.opened, wss.closed):
            error = await rejection(outcome)  # type: ignore[arg-type]
            assert isinstance(error, DOMException)
            assert error.name == "AbortError"


async def test_abort_after_connect_should_do_nothing() -> None:
    """Aborting after the handshake changes nothing: a message still echoes."""
    async with echo_url() as url:
        controller = AbortController()
        wss = WebSocketStream(url, signal=controller.signal, agent=WHATWG)
        readable, writable, _, _ = await asyncio.wait_for(wss.opened, WAIT)
        controller.abort()
        writable.getWriter().write("connected")
        value, _ = await asyncio.wait_for(readable.getReader().read(), WAIT)
        assert value == "connected"
        wss.close()
        await asyncio.wait_for(wss.closed, WAIT)


# --- backpressure-receive.any.js, backpressure-send.any.js ----------------------------------

LARGE_MESSAGE_COUNT = 16
LARGE_MESSAGE_SIZE = 1024 * 1024
"""WPT's send-backpressure handler sends 16 large messages; at 1 MiB each they are more
than the readable's mark, the pump's and the kernel's buffers together."""


@pytest.mark.slow(2)
async def test_backpressure_should_be_applied_to_received_messages() -> None:
    """The server sends an empty message then 16 large ones, timing them, then the time it
    took; a client that waits 2 s before reading makes that take at least 2 s."""
    delay = 2.0 * TIMEOUT

    async def send_backpressure(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        writer.write(server_frame(0x2, b""))
        start = time.monotonic()
        large = server_frame(0x2, bytes(LARGE_MESSAGE_SIZE))
        for _ in range(LARGE_MESSAGE_COUNT):
            writer.write(large)
            await writer.drain()
        writer.write(server_frame(0x1, str(time.monotonic() - start).encode()))
        await answer_close_after(reader, writer)

    async with raw_server(send_backpressure) as url:
        wss, info = await open_stream(url)
        reader = info.readable.getReader()
        await asyncio.sleep(delay)  # Create backpressure for 2 seconds.
        await reader.read()  # The empty message.
        for _ in range(LARGE_MESSAGE_COUNT):
            value, _ = await asyncio.wait_for(reader.read(), WAIT)
            assert len(value) == LARGE_MESSAGE_SIZE
        value, _ = await asyncio.wait_for(reader.read(), WAIT)
        assert float(value) >= delay - JITTER
        wss.close()
        await asyncio.wait_for(wss.closed, WAIT)


@pytest.mark.slow(2)
async def test_backpressure_should_be_applied_to_sent_messages() -> None:
    """The server waits 2 s before reading: writing an 8 MiB message takes at least that
    long."""
    delay = 2.0 * TIMEOUT
    size = 8 * 1024 * 1024

    async def receive_backpressure(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        await asyncio.sleep(delay)
        opcode, payload = await read_client_frame(reader)
        assert (opcode, len(payload)) == (0x2, size)
        await answer_close_after(reader, writer)

    async with raw_server(receive_backpressure) as url:
        _, info = await open_stream(url)
        writer = info.writable.getWriter()
        start = time.monotonic()
        await asyncio.wait_for(writer.write(bytes(size)), WAIT)
        assert time.monotonic() - start >= delay - JITTER
        await asyncio.wait_for(writer.close(), WAIT)


# --- close.any.js ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"closeCode": 3456, "reason": "pizza"}, (3456, "pizza")),
        ({}, (1005, "")),
        ({"reason": ""}, (1005, "")),
        ({"reason": "non-empty"}, (1000, "non-empty")),
    ],
)
async def test_close_code_and_reason_are_sent_and_reflected(
    arguments: dict[str, object], expected: tuple[int, str]
) -> None:
    """close() sends its code and reason (none: an empty Close frame, 1005; a reason alone:
    1000), and the echo server reflects them."""
    async with echo_url() as url:
        wss, _ = await open_stream(url)
        wss.close(**arguments)  # type: ignore[arg-type]
        assert await asyncio.wait_for(wss.closed, WAIT) == expected


async def test_close_argument_misuse_should_throw() -> None:
    """close(True) is a TypeError, an overlong reason a SyntaxError, and the codes 999,
    1001, 2999 and 5000 an InvalidAccessError."""
    async with echo_url() as url:
        wss, _ = await open_stream(url)
        with pytest.raises(TypeError):
            wss.close(True)  # type: ignore[call-arg]
        with pytest.raises(DOMException) as info:
            wss.close(reason="." * 124)
        assert info.value.name == "SyntaxError"
        for code in (999, 1001, 2999, 5000):
            with pytest.raises(DOMException) as info:
                wss.close(closeCode=code)
            assert info.value.name == "InvalidAccessError"
        wss.close()
        await asyncio.wait_for(wss.closed, WAIT)


async def test_close_during_handshake_should_work() -> None:
    """close() before the handshake completes rejects both promises with WebSocketError."""
    async with echo_url() as url:
        wss = WebSocketStream(url, agent=WHATWG)
        wss.close()
        for outcome in (wss.opened, wss.closed):
            error = await rejection(outcome)  # type: ignore[arg-type]
            assert type(error) is WebSocketError


async def test_closing_the_writable_should_result_in_a_clean_close() -> None:
    """writer.close() closes cleanly with an empty Close frame (1005)."""
    async with echo_url() as url:
        wss, info = await open_stream(url)
        info.writable.getWriter().close()
        assert await asyncio.wait_for(wss.closed, WAIT) == (1005, "")


async def test_writer_close_should_not_resolve_until_handshake_completes() -> None:
    """A server that answers the Close after 1 s: writer.close() takes that long."""
    delay = 1.0 * TIMEOUT

    async def delayed_passive_close(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        await answer_close_after(reader, writer, delay)

    async with raw_server(delayed_passive_close) as url:
        wss, info = await open_stream(url)
        start = time.monotonic()
        await asyncio.wait_for(info.writable.getWriter().close(), WAIT)
        assert time.monotonic() - start >= delay - JITTER
        await wss.closed


async def test_incomplete_closing_handshake_should_be_unclean() -> None:
    """A server that drops TCP when the Close arrives: closed rejects with WebSocketError
    1006."""

    async def passive_close_abort(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        opcode, _ = await read_client_frame(reader)
        assert opcode == 0x8
        writer.transport.abort()

    async with raw_server(passive_close_abort) as url:
        wss, _ = await open_stream(url)
        wss.close(closeCode=4000, reason="because")
        error = await closed_error(wss)
        assert error.closeCode == 1006


@pytest.mark.parametrize("method", ["abort", "cancel"])
@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (None, (1005, "")),
        # An object with the attributes, not wrapped in a WebSocketError, is ignored.
        (type("Info", (), {"closeCode": 3333, "reason": "obsolete"})(), (1005, "")),
        (WebSocketError("", closeCode=3333), (3333, "")),
        (WebSocketError("", closeCode=3456, reason="set"), (3456, "set")),
        (WebSocketError("", reason="specified"), (1000, "specified")),
        (DOMException("yes", "DataCloneError"), (1005, "")),
    ],
)
async def test_aborting_the_writable_or_cancelling_the_readable(
    method: str, reason: object, expected: tuple[int, str]
) -> None:
    """Aborting the writable or cancelling the readable closes cleanly; a WebSocketError
    reason gives its code and reason (a reason alone: 1000), anything else none."""
    async with echo_url() as url:
        wss, info = await open_stream(url)
        stream = info.writable if method == "abort" else info.readable
        getattr(stream, method)(reason)
        assert await asyncio.wait_for(wss.closed, WAIT) == expected


# --- constructor.any.js -------------------------------------------------------------------


async def test_constructor_argument_misuse_should_throw() -> None:
    """No URL or options that are not keywords: TypeError; an invalid URL: SyntaxError;
    protocols that are a str rather than a list: TypeError."""
    with pytest.raises(TypeError):
        WebSocketStream()  # type: ignore[call-arg]
    with pytest.raises(DOMException) as info:
        WebSocketStream("invalid:")
    assert info.value.name == "SyntaxError"
    with pytest.raises(TypeError):
        WebSocketStream("ws://127.0.0.1:1/", True)  # type: ignore[call-arg, arg-type]
    with pytest.raises(TypeError):
        WebSocketStream("ws://127.0.0.1:1/", protocols="hi")


async def test_constructing_with_a_valid_url_should_work() -> None:
    """url is the URL given; opened gives a real ReadableStream and WritableStream, and
    str protocol and extensions."""
    async with echo_url() as url:
        wss, info = await open_stream(url)
        assert wss.url == url
        readable, writable, extensions, protocol = info
        assert isinstance(readable, ReadableStream)
        assert isinstance(writable, WritableStream)
        readable.getReader()  # The brand checks: each gives a reader or a writer.
        writable.getWriter()
        assert isinstance(protocol, str)
        assert isinstance(extensions, str)
        wss.close()
        await asyncio.wait_for(wss.closed, WAIT)


async def test_setting_a_protocol_in_the_constructor_should_work() -> None:
    """With protocols ["alpha", "beta"] the server selects alpha and says so in a message."""

    async def protocol_array(reader: Reader, writer: Writer) -> None:
        request = await accept(reader, writer, b"Sec-WebSocket-Protocol: alpha\r\n")
        assert b"sec-websocket-protocol: alpha, beta" in request.lower()
        writer.write(server_frame(0x1, b"alpha"))
        await answer_close_after(reader, writer)

    async with raw_server(protocol_array) as url:
        wss = WebSocketStream(url, protocols=["alpha", "beta"], agent=WHATWG)
        info = await asyncio.wait_for(wss.opened, WAIT)
        assert info.protocol == "alpha"
        value, done = await asyncio.wait_for(info.readable.getReader().read(), WAIT)
        assert (value, done) == ("alpha", False)
        wss.close()
        await asyncio.wait_for(wss.closed, WAIT)


async def test_connection_failure_should_reject_the_promises() -> None:
    """A 404 rejects opened and closed with WebSocketError."""

    async def not_found(reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    async with raw_server(not_found) as url:
        wss = WebSocketStream(url, agent=WHATWG)
        for outcome in (wss.opened, wss.closed):
            error = await rejection(outcome)  # type: ignore[arg-type]
            assert type(error) is WebSocketError


# --- remote-close.any.js -----------------------------------------------------------------


async def test_clean_close_should_be_clean() -> None:
    """The server closes with 1000: closed gives (1000, ""), the readable is done, and the
    writable is errored with InvalidStateError."""
    async with raw_server(remote_close(1000)) as url:
        wss, info = await open_stream(url)
        assert await asyncio.wait_for(wss.closed, WAIT) == WebSocketCloseInfo(1000, "")
        assert (await info.readable.getReader().read()).done
        error = await rejection(info.writable.getWriter().ready)  # type: ignore[arg-type]
        assert isinstance(error, DOMException)
        assert error.name == "InvalidStateError"


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (None, "", (1005, "")),
        (4000, "robot", (4000, "robot")),
        (4000, "ロボット", (4000, "ロボット")),
    ],
)
async def test_remote_close_code_and_reason(
    code: int | None, reason: str, expected: tuple[int, str]
) -> None:
    """A Close frame without a body gives 1005; the server's code and (UTF-8) reason pass
    through."""
    async with raw_server(remote_close(code, reason)) as url:
        wss = WebSocketStream(url, agent=WHATWG)
        assert await asyncio.wait_for(wss.closed, WAIT) == expected


async def test_close_with_unwritten_data_should_not_be_considered_clean() -> None:
    """The server closes with 4567 while a 20 MB write is under way: closed rejects with a
    WebSocketError with closeCode 4567, and the write rejects."""

    async def remote_close_while_writing(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        await reader.readexactly(2)  # The big message is under way (WPT's races it).
        writer.write(server_frame(0x8, close_payload(4567)))
        await writer.drain()

    async with raw_server(remote_close_while_writing) as url:
        wss, info = await open_stream(url)
        write = info.writable.getWriter().write(bytes(20 * 1024 * 1024))
        error = await closed_error(wss)
        assert error.closeCode == 4567
        assert isinstance(await rejection(write), DOMException)  # type: ignore[arg-type]


async def test_remote_code_and_reason_should_be_used() -> None:
    """The server's Close (4222, remote) crosses the client's (4111, local): closed gives
    the server's."""
    async with raw_server(remote_close(4222, "remote")) as url:
        wss, _ = await open_stream(url)
        wss.close(closeCode=4111, reason="local")
        assert await asyncio.wait_for(wss.closed, WAIT) == (4222, "remote")


async def test_abrupt_close_should_give_an_error() -> None:
    """A dropped TCP connection: closed rejects with a WebSocketError named WebSocketError,
    closeCode 1006, and both streams are errored with that same object."""
    async with raw_server(remote_close(abrupt=True)) as url:
        wss, info = await open_stream(url)
        error = await closed_error(wss)
        assert type(error) is WebSocketError
        assert error.name == "WebSocketError"
        assert error.closeCode == 1006
        assert await rejection(info.readable.getReader().read()) is error  # type: ignore[arg-type]
        assert await rejection(info.writable.getWriter().ready) is error  # type: ignore[arg-type]


# --- write.any.js (and the read type of binary messages) -------------------------------------

GOODBYE_MESSAGE = "Goodbye"
BIG_MESSAGE_SIZE = 8 * 1024 * 1024


async def echo_exit(reader: Reader, writer: Writer) -> None:
    """WPT's echo_exit handler: echoes until "Goodbye", then closes at once (its Close,
    then TCP) without reading the rest."""
    await accept(reader, writer)
    while True:
        opcode, payload = await read_client_frame(reader)
        if payload == GOODBYE_MESSAGE.encode():
            writer.write(server_frame(0x8, close_payload(1000)))
            await writer.drain()
            return
        writer.write(server_frame(opcode, payload))


@pytest.mark.parametrize("collect", [False, True])
async def test_a_write_that_was_incomplete_at_close_time_should_reject(collect: bool) -> None:
    """ "Goodbye" then an 8 MiB message: the connection closes uncleanly, the big write
    rejects with InvalidStateError and the writable is errored with that same object (also
    after a garbage collection while the write is pending)."""
    async with raw_server(echo_exit) as url:
        wss, info = await open_stream(url)
        writer = info.writable.getWriter()
        goodbye = writer.write(GOODBYE_MESSAGE)
        big = writer.write(bytes(BIG_MESSAGE_SIZE))
        await asyncio.wait_for(goodbye, WAIT)
        if collect:
            for _ in range(5):
                gc.collect()
        assert type(await closed_error(wss)) is WebSocketError
        error = await rejection(big)  # type: ignore[arg-type]
        assert isinstance(error, DOMException)
        assert error.name == "InvalidStateError"
        assert await rejection(writer.write("word")) is error  # type: ignore[arg-type]


async def test_writing_a_value_that_cannot_be_sent_should_reject() -> None:
    """A value that is neither str nor bytes-like: write() rejects with TypeError."""
    async with echo_url() as url:
        wss, info = await open_stream(url)
        error = await rejection(info.writable.getWriter().write(object()))  # type: ignore[arg-type]
        assert isinstance(error, TypeError)
        wss.close()
        await asyncio.wait_for(wss.closed, WAIT)


async def test_dropping_the_stream_with_pending_writes_is_safe() -> None:
    """Dropping every reference while 20 writes are pending, then collecting, breaks
    nothing: the connection still closes."""
    async with echo_url() as url:
        wss, info = await open_stream(url)
        writer = info.writable.getWriter()
        writes = [writer.write(bytes(100_000)) for _ in range(20)]
        del info, writer
        for _ in range(5):
            gc.collect()
        await asyncio.wait_for(asyncio.gather(*writes), WAIT)
        wss.close()
        await asyncio.wait_for(wss.closed, WAIT)


async def test_read_type_for_binary_messages_is_bytes() -> None:
    """A binary message is read as bytes of its length."""
    async with echo_url() as url:
        wss, info = await open_stream(url)
        info.writable.getWriter().write(bytes(16))
        value, done = await asyncio.wait_for(info.readable.getReader().read(), WAIT)
        assert not done
        assert type(value) is bytes
        assert len(value) == 16
        wss.close()
        await asyncio.wait_for(wss.closed, WAIT)
