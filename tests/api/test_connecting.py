"""Establishing the connection: the handshake request's headers and cookies, and one
connection in CONNECTING per address (RFC 6455 section 4.1)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from support import (
    TIMEOUT,
    Reader,
    Writer,
    accept,
    agent,
    answer_close,
    close_and_wait,
    header_lines,
    open_socket,
    raw_server,
    read_request,
    switching_protocols,
    wait_closed,
    wait_opened,
)
from wsapi import WebSocket

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
