"""Self-checks of the test servers in servers.py, with plain tools (asyncio streams, websockets,
python-socks) rather than wsapi."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import os
import ssl
import sys

import pytest
from python_socks import ProxyError
from python_socks.async_.asyncio import Proxy
from websockets.asyncio.client import connect

from servers import (
    OUTGOING,
    ServerStartError,
    TinyProxy,
    WebSocketServer,
    https_proxy,
    microsocks,
    refusing_http_proxy,
    tinyproxy,
    tls_certificates,
    websocket_server,
)
from support import assert_only_dropped_tls_handshakes, capture_reports

STEP = 5.0
"""Seconds any single network step here may take."""

HANDSHAKE = (
    "GET / HTTP/1.1\r\n"
    "Host: 127.0.0.1:{port}\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
)


async def read_head(reader: asyncio.StreamReader) -> str:
    """Read an HTTP response head."""
    return (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), STEP)).decode("latin-1")


async def send_connect(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    port: int,
    credentials: tuple[str, str] | None = None,
) -> str:
    """Ask a proxy to CONNECT to 127.0.0.1:PORT; return its response head."""
    request = f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if credentials is not None:
        token = base64.b64encode(":".join(credentials).encode()).decode()
        request += f"Proxy-Authorization: Basic {token}\r\n"
    writer.write((request + "\r\n").encode())
    return await read_head(reader)


async def echo_over(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: WebSocketServer
) -> None:
    """Open a WebSocket over an established stream and check that a text message echoes."""
    writer.write(HANDSHAKE.format(port=server.port).encode())
    assert (await read_head(reader)).startswith("HTTP/1.1 101 ")
    mask = os.urandom(4)
    payload = b"hello"
    writer.write(bytes([0x81, 0x80 | len(payload)]) + mask)
    writer.write(bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload)))
    echoed = await asyncio.wait_for(reader.readexactly(2 + len(payload)), STEP)
    assert echoed == bytes([0x81, len(payload)]) + payload


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()


async def refuses(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:PORT any more."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    await close(writer)
    return False


async def test_websocket_server_echoes_and_records_peers() -> None:
    """The plain server echoes and records the client's address."""
    async with websocket_server() as server:
        assert server.url == server.ip_url == f"ws://127.0.0.1:{server.port}/"
        async with connect(server.url) as client:
            await client.send("hi")
            assert await asyncio.wait_for(client.recv(), STEP) == "hi"
            local = client.local_address
        assert server.peers == [(local[0], local[1])]
    assert await refuses(server.port)


# Python 3.10's TLS transport is left "unclosed" by a failed handshake (fixed in 3.11): it
# warns when collected, which the test collects itself so that no later test gets it.
@pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning"
    if sys.version_info < (3, 11)
    else "error::pytest.PytestUnraisableExceptionWarning"
)
async def test_tls_server_and_certificate_failures() -> None:
    """The trusted cert works; the untrusted and wrong-name ones fail verification."""
    reports = capture_reports()
    certificates = tls_certificates()
    assert tls_certificates() is certificates
    async with websocket_server(ssl=certificates.server_context()) as server:
        assert server.url == f"wss://localhost:{server.port}/"
        assert server.ip_url == f"wss://127.0.0.1:{server.port}/"
        async with connect(server.url, ssl=certificates.client_context()) as client:
            await client.send(b"bytes")
            assert await asyncio.wait_for(client.recv(), STEP) == b"bytes"
        # websockets leaves the TLS transport to the server's close, which Python 3.10's
        # asyncio does not count as closing it: it would warn "unclosed transport" when
        # collected, in whichever test runs then.
        client.transport.close()
        async with connect(server.ip_url, ssl=certificates.client_context()) as client:
            await client.send("by IP")
            assert await asyncio.wait_for(client.recv(), STEP) == "by IP"
        client.transport.close()
    for context, message in [
        (certificates.untrusted_server_context(), "unable to get local issuer certificate"),
        (certificates.wrong_name_server_context(), "Hostname mismatch"),
    ]:
        async with websocket_server(ssl=context) as server:
            with pytest.raises(ssl.SSLCertVerificationError, match=message):
                await asyncio.open_connection(
                    "localhost", server.port, ssl=certificates.client_context()
                )
    gc.collect()
    assert_only_dropped_tls_handshakes(reports)


async def test_tinyproxy_connect_comes_from_outgoing_address() -> None:
    """A CONNECT through tinyproxy reaches the server from 127.0.0.2 and is logged."""
    async with websocket_server() as server, tinyproxy() as proxy:
        assert proxy.url == f"http://127.0.0.1:{proxy.port}"
        assert proxy.connect_count() == 0
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            assert (await send_connect(reader, writer, server.port)).startswith("HTTP/1.0 200 ")
            await echo_over(reader, writer, server)
        finally:
            await close(writer)
        assert [host for host, _ in server.peers] == [OUTGOING]
        assert proxy.connect_targets() == [f"127.0.0.1:{server.port}"]
        assert proxy.connect_count() == 1
        workdir = proxy.workdir
    assert not workdir.exists()
    assert await refuses(proxy.port)


async def test_tinyproxy_requires_credentials() -> None:
    """With auth, tinyproxy answers 407 without credentials and 200 with them."""
    async with websocket_server() as server, tinyproxy(auth=("user", "s3cret")) as proxy:
        assert proxy.url == f"http://user:s3cret@127.0.0.1:{proxy.port}"
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            head = await send_connect(reader, writer, server.port)
        finally:
            await close(writer)
        assert head.startswith("HTTP/1.0 407 ")
        assert "Proxy-Authenticate: Basic" in head
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            head = await send_connect(reader, writer, server.port, ("user", "s3cret"))
            assert head.startswith("HTTP/1.0 200 ")
            await echo_over(reader, writer, server)
        finally:
            await close(writer)
        assert [host for host, _ in server.peers] == [OUTGOING]
    with pytest.raises(ValueError, match="tinyproxy only accepts"):
        async with tinyproxy(auth=("user", "pass word")):
            pass


async def test_processes_stop_on_failure() -> None:
    """An exception in the block still stops the proxy and deletes its directory."""
    started: list[TinyProxy] = []

    async def fail() -> None:
        async with tinyproxy() as proxy:
            started.append(proxy)
            raise RuntimeError("test failure")

    with pytest.raises(RuntimeError, match="test failure"):
        await fail()
    [proxy] = started
    assert not proxy.workdir.exists()
    assert await refuses(proxy.port)


async def test_microsocks_connects_from_outgoing_address() -> None:
    """microsocks, with and without auth, reaches the server from 127.0.0.2."""
    async with websocket_server() as server:
        for auth in [None, ("user", "p@ss:word")]:
            async with microsocks(auth=auth) as proxy:
                sock = await Proxy.from_url(proxy.url).connect("127.0.0.1", server.port, STEP)
                reader, writer = await asyncio.open_connection(sock=sock)
                try:
                    await echo_over(reader, writer, server)
                finally:
                    await close(writer)
                if auth is not None:
                    assert proxy.url == f"socks5://user:p%40ss%3Aword@127.0.0.1:{proxy.port}"
                    bare = f"socks5://127.0.0.1:{proxy.port}"
                    with pytest.raises(ProxyError):
                        await Proxy.from_url(bare).connect("127.0.0.1", server.port, STEP)
                assert f"connected to 127.0.0.1:{server.port}" in proxy.output()
        assert [host for host, _ in server.peers] == [OUTGOING, OUTGOING]


async def test_https_proxy_in_front_of_tinyproxy() -> None:
    """A CONNECT over TLS to stunnel goes through tinyproxy and reaches the server."""
    certificates = tls_certificates()
    async with (
        websocket_server() as server,
        tinyproxy(auth=("user", "pw")) as upstream,
        https_proxy(upstream.url, certificates) as proxy,
    ):
        assert proxy.url == f"https://user:pw@localhost:{proxy.port}"
        reader, writer = await asyncio.open_connection(
            "localhost", proxy.port, ssl=certificates.client_context()
        )
        try:
            head = await send_connect(reader, writer, server.port, ("user", "pw"))
            assert head.startswith("HTTP/1.0 200 ")
            await echo_over(reader, writer, server)
        finally:
            await close(writer)
        assert [host for host, _ in server.peers] == [OUTGOING]
        assert upstream.connect_count() == 1
        assert f"s_connect: connected 127.0.0.1:{upstream.port}" in proxy.output()
        workdir = proxy.workdir
    assert not workdir.exists()
    with pytest.raises(ValueError, match="expected http"):
        async with https_proxy("socks5://127.0.0.1:1"):
            pass


@pytest.mark.parametrize("status", [407, 403, 502])
async def test_refusing_proxy(status: int) -> None:
    """The refusing proxy answers CONNECT with its status, then closes."""
    async with refusing_http_proxy(status) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            head = await send_connect(reader, writer, 9, ("a", "b"))
            assert head.startswith(f"HTTP/1.1 {status} ")
            assert ("Proxy-Authenticate: Basic" in head) == (status == 407)
            assert await asyncio.wait_for(reader.read(), STEP) == b""
        finally:
            await close(writer)
        assert len(proxy.requests) == 1
        assert proxy.requests[0].startswith(b"CONNECT 127.0.0.1:9 HTTP/1.1\r\n")
        assert b"Proxy-Authorization: Basic YTpi\r\n" in proxy.requests[0]


async def test_refusing_proxy_with_a_client_left_connected() -> None:
    """Exiting while a client is still mid-request leaves no task behind."""
    async with refusing_http_proxy(502) as proxy:
        _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"CONNECT 127.0.0.1:9 HTTP/1.1\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
    await close(writer)


async def test_start_failure_is_reported() -> None:
    """A program that cannot start raises ServerStartError with its output."""
    with pytest.raises(ServerStartError, match="tinyproxy exited with code") as info:
        async with tinyproxy(bind_outgoing="not-an-address"):
            pass
    assert "Syntax error" in str(info.value)
    assert "Bind not-an-address" in str(info.value)
