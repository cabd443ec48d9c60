"""The reconnect policy (wsapi.reconnect): which endings reconnect, the backoff's delays with
a seeded random source and an injected clock, Retry-After, min_uptime and max_retries; and
the endings that real peers produce."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from support import Reader, Writer, agent, raw_server, read_request, refused_url, wait_closed
from wsapi import CloseEvent, ConnectionFailure, WebSocket
from wsapi.errors import FAILURE_KINDS, new_websocket_error
from wsapi.reconnect import (
    MAX_RETRY_AFTER,
    RECONNECT_CLOSE_CODES,
    RECONNECT_FAILURE_KINDS,
    Backoff,
    ReconnectPolicy,
    retry_after,
    should_reconnect,
)

NOW = 1_800_000_000.0
"""A wall-clock time for Retry-After dates."""


def refusal(status: int, *headers: tuple[str, str]) -> ConnectionFailure:
    return ConnectionFailure("http_status", f"HTTP {status}", status, tuple(headers))


def backoff(**options: Any) -> Backoff:
    """A Backoff whose random draws are seeded and whose wall clock is NOW."""
    return Backoff(
        ReconnectPolicy(**options), random=random.Random(7).random, wall_clock=lambda: NOW
    )


# --- which endings reconnect -----------------------------------------------------------------


@pytest.mark.parametrize("kind", FAILURE_KINDS)
def test_failure_kinds_that_reconnect(kind: str) -> None:
    """Network failures reconnect; TLS, handshake, protocol, blocked, aborted and the rest
    do not."""
    expected = kind in {
        "dns",
        "refused",
        "unreachable",
        "timeout",
        "connection_lost",
        "keepalive_timeout",
        "proxy",
    }
    if kind == "http_status":
        return  # By status: the next test.
    if kind == "close_timeout":
        expected = False  # Judged by its close code, which a failure alone does not have.
    assert should_reconnect(ConnectionFailure(kind, "why")) is expected  # type: ignore[arg-type]
    assert (kind in RECONNECT_FAILURE_KINDS) is (expected and kind != "close_timeout")


@pytest.mark.parametrize(
    ("status", "expected"),
    [(500, True), (502, True), (503, True), (599, True), (429, True), (400, False),
     (401, False), (403, False), (404, False), (426, False), (301, False), (200, False)],
)  # fmt: skip
def test_http_statuses_that_reconnect(status: int, expected: bool) -> None:
    """HTTP 5xx and 429 reconnect; other statuses (4xx, redirects) do not."""
    assert should_reconnect(refusal(status)) is expected


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010,
                                  1011, 1012, 1013, 1014, 3000, 4000])  # fmt: skip
def test_close_codes_that_reconnect(code: int) -> None:
    """Closes 1001, 1006, 1011, 1012, 1013 and 1014 reconnect; 1000, the client-fault codes
    and application codes do not."""
    expected = code in {1001, 1006, 1011, 1012, 1013, 1014}
    assert {1001, 1006, 1011, 1012, 1013, 1014} == RECONNECT_CLOSE_CODES
    assert should_reconnect(CloseEvent("close", {"code": code})) is expected


def test_an_error_with_a_failure_is_judged_by_it() -> None:
    """An exception with a failure (WebSocketError, ConnectionClosed) is judged by the
    failure; one without, by its close code."""
    assert should_reconnect(new_websocket_error("x", refusal(503)))
    assert not should_reconnect(new_websocket_error("x", refusal(403)))
    assert should_reconnect(new_websocket_error("x", None, 1012))
    assert not should_reconnect(new_websocket_error("x", None, 1000))


def test_a_timed_out_closing_handshake_is_judged_by_its_code() -> None:
    """A close_timeout failure does not decide: the close code does."""

    class Closed:
        failure = ConnectionFailure("close_timeout", "no answer")
        code = 1012

    assert should_reconnect(Closed())
    Closed.code = 1000
    assert not should_reconnect(Closed())


# --- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        (format_datetime(datetime.fromtimestamp(NOW + 90, timezone.utc), usegmt=True), 90.0),
        (format_datetime(datetime.fromtimestamp(NOW - 90, timezone.utc), usegmt=True), 0.0),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 0.0),  # RFC 850 form, long past
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("", None),
    ],
)
def test_retry_after_values(value: str, expected: float | None) -> None:
    """Retry-After is delay-seconds or an HTTP-date (a past date is 0); anything else is
    ignored."""
    assert retry_after(refusal(503, ("retry-after", value)), NOW) == expected


def test_retry_after_only_on_429_and_5xx() -> None:
    """Retry-After counts on a 429 or 5xx refusal only."""
    assert retry_after(refusal(429, ("retry-after", "3")), NOW) == 3.0
    assert retry_after(refusal(403, ("retry-after", "3")), NOW) is None
    assert retry_after(refusal(503), NOW) is None
    assert retry_after(ConnectionFailure("refused", "no"), NOW) is None
    assert retry_after(CloseEvent("close", {"code": 1013}), NOW) is None


def test_retry_after_raises_the_delay_up_to_the_cap() -> None:
    """A Retry-After longer than the backoff's delay is waited, up to MAX_RETRY_AFTER; a
    shorter one leaves the backoff's delay."""
    state = backoff(min_delay=2.0, jitter=0.0)
    assert state.next_delay(refusal(503, ("Retry-After", "30")), 0.0) == 30.0
    assert state.next_delay(refusal(503, ("Retry-After", "1")), 1.0) == pytest.approx(2.6)
    assert state.next_delay(refusal(429, ("Retry-After", "86400")), 2.0) == MAX_RETRY_AFTER


# --- the backoff ------------------------------------------------------------------------------


def test_delays_grow_to_max_delay_without_jitter() -> None:
    """Without jitter the n-th delay is min_delay * grow_factor ** (n - 1), up to max_delay."""
    state = backoff(min_delay=1.0, max_delay=10.0, grow_factor=2.0, jitter=0.0)
    lost = ConnectionFailure("refused", "no")
    delays = [state.next_delay(lost, float(n)) for n in range(7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert state.retry_count == 7


def test_full_jitter_draws_below_each_bound() -> None:
    """Full jitter (the default) draws each delay uniformly in [0, bound]: the seeded draws
    give exactly bound * (1 - draw)."""
    state = backoff(min_delay=1.0, max_delay=10.0, grow_factor=1.3)
    draws = random.Random(7)
    lost = ConnectionFailure("connection_lost", "gone")
    for attempt in range(1, 15):
        bound = min(10.0, 1.3 ** (attempt - 1))
        delay = state.next_delay(lost, 0.0)
        assert delay == pytest.approx(bound * (1 - draws.random()))
        assert delay is not None
        assert 0.0 <= delay <= bound


def test_partial_jitter_stays_in_its_band() -> None:
    """jitter=0.5 keeps each delay in [bound / 2, bound]."""
    policy = ReconnectPolicy(min_delay=4.0, max_delay=4.0, jitter=0.5)
    assert policy.delay(1, 0.0) == 4.0
    assert policy.delay(1, 0.999999) == pytest.approx(2.0, abs=1e-5)


def test_a_long_outage_does_not_overflow() -> None:
    """The bound of the millionth attempt is max_delay (no float overflow)."""
    assert ReconnectPolicy(grow_factor=10.0).bound(1_000_000) == 10.0


def test_min_uptime_resets_the_backoff() -> None:
    """A connection open for min_uptime resets the attempts; a shorter one does not."""
    state = backoff(min_delay=1.0, grow_factor=2.0, jitter=0.0, min_uptime=5.0)
    lost = ConnectionFailure("connection_lost", "gone")
    assert state.next_delay(lost, 0.0) == 1.0
    assert state.next_delay(lost, 1.0) == 2.0
    state.opened(10.0)
    assert state.retries(14.9) == 2  # Not yet min_uptime.
    assert state.next_delay(lost, 14.9) == 4.0  # Lived 4.9 s: the backoff goes on.
    state.opened(20.0)
    assert state.retries(25.0) == 0
    assert state.next_delay(lost, 25.0) == 1.0  # Lived 5 s: it starts over.
    assert state.retry_count == 1


def test_max_retries_gives_up() -> None:
    """max_retries consecutive attempts, then None; a reset gives them back."""
    state = backoff(max_retries=2, jitter=0.0)
    lost = ConnectionFailure("refused", "no")
    assert state.next_delay(lost, 0.0) is not None
    assert state.next_delay(lost, 0.0) is not None
    assert state.next_delay(lost, 0.0) is None
    state.reset()
    assert state.next_delay(lost, 0.0) == 1.0
    assert backoff(max_retries=0).next_delay(lost, 0.0) is None


def test_an_ending_that_does_not_reconnect_gives_none() -> None:
    """A 403 gives no delay and does not count an attempt."""
    state = backoff()
    assert state.next_delay(refusal(403), 0.0) is None
    assert state.retry_count == 0


def test_should_reconnect_overrides() -> None:
    """A should_reconnect option replaces the default rule, with the ending as argument."""
    seen: list[object] = []

    def only_1000(ending: object) -> bool:
        seen.append(ending)
        return getattr(ending, "code", None) == 1000

    state = backoff(should_reconnect=only_1000, jitter=0.0)
    normal = CloseEvent("close", {"code": 1000})
    assert state.next_delay(normal, 0.0) == 1.0
    assert state.next_delay(CloseEvent("close", {"code": 1012}), 0.0) is None
    assert seen[0] is normal


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"min_delay": -1}, ValueError),
        ({"max_delay": float("inf")}, ValueError),
        ({"min_delay": 5, "max_delay": 1}, ValueError),
        ({"grow_factor": 0.5}, ValueError),
        ({"jitter": 1.5}, ValueError),
        ({"max_retries": -1}, ValueError),
        ({"max_retries": 1.5}, TypeError),
        ({"min_uptime": "5"}, TypeError),
        ({"min_delay": True}, TypeError),
        ({"should_reconnect": 3}, TypeError),
    ],
)
def test_options_are_checked(options: dict[str, Any], error: type[Exception]) -> None:
    """An option out of range is a ValueError, of the wrong type a TypeError, naming it."""
    with pytest.raises(error, match=next(iter(options))):
        ReconnectPolicy(**options)


# --- endings from real peers ------------------------------------------------------------------


def answering(status: str, *headers: str) -> Any:
    async def handler(reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        head = "".join(f"{line}\r\n" for line in headers)
        writer.write(f"HTTP/1.1 {status}\r\n{head}Content-Length: 0\r\n\r\n".encode())
        await writer.drain()

    return handler


@pytest.mark.parametrize(
    ("status", "headers", "expected", "asked"),
    [
        ("503 Service Unavailable", ("Retry-After: 2",), True, 2.0),
        ("429 Too Many Requests", ("Retry-After: 4",), True, 4.0),
        ("403 Forbidden", (), False, None),
        ("404 Not Found", ("Retry-After: 4",), False, None),
    ],
)
async def test_real_refusals(
    status: str, headers: tuple[str, ...], expected: bool, asked: float | None
) -> None:
    """The failure a real server's refusal leaves on a WebSocket reconnects by its status,
    with the Retry-After it sent."""
    async with raw_server(answering(status, *headers)) as url:
        ws = WebSocket(url, agent=agent())
        await wait_closed(ws)
    assert should_reconnect(ws.failure) is expected
    assert retry_after(ws.failure, NOW) == asked


async def test_a_real_refused_connection_reconnects() -> None:
    """A refused TCP connection (nothing listening) is a failure that reconnects."""
    ws = WebSocket(await refused_url(), agent=agent())
    await wait_closed(ws)
    assert ws.failure is not None
    assert ws.failure.kind == "refused"
    assert should_reconnect(ws.failure)
