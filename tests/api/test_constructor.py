"""The constructor (CR 2011 section 4, WHATWG "new WebSocket(url, protocols)"): the URL
and its standard's parsing, blocked ports and mixed content, the protocols argument."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from support import (
    STANDARDS,
    TIMEOUT,
    Log,
    Reader,
    Standard,
    Writer,
    accept,
    agent,
    answer_close,
    both_standards,
    close_and_wait,
    discard,
    echo_server,
    header_lines,
    open_socket,
    raises_dom,
    raw_server,
    read_request,
    switching_protocols,
    wait_closed,
)
from wsapi import DOMException, WebSocket

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
