"""Proxies, against real proxy servers started by the tests: tinyproxy (HTTP CONNECT, with
and without credentials), microsocks (SOCKS5), stunnel in front of tinyproxy (an https://
proxy), and a proxy that refuses. Each proves that the traffic went through the proxy: the
proxies connect out from 127.0.0.2, so the WebSocket server sees that address."""

from __future__ import annotations

import asyncio
import sys

import pytest

from servers import (
    https_proxy,
    microsocks,
    refusing_http_proxy,
    tinyproxy,
    tls_certificates,
    websocket_server,
)
from support import TIMEOUT
from wsapi import UserAgent, WebSocket

PROXIED_FROM = "127.0.0.2"


async def echo_once(url: str, agent: UserAgent) -> str:
    """Open, send one text message, return the echo, close cleanly."""
    async with WebSocket(url, agent=agent) as ws:
        got: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        ws.onmessage = lambda event: got.set_result(str(event.data))
        ws.send("through the proxy")
        reply = await asyncio.wait_for(got, 10 * TIMEOUT)
    assert (await ws.closed).code == 1000
    return reply


@pytest.mark.parametrize("auth", [None, ("alice", "s3cret")], ids=["open", "credentials"])
async def test_http_connect_proxy(auth: tuple[str, str] | None) -> None:
    """ws: through tinyproxy's CONNECT, with and without credentials."""
    async with websocket_server() as server, tinyproxy(auth=auth) as proxy:
        reply = await echo_once(server.url, UserAgent(proxy=proxy.url))
        assert reply == "through the proxy"
        assert [ip for ip, _ in server.peers] == [PROXIED_FROM]
        assert proxy.connect_targets() == [f"127.0.0.1:{server.port}"]


async def test_http_connect_proxy_wss_tls_inside_the_tunnel() -> None:
    """wss: through an http:// proxy: TLS with the server inside the CONNECT tunnel, the
    certificate checked for the server's name."""
    certificates = tls_certificates()
    async with websocket_server(ssl=certificates.server_context()) as server, tinyproxy() as proxy:
        agent = UserAgent(proxy=proxy.url, ssl_context=certificates.client_context())
        assert await echo_once(server.url, agent) == "through the proxy"
        assert [ip for ip, _ in server.peers] == [PROXIED_FROM]
        assert proxy.connect_targets() == [f"localhost:{server.port}"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TLS in TLS needs Python 3.11")
async def test_https_proxy_with_wss() -> None:
    """wss: through an https:// proxy: TLS to the proxy, then TLS to the server inside it."""
    certificates = tls_certificates()
    async with (
        websocket_server(ssl=certificates.server_context()) as server,
        tinyproxy() as upstream,
        https_proxy(upstream.url, certificates) as proxy,
    ):
        agent = UserAgent(proxy=proxy.url, ssl_context=certificates.client_context())
        assert await echo_once(server.url, agent) == "through the proxy"
        assert [ip for ip, _ in server.peers] == [PROXIED_FROM]
        assert upstream.connect_targets() == [f"localhost:{server.port}"]


async def test_https_proxy_with_ws() -> None:
    """ws: through an https:// proxy (TLS to the proxy only)."""
    certificates = tls_certificates()
    async with (
        websocket_server() as server,
        tinyproxy() as upstream,
        https_proxy(upstream.url, certificates) as proxy,
    ):
        agent = UserAgent(proxy=proxy.url, ssl_context=certificates.client_context())
        assert await echo_once(server.url, agent) == "through the proxy"
        assert [ip for ip, _ in server.peers] == [PROXIED_FROM]


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
@pytest.mark.parametrize("auth", [None, ("bob", "pw")], ids=["open", "credentials"])
async def test_socks5_proxy(scheme: str, auth: tuple[str, str] | None) -> None:
    """ws: through microsocks, names resolved locally (socks5) or by the proxy (socks5h)."""
    async with websocket_server() as server, microsocks(auth=auth) as proxy:
        url = proxy.url.replace("socks5://", f"{scheme}://", 1)
        assert await echo_once(server.url, UserAgent(proxy=url)) == "through the proxy"
        assert [ip for ip, _ in server.peers] == [PROXIED_FROM]
        assert f"connected to 127.0.0.1:{server.port}" in proxy.output()


async def test_socks5_proxy_with_wss() -> None:
    """wss: through a SOCKS5 proxy, the certificate checked for the server's name."""
    certificates = tls_certificates()
    async with (
        websocket_server(ssl=certificates.server_context()) as server,
        microsocks() as proxy,
    ):
        agent = UserAgent(proxy=proxy.url, ssl_context=certificates.client_context())
        assert await echo_once(server.ip_url, agent) == "through the proxy"
        assert [ip for ip, _ in server.peers] == [PROXIED_FROM]


async def test_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default agent setting proxy="env" takes http_proxy for ws: URLs."""
    for name in ("ws_proxy", "all_proxy", "no_proxy", "WS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    async with websocket_server() as server, tinyproxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert await echo_once(server.url, UserAgent()) == "through the proxy"
        assert [ip for ip, _ in server.peers] == [PROXIED_FROM]
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        assert await echo_once(server.url, UserAgent()) == "through the proxy"
        assert [ip for ip, _ in server.peers] == [PROXIED_FROM, "127.0.0.1"]


@pytest.mark.parametrize("status", [407, 403, 502])
async def test_refusing_proxy_fails_with_a_reason(status: int) -> None:
    """A proxy that refuses CONNECT: error, close 1006, failure kind "proxy" with the
    proxy's status."""
    async with websocket_server() as server, refusing_http_proxy(status) as proxy:
        ws = WebSocket(server.url, agent=UserAgent(proxy=proxy.url))
        log: list[str] = []
        ws.onerror = lambda event: log.append("error")
        ws.onclose = lambda event: log.append(f"close {event.code} {event.wasClean}")
        await asyncio.wait_for(ws.closed, 10 * TIMEOUT)
        assert server.peers == []
    assert log == ["error", "close 1006 False"]
    assert ws.failure is not None
    assert (ws.failure.kind, ws.failure.status_code) == ("proxy", status)
    assert f"HTTP {status}" in ws.failure.reason
    if status == 407:
        assert "credentials" in ws.failure.reason


async def test_wrong_proxy_credentials() -> None:
    """Wrong credentials: tinyproxy's refusal (it answers 401, not 407) becomes a failure
    saying they were refused."""
    async with websocket_server() as server, tinyproxy(auth=("alice", "right")) as proxy:
        url = proxy.url.replace("alice:right@", "alice:wrong@")
        ws = WebSocket(server.url, agent=UserAgent(proxy=url))
        await asyncio.wait_for(ws.closed, 10 * TIMEOUT)
    assert ws.failure is not None
    assert ws.failure.status_code == 401
    assert "refused the credentials" in ws.failure.reason


async def test_unreachable_proxy() -> None:
    """A proxy that is not listening: failure kind "proxy" naming it (without credentials)."""
    async with refusing_http_proxy(403) as closed_proxy:
        url = f"http://user:pw@127.0.0.1:{closed_proxy.port}"
    ws = WebSocket("ws://127.0.0.1:9/", agent=UserAgent(proxy=url, blocked_ports=()))
    await asyncio.wait_for(ws.closed, 10 * TIMEOUT)
    assert ws.failure is not None
    assert ws.failure.kind == "proxy"
    assert f"127.0.0.1:{closed_proxy.port}" in ws.failure.reason
    assert "pw" not in ws.failure.reason
