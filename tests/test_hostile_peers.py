"""Hostile peers, one suite: each peer is a real server on 127.0.0.1 that misbehaves in one
way, and each connection to it ends in events within named bounds (``bounds.within``: time,
memory traced by tracemalloc, no file descriptor or task left).

``WSAPI_RELIABILITY_TABLE=path`` writes the measured table (docs/reliability.md)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bounds import Measure, MiB, against, client_socket, outcome, reset, silent, within
from support import (
    TIMEOUT,
    Log,
    Reader,
    Writer,
    accept,
    agent,
    answer_close,
    raw_server,
    read_client_frame,
    read_request,
    server_frame,
    switching_protocols,
    wait_closed,
    wait_opened,
)
from wsapi import WebSocket

PING = server_frame(0x9, b"p" * 125)

SEND_BUFFER_BOUND = 2 * MiB
"""The largest our send buffer may get under a Ping flood whose peer never reads:
``PONG_BACKLOG_HIGH_WATER`` and the Pongs of the Pings already read (``READ_HIGH_WATER``
and a read: about 1.3 MiB of Pongs)."""
"""A Ping as large as a control frame may be."""


def write_buffer(ws: WebSocket) -> int:
    """Bytes waiting in the connection's transport (our send buffer)."""
    pump = ws._pump
    if pump is None or pump.transport is None:
        return 0
    return pump.transport.get_write_buffer_size()


async def test_a_ping_flood_that_never_reads_our_pongs_keeps_our_send_buffer_bounded() -> None:
    """A peer that floods 125-byte Pings and never reads: reading stops while our Pongs back
    up, so the send buffer and memory stay bounded; close() then ends at close_timeout."""
    flood = 3 * TIMEOUT
    sent = 0

    async def handler(reader: Reader, writer: Writer) -> None:
        nonlocal sent
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await accept(reader, writer)
        end = time.monotonic() + flood
        burst = PING * 64
        try:
            while time.monotonic() < end:
                writer.write(burst)
                sent += 64
                await writer.drain()
            await asyncio.sleep(3600)  # Never reads, never closes.
        except ConnectionResetError:
            pass  # The client gave up (close_timeout): its abort resets the connection.

    async with within("ping flood, never reads our Pongs", seconds=10, memory=8 * MiB) as m:
        async with raw_server(handler, cut_off=True) as url:
            ws = WebSocket(url, agent=agent(close_timeout=0.5 * TIMEOUT))
            log = Log(ws)
            await wait_opened(ws)
            with client_socket(ws) as sock:
                # What the kernel holds of our Pongs stays small: the backlog shows in ours.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
            largest = 0
            end = time.monotonic() + flood
            while time.monotonic() < end:
                largest = max(largest, write_buffer(ws))
                await asyncio.sleep(0.01)
            ws.close()
            await wait_closed(ws)
            outcome(ws, log, m)
        m.extra["largest send buffer"] = f"{largest / MiB:.1f} MiB"
        m.extra["Pings sent"] = str(sent)
    assert m.outcome == "open, close 1006, kind close_timeout"
    assert largest < SEND_BUFFER_BOUND


async def test_a_handshake_one_byte_per_second_ends_at_open_timeout() -> None:
    """Slowloris: a 101 response dripped one byte per second fails at open_timeout (kind
    timeout), not when the server finishes."""

    async def handler(reader: Reader, writer: Writer) -> None:
        response = switching_protocols(await read_request(reader))
        with contextlib.suppress(ConnectionError):
            for i in range(len(response)):
                writer.write(response[i : i + 1])
                await writer.drain()
                await asyncio.sleep(1)

    _, _, m = await against(
        "handshake one byte per second", handler, seconds=5, cut_off=True, open_timeout=2.0
    )
    assert m.outcome == "error, close 1006, kind timeout"
    assert m.seconds >= 2.0


def endless_head(status_line: bytes) -> Callable[[Reader, Writer], Awaitable[None]]:
    """A server that reads a request and answers ``status_line`` and header lines without
    end, until the client goes."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        writer.write(status_line)
        with contextlib.suppress(ConnectionError):
            while not reader.at_eof():
                writer.write(b"X-Pad: " + b"a" * 100 + b"\r\n")
                await writer.drain()
                await asyncio.sleep(0)

    return handler


async def test_an_endless_header_fails_at_the_response_head_limit() -> None:
    """A 101 whose header lines never end fails at 64 KiB of head (kind handshake)."""

    handler = endless_head(b"HTTP/1.1 101 Switching Protocols\r\n")
    ws, _, m = await against("endless header", handler, seconds=5, cut_off=True)
    assert m.outcome == "error, close 1006, kind handshake"
    assert ws.failure is not None
    assert "65536" in ws.failure.reason, ws.failure.reason


async def test_a_one_mebibyte_header_line_fails_at_the_response_head_limit() -> None:
    """A header line of 1 MiB fails at the 64 KiB response head limit (kind handshake)."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nX-Big: " + b"a" * MiB + b"\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        await silent(reader)

    ws, _, m = await against("1 MiB header line", handler, seconds=5)
    assert m.outcome == "error, close 1006, kind handshake"
    assert ws.failure is not None
    assert "65536" in ws.failure.reason, ws.failure.reason


async def test_a_status_line_101_followed_by_nothing_ends_at_open_timeout() -> None:
    """A 101 status line and then nothing: the handshake never completes, open_timeout
    ends it (kind timeout)."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\n")
        await silent(reader)

    _, _, m = await against("101 status line, then nothing", handler, seconds=5, open_timeout=1.0)
    assert m.outcome == "error, close 1006, kind timeout"


async def test_a_complete_101_followed_by_nothing_ends_at_the_keepalive_timeout() -> None:
    """A whole 101 and then silence (no frame, no Pong): keepalive fails the connection
    (kind keepalive_timeout)."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        await silent(reader)

    _, _, m = await against(
        "101, then silence (keepalive on)",
        handler,
        seconds=5,
        ping_interval=0.5,
        ping_timeout=0.5,
    )
    assert m.outcome == "open, error, close 1006, kind keepalive_timeout"


async def closed_with(code: int, frames: bytes, peer: str, **settings: Any) -> Measure:
    """Have a server send ``frames`` after the handshake; return the measure, after checking
    that the client's Close frame carried ``code``."""
    received: list[int] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        writer.write(frames)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        while True:
            opcode, payload = await read_client_frame(reader)
            if opcode == 0x8:
                received.append(struct.unpack("!H", payload[:2])[0])
                break
        await silent(reader)

    _, _, m = await against(
        peer, handler, seconds=10, memory=settings.pop("memory", 4 * MiB), **settings
    )
    assert received == [code]
    return m


async def test_a_frame_length_of_two_to_the_63_fails_with_1002() -> None:
    """A 64-bit frame length with its top bit set (2^63): Close 1002, kind protocol."""
    header = b"\x82\x7f" + (2**63).to_bytes(8, "big")
    m = await closed_with(1002, header, "frame length 2^63")
    assert m.outcome == "open, error, close 1006, kind protocol"


async def test_a_frame_length_of_two_to_the_63_minus_one_fails_with_1009() -> None:
    """The largest legal frame length (2^63 - 1): Close 1009 from its header alone."""
    header = b"\x82\x7f" + (2**63 - 1).to_bytes(8, "big")
    m = await closed_with(1009, header, "frame length 2^63 - 1")
    assert m.outcome == "open, error, close 1006, kind protocol"


@pytest.mark.parametrize(("count", "trace"), [(1_000_000, False), (100_000, True)])
async def test_a_million_empty_continuation_frames_cost_no_memory(count: int, trace: bool) -> None:
    """A text message of one empty frame and a million empty continuation frames arrives
    as one empty message, in bounded time; then a clean close. (Memory is traced over a
    tenth of them: tracemalloc makes each frame ten times slower.)"""

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        writer.write(b"\x01\x00" + b"\x00\x00" * count + b"\x80\x00")
        writer.write(server_frame(0x8, struct.pack("!H", 1000)))
        await writer.drain()
        await read_client_frame(reader)
        writer.close()

    _, log, m = await against(
        f"{count:,} empty continuation frames", handler, seconds=10, trace=trace
    )
    assert m.outcome == "open, close 1000 clean"
    assert [data for type_, _, data in log.entries if type_ == "message"] == [""]


async def test_pings_as_fast_as_possible_are_all_answered_in_bounded_memory() -> None:
    """A peer that sends 125-byte Pings as fast as it can and reads our Pongs: every Ping
    is answered with its payload, memory stays bounded, then a clean close."""
    count = 20_000
    pongs = 0

    async def handler(reader: Reader, writer: Writer) -> None:
        nonlocal pongs
        await accept(reader, writer)

        async def flood() -> None:
            for i in range(count // 100):
                writer.write(
                    b"".join(server_frame(0x9, b"%125d" % (i * 100 + j)) for j in range(100))
                )
                await writer.drain()

        sending = asyncio.ensure_future(flood())
        while pongs < count:
            opcode, payload = await read_client_frame(reader)
            assert opcode == 0xA
            assert int(payload) == pongs
            pongs += 1
        await sending
        writer.write(server_frame(0x8, struct.pack("!H", 1000)))
        await read_client_frame(reader)
        writer.close()

    _, _, m = await against(
        "125-byte Pings as fast as possible (reads our Pongs)", handler, seconds=20
    )
    m.extra["Pongs"] = str(pongs)
    assert m.outcome == "open, close 1000 clean"
    assert pongs == count


async def test_data_after_the_peers_close_is_ignored() -> None:
    """A Close followed by a message and garbage: the data after the Close is ignored (no
    message event), and the close is clean with the peer's code."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        writer.write(
            server_frame(0x8, struct.pack("!H", 4000) + b"bye")
            + server_frame(0x1, b"after the close")
            + b"\xff\x00garbage" * 1000
        )
        await writer.drain()
        assert (await read_client_frame(reader))[0] == 0x8
        writer.close()

    _, log, m = await against("Close, then more data", handler, seconds=5)
    assert m.outcome == "open, close 4000 clean"
    assert "message" not in log.types()


async def test_a_half_close_without_a_close_frame_fails_at_once() -> None:
    """A peer that half-closes (FIN) without a Close frame and never closes its socket: the
    connection fails at once (kind connection_lost)."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        writer.write_eof()
        await silent(reader)

    _, _, m = await against("half-closed TCP without a Close frame", handler, seconds=3)
    assert m.outcome == "open, error, close 1006, kind connection_lost"


async def test_a_peer_that_answers_close_but_never_ends_tcp_is_dropped_at_close_timeout() -> None:
    """A peer that answers our Close but never closes TCP: we close it after close_timeout,
    and the close is clean (the closing handshake completed)."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        await answer_close(reader, writer)
        await silent(reader)

    async def close(ws: WebSocket) -> None:
        ws.close(1000)

    _, _, m = await against(
        "answers our Close, never ends TCP",
        handler,
        seconds=5,
        after_open=close,
        close_timeout=1.0,
    )
    assert m.outcome == "open, close 1000 clean"
    assert m.seconds >= 1.0


async def test_a_reset_in_the_middle_of_a_frame_fails_the_connection() -> None:
    """A RST (SO_LINGER 0) after half a frame: error, close 1006, kind connection_lost."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        writer.write(server_frame(0x2, b"x" * 1000)[:500])
        await writer.drain()
        await asyncio.sleep(0.1)
        reset(writer)

    _, _, m = await against("RST in the middle of a frame", handler, seconds=3)
    assert m.outcome == "open, error, close 1006, kind connection_lost"


async def test_a_decompression_bomb_over_many_fragments_fails_at_the_size_limit() -> None:
    """64 MiB of zeros deflated and split into 256-byte fragments, against a 1 MiB limit:
    Close 1009 once the inflated size passes the limit, memory bounded by it."""
    compressor = zlib.compressobj(wbits=-15)
    data = compressor.compress(bytes(64 * MiB)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    data = data[:-4]  # RFC 7692 7.2.1: the 00 00 ff ff tail is not sent.
    parts = [data[i : i + 256] for i in range(0, len(data), 256)]
    frames = [server_frame(0x42, parts[0], fin=False)]
    frames += [server_frame(0x0, part, fin=False) for part in parts[1:-1]]
    frames.append(server_frame(0x0, parts[-1]))
    extension = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
    received: list[int] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer, extension)
        writer.write(b"".join(frames))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        _, payload = await read_client_frame(reader)
        received.append(struct.unpack("!H", payload[:2])[0])
        await silent(reader)

    _, _, m = await against(
        f"decompression bomb, 64 MiB in {len(frames)} fragments",
        handler,
        seconds=10,
        memory=8 * MiB,
        compression="deflate",
        max_message_size=MiB,
    )
    assert m.outcome == "open, error, close 1006, kind protocol"
    assert received == [1009]


async def test_a_server_that_accepts_tcp_and_never_answers_ends_at_open_timeout() -> None:
    """TCP accepted, the request read, no answer ever: open_timeout (kind timeout)."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await silent(reader)

    _, _, m = await against("accepts TCP, never answers", handler, seconds=5, open_timeout=1.0)
    assert m.outcome == "error, close 1006, kind timeout"


async def test_a_proxy_that_answers_garbage_fails_with_kind_proxy() -> None:
    """An HTTP proxy that answers CONNECT with bytes that are not HTTP: kind proxy."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        writer.write(b"\x16\x03\x01\x00\xff not HTTP at all\r\n\r\n")
        await silent(reader)

    _, _, m = await against("proxy answers garbage", handler, seconds=5, proxy=True)
    assert m.outcome == "error, close 1006, kind proxy"


async def test_a_proxy_whose_answer_never_ends_fails_at_its_limit() -> None:
    """An HTTP proxy whose 200 answer has header lines without end: kind proxy once the
    answer passes its 64 KiB limit."""

    handler = endless_head(b"HTTP/1.1 200 OK\r\n")
    _, _, m = await against(
        "proxy answer without end", handler, seconds=5, proxy=True, cut_off=True
    )
    assert m.outcome == "error, close 1006, kind proxy"


async def test_a_proxy_that_asks_for_credentials_forever_is_asked_once() -> None:
    """An HTTP proxy that answers every CONNECT with 407, credentials or not: the connection
    fails with kind proxy and status 407 after one request, with no retry."""
    requests: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                requests.append(await read_request(reader))
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="forever"\r\nContent-Length: 0\r\n\r\n'
                )

    ws, _, m = await against(
        "proxy asks for credentials forever",
        handler,
        seconds=5,
        proxy=True,
        credentials="user:secret@",
    )
    assert m.outcome == "error, close 1006, kind proxy"
    assert ws.failure is not None
    assert ws.failure.status_code == 407
    assert len(requests) == 1
    assert b"proxy-authorization: basic" in requests[0].lower()
