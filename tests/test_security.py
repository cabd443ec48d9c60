"""The security review (docs/security.md), a test per finding: TLS, what a script's values
may inject into the handshake, credentials in URLs and proxies, payload logging, cookies,
redirects and the bounds on what a server or a proxy answers. Against real peers: raw
servers, the websockets server, tinyproxy, TLS servers with trustme's certificates."""

from __future__ import annotations

import asyncio
import datetime
import http.cookiejar
import logging
import ssl
import time
import warnings

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request

from servers import (
    _server_context,
    refusing_http_proxy,
    tinyproxy,
    tls_certificates,
    websocket_server,
)
from support import (
    TIMEOUT,
    Reader,
    Writer,
    accept,
    agent,
    answer_close,
    assert_only_dropped_tls_handshakes,
    capture_reports,
    close_cleanly,
    header_lines,
    raw_server,
    read_request,
    switching_protocols,
    wait_closed,
    wait_opened,
)
from wsapi import UserAgent, WebSocket
from wsapi.opening import _ssl_context
from wsapi.protocol.constants import MAX_HANDSHAKE_RESPONSE_SIZE
from wsapi.proxy import parse_proxy_url

SECRET = "s3cret-Pa55"
"""A password that must never leave the places it belongs to."""


async def failed(ws: WebSocket) -> tuple[str, str]:
    """Wait for the close; the failure's kind and reason."""
    await wait_closed(ws, 10 * TIMEOUT)
    assert ws.failure is not None
    return ws.failure.kind, ws.failure.reason


class Recorder:
    """A websockets server's process_request that keeps each request's headers."""

    def __init__(self) -> None:
        self.requests: list[list[tuple[str, str]]] = []

    def __call__(self, connection: ServerConnection, request: Request) -> None:
        self.requests.append(
            [(name.lower(), value) for name, value in request.headers.raw_items()]
        )

    def cookies(self) -> list[str | None]:
        """The Cookie header of each request (None when there was none)."""
        return [dict(headers).get("cookie") for headers in self.requests]


# --- TLS -------------------------------------------------------------------------------------


def test_default_tls_context() -> None:
    """The context wsapi uses when none is given verifies certificates and host names and
    refuses TLS older than 1.2."""
    context = _ssl_context(UserAgent(proxy=None))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


async def test_tls_older_than_1_2_fails() -> None:
    """A server that speaks at most TLS 1.1 fails the connection (kind "tls"), even with a
    context that trusts its certificate."""
    reports = capture_reports()
    certificates = tls_certificates()
    server_context = certificates.server_context()
    with warnings.catch_warnings():  # (Python deprecates the old versions: the point here.)
        warnings.simplefilter("ignore", DeprecationWarning)
        server_context.minimum_version = ssl.TLSVersion.TLSv1
        server_context.maximum_version = ssl.TLSVersion.TLSv1_1
    server_context.set_ciphers("DEFAULT:@SECLEVEL=0")
    async with websocket_server(ssl=server_context) as server:
        ws = WebSocket(server.url, agent=agent(ssl_context=certificates.client_context()))
        kind, reason = await failed(ws)
    assert_only_dropped_tls_handshakes(reports)
    assert kind == "tls", reason
    assert ws.failure is not None
    assert ws.failure.status_code is None


async def test_expired_certificate_fails() -> None:
    """An expired certificate from a trusted CA fails, and the reason says it expired."""
    reports = capture_reports()
    certificates = tls_certificates()
    now = datetime.datetime.now(datetime.timezone.utc)
    expired = certificates.ca.issue_cert(
        "localhost",
        not_before=now - datetime.timedelta(days=30),
        not_after=now - datetime.timedelta(days=1),
    )
    async with websocket_server(ssl=_server_context(expired)) as server:
        ws = WebSocket(server.url, agent=agent(ssl_context=certificates.client_context()))
        kind, reason = await failed(ws)
    assert_only_dropped_tls_handshakes(reports)
    assert kind == "tls"
    assert reason.endswith("was refused: certificate has expired"), reason


async def test_https_proxy_certificate_is_verified() -> None:
    """An https:// proxy whose certificate is not trusted is refused before CONNECT (and
    its credentials) are sent: failure kind "proxy", naming the proxy without them."""
    reports = capture_reports()
    certificates = tls_certificates()
    received: list[bytes] = []

    async def proxy(reader: Reader, writer: Writer) -> None:
        received.append(await reader.read())
        writer.close()

    server = await asyncio.start_server(
        proxy, "127.0.0.1", 0, ssl=certificates.untrusted_server_context()
    )
    port = server.sockets[0].getsockname()[1]
    try:
        url = f"https://alice:{SECRET}@localhost:{port}"
        ws = WebSocket("ws://127.0.0.1:1234/", agent=UserAgent(proxy=url))
        kind, reason = await failed(ws)
    finally:
        server.close()
        await server.wait_closed()
    assert_only_dropped_tls_handshakes(reports)
    assert kind == "proxy"
    assert reason == (
        f"the TLS certificate of the proxy https://localhost:{port} was refused: "
        "unable to get local issuer certificate"
    )
    assert b"CONNECT" not in b"".join(received)


# --- Injection -------------------------------------------------------------------------------

BAD_VALUES = ["a\r\nX-Injected: 1", "a\nX-Injected: 1", "a\rb", "a\x00b", "a\x7fb", "caf\u20ac"]


@pytest.mark.parametrize("value", BAD_VALUES)
def test_header_value_with_cr_lf_or_nul_is_refused(value: str) -> None:
    """An extra header or a User-Agent with CR, LF, NUL, another control character or a
    character outside ISO-8859-1 is refused when the agent is made (ValueError), without
    showing the value."""
    with pytest.raises(ValueError, match="the X-Token header value has") as info:
        UserAgent(headers={"X-Token": value})
    assert value not in str(info.value)
    with pytest.raises(ValueError, match="the User-Agent header value has"):
        UserAgent(user_agent=value)


@pytest.mark.parametrize("name", ["X-A\r\nX-Injected", "X A", "", "X:A", "X\x00"])
def test_header_name_that_is_not_a_token_is_refused(name: str) -> None:
    """An extra header whose name is not an HTTP token is refused when the agent is made."""
    with pytest.raises(ValueError, match="is not an HTTP token"):
        UserAgent(headers=[(name, "value")])


@pytest.mark.parametrize("protocol", ["chat\r\nX-Injected: 1", "chat\x00", "a b"])
async def test_protocol_with_cr_lf_or_nul_is_refused(protocol: str) -> None:
    """A subprotocol that is not a token is a SyntaxError in the constructor (CR step 6)."""
    with pytest.raises(Exception, match="is not a valid token") as info:
        WebSocket("ws://127.0.0.1:1234/", protocol, agent=agent())
    assert type(info.value).__name__ == "DOMException"


def test_origin_with_cr_lf_is_refused() -> None:
    """An origin is serialized from a parsed URL: CR and LF in it never reach the request."""
    with pytest.raises(ValueError, match="is not a URL"):
        UserAgent(origin="https://app.example\r\nX-Injected: 1")


async def test_cr_lf_in_the_url_is_escaped_or_refused() -> None:
    """CR, LF and NUL in a URL's path or query go out percent-encoded; in its host they
    make it invalid (SyntaxError). The request line stays one line."""
    requests: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        requests.append(await accept(reader, writer))
        await answer_close(reader, writer)

    async with raw_server(handler) as url:
        ws = WebSocket(url + "a\r\nX-Injected: 1?q=a\x00b\r\n", agent=agent())
        await wait_opened(ws)
        await close_cleanly(ws)
        with pytest.raises(Exception, match=r"SyntaxError|not an absolute URL"):
            WebSocket("ws://127.0.0.1\r\nX-Injected: 1/", agent=agent())
    request_line = requests[0].split(b"\r\n")[0]
    assert request_line == b"GET /aX-Injected:%201?q=a%00b HTTP/1.1", request_line
    assert b"x-injected" not in requests[0].lower().split(b"\r\n", 1)[1]


def _cookie(
    name: str, value: str, domain: str, *, secure: bool = False, path: str = "/"
) -> http.cookiejar.Cookie:
    """A cookie as a program may put it in a jar itself."""
    return http.cookiejar.Cookie(
        0, name, value, None, False, domain, False, False, path, True, secure,
        int(time.time()) + 3600, False, None, None, {},
    )  # fmt: skip


async def test_cookie_with_cr_lf_from_the_jar_fails_before_sending() -> None:
    """A cookie with CR and LF in its value, put in the jar by the program, fails the
    connection (kind "blocked") before it is opened, without showing the cookie."""
    connections: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        connections.append(await reader.read())

    jar = http.cookiejar.CookieJar()
    jar.set_cookie(_cookie("sid", f"{SECRET}\r\nX-Injected: 1", "127.0.0.1"))
    async with raw_server(handler) as url:
        kind, reason = await failed(WebSocket(url, agent=agent(cookie_jar=jar)))
    assert kind == "blocked"
    assert reason == (
        "the handshake request was refused: the Cookie header value has '\\r' at offset 15 "
        "(a control character)"
    )
    assert connections == []


async def test_cookie_with_obs_text_from_the_server_goes_back_as_it_came() -> None:
    """A Set-Cookie value with a byte above 0x7F (HTTP's obs-text) is sent back as that byte
    on the next connection (not a connection that never opens)."""
    requests: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        requests.append(await accept(reader, writer, b"Set-Cookie: sid=caf\xe9; Path=/\r\n"))
        await answer_close(reader, writer)

    settings = agent()
    async with raw_server(handler) as url:
        for _ in range(2):
            ws = WebSocket(url, agent=settings)
            await wait_opened(ws)
            await close_cleanly(ws)
    assert b"\r\nCookie: sid=caf\xe9\r\n" in requests[1]


# --- Credentials -----------------------------------------------------------------------------


async def test_url_credentials_are_not_sent_nor_shown(caplog: pytest.LogCaptureFixture) -> None:
    """user:password@ in a WebSocket URL sends no Authorization header and shows up in no
    log line, task name or repr; the url attribute keeps the URL as given (the specs'
    serialization)."""
    caplog.set_level(logging.DEBUG, logger="wsapi")
    requests: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        requests.append(await accept(reader, writer))
        await answer_close(reader, writer)

    async with raw_server(handler) as url:
        with_credentials = url.replace("ws://", f"ws://alice:{SECRET}@")
        ws = WebSocket(with_credentials, agent=agent())
        names = [task.get_name() for task in asyncio.all_tasks()]
        await wait_opened(ws)
        shown = repr(ws)
        await close_cleanly(ws)
    assert ws.url == with_credentials
    assert SECRET not in shown
    assert shown.startswith(f"<WebSocket {url}")
    assert not [name for name in names if SECRET in name or "alice" in name]
    assert "authorization" not in dict(header_lines(requests[0]))
    assert SECRET.encode() not in requests[0]
    assert caplog.records, "the wsapi logger said nothing at DEBUG"
    assert not [record for record in caplog.records if SECRET in record.getMessage()]


async def test_proxy_credentials_stay_with_the_proxy(caplog: pytest.LogCaptureFixture) -> None:
    """Through an HTTP proxy that asks for credentials: the origin server gets no
    Proxy-Authorization header, and the credentials are in no log line and no repr."""
    caplog.set_level(logging.DEBUG, logger="wsapi")
    recorder = Recorder()
    async with (
        websocket_server(process_request=recorder) as server,
        tinyproxy(auth=("alice", "s3cretPa55")) as proxy,
    ):
        settings = UserAgent(proxy=proxy.url)
        ws = WebSocket(server.url, agent=settings)
        await wait_opened(ws)
        await close_cleanly(ws)
        assert proxy.connect_count() == 1
    (headers,) = recorder.requests
    assert not [name for name, _ in headers if name.startswith("proxy-")]
    assert "s3cretPa55" not in repr(headers)
    assert "s3cretPa55" not in repr(parse_proxy_url(proxy.url))
    assert "s3cretPa55" not in repr(settings)
    assert not [record for record in caplog.records if "s3cretPa55" in record.getMessage()]


async def test_refusing_proxy_reason_hides_the_credentials() -> None:
    """A proxy that refuses the credentials: the failure reason names the proxy without
    them."""
    async with refusing_http_proxy(407) as proxy:
        url = proxy.url.replace("http://", f"http://alice:{SECRET}@")
        ws = WebSocket("ws://127.0.0.1:1234/", agent=UserAgent(proxy=url))
        kind, reason = await failed(ws)
    assert kind == "proxy"
    assert "refused the credentials" in reason
    assert SECRET not in reason
    assert SECRET not in str(ws.failure)


def test_unusable_proxy_url_hides_the_credentials() -> None:
    """A proxy URL that is not usable is refused without showing its credentials."""
    for url in (f"ftp://alice:{SECRET}@proxy.example", f"http://alice:{SECRET}@bad host:1"):
        with pytest.raises(ValueError, match="proxy") as info:
            UserAgent(proxy=url)
        assert SECRET not in str(info.value)
        assert "alice" not in str(info.value)


async def test_unusable_proxy_from_the_environment_hides_the_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proxy variable that is not usable fails the connection (kind "proxy") with a
    reason that does not show its credentials."""
    monkeypatch.setenv("ws_proxy", f"gopher://alice:{SECRET}@proxy.example")
    ws = WebSocket("ws://127.0.0.1:1234/", agent=UserAgent())
    kind, reason = await failed(ws)
    assert kind == "proxy"
    assert reason.startswith("the proxy setting is not usable: proxy 'gopher://proxy.example'")
    assert SECRET not in reason


async def test_payloads_are_not_logged_unless_asked(caplog: pytest.LogCaptureFixture) -> None:
    """With every logger at DEBUG (logging.basicConfig(level=DEBUG), say) no message is
    logged; setting the wsapi.payload logger's own level to DEBUG logs them."""
    caplog.set_level(logging.DEBUG)  # The root logger: every logger without a level.
    async with websocket_server() as server:
        for asked in (False, True):
            if asked:
                caplog.set_level(logging.DEBUG, logger="wsapi.payload")
            async with WebSocket(server.url, agent=agent()) as ws:
                got: asyncio.Future[object] = asyncio.get_running_loop().create_future()
                ws.onmessage = lambda event, got=got: got.set_result(event.data)
                ws.send(f"payload {asked}")
                assert await asyncio.wait_for(got, 10 * TIMEOUT) == f"payload {asked}"
    # (The websockets server logs its frames at DEBUG too: only wsapi's loggers count.)
    logged = [record.getMessage() for record in caplog.records if record.name.startswith("wsapi")]
    assert not [line for line in logged if "payload False" in line]
    assert [line for line in logged if "payload True" in line]


# --- Cookies ---------------------------------------------------------------------------------


async def test_secure_cookie_only_over_wss() -> None:
    """A Secure cookie goes to wss: and not to ws: on the same host."""
    certificates = tls_certificates()
    jar = http.cookiejar.CookieJar()
    jar.set_cookie(_cookie("session", "secure-one", "localhost.local", secure=True))
    jar.set_cookie(_cookie("theme", "dark", "localhost.local"))
    plain, secure = Recorder(), Recorder()
    async with (
        websocket_server(process_request=plain) as ws_server,
        websocket_server(process_request=secure, ssl=certificates.server_context()) as wss,
    ):
        settings = agent(cookie_jar=jar, ssl_context=certificates.client_context())
        for url in (ws_server.url.replace("127.0.0.1", "localhost"), wss.url):
            ws = WebSocket(url, agent=settings)
            await wait_opened(ws)
            await close_cleanly(ws)
    assert plain.cookies() == ["theme=dark"]
    assert secure.cookies() == ["session=secure-one; theme=dark"]


async def test_cookie_path_and_host_matching() -> None:
    """A cookie a server set for /chat goes back to /chat/room, not to /other, and not to
    the same server under another host name."""
    requests: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        request = await read_request(reader)
        requests.append(request)
        extra = b"Set-Cookie: sid=1; Path=/chat\r\n" if b"GET /chat " in request else b""
        await accept_with(request, writer, extra)
        await answer_close(reader, writer)

    settings = agent()
    async with raw_server(handler) as url:
        other_host = url.replace("127.0.0.1", "localhost")
        for target in (url + "chat", url + "chat/room", url + "other", other_host + "chat/x"):
            ws = WebSocket(target, agent=settings)
            await wait_opened(ws)
            await close_cleanly(ws)
    cookies = [dict(header_lines(request)).get("cookie") for request in requests]
    assert cookies == [None, "sid=1", None, None]


async def accept_with(request: bytes, writer: Writer, extra: bytes) -> None:
    """Answer ``request`` (already read) with a 101 and ``extra`` header lines."""
    writer.write(switching_protocols(request, extra))
    await writer.drain()


# --- Redirects and bounds --------------------------------------------------------------------


async def test_redirect_is_not_followed() -> None:
    """A 3xx answer fails the connection (kind "http_status"); the server it points to is
    never contacted."""
    contacted: list[bytes] = []

    async def elsewhere(reader: Reader, writer: Writer) -> None:
        contacted.append(await reader.read(1))

    async with raw_server(elsewhere) as target:

        async def redirector(reader: Reader, writer: Writer) -> None:
            await read_request(reader)
            writer.write(f"HTTP/1.1 302 Found\r\nLocation: {target}\r\n\r\n".encode())
            await writer.drain()

        async with raw_server(redirector) as url:
            ws = WebSocket(url, agent=agent())
            kind, _ = await failed(ws)
    assert kind == "http_status"
    assert ws.failure is not None
    assert ws.failure.status_code == 302
    assert contacted == []


async def endless_header(writer: Writer, head: bytes) -> None:
    """Write ``head`` and then a header line that never ends, until the client hangs up."""
    writer.write(head)
    try:
        for _ in range(100):
            writer.write(b"a" * 65536)
            await writer.drain()
    except ConnectionError:
        return
    raise AssertionError("the client read 6 MiB of a header line")


async def test_response_head_is_bounded() -> None:
    """A response head longer than MAX_HANDSHAKE_RESPONSE_SIZE fails the connection as
    soon as it passes the bound, not at the open timeout."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        await endless_header(writer, b"HTTP/1.1 101 Switching Protocols\r\nX-Long: ")

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=agent(open_timeout=60))
        kind, reason = await failed(ws)
    assert kind == "handshake"
    assert reason == f"the handshake response head exceeds {MAX_HANDSHAKE_RESPONSE_SIZE} bytes"


async def test_proxy_answer_is_bounded() -> None:
    """A proxy answer whose head is longer than MAX_PROXY_RESPONSE_SIZE fails the
    connection (kind "proxy") as soon as it passes the bound."""

    async def proxy(reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        await endless_header(writer, b"HTTP/1.1 200 OK\r\nX-Long: ")

    async with raw_server(proxy) as url:
        settings = UserAgent(proxy=url.replace("ws://", "http://"), open_timeout=60)
        kind, reason = await failed(WebSocket("ws://127.0.0.1:1234/", agent=settings))
    assert kind == "proxy"
    assert "not valid HTTP" in reason, reason
