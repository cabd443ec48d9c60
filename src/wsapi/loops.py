"""Values kept for each event loop: the connection throttle's queues, the connections'
timers, the registry of open sockets (a connection belongs to one loop); and what runs when
``asyncio.run()`` ends a loop (``at_loop_end``)."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = ["PerLoop", "at_loop_end"]

T = TypeVar("T")


class PerLoop(Generic[T]):
    """``per_loop(loop)``: the value of ``loop``, made by ``factory(loop)`` when first asked
    for. Loops are held weakly, and the last loop asked about is answered without making a
    weak key (a connection asks several times while it is set up; most programs run one
    loop)."""

    __slots__ = ("_factory", "_last", "_values")

    def __init__(self, factory: Callable[[asyncio.AbstractEventLoop], T]) -> None:
        self._factory = factory
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )
        self._last: tuple[weakref.ref[asyncio.AbstractEventLoop], T] | None = None

    def __call__(self, loop: asyncio.AbstractEventLoop) -> T:
        last = self._last
        if last is not None and last[0]() is loop:
            return last[1]
        value = self._values.get(loop)
        if value is None:
            value = self._values[loop] = self._factory(loop)
        self._last = (weakref.ref(loop), value)
        return value

    def get(self, loop: asyncio.AbstractEventLoop) -> T | None:
        """The value of ``loop`` if one was made, else None (none is made)."""
        return self._values.get(loop)


_guards: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[AsyncGenerator[None, None]]] = (
    weakref.WeakKeyDictionary()
)


def at_loop_end(
    loop: asyncio.AbstractEventLoop, step: Callable[[asyncio.AbstractEventLoop], Awaitable[None]]
) -> None:
    """Run ``step(loop)`` when the loop's ``shutdown_asyncgens()`` runs -- the step of
    ``asyncio.run()`` after the program's tasks are cancelled and before the loop closes,
    while the loop can still run. ``loop`` is the running loop. (An async generator the
    loop finalizes then; the loop holds its generators weakly, this module strongly, and
    neither ``step`` nor the generator may hold the loop, which would never go.)"""
    guard = _guard(step)
    # The first step registers the generator with the running loop (its firstiter hook)
    # and stops at the yield.
    first_step: Any = guard.asend(None)
    with contextlib.suppress(StopIteration):
        first_step.send(None)
    _guards.setdefault(loop, []).append(guard)


async def _guard(
    step: Callable[[asyncio.AbstractEventLoop], Awaitable[None]],
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await step(asyncio.get_running_loop())
