"""The connections' timers: on one timer of the event loop, shared by every connection.

A connection sets a timer for each phase that may hang (opening, waiting for the peer's
Close, waiting for the peer's TCP close) and nearly always cancels it a millisecond later.
An asyncio timer for each costs more than anything else in setting up a connection on the
default loop: a ``TimerHandle`` made in Python, a push onto the loop's heap that compares
handles with a Python ``__lt__``, and the cancelled handle left in that heap until its time
comes or the heap is rebuilt. Here a timer is an entry in a heap of tuples (compared in C),
and the loop has one timer armed for all of them, at the earliest deadline. Cancelling an
entry leaves that loop timer as it is (re-arming it is the cost this saves): the loop may
wake once for a deadline no longer wanted, and then arms itself for the earliest live one.

On the default loop on Linux the loop's timer is a timer descriptor (``timerfd``) that the
loop watches as it watches a socket: arming it is one system call, and it stays armed when
no entry is left (a kernel timer costs the loop's turns nothing). Elsewhere it is an asyncio
timer, which is cancelled when no entry is left: a loop with any timer scheduled looks at
the clock on each of its turns, which a busy connection would pay for nothing. The exception
is the last timer of a connection that has ended (``keep_armed``): the next connection's
opening nearly always sets a timer soon after, which then needs no new timer of the loop; if
none comes, the loop wakes once, when the old one is due.

A cancelled entry stays in the heap until it comes to the top or the heap is compacted
(once more than half of it is cancelled entries, so it stays within twice what is live);
it holds nothing of its connection, the callback being dropped at cancellation. Callbacks
run in the order of their deadlines, from the loop's timer, each as the loop would run it:
an exception goes to the loop's exception handler and the others still run.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import os
import weakref
from collections.abc import Callable

from .loops import PerLoop, at_loop_end
from .socket_transport import (
    arm_timer_fd,
    open_timer_fd,
    socket_transport_used_on,
    timer_fd_has_expired,
)

__all__ = ["Deadlines", "Timer", "deadlines_of"]

COMPACT_ABOVE = 32
"""Cancelled entries the heap may hold before it is compacted (when they are also more than
half of it)."""


class Timer:
    """A callback and when it is due; ``Deadlines.cancel`` drops it."""

    __slots__ = ("callback", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback: Callable[[], object] | None = callback


class Deadlines:
    """The timers of one event loop's connections (``deadlines_of(loop)``)."""

    __slots__ = (
        "__weakref__",
        "_armed",
        "_armed_at",
        "_cancelled",
        "_heap",
        "_loop",
        "_order",
        "_release_timer_fd",
        "_timer_fd",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, *, timer_fd: bool = True) -> None:
        """``timer_fd``: wait on a timer descriptor where there is one (else, and with
        False, on an asyncio timer)."""
        # Weak: the loop's entry in deadlines_of must not keep the loop alive.
        self._loop = weakref.ref(loop)
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()  # Ties keep their order; Timers are never compared.
        self._cancelled = 0
        # The loop's timer: the asyncio timer, or the timer descriptor's (-1: none), and
        # when it is due (infinity: not armed).
        self._armed: asyncio.TimerHandle | None = None
        self._armed_at = math.inf
        # (A loop with a clock of its own, as tests make, keeps asyncio timers.)
        own_clock = type(loop).time is not asyncio.BaseEventLoop.time
        usable = timer_fd and not own_clock and socket_transport_used_on(loop)
        self._timer_fd = open_timer_fd() if usable else -1
        self._release_timer_fd: weakref.finalize[[int], Deadlines] | None = None
        if self._timer_fd >= 0:
            loop.add_reader(self._timer_fd, self._timer_fd_ready)
            # Closed when asyncio.run() ends the loop, else with this object (which the
            # loop's watch holds: with the loop).
            self._release_timer_fd = weakref.finalize(self, os.close, self._timer_fd)
            if _running_loop() is loop:
                at_loop_end(loop, _close_timer_fd)

    def __len__(self) -> int:
        """Timers set and not yet run or cancelled."""
        return len(self._heap) - self._cancelled

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Run ``callback`` in ``delay`` seconds (the loop's clock), unless cancelled."""
        loop = self._loop()
        assert loop is not None, "the event loop is gone"
        return self.call_at(loop.time() + delay, callback)

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        """Run ``callback`` at ``when`` (the loop's clock), unless cancelled."""
        timer = Timer(when, callback)
        heapq.heappush(self._heap, (when, next(self._order), timer))
        if when < self._armed_at:
            self._arm(when)
        return timer

    def cancel(self, timer: Timer, *, keep_armed: bool = False) -> None:
        """Drop ``timer`` if it has not run (its entry goes when it comes to the top, or at
        the next compaction). ``keep_armed``: leave the loop's timer as it is even when no
        entry is left (the timer's connection has ended)."""
        if timer.callback is None:
            return
        timer.callback = None
        self._cancelled += 1
        heap = self._heap
        if self._cancelled == len(heap):
            # None left: nor is the loop's asyncio timer, if it has one. (An idle loop then
            # holds no timer at all, which spares each of its turns the look at the clock
            # that any timer costs. A timer descriptor costs the turns nothing: it stays.)
            heap.clear()
            self._cancelled = 0
            if self._armed is not None and not keep_armed:
                self._armed.cancel()
                self._armed = None
                self._armed_at = math.inf
        elif self._cancelled > COMPACT_ABOVE and 2 * self._cancelled > len(heap):
            heap[:] = [entry for entry in heap if entry[2].callback is not None]
            heapq.heapify(heap)
            self._cancelled = 0

    def _arm(self, when: float) -> None:
        self._armed_at = when
        if self._timer_fd >= 0:
            arm_timer_fd(self._timer_fd, when)
            return
        if self._armed is not None:
            self._armed.cancel()
        loop = self._loop()
        assert loop is not None, "the event loop is gone"
        self._armed = loop.call_at(when, self._run_due)

    def close_timer_fd(self) -> None:
        """Close the timer descriptor (the loop is ending): the timers still set, and any
        set after, wait on an asyncio timer."""
        fd, self._timer_fd = self._timer_fd, -1
        if fd < 0:
            return
        loop = self._loop()
        if loop is not None and not loop.is_closed():
            loop.remove_reader(fd)
        if self._release_timer_fd is not None:
            self._release_timer_fd()
        self._armed_at = math.inf
        live = [when for when, _, timer in self._heap if timer.callback is not None]
        if live:
            self._arm(min(live))

    def _timer_fd_ready(self) -> None:
        if timer_fd_has_expired(self._timer_fd):
            self._run_due()

    def _run_due(self) -> None:
        self._armed = None
        self._armed_at = math.inf
        loop = self._loop()
        assert loop is not None, "the event loop is gone"
        heap = self._heap
        now = loop.time()
        while heap:
            when, _, timer = heap[0]
            callback = timer.callback
            if callback is None:
                heapq.heappop(heap)
                self._cancelled -= 1
                continue  # A cancelled one at the top goes, whenever it was due.
            if when > now:
                self._arm(when)  # The earliest live one.
                return
            heapq.heappop(heap)
            timer.callback = None
            try:
                callback()
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                loop.call_exception_handler(
                    {"message": f"wsapi timer callback {callback!r} failed", "exception": exc}
                )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _close_timer_fd(loop: asyncio.AbstractEventLoop) -> None:
    deadlines = deadlines_of.get(loop)
    if deadlines is not None:
        deadlines.close_timer_fd()


deadlines_of: PerLoop[Deadlines] = PerLoop(Deadlines)
"""``deadlines_of(loop)``: the timers of ``loop``'s connections."""
