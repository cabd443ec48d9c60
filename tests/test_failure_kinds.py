"""The failure kinds "dns" and "unreachable", each made on this machine: no packet leaves it.

"dns": a host name under ``.invalid`` (RFC 6761: never resolves) that is also longer than the
255 octets a DNS query can carry, so the resolver fails it without asking a name server (glibc
opens no socket for it). "unreachable": a TCP connection to a multicast address, which the
Linux kernel refuses with ENETUNREACH before sending anything (tcp_v4_connect and
tcp_v6_connect reject multicast destinations), whatever the routes of the machine."""

from __future__ import annotations

import asyncio
import errno
import time

import pytest

from support import TIMEOUT, capture_reports, events_of
from wsapi import UserAgent, WebSocket
from wsapi.opening import failure_of
from wsapi.url import parse_websocket_url

TOO_LONG_TO_LOOK_UP = ".".join(["a" * 63] * 4) + ".invalid"
"""A name of 263 octets, over DNS's limit of 255, in the reserved top-level domain."""


async def fails_with(url: str, within: float = 5) -> WebSocket:
    """Open ``url`` without a proxy and wait ``within`` units of test time for the close;
    return the WebSocket, after checking that it failed at once: error, then close 1006."""
    ws = WebSocket(url, agent=UserAgent(proxy=None))
    log = events_of(ws)
    start = time.monotonic()
    await asyncio.wait_for(ws.closed, within * TIMEOUT)
    assert time.monotonic() - start < 2 * TIMEOUT
    assert log == ["error", "close 1006 False"]
    return ws


@pytest.mark.parametrize("scheme", ["ws", "wss"])
async def test_a_name_that_cannot_resolve_fails_with_dns(scheme: str) -> None:
    """A host name that does not resolve: error, close 1006 at once, failure kind dns naming
    the host."""
    failure = (await fails_with(f"{scheme}://{TOO_LONG_TO_LOOK_UP}/")).failure
    assert failure is not None
    assert failure.kind == "dns"
    assert failure.reason.startswith(f"could not resolve {TOO_LONG_TO_LOOK_UP}: ")


@pytest.mark.parametrize("host", ["224.0.0.1", "[ff0e::1]"])
async def test_an_address_without_a_route_fails_with_unreachable(host: str) -> None:
    """A connection the network refuses (ENETUNREACH): error, close 1006 at once, failure
    kind unreachable naming the address."""
    failure = (await fails_with(f"ws://{host}:8080/")).failure
    assert failure is not None
    assert failure.kind == "unreachable"
    # Without IPv6 on the machine, the IPv6 socket itself fails: unreachable all the same.
    assert failure.reason.startswith(f"could not connect to {host.strip('[]')}:8080: ")


@pytest.mark.parametrize("host", ["a..invalid", "a" * 64 + ".invalid"])
async def test_a_name_with_a_label_dns_cannot_carry_fails_with_dns(host: str) -> None:
    """A host with an empty label or one of more than 63 characters fails with dns."""
    reports = capture_reports()
    failure = (await fails_with(f"ws://{host}/", within=1)).failure
    assert failure is not None
    assert failure.kind == "dns"
    assert reports == []


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_a_proxy_name_dns_cannot_carry_fails_with_proxy(scheme: str) -> None:
    """A proxy whose host has an empty label fails the connection with kind proxy, at once."""
    agent = UserAgent(proxy=f"{scheme}://a..invalid:3128")
    ws = WebSocket("ws://127.0.0.1:8080/", agent=agent)
    log: list[str] = []
    ws.onerror = lambda _event: log.append("error")
    ws.onclose = lambda event: log.append(f"close {event.code} {event.wasClean}")
    await asyncio.wait_for(ws.closed, 2 * TIMEOUT)
    assert log == ["error", "close 1006 False"]
    assert ws.failure is not None
    assert ws.failure.kind == "proxy"
    assert "a..invalid" in ws.failure.reason


@pytest.mark.parametrize(("scheme", "kind"), [("wss", "tls"), ("ws", "unreachable")])
def test_a_reset_while_connecting_is_tls_only_for_wss(scheme: str, kind: str) -> None:
    """The failure table: a connection reset while connecting is a dropped TLS handshake for
    wss: (TCP was up) and a plain network error for ws:."""
    url = parse_websocket_url(f"{scheme}://example.test/")
    error = ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
    failure, known = failure_of(error, "connect", url, 30.0)
    assert known
    assert failure.kind == kind
    assert "Connection reset by peer" in failure.reason


class _BrokenAgent(UserAgent):
    """A user agent whose proxy choice raises what no row of the failure table knows."""

    def proxy_for(self, secure: bool, host: str) -> str | None:
        raise RuntimeError("a bug in the proxy choice")


async def test_an_error_the_table_does_not_know_is_reported_and_ends_in_events() -> None:
    """An exception no row of the failure table knows (here from the proxy choice) goes to
    the loop's exception handler, and the connection still fails: error, close 1006."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        ws = WebSocket("ws://127.0.0.1:8080/", agent=_BrokenAgent())
        log: list[str] = []
        ws.onerror = lambda _event: log.append("error")
        ws.onclose = lambda event: log.append(f"close {event.code}")
        await asyncio.wait_for(ws.closed, 5 * TIMEOUT)
    finally:
        loop.set_exception_handler(previous)
    assert log == ["error", "close 1006"]
    assert ws.failure is not None
    assert ws.failure.kind == "proxy"
    assert [str(context["exception"]) for context in reported] == ["a bug in the proxy choice"]
