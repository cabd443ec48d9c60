"""wss: on the standard library's ssl, against a real TLS server with certificates made by
trustme: verification on by default, SNI, custom contexts, and readable failure reasons."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from servers import tls_certificates, websocket_server
from support import TIMEOUT, assert_only_dropped_tls_handshakes, capture_reports, events_of
from wsapi import UserAgent, WebSocket


async def events_until_closed(ws: WebSocket) -> list[str]:
    log = events_of(ws)
    await asyncio.wait_for(ws.closed, 10 * TIMEOUT)
    return log


async def test_wss_with_a_trusted_certificate() -> None:
    """wss: with a context trusting the CA: open, echo, clean close."""
    certificates = tls_certificates()
    async with websocket_server(ssl=certificates.server_context()) as server:
        agent = UserAgent(proxy=None, ssl_context=certificates.client_context())
        async with WebSocket(server.url, agent=agent) as ws:
            got: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            ws.onmessage = lambda event: got.set_result(event.data)
            ws.send("over TLS")
            assert await got == "over TLS"
            # Frames go through the TLS transport, never written to its socket directly.
            assert ws._pump is not None
            assert ws._pump._fd == -1
        assert (await ws.closed).wasClean


async def test_default_context_refuses_an_unknown_ca() -> None:
    """The default context (system trust store) refuses a certificate from a private CA:
    error, close 1006, and a failure that says why."""
    reports = capture_reports()
    certificates = tls_certificates()
    async with websocket_server(ssl=certificates.server_context()) as server:
        ws = WebSocket(server.url, agent=UserAgent(proxy=None))
        log = await events_until_closed(ws)
    assert_only_dropped_tls_handshakes(reports)
    assert log == ["error", "close 1006 False"]
    assert ws.failure is not None
    assert ws.failure.kind == "tls"
    assert "certificate" in ws.failure.reason
    assert "unable to get local issuer certificate" in ws.failure.reason


async def test_untrusted_certificate_fails() -> None:
    """A server whose certificate comes from another CA fails, naming the reason."""
    reports = capture_reports()
    certificates = tls_certificates()
    async with websocket_server(ssl=certificates.untrusted_server_context()) as server:
        agent = UserAgent(proxy=None, ssl_context=certificates.client_context())
        ws = WebSocket(server.url, agent=agent)
        log = await events_until_closed(ws)
    assert_only_dropped_tls_handshakes(reports)
    assert log == ["error", "close 1006 False"]
    assert ws.failure is not None
    assert ws.failure.kind == "tls"
    assert "was refused" in ws.failure.reason


async def test_wrong_host_name_fails() -> None:
    """A certificate for another name fails the host-name check, and the reason says so."""
    reports = capture_reports()
    certificates = tls_certificates()
    async with websocket_server(ssl=certificates.wrong_name_server_context()) as server:
        agent = UserAgent(proxy=None, ssl_context=certificates.client_context())
        ws = WebSocket(server.url, agent=agent)
        log = await events_until_closed(ws)
    assert_only_dropped_tls_handshakes(reports)
    assert log == ["error", "close 1006 False"]
    assert ws.failure is not None
    assert ws.failure.kind == "tls"
    assert "localhost" in ws.failure.reason
    assert "mismatch" in ws.failure.reason.lower()


async def test_sni_names_the_host() -> None:
    """The TLS handshake carries the URL's host name (SNI)."""
    certificates = tls_certificates()
    seen: list[str | None] = []
    context = certificates.server_context()
    context.sni_callback = lambda sock, name, ctx: seen.append(name)
    async with websocket_server(ssl=context) as server:
        agent = UserAgent(proxy=None, ssl_context=certificates.client_context())
        async with WebSocket(server.url, agent=agent):
            pass
    assert seen == ["localhost"]


@pytest.mark.server_errors  # (A TLS ClientHello is no HTTP request to the server.)
async def test_tls_handshake_with_a_plain_server_fails() -> None:
    """wss: to a server that does not speak TLS fails with kind "tls"."""
    async with websocket_server() as server:
        url = server.url.replace("ws://", "wss://")
        ws = WebSocket(url, agent=UserAgent(proxy=None))
        log = await events_until_closed(ws)
    assert log == ["error", "close 1006 False"]
    assert ws.failure is not None
    assert ws.failure.kind == "tls"
    assert "TLS handshake" in ws.failure.reason


async def test_custom_context_without_verification() -> None:
    """A custom context may turn verification off (a user's explicit choice)."""
    certificates = tls_certificates()
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    agent = UserAgent(proxy=None, ssl_context=insecure)
    async with websocket_server(ssl=certificates.untrusted_server_context()) as server:
        ws = WebSocket(server.url, agent=agent)
        async with ws:
            assert ws.readyState == WebSocket.OPEN


@pytest.mark.parametrize("standard", ["cr-2011", "whatwg"])
async def test_message_origin_is_wss(standard: str) -> None:
    """MessageEvent.origin of a wss: connection is the wss origin (default port omitted)."""
    certificates = tls_certificates()
    async with websocket_server(ssl=certificates.server_context()) as server:
        agent = UserAgent(
            proxy=None,
            ssl_context=certificates.client_context(),
            standard=standard,  # type: ignore[arg-type]
        )
        async with WebSocket(server.url, agent=agent) as ws:
            got: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            ws.onmessage = lambda event: got.set_result(event.origin)
            ws.send("x")
            assert await got == f"wss://localhost:{server.port}"
