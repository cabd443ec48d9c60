"""The WebSocket interface against real peers: the CR 2011 API (sections 4 and 5) and the
WHATWG living standard where DESIGN.md section 2 says they differ, with the Python
conveniences around it (``opened``, ``closed``, ``async with``, ``failure``, ``ping``)."""

from __future__ import annotations

import array
import asyncio
import gc
import math
import re
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import pytest
from websockets.asyncio.server import ServerConnection, serve

from support import (
    TIMEOUT,
    capture_reports,
    raw_server,
    read_client_frame,
    read_request,
    server_frame,
    switching_protocols,
)
from wsapi import (
    Blob,
    CloseEvent,
    DOMException,
    Event,
    MessageEvent,
    UserAgent,
    WebSocket,
    WebSocketError,
    ping,
)
from wsapi.echo import EchoServer, start_echo_server

Standard = Literal["cr-2011", "whatwg"]
STANDARDS: tuple[Standard, ...] = ("cr-2011", "whatwg")
both_standards = pytest.mark.parametrize("standard", STANDARDS)

WAIT = 10 * TIMEOUT
"""How long a test waits for something that should happen promptly."""
SHORT = 3 * TIMEOUT
"""The bound for local things that need no network round trip (still generous)."""

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter

# --- helpers ---------------------------------------------------------------------------------


def agent(standard: Standard = "cr-2011", **settings: Any) -> UserAgent:
    """A UserAgent that never uses the environment's proxies."""
    return UserAgent(proxy=None, standard=standard, **settings)


class Log:
    """Records every open, message, error and close event with the readyState it saw."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.entries: list[tuple[str, int, object]] = []
        self.events: list[Event] = []
        self.messages: asyncio.Queue[Any] = asyncio.Queue()
        for type_ in ("open", "message", "error", "close"):
            ws.addEventListener(type_, self.record)

    def record(self, event: Event) -> None:
        detail: object = None
        if isinstance(event, MessageEvent):
            detail = event.data
            self.messages.put_nowait(event.data)
        elif isinstance(event, CloseEvent):
            detail = (event.wasClean, event.code, event.reason)
        self.events.append(event)
        self.entries.append((event.type, self.ws.readyState, detail))

    def types(self) -> list[str]:
        return [type_ for type_, _, _ in self.entries]

    async def message(self) -> Any:
        return await asyncio.wait_for(self.messages.get(), WAIT)


async def wait_closed(ws: WebSocket, within: float = WAIT) -> CloseEvent:
    """The close event, waited for with a bound."""
    return await asyncio.wait_for(asyncio.shield(ws.closed), within)


async def wait_opened(ws: WebSocket) -> None:
    await asyncio.wait_for(asyncio.shield(ws.opened), WAIT)


async def wait_until(predicate: Callable[[], bool], within: float = WAIT) -> None:
    """Poll ``predicate`` between callbacks until it holds (bounded)."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def discard(ws: WebSocket) -> None:
    """End a WebSocket that is still connecting and wait for its close event."""
    await asyncio.sleep(0)  # let the background connection start
    ws.close()
    await wait_closed(ws)


async def refused_url() -> str:
    """A ws: URL on 127.0.0.1 where nothing listens."""
    server = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return f"ws://127.0.0.1:{port}/"


@asynccontextmanager
async def echo_server() -> AsyncIterator[EchoServer]:
    async with await start_echo_server() as server:
        yield server


async def open_socket(url: str, *args: Any, **kwargs: Any) -> tuple[WebSocket, Log]:
    """A WebSocket with a Log, once open."""
    ws = WebSocket(url, *args, **kwargs)
    log = Log(ws)
    await wait_opened(ws)
    return ws, log


async def close_and_wait(ws: WebSocket, *args: Any) -> CloseEvent:
    ws.close(*args)
    return await wait_closed(ws)


async def accept(reader: Reader, writer: Writer, extra: bytes = b"") -> bytes:
    """Read the handshake request and answer 101; return the request."""
    request = await read_request(reader)
    writer.write(switching_protocols(request, extra))
    await writer.drain()
    return request


async def answer_close(reader: Reader, writer: Writer) -> bytes:
    """Read client frames up to its Close, answer with the same payload; return it."""
    while True:
        opcode, payload = await read_client_frame(reader)
        if opcode == 0x8:
            writer.write(server_frame(0x8, payload))
            await writer.drain()
            return payload


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


def header_lines(request: bytes) -> list[tuple[str, str]]:
    """The (lower-cased name, value) pairs of a raw handshake request."""
    lines = request.decode("latin-1").split("\r\n")[1:]
    pairs = []
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            pairs.append((name.strip().lower(), value.strip()))
    return pairs


def raises_dom(name: str, code: int) -> Callable[[pytest.ExceptionInfo[DOMException]], None]:
    def check(info: pytest.ExceptionInfo[DOMException]) -> None:
        assert info.value.name == name
        assert info.value.code == code

    return check


# --- the constructor -------------------------------------------------------------------------


async def test_constructor_without_running_loop_raises_runtime_error() -> None:
    """Called on a thread with no running event loop, the constructor raises RuntimeError."""
    with pytest.raises(RuntimeError, match="running asyncio event loop"):
        await asyncio.to_thread(WebSocket, "ws://127.0.0.1/", agent=agent())


async def test_use_from_another_thread_raises_runtime_error() -> None:
    """send(), close() and binaryType from a thread other than the loop's raise RuntimeError."""
    async with echo_server() as server:
        ws, _ = await open_socket(server.url, agent=agent())
        with pytest.raises(RuntimeError):
            await asyncio.to_thread(ws.send, "x")
        with pytest.raises(RuntimeError):
            await asyncio.to_thread(ws.close)
        with pytest.raises(RuntimeError):
            await asyncio.to_thread(setattr, ws, "binaryType", "arraybuffer")
        assert ws.readyState == WebSocket.OPEN
        assert ws.binaryType == "blob"
        await close_and_wait(ws)


@both_standards
@pytest.mark.parametrize(
    "url",
    [
        "ws://foo bar.com/",
        "wss://foo bar.com/",
        "ws://127.0.0.1:65536/",
        "ws://[::1/",
        "ws://",
        "ftp://127.0.0.1/",
        "file:///tmp/socket",
        "mailto:someone@example.org",
        "about:blank",
        "javascript:alert(1)",
        "",
    ],
)
async def test_unparsable_or_non_websocket_url_is_syntax_error(
    standard: Standard, url: str
) -> None:
    """A URL that does not parse, or whose scheme is not a WebSocket one, is a SyntaxError."""
    with pytest.raises(DOMException) as info:
        WebSocket(url, agent=agent(standard))
    raises_dom("SyntaxError", 12)(info)


@both_standards
@pytest.mark.parametrize(
    ("url", "converted"),
    [
        ("http://127.0.0.1:{port}/chat?x=1", "ws://127.0.0.1:{port}/chat?x=1"),
        ("HTTP://127.0.0.1:{port}", "ws://127.0.0.1:{port}/"),
    ],
)
async def test_http_url(standard: Standard, url: str, converted: str) -> None:
    """http: is a SyntaxError in cr-2011; whatwg turns it into ws: and connects."""
    async with echo_server() as server:
        url = url.format(port=server.port)
        if standard == "cr-2011":
            with pytest.raises(DOMException) as info:
                WebSocket(url, agent=agent(standard))
            raises_dom("SyntaxError", 12)(info)
            return
        ws, log = await open_socket(url, agent=agent(standard))
        assert ws.url == converted.format(port=server.port)
        ws.send("over http")
        assert await log.message() == "over http"
        await close_and_wait(ws)


@both_standards
async def test_https_url(standard: Standard) -> None:
    """https: is a SyntaxError in cr-2011; whatwg turns it into wss:."""
    url = "https://127.0.0.1:9/path"
    if standard == "cr-2011":
        with pytest.raises(DOMException) as info:
            WebSocket(url, agent=agent(standard, blocked_ports=()))
        raises_dom("SyntaxError", 12)(info)
        return
    ws = WebSocket(url, agent=agent(standard, blocked_ports=()))
    assert ws.url == "wss://127.0.0.1:9/path"
    await discard(ws)


@pytest.mark.parametrize("url", ["/chat", "chat", "//127.0.0.1/chat", "?x=1"])
async def test_relative_url_is_syntax_error_in_cr_2011(url: str) -> None:
    """cr-2011 needs an absolute URL, even when the agent has a base_url (ignored there)."""
    with pytest.raises(DOMException) as info:
        WebSocket(url, agent=agent("cr-2011", base_url="http://127.0.0.1/dir/page"))
    raises_dom("SyntaxError", 12)(info)


@pytest.mark.parametrize("url", ["/chat", "chat", "?x=1"])
async def test_relative_url_without_base_is_syntax_error_in_whatwg(url: str) -> None:
    """whatwg resolves relative URLs against base_url; with no base it is a SyntaxError."""
    with pytest.raises(DOMException) as info:
        WebSocket(url, agent=agent("whatwg"))
    raises_dom("SyntaxError", 12)(info)


@pytest.mark.parametrize(
    ("relative", "resolved"),
    [
        ("sub?x=1", "ws://127.0.0.1:{port}/dir/sub?x=1"),
        ("/top", "ws://127.0.0.1:{port}/top"),
        ("../up", "ws://127.0.0.1:{port}/up"),
        ("//127.0.0.1:{port}/other", "ws://127.0.0.1:{port}/other"),
    ],
)
async def test_relative_url_resolved_against_base_in_whatwg(relative: str, resolved: str) -> None:
    """whatwg resolves a relative URL against base_url (http becoming ws) and connects."""
    async with echo_server() as server:
        base = f"http://127.0.0.1:{server.port}/dir/page.html"
        ws, log = await open_socket(
            relative.format(port=server.port), agent=agent("whatwg", base_url=base)
        )
        assert ws.url == resolved.format(port=server.port)
        ws.send("resolved")
        assert await log.message() == "resolved"
        await close_and_wait(ws)


@both_standards
@pytest.mark.parametrize(
    "url",
    [
        "ws://127.0.0.1/#",
        "ws://127.0.0.1/#fragment",
        "ws://127.0.0.1/path?query#fragment",
        "wss://127.0.0.1/#",
        "ws://127.0.0.1#",
    ],
)
async def test_fragment_is_syntax_error(standard: Standard, url: str) -> None:
    """A URL with a fragment, even an empty one, is a SyntaxError."""
    with pytest.raises(DOMException) as info:
        WebSocket(url, agent=agent(standard))
    raises_dom("SyntaxError", 12)(info)


@pytest.mark.parametrize("url", ["#", "#x", "http://127.0.0.1/#", "?q#x"])
async def test_fragment_after_whatwg_resolution_is_syntax_error(url: str) -> None:
    """whatwg checks the fragment of the resolved (and scheme-converted) URL."""
    with pytest.raises(DOMException) as info:
        WebSocket(url, agent=agent("whatwg", base_url="http://127.0.0.1/dir/"))
    raises_dom("SyntaxError", 12)(info)


@both_standards
@pytest.mark.parametrize(
    ("url", "serialized"),
    [
        ("ws://127.0.0.1", "ws://127.0.0.1/"),
        ("WS://LocalHost:80/A?b", "ws://localhost/A?b"),
        ("wss://127.0.0.1:443/", "wss://127.0.0.1/"),
        ("ws://127.0.0.1:443/", "ws://127.0.0.1:443/"),
        ("wss://127.0.0.1:80/", "wss://127.0.0.1:80/"),
        ("ws://127.0.0.1:8080", "ws://127.0.0.1:8080/"),
        ("ws://127.0.0.1/a b?c d", "ws://127.0.0.1/a%20b?c%20d"),
        ("ws://127.0.0.1/?", "ws://127.0.0.1/?"),
        ("ws://127.0.0.1/a/../b/./c", "ws://127.0.0.1/b/c"),
        ("ws://0x7f.1/", "ws://127.0.0.1/"),
        ("ws://[0:0::1]:8080/x", "ws://[::1]:8080/x"),
        ("ws://user:pw@127.0.0.1/", "ws://user:pw@127.0.0.1/"),
    ],
)
async def test_url_attribute_is_the_serialized_url(
    standard: Standard, url: str, serialized: str
) -> None:
    """``url`` returns the parsed URL, serialized by the URL standard."""
    ws = WebSocket(url, agent=agent(standard, blocked_ports=()))
    assert ws.url == serialized
    await discard(ws)


async def test_idn_host_is_serialized_as_ascii() -> None:
    """An IDN host appears in ``url`` in its ASCII (punycode) form."""
    ws = WebSocket("ws://bücher.example:25/", agent=agent("whatwg"))
    assert ws.url == "ws://xn--bcher-kva.example:25/"
    await wait_closed(ws)


# --- blocked ports and mixed content -----------------------------------------------------------


@asynccontextmanager
async def counting_server() -> AsyncIterator[tuple[str, int, list[bytes]]]:
    """A raw server that records what each connection sends before the client gives up."""
    requests: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        requests.append(await reader.read(65536))

    async with raw_server(handler) as url:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        yield url, port, requests


@both_standards
async def test_blocked_port(standard: Standard) -> None:
    """Blocked port: SecurityError in cr-2011; whatwg fails (error, 1006) without connecting."""
    async with counting_server() as (url, port, requests):
        ua = agent(standard, blocked_ports={port})
        if standard == "cr-2011":
            with pytest.raises(DOMException) as info:
                WebSocket(url, agent=ua)
            raises_dom("SecurityError", 18)(info)
        else:
            ws = WebSocket(url, agent=ua)
            log = Log(ws)
            assert ws.readyState == WebSocket.CONNECTING
            assert log.entries == []
            event = await wait_closed(ws)
            assert log.entries == [
                ("error", WebSocket.CLOSED, None),
                ("close", WebSocket.CLOSED, (False, 1006, "")),
            ]
            assert (event.wasClean, event.code) == (False, 1006)
            assert ws.failure is not None
            assert ws.failure.kind == "blocked"
        await asyncio.sleep(0.05 * TIMEOUT)
        assert requests == []


@both_standards
async def test_default_blocked_port_25(standard: Standard) -> None:
    """Port 25 (SMTP) is on the default blocked list."""
    url = "ws://127.0.0.1:25/"
    if standard == "cr-2011":
        with pytest.raises(DOMException) as info:
            WebSocket(url, agent=agent(standard))
        raises_dom("SecurityError", 18)(info)
        return
    ws = WebSocket(url, agent=agent(standard))
    log = Log(ws)
    await wait_closed(ws)
    assert log.types() == ["error", "close"]
    assert ws.failure is not None
    assert ws.failure.kind == "blocked"


@both_standards
@pytest.mark.parametrize(
    "url", ["ws://127.0.0.1:80/", "ws://127.0.0.1:443/", "wss://127.0.0.1:80/"]
)
async def test_ports_80_and_443_are_never_blocked(standard: Standard, url: str) -> None:
    """Ports 80 and 443 are not blocked even when the agent's list names them."""
    ws = WebSocket(url, agent=agent(standard, blocked_ports={25, 80, 443}))
    await discard(ws)
    assert ws.failure is not None
    assert ws.failure.kind != "blocked"


@both_standards
async def test_mixed_content(standard: Standard) -> None:
    """ws: from an https: origin: SecurityError in cr-2011; whatwg fails without connecting."""
    async with counting_server() as (url, _, requests):
        ua = agent(standard, origin="https://app.example")
        if standard == "cr-2011":
            with pytest.raises(DOMException) as info:
                WebSocket(url, agent=ua)
            raises_dom("SecurityError", 18)(info)
        else:
            ws = WebSocket(url, agent=ua)
            log = Log(ws)
            await wait_closed(ws)
            assert log.entries == [
                ("error", WebSocket.CLOSED, None),
                ("close", WebSocket.CLOSED, (False, 1006, "")),
            ]
            assert ws.failure is not None
            assert ws.failure.kind == "blocked"
        await asyncio.sleep(0.05 * TIMEOUT)
        assert requests == []


@both_standards
async def test_secure_url_from_https_origin_is_allowed(standard: Standard) -> None:
    """A wss: URL from an https: origin is not mixed content."""
    ua = agent(standard, origin="https://app.example", blocked_ports=())
    ws = WebSocket("wss://127.0.0.1:9/", agent=ua)
    await discard(ws)
    assert ws.failure is not None
    assert ws.failure.kind != "blocked"


@both_standards
async def test_ws_url_from_http_origin_is_allowed(standard: Standard) -> None:
    """A ws: URL from an http: origin connects and sends that origin."""
    requests: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        requests.append(await accept(reader, writer))
        await answer_close(reader, writer)

    async with raw_server(handler) as url:
        ws, _ = await open_socket(url, agent=agent(standard, origin="http://app.example"))
        await close_and_wait(ws)
    assert ("origin", "http://app.example") in header_lines(requests[0])


# --- protocols -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocols", "selected"),
    [
        (None, ""),
        ("chat", "chat"),
        (["chat", "superchat"], "chat"),
        (("superchat", "chat"), "superchat"),
        ([], ""),
    ],
)
async def test_protocols_str_list_tuple(protocols: Any, selected: str) -> None:
    """protocols may be a str, a list or a tuple; the server's choice shows in ``protocol``."""
    async with echo_server() as server:
        ws, _ = await open_socket(server.url, protocols, agent=agent())
        assert ws.protocol == selected
        await close_and_wait(ws)


async def test_protocols_are_offered_in_the_request() -> None:
    """The requested subprotocols are sent, in order, in Sec-WebSocket-Protocol."""
    requests: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        request = await read_request(reader)
        requests.append(request)
        writer.write(switching_protocols(request, b"Sec-WebSocket-Protocol: b\r\n"))
        await answer_close(reader, writer)

    async with raw_server(handler) as url:
        ws, _ = await open_socket(url, ["a", "b"], agent=agent())
        assert ws.protocol == "b"
        await close_and_wait(ws)
    offered = [v for n, v in header_lines(requests[0]) if n == "sec-websocket-protocol"]
    assert [p.strip() for v in offered for p in v.split(",")] == ["a", "b"]


@both_standards
async def test_exact_duplicate_protocols_are_syntax_error(standard: Standard) -> None:
    """A protocol that occurs twice is a SyntaxError in both standards."""
    with pytest.raises(DOMException) as info:
        WebSocket("ws://127.0.0.1/", ["chat", "other", "chat"], agent=agent(standard))
    raises_dom("SyntaxError", 12)(info)


@both_standards
async def test_case_insensitive_duplicate_protocols(standard: Standard) -> None:
    """Protocols equal up to ASCII case: allowed in cr-2011, a SyntaxError in whatwg."""
    async with echo_server() as server:
        if standard == "whatwg":
            with pytest.raises(DOMException) as info:
                WebSocket(server.url, ["chat", "CHAT"], agent=agent(standard))
            raises_dom("SyntaxError", 12)(info)
            return
        ws, _ = await open_socket(server.url, ["chat", "CHAT"], agent=agent(standard))
        assert ws.protocol == "chat"
        await close_and_wait(ws)


@pytest.mark.parametrize(
    "token",
    [
        "",
        " ",
        "a b",
        "a,b",
        "chat\t",
        "é",
        "chat\u2603",
        "a\x00",
        "a\x7f",
        *'()<>@,;:\\"/[]?={}',
    ],
)
async def test_invalid_protocol_token_is_syntax_error(token: str) -> None:
    """A protocol that is not an RFC 2616 token is a SyntaxError, alone or in a list."""
    for standard in STANDARDS:
        for protocols in (token, ["ok", token]):
            with pytest.raises(DOMException) as info:
                WebSocket("ws://127.0.0.1/", protocols, agent=agent(standard))
            raises_dom("SyntaxError", 12)(info)


@pytest.mark.parametrize(
    "protocols",
    [[1], ["chat", None], [b"chat"], b"chat", 5, {"chat"}],
    ids=["int-item", "none-item", "bytes-item", "bytes", "int", "set"],
)
async def test_non_str_protocols_are_type_error(protocols: Any) -> None:
    """protocols that are not str or a sequence of str raise TypeError."""
    with pytest.raises(TypeError):
        WebSocket("ws://127.0.0.1/", protocols, agent=agent())


# --- attributes ------------------------------------------------------------------------------


async def test_constants_on_class_and_instance() -> None:
    """CONNECTING, OPEN, CLOSING and CLOSED are 0-3 on the class and on instances."""
    assert (WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED) == (
        0,
        1,
        2,
        3,
    )
    async with echo_server() as server:
        ws = WebSocket(server.url, agent=agent())
        assert (ws.CONNECTING, ws.OPEN, ws.CLOSING, ws.CLOSED) == (0, 1, 2, 3)
        assert ws.readyState == ws.CONNECTING
        await wait_opened(ws)
        await close_and_wait(ws)


async def test_initial_attributes() -> None:
    """Before open: CONNECTING, empty protocol/extensions, bufferedAmount 0, binaryType blob."""
    async with echo_server() as server:
        ws = WebSocket(server.url, "chat", agent=agent())
        assert ws.readyState == WebSocket.CONNECTING
        assert ws.protocol == ""
        assert ws.extensions == ""
        assert ws.bufferedAmount == 0
        assert ws.binaryType == "blob"
        assert (ws.onopen, ws.onmessage, ws.onerror, ws.onclose) == (None, None, None, None)
        await wait_opened(ws)
        await close_and_wait(ws)


@pytest.mark.parametrize("name", ["url", "readyState", "bufferedAmount", "extensions", "protocol"])
async def test_read_only_attributes(name: str) -> None:
    """Assigning a read-only attribute raises AttributeError and changes nothing."""
    async with echo_server() as server:
        ws, _ = await open_socket(server.url, agent=agent())
        before = getattr(ws, name)
        with pytest.raises(AttributeError):
            setattr(ws, name, before)
        with pytest.raises(AttributeError):
            setattr(ws, name, 3)
        assert getattr(ws, name) == before
        await close_and_wait(ws)


async def test_non_callable_handler_is_stored_as_none() -> None:
    """An on* attribute set to a non-callable value reads back as None."""
    async with echo_server() as server:
        ws, _ = await open_socket(server.url, agent=agent())
        setattr(ws, "onmessage", "not callable")  # noqa: B010
        assert ws.onmessage is None

        def handler(_event: Event) -> None:
            pass

        ws.onerror = handler
        assert ws.onerror is handler
        setattr(ws, "onerror", 5)  # noqa: B010
        assert ws.onerror is None
        await close_and_wait(ws)


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


# --- failures --------------------------------------------------------------------------------


async def test_refused_connection() -> None:
    """A refused connection: error then close 1006 (not clean), both with readyState CLOSED."""
    ws = WebSocket(await refused_url(), agent=agent())
    log = Log(ws)
    event = await wait_closed(ws)
    assert log.entries == [
        ("error", WebSocket.CLOSED, None),
        ("close", WebSocket.CLOSED, (False, 1006, "")),
    ]
    assert type(log.events[0]) is Event
    assert log.events[0].isTrusted
    assert event is log.events[1]
    assert ws.failure is not None
    assert ws.failure.kind == "refused"


@pytest.mark.parametrize(("status", "phrase"), [(400, "Bad Request"), (404, "Not Found")])
async def test_http_error_status_fails(status: int, phrase: str) -> None:
    """A non-101 status fails the connection; the failure keeps the status code and headers."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        writer.write(
            f"HTTP/1.1 {status} {phrase}\r\nX-Probe: yes\r\nContent-Length: 0\r\n\r\n".encode()
        )
        await writer.drain()
        await reader.read()

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=agent())
        log = Log(ws)
        await wait_closed(ws)
    assert log.entries == [
        ("error", WebSocket.CLOSED, None),
        ("close", WebSocket.CLOSED, (False, 1006, "")),
    ]
    failure = ws.failure
    assert failure is not None
    assert failure.kind == "http_status"
    assert failure.status_code == status
    assert ("x-probe", "yes") in failure.raw_headers


async def test_redirect_is_not_followed() -> None:
    """A 301 fails the connection; the Location is not visited."""
    visits: list[bytes] = []

    async def target(reader: Reader, writer: Writer) -> None:
        visits.append(await read_request(reader))

    async with raw_server(target) as target_url:

        async def handler(reader: Reader, writer: Writer) -> None:
            await read_request(reader)
            location = target_url.replace("ws:", "http:")
            writer.write(
                b"HTTP/1.1 301 Moved Permanently\r\nLocation: "
                + location.encode()
                + b"\r\nContent-Length: 0\r\n\r\n"
            )
            await writer.drain()
            await reader.read()

        async with raw_server(handler) as url:
            ws = WebSocket(url, agent=agent())
            log = Log(ws)
            await wait_closed(ws)
            await asyncio.sleep(0.05 * TIMEOUT)
    assert visits == []
    assert log.types() == ["error", "close"]
    assert ws.failure is not None
    assert ws.failure.kind == "http_status"
    assert ws.failure.status_code == 301


def _bad_accept(request: bytes) -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )


def _selects(protocol: bytes) -> Callable[[bytes], bytes]:
    return lambda request: switching_protocols(
        request, b"Sec-WebSocket-Protocol: " + protocol + b"\r\n"
    )


@pytest.mark.parametrize(
    ("response", "protocols"),
    [
        (lambda _request: b"garbage\r\n\r\n", None),
        (lambda _request: b"HTTP/1.1 101 Switching Protocols\r\n\r\n", None),
        (_bad_accept, None),
        (_selects(b"other"), ["chat"]),
        (_selects(b"chat"), None),
        (_selects(b"CHAT"), ["chat"]),
        (switching_protocols, ["chat", "superchat"]),
    ],
    ids=[
        "garbage-status-line",
        "no-upgrade-headers",
        "wrong-accept",
        "unrequested-subprotocol",
        "subprotocol-when-none-requested",
        "subprotocol-case-differs",
        "no-subprotocol-when-requested",
    ],
)
async def test_bad_handshake_response_fails(
    response: Callable[[bytes], bytes], protocols: list[str] | None
) -> None:
    """A handshake response breaking RFC 6455 4.1 fails the connection: error, close 1006."""

    async def handler(reader: Reader, writer: Writer) -> None:
        request = await read_request(reader)
        writer.write(response(request))
        await writer.drain()
        await reader.read()

    async with raw_server(handler) as url:
        ws = WebSocket(url, protocols, agent=agent())
        log = Log(ws)
        await wait_closed(ws)
    assert log.entries == [
        ("error", WebSocket.CLOSED, None),
        ("close", WebSocket.CLOSED, (False, 1006, "")),
    ]
    assert ws.protocol == ""
    assert ws.failure is not None
    assert ws.failure.kind == "handshake"


async def test_delayed_handshake_still_opens() -> None:
    """A 101 that arrives 0.2 s later still opens the connection."""

    async def handler(reader: Reader, writer: Writer) -> None:
        request = await read_request(reader)
        await asyncio.sleep(0.2)
        writer.write(switching_protocols(request))
        await writer.drain()
        await answer_close(reader, writer)

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=agent())
        log = Log(ws)
        await wait_opened(ws)
        event = await close_and_wait(ws, 1000)
    assert log.types() == ["open", "close"]
    assert (event.wasClean, event.code) == (True, 1000)


async def test_abrupt_tcp_close_after_open() -> None:
    """TCP closed after open without a Close frame: error, then close 1006, not clean."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        await asyncio.sleep(0.05 * TIMEOUT)

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=agent())
        log = Log(ws)
        event = await wait_closed(ws)
    assert log.entries == [
        ("open", WebSocket.OPEN, None),
        ("error", WebSocket.CLOSED, None),
        ("close", WebSocket.CLOSED, (False, 1006, "")),
    ]
    assert (event.wasClean, event.code) == (False, 1006)
    assert ws.failure is not None
    assert ws.failure.kind == "connection_lost"


async def test_reserved_opcode_fails_with_1002() -> None:
    """A reserved opcode: the client sends Close 1002; the page sees error, then close 1006."""
    frames: list[tuple[int, bytes]] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        writer.write(server_frame(0x1, b"before") + server_frame(0x3, b"reserved"))
        await writer.drain()
        frames.append(await read_client_frame(reader))
        await reader.read()

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=agent())
        log = Log(ws)
        event = await wait_closed(ws)
    assert frames[0][0] == 0x8
    assert frames[0][1][:2] == struct.pack("!H", 1002)
    assert log.entries == [
        ("open", WebSocket.OPEN, None),
        ("message", WebSocket.OPEN, "before"),
        ("error", WebSocket.CLOSED, None),
        ("close", WebSocket.CLOSED, (False, 1006, "")),
    ]
    assert (event.wasClean, event.code) == (False, 1006)
    assert ws.failure is not None
    assert ws.failure.kind == "protocol"


async def test_server_never_answers_close() -> None:
    """A server that never answers our Close is dropped after close_timeout: close 1006."""
    received: list[tuple[int, bytes]] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        received.append(await read_client_frame(reader))
        await reader.read()  # silent until the client drops TCP

    async with raw_server(handler) as url:
        ws, log = await open_socket(url, agent=agent(close_timeout=0.5))
        start = time.monotonic()
        ws.close(1000)
        event = await wait_closed(ws)
        elapsed = time.monotonic() - start
    assert received == [(0x8, close_payload(1000))]
    assert (event.wasClean, event.code) == (False, 1006)
    assert log.types()[0] == "open"
    assert log.types()[-1] == "close"
    assert 0.4 <= elapsed < 5 * TIMEOUT


# --- handshake request headers and cookies ----------------------------------------------------


async def test_set_cookie_stored_before_open_and_sent_next_time() -> None:
    """Set-Cookie in the 101 is stored before open fires and sent on the next connection."""
    requests: list[bytes] = []
    jar_at_open: list[list[str]] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        extra = b"Set-Cookie: sid=abc123; Path=/\r\n" if not requests else b""
        requests.append(await accept(reader, writer, extra))
        await answer_close(reader, writer)

    async with raw_server(handler) as url:
        ua = agent()
        ws = WebSocket(url, agent=ua)
        ws.onopen = lambda _e: jar_at_open.append([c.name for c in ua.cookie_jar])
        await wait_opened(ws)
        await close_and_wait(ws)
        ws2, _ = await open_socket(url, agent=ua)
        await close_and_wait(ws2)
    assert jar_at_open == [["sid"]]
    assert not [v for n, v in header_lines(requests[0]) if n == "cookie"]
    assert ("cookie", "sid=abc123") in header_lines(requests[1])


@pytest.mark.parametrize(
    ("settings", "expected", "absent"),
    [
        (
            {"origin": "http://app.example", "user_agent": "probe/1.0"},
            [("origin", "http://app.example"), ("user-agent", "probe/1.0")],
            [],
        ),
        (
            {"origin": "HTTP://App.Example:80/some/page", "user_agent": None},
            [("origin", "http://app.example")],
            ["user-agent"],
        ),
        ({"origin": None, "user_agent": None}, [], ["origin", "user-agent"]),
        (
            {"origin": None, "headers": {"X-Token": "t1", "Authorization": "Bearer x"}},
            [("x-token", "t1"), ("authorization", "Bearer x")],
            ["origin"],
        ),
        (
            {"origin": None, "headers": [("X-Multi", "1"), ("X-Multi", "2")]},
            [("x-multi", "1"), ("x-multi", "2")],
            ["origin"],
        ),
    ],
    ids=["origin-and-ua", "origin-serialized", "none", "extra-mapping", "extra-pairs"],
)
async def test_handshake_request_headers(
    settings: dict[str, Any], expected: list[tuple[str, str]], absent: list[str]
) -> None:
    """Origin, User-Agent and extra headers are sent as configured; None sends none."""
    requests: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        requests.append(await accept(reader, writer))
        await answer_close(reader, writer)

    async with raw_server(handler) as url:
        ws, _ = await open_socket(url, agent=agent(**settings))
        await close_and_wait(ws)
    headers = header_lines(requests[0])
    for pair in expected:
        assert pair in headers
    names = [name for name, _ in headers]
    for name in absent:
        assert name not in names
    assert requests[0].startswith(b"GET / HTTP/1.1\r\n")


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


async def test_ping_on_open_connection_gives_no_event() -> None:
    """wsapi.ping() sends a Ping the websockets server answers; the Pong is no event."""
    async with echo_server() as server:
        ws, log = await open_socket(server.url, agent=agent())
        ping(ws)
        ping(ws, b"payload")
        ping(ws, b"x" * 125)
        ws.send("after")
        assert await log.message() == "after"
        await asyncio.sleep(0.05 * TIMEOUT)
        await close_and_wait(ws)
    assert log.types() == ["open", "message", "close"]


async def test_ping_frame_on_the_wire() -> None:
    """wsapi.ping() writes a masked Ping with the data; the peer's Pong fires no event."""
    frames: list[tuple[int, bytes]] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        frames.append(await read_client_frame(reader))
        writer.write(server_frame(0xA, frames[0][1]) + server_frame(0x1, b"after pong"))
        await writer.drain()
        await answer_close(reader, writer)

    async with raw_server(handler) as url:
        ws, log = await open_socket(url, agent=agent())
        ping(ws, b"hi")
        assert await log.message() == "after pong"
        await close_and_wait(ws)
    assert frames == [(0x9, b"hi")]
    assert log.types() == ["open", "message", "close"]


async def test_ping_errors() -> None:
    """ping() before open or after close() is InvalidStateError; over 125 bytes ValueError."""
    async with echo_server() as server:
        ws = WebSocket(server.url, agent=agent())
        with pytest.raises(DOMException) as info:
            ping(ws)
        raises_dom("InvalidStateError", 11)(info)
        await wait_opened(ws)
        with pytest.raises(ValueError, match="126"):
            ping(ws, b"x" * 126)
        with pytest.raises(TypeError):
            ping(ws, "text")  # type: ignore[arg-type]
        ws.close()
        with pytest.raises(DOMException) as info:
            ping(ws)
        raises_dom("InvalidStateError", 11)(info)
        await wait_closed(ws)


# --- one connection in CONNECTING per address -------------------------------------------------


async def test_one_connecting_per_address() -> None:
    """A second connection to an address waits until the first handshake completes (4.1)."""
    loop = asyncio.get_running_loop()
    timeline: list[tuple[str, int, float]] = []
    count = 0

    async def handler(reader: Reader, writer: Writer) -> None:
        nonlocal count
        index = count
        count += 1
        timeline.append(("accept", index, loop.time()))
        request = await read_request(reader)
        if index == 0:
            await asyncio.sleep(0.3 * TIMEOUT)
        timeline.append(("101", index, loop.time()))
        writer.write(switching_protocols(request))
        await writer.drain()
        await answer_close(reader, writer)

    async with raw_server(handler) as url:
        ua = agent()  # one user agent: the rule is about its connections
        first = WebSocket(url, agent=ua)
        second = WebSocket(url, agent=ua)
        await wait_opened(first)
        await wait_opened(second)
        await close_and_wait(first)
        await close_and_wait(second)
    assert [(what, index) for what, index, _ in timeline] == [
        ("accept", 0),
        ("101", 0),
        ("accept", 1),
        ("101", 1),
    ]
    assert timeline[2][2] >= timeline[1][2]


async def test_waiting_connection_opens_after_first_fails() -> None:
    """The queued connection goes ahead once the first one to the address has failed."""
    count = 0

    async def handler(reader: Reader, writer: Writer) -> None:
        nonlocal count
        index = count
        count += 1
        request = await read_request(reader)
        if index == 0:
            await asyncio.sleep(0.1 * TIMEOUT)
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            await reader.read()
            return
        writer.write(switching_protocols(request))
        await writer.drain()
        await answer_close(reader, writer)

    async with raw_server(handler) as url:
        ua = agent()  # one user agent: the rule is about its connections
        first = WebSocket(url, agent=ua)
        second = WebSocket(url, agent=ua)
        await wait_closed(first)
        await wait_opened(second)
        await close_and_wait(second)
    assert first.failure is not None
    assert first.failure.status_code == 503
    assert count == 2
