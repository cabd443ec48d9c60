"""What the fuzz targets found (docs/fuzzing.md), one regression test each: the proxy's
CONNECT answer reader and the engine's opening handshake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import h11

from servers import websocket_server
from support import (
    Reader,
    Writer,
    close_cleanly,
    raw_server,
    read_request,
    switching_protocols,
    wait_opened,
)
from wsapi import UserAgent, WebSocket
from wsapi.protocol.engine import ClientConnection, State
from wsapi.protocol.events import Opened
from wsapi.proxy import _ConnectProtocol


@asynccontextmanager
async def relaying_proxy(answer: bytes) -> AsyncIterator[str]:
    """An HTTP proxy that answers CONNECT with ``answer`` (in one write) and then relays
    both ways; yields its http:// URL."""

    async def pipe(source: Reader, sink: Writer) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except ConnectionError:
            pass
        finally:
            sink.close()

    async def handle(reader: Reader, writer: Writer) -> None:
        head = await read_request(reader)
        host, port = head.split(b" ")[1].decode().rsplit(":", 1)
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        writer.write(answer)
        await writer.drain()
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    async with raw_server(handle) as url:
        yield url.replace("ws://", "http://")


async def test_proxy_1xx_and_2xx_in_one_read() -> None:
    """A proxy that sends a 1xx answer and its 200 in one read opens the tunnel (the reader
    used to stop at the 1xx and wait for a read that never came)."""
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Connection established\r\n\r\n"
    async with websocket_server() as server, relaying_proxy(answer) as proxy:
        ws = WebSocket(server.url, agent=UserAgent(proxy=proxy, open_timeout=5))
        await wait_opened(ws)
        await close_cleanly(ws)


class _Written:
    """The one method of a transport the CONNECT reader calls: ``write``."""

    def __init__(self) -> None:
        self.data: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.data.append(data)


async def test_bytes_after_the_proxy_answer_in_a_later_read_are_kept() -> None:
    """Bytes that arrive in a read after the proxy's 2xx answer, before the connection
    takes the transport over, are handed over with those that came with the answer (they
    used to be dropped)."""
    request = h11.Request(method="CONNECT", target="example.test:80", headers=[("Host", "x")])
    tunnel = _ConnectProtocol(request, has_credentials=False)
    transport = _Written()
    tunnel.connection_made(cast(asyncio.Transport, transport))
    tunnel.data_received(b"HTTP/1.1 200 OK\r\n\r\nfirst ")
    tunnel.data_received(b"second")
    await tunnel.established
    assert bytes(tunnel.leftover) == b"first second"
    assert transport.data[0].startswith(b"CONNECT example.test:80 HTTP/1.1\r\n")


def test_an_empty_read_while_connecting_is_no_end_of_stream() -> None:
    """receive_data(b"") during the opening handshake is no end of stream: the response
    that follows opens the connection (the reader took b"" as the end, and failed)."""
    engine = ClientConnection("example.test", "/")
    (request,) = engine.data_to_send()
    engine.receive_data(b"")
    engine.receive_data(switching_protocols(request))
    assert isinstance(engine.next_event(), Opened)
    assert engine.state is State.OPEN
