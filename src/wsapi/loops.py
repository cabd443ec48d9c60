"""Values kept for each event loop: the connection throttle's queues, the connections'
timers, the registry of open sockets (a connection belongs to one loop)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["PerLoop"]

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
