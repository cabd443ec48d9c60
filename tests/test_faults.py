"""Faults at the transport seam, on real sockets: writes the operating system refuses (our
socket shut for writing), reads of one byte at a time (a server that writes byte by byte
with TCP_NODELAY), and a connection reset (RST, SO_LINGER 0) at every point of the opening
handshake and of a closing handshake. Each ends in the right events, with no file
descriptor or task left (``bounds.within``)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable

import pytest

from bounds import against, client_socket, reset, silent
from support import (
    TIMEOUT,
    Log,
    Reader,
    Writer,
    accept,
    read_client_frame,
    read_request,
    server_frame,
    switching_protocols,
)
from wsapi import WebSocket

Step = Callable[[Reader, Writer], Awaitable[None]]


def events(log: Log) -> list[str]:
    """The events of ``log`` with their data: messages and the close event."""
    shown = []
    for type_, _, detail in log.entries:
        shown.append(f"{type_} {detail!r}" if detail is not None else type_)
    return shown


# --- writes that fail ---------------------------------------------------------------------


def shut_for_writing(ws: WebSocket) -> None:
    """Shut the connection's own socket for writing: every later send(2) fails (EPIPE), as
    when the network is gone under an open connection."""
    with client_socket(ws) as sock:
        sock.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("size", [10, 200_000])
async def test_a_send_the_os_refuses_fails_the_connection(size: int) -> None:
    """send() on a socket whose writes fail (EPIPE): error, close 1006, kind
    connection_lost, for a frame the socket takes at once and for one that is buffered."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        await silent(reader)

    async def send(ws: WebSocket) -> None:
        shut_for_writing(ws)
        ws.send("x" * size)

    _, _, m = await against(
        f"send fails (EPIPE), {size} bytes", handler, seconds=5, after_open=send
    )
    assert m.outcome == "open, error, close 1006, kind connection_lost"


async def test_a_close_frame_the_os_refuses_ends_the_connection() -> None:
    """close() on a socket whose writes fail: the Close frame cannot go, the connection
    ends with close 1006 (kind connection_lost), not at close_timeout."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        await silent(reader)

    async def close(ws: WebSocket) -> None:
        shut_for_writing(ws)
        ws.close()

    _, _, m = await against(
        "Close frame write fails (EPIPE)",
        handler,
        seconds=3,
        after_open=close,
        close_timeout=10 * TIMEOUT,
    )
    assert m.outcome == "open, error, close 1006, kind connection_lost"


# --- reads of one byte at a time ----------------------------------------------------------


async def drip(writer: Writer, data: bytes) -> None:
    """Write ``data`` one byte per write, each sent at once (TCP_NODELAY) and given time to
    be read on its own."""
    for i in range(len(data)):
        writer.write(data[i : i + 1])
        await writer.drain()
        await asyncio.sleep(0.001)


async def test_a_peer_that_sends_one_byte_at_a_time_gives_the_same_events() -> None:
    """A handshake response and frames of every kind (text, binary, fragmented, a Ping, a
    Close) sent one byte per TCP segment: the same events as sent whole."""
    frames = (
        server_frame(0x1, "héllo".encode())
        + server_frame(0x2, bytes(range(200)))
        + server_frame(0x1, b"frag", fin=False)
        + server_frame(0x9, b"ping")
        + server_frame(0x0, b"mented")
        + server_frame(0x8, struct.pack("!H", 1000) + b"done")
    )
    pongs: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await drip(writer, switching_protocols(await read_request(reader)) + frames)
        while True:
            opcode, payload = await read_client_frame(reader)
            if opcode == 0xA:
                pongs.append(payload)
            if opcode == 0x8:
                break
        writer.close()

    _, log, _ = await against("one byte per read", handler, seconds=10, binary_type="arraybuffer")
    assert events(log) == [
        "open",
        "message 'héllo'",
        f"message {bytes(range(200))!r}",
        "message 'fragmented'",
        "close (True, 1000, 'done')",
    ]
    assert pongs == [b"ping"]


# --- a reset at every point of the handshakes ---------------------------------------------


def named(step: Step) -> str:
    """The step's name as the reliability table shows it."""
    return step.__name__.replace("_", " ")


async def nothing(reader: Reader, writer: Writer) -> None:
    """Reset at once, before reading the request."""


async def part_of_the_request(reader: Reader, writer: Writer) -> None:
    await reader.readexactly(10)


async def the_request(reader: Reader, writer: Writer) -> None:
    await read_request(reader)


async def the_status_line(reader: Reader, writer: Writer) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\n")
    await delivered(writer)


async def all_but_the_last_crlf(reader: Reader, writer: Writer) -> None:
    writer.write(switching_protocols(await read_request(reader))[:-2])
    await delivered(writer)


async def the_whole_101(reader: Reader, writer: Writer) -> None:
    await accept(reader, writer)
    await delivered(writer)


async def the_101_in_the_same_write(reader: Reader, writer: Writer) -> None:
    writer.write(switching_protocols(await read_request(reader)))


async def delivered(writer: Writer) -> None:
    """Let what was written reach the client before the reset (a RST makes the receiving
    side drop what it has not read yet)."""
    await writer.drain()
    await asyncio.sleep(0.05 * TIMEOUT)


CUT_SHORT = "the connection closed before the handshake response was complete"
LOST = "the connection closed without a Close frame"

OPENING: list[tuple[Step, str, str]] = [
    (nothing, "error, close 1006, kind connection_lost", CUT_SHORT + " (0 bytes"),
    (part_of_the_request, "error, close 1006, kind connection_lost", CUT_SHORT + " (0 bytes"),
    (the_request, "error, close 1006, kind connection_lost", CUT_SHORT + " (0 bytes"),
    (the_status_line, "error, close 1006, kind connection_lost", CUT_SHORT + " (34 bytes"),
    (all_but_the_last_crlf, "error, close 1006, kind connection_lost", CUT_SHORT),
    (the_whole_101, "open, error, close 1006, kind connection_lost", LOST),
]


@pytest.mark.parametrize(
    ("step", "expected", "reason"), OPENING, ids=[s.__name__ for s, _, _ in OPENING]
)
async def test_a_reset_during_the_opening_handshake(
    step: Step, expected: str, reason: str
) -> None:
    """A RST after each step of the opening handshake: the connection fails (error, close
    1006, kind connection_lost) with a reason that says how far it got, and nothing is left
    behind."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await step(reader, writer)
        reset(writer)

    ws, _, m = await against(f"RST after {named(step)}", handler, seconds=3)
    assert m.outcome == expected
    assert ws.failure is not None
    assert ws.failure.reason.startswith(reason), ws.failure.reason


async def our_close_read(reader: Reader, writer: Writer) -> None:
    """Our Close arrived; reset instead of answering."""
    assert (await read_client_frame(reader))[0] == 0x8


async def half_of_the_close_answer(reader: Reader, writer: Writer) -> None:
    assert (await read_client_frame(reader))[0] == 0x8
    writer.write(server_frame(0x8, struct.pack("!H", 1000))[:2])
    await delivered(writer)


async def the_close_answer(reader: Reader, writer: Writer) -> None:
    """The closing handshake completed; reset instead of a FIN."""
    assert (await read_client_frame(reader))[0] == 0x8
    writer.write(server_frame(0x8, struct.pack("!H", 1000)))
    await delivered(writer)


CLOSING: list[tuple[Step, str]] = [
    (our_close_read, "open, error, close 1006, kind connection_lost"),
    (half_of_the_close_answer, "open, error, close 1006, kind connection_lost"),
    (the_close_answer, "open, close 1000 clean"),
]


@pytest.mark.parametrize(("step", "expected"), CLOSING, ids=[s.__name__ for s, _ in CLOSING])
async def test_a_reset_during_our_closing_handshake(step: Step, expected: str) -> None:
    """close(), then a RST after each step of the server's side: 1006 until the server's
    Close has arrived, a clean close after it."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        await step(reader, writer)
        reset(writer)

    async def close(ws: WebSocket) -> None:
        ws.close(1000)

    _, _, m = await against(
        f"close(), RST after {named(step)}", handler, seconds=3, after_open=close
    )
    assert m.outcome == expected


async def the_servers_close(reader: Reader, writer: Writer) -> None:
    """The server starts the closing handshake and resets before reading our answer."""
    writer.write(server_frame(0x8, struct.pack("!H", 4001)))
    await delivered(writer)


async def the_servers_close_and_our_answer(reader: Reader, writer: Writer) -> None:
    writer.write(server_frame(0x8, struct.pack("!H", 4001)))
    assert (await read_client_frame(reader))[0] == 0x8


async def half_of_the_servers_close(reader: Reader, writer: Writer) -> None:
    writer.write(server_frame(0x8, struct.pack("!H", 4001))[:3])
    await delivered(writer)


SERVER_CLOSING: list[tuple[Step, str]] = [
    (half_of_the_servers_close, "open, error, close 1006, kind connection_lost"),
    (the_servers_close, "open, close 4001 clean"),
    (the_servers_close_and_our_answer, "open, close 4001 clean"),
]


@pytest.mark.parametrize(
    ("step", "expected"), SERVER_CLOSING, ids=[s.__name__ for s, _ in SERVER_CLOSING]
)
async def test_a_reset_during_the_servers_closing_handshake(step: Step, expected: str) -> None:
    """The server starts the closing handshake and resets after each step: 1006 while its
    Close is incomplete, its code and a clean close once the Close is whole (our answer
    goes out as it arrives)."""

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        await step(reader, writer)
        reset(writer)

    _, _, m = await against(f"server's Close, RST after {named(step)}", handler, seconds=3)
    assert m.outcome == expected
