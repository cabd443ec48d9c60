"""Tests of the connections' shared timer (wsapi.deadlines), on a real event loop."""

from __future__ import annotations

import asyncio
import gc
import math
import os
import sys
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from support import capture_reports
from wsapi import UserAgent, WebSocket
from wsapi.deadlines import COMPACT_ABOVE, Deadlines, deadlines_of
from wsapi.echo import start_echo_server
from wsapi.protocol.codec import SPEEDUPS
from wsapi.socket_transport import socket_transport_used_on


@pytest.fixture(params=[True, False], ids=["timer fd", "asyncio timer"])
def timer_fd(request: pytest.FixtureRequest) -> bool:
    """Whether the Deadlines wait on a timer descriptor where there is one (the default loop
    on Linux, compiled or on Python 3.13), or on an asyncio timer."""
    return bool(request.param)


async def test_timers_run_in_deadline_order_at_their_time(timer_fd: bool) -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop, timer_fd=timer_fd)
    ran: list[tuple[str, float]] = []
    start = loop.time()

    def record(name: str) -> Callable[[], None]:
        return lambda: ran.append((name, loop.time() - start))

    for name, delay in (("c", 0.06), ("a", 0.02), ("b", 0.04), ("a2", 0.02)):
        deadlines.call_later(delay, record(name))
    await asyncio.sleep(0.15)
    assert [name for name, _ in ran] == ["a", "a2", "b", "c"]  # Ties keep their order.
    for (_, at), due in zip(ran, (0.02, 0.02, 0.04, 0.06), strict=True):
        # Not early (but for the rounding of clock readings); late only by the loop's margin.
        assert due - 1e-9 <= at < due + 0.05
    assert len(deadlines) == 0


async def test_a_cancelled_timer_never_runs_and_lets_go_of_its_callback(timer_fd: bool) -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop, timer_fd=timer_fd)
    ran: list[str] = []

    class Owner:
        def fire(self) -> None:
            ran.append("owner")

    owner = Owner()
    timer = deadlines.call_later(0.01, owner.fire)
    deadlines.call_later(0.02, lambda: ran.append("other"))
    deadlines.cancel(timer)
    deadlines.cancel(timer)  # Twice is harmless.
    owned = weakref.ref(owner)
    del owner
    gc.collect()
    assert owned() is None  # The cancelled entry holds nothing of its owner.
    assert len(deadlines) == 1
    await asyncio.sleep(0.05)
    assert ran == ["other"]


async def test_an_earlier_timer_rearms_the_loop_timer(timer_fd: bool) -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop, timer_fd=timer_fd)
    ran: list[str] = []
    deadlines.call_later(10.0, lambda: ran.append("late"))
    deadlines.call_later(0.01, lambda: ran.append("early"))
    await asyncio.sleep(0.05)
    assert ran == ["early"]
    assert len(deadlines) == 1


async def test_a_cancelled_head_does_not_hold_back_the_next_live_timer(timer_fd: bool) -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop, timer_fd=timer_fd)
    ran: list[str] = []
    first = deadlines.call_later(0.01, lambda: ran.append("first"))
    deadlines.call_later(0.03, lambda: ran.append("second"))
    deadlines.cancel(first)
    await asyncio.sleep(0.08)
    assert ran == ["second"]


async def test_cancelled_entries_are_compacted(timer_fd: bool) -> None:
    """However many timers are set and cancelled, the heap stays within twice what is live
    (plus COMPACT_ABOVE): a connection per millisecond does not grow it."""
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop, timer_fd=timer_fd)
    live = [deadlines.call_later(30.0, lambda: None) for _ in range(5)]
    for _ in range(10_000):
        deadlines.cancel(deadlines.call_later(30.0, lambda: None))
        assert len(deadlines._heap) <= 2 * len(live) + COMPACT_ABOVE + 1
    assert len(deadlines) == len(live)
    for timer in live:
        deadlines.cancel(timer)
    assert len(deadlines) == 0


async def test_a_failing_callback_is_reported_and_the_others_still_run(timer_fd: bool) -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop, timer_fd=timer_fd)
    reported = capture_reports()
    ran: list[str] = []

    def boom() -> None:
        raise ValueError("boom")

    deadlines.call_later(0.01, boom)
    deadlines.call_later(0.01, lambda: ran.append("after"))
    await asyncio.sleep(0.05)
    assert ran == ["after"]
    assert len(reported) == 1
    assert isinstance(reported[0]["exception"], ValueError)


async def test_a_callback_may_set_another_timer(timer_fd: bool) -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop, timer_fd=timer_fd)
    ran: list[str] = []
    deadlines.call_later(0.01, lambda: deadlines.call_later(0.01, lambda: ran.append("again")))
    await asyncio.sleep(0.06)
    assert ran == ["again"]


def test_one_per_loop_and_none_kept_for_a_closed_loop() -> None:
    first = asyncio.new_event_loop()
    second = asyncio.new_event_loop()
    try:
        assert deadlines_of(first) is deadlines_of(first)
        assert deadlines_of(second) is not deadlines_of(first)
        assert deadlines_of(first) is deadlines_of(first)
    finally:
        second.close()
    gone = weakref.ref(first)
    first.close()
    del first
    gc.collect()
    assert gone() is None  # The map does not keep the loop alive.


def test_a_loop_that_is_gone_is_said_so() -> None:
    loop = asyncio.new_event_loop()
    deadlines = Deadlines(loop)
    loop.close()
    del loop
    gc.collect()
    with pytest.raises(AssertionError, match="event loop is gone"):
        deadlines.call_later(1.0, lambda: None)


async def test_no_loop_timer_is_left_once_every_timer_is_cancelled() -> None:
    """An idle loop holds no timer: each turn of a loop with one looks at the clock."""
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop, timer_fd=False)
    first = deadlines.call_later(30.0, lambda: None)
    second = deadlines.call_later(10.0, lambda: None)
    armed = deadlines._armed
    assert armed is not None
    deadlines.cancel(first)
    assert deadlines._armed is armed  # Still one live: the loop timer stays.
    deadlines.cancel(second)
    assert deadlines._armed is None
    assert armed.cancelled()
    assert deadlines._heap == []


async def test_the_last_timer_of_an_ended_connection_leaves_the_loop_timer_armed() -> None:
    """keep_armed: the loop's timer stays when a connection's last timer goes, and serves the
    next timer set for a later time; when it comes due with nothing left, it just ends."""
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop, timer_fd=False)
    closing = deadlines.call_later(0.05, lambda: None)
    armed = deadlines._armed
    assert armed is not None
    deadlines.cancel(closing, keep_armed=True)
    assert deadlines._armed is armed
    assert not armed.cancelled()
    assert len(deadlines) == 0
    ran: list[str] = []
    deadlines.call_later(0.1, lambda: ran.append("next"))
    assert deadlines._armed is armed  # Not re-armed for a later deadline.
    await asyncio.sleep(0.07)  # The old loop timer fires: it arms itself for the live one.
    assert ran == []
    assert deadlines._armed is not None
    assert deadlines._armed is not armed
    await asyncio.sleep(0.1)
    assert ran == ["next"]
    assert deadlines._armed is None  # Nothing left: no loop timer.


async def test_a_connection_that_ends_keeps_the_loop_timer_for_the_next() -> None:
    """A connection's close leaves the loop's timer armed (its close timer's), and the next
    connection's opening, and its end, need no other timer of the loop."""
    loop = asyncio.get_running_loop()
    async with await start_echo_server() as server:
        made: list[asyncio.TimerHandle] = []
        call_at = loop.call_at

        def counting_call_at(
            when: float, callback: Callable[..., object], *args: object, **kwargs: Any
        ) -> asyncio.TimerHandle:
            handle = call_at(when, callback, *args, **kwargs)
            if getattr(callback, "__name__", None) == "_run_due":  # (Not the server's.)
                made.append(handle)
            return handle

        loop.call_at = counting_call_at  # type: ignore[method-assign]
        try:
            for _ in range(3):
                ws = WebSocket(server.url, agent=UserAgent(proxy=None))
                await ws.opened
                ws.close()
                assert (await ws.closed).wasClean
        finally:
            del loop.call_at
        deadlines = deadlines_of(loop)
        if deadlines._timer_fd >= 0:
            assert made == []  # No asyncio timer at all: the timer descriptor's.
            assert deadlines._armed_at < math.inf  # Still armed, for a close timer's time.
            return
        armed = deadlines._armed
        assert armed is not None
        assert not armed.cancelled()
        # The first connection: its opening's timer and its close timer; each one after it,
        # its close timer only (its opening found the previous close timer armed).
        assert len(made) == 2 + 2
        deadlines._armed = None
        armed.cancel()


async def test_on_the_default_loop_timers_wait_on_a_timer_descriptor() -> None:
    """On the default loop on Linux (the compiled build, or Python 3.13), the timers wait on
    one timer descriptor that the loop watches: no asyncio timer is scheduled, and it stays
    armed when no entry is left (a kernel timer costs the loop's turns nothing)."""
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    if deadlines._timer_fd < 0:
        assert not socket_transport_used_on(loop) or not (SPEEDUPS or sys.version_info >= (3, 13))
        pytest.skip("no timer descriptor here (another loop, or pure Python before 3.13)")
    ran: list[float] = []
    start = loop.time()
    deadlines.call_later(0.03, lambda: ran.append(loop.time() - start))
    assert deadlines._armed is None
    late = deadlines.call_later(10.0, lambda: None)
    deadlines.cancel(late)
    await asyncio.sleep(0.08)
    assert len(ran) == 1
    assert 0.03 - 1e-9 <= ran[0] < 0.08
    cancelled = deadlines.call_later(0.01, lambda: ran.append(-1.0))
    deadlines.cancel(cancelled)
    assert deadlines._armed_at < math.inf  # (It stays armed, and fires for nothing.)
    await asyncio.sleep(0.04)
    assert len(ran) == 1
    assert deadlines._armed_at == math.inf  # Fired, with nothing left to arm it for.


def test_the_timer_descriptor_goes_when_asyncio_run_ends() -> None:
    """asyncio.run() closes the loop's timer descriptor as it ends the loop (not the garbage
    collector, whose run may come many loops later), and a timer still set then waits on
    an asyncio timer instead."""
    fds = set(os.listdir("/proc/self/fd"))
    made: list[int] = []
    ran: list[str] = []

    async def program() -> None:
        loop = asyncio.get_running_loop()
        deadlines = deadlines_of(loop)
        made.append(deadlines._timer_fd)
        deadlines.cancel(deadlines.call_later(10.0, lambda: None))

        async def at_the_end() -> AsyncIterator[None]:
            try:
                yield
            finally:
                # (shutdown_asyncgens() finalizes this with the descriptor's guard.)
                deadlines.call_later(0.01, lambda: ran.append("ran"))
                await asyncio.sleep(0.05)

        generator = at_the_end()
        await generator.__anext__()

    gc.disable()
    try:
        asyncio.run(program())
        if made[0] < 0:
            pytest.skip("no timer descriptor here (pure Python before 3.13)")
        assert set(os.listdir("/proc/self/fd")) == fds
    finally:
        gc.enable()
    assert ran == ["ran"]
