"""Churn, briefly: bench/churn.py's cycles (open, send, echo, close; refused, reset and timed
out connections among them) in one process against local servers, with nothing left
afterwards and the number of live objects flat (tracemalloc would make it ten times
slower)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from bounds import nothing_left, open_fds, other_tasks, reset, silent
from support import Reader, Writer, echo_server, raw_server, read_request, refused_url

GROWTH = 20
"""Objects of the networking modules (``COUNTED``) the 200 measured cycles may add to those
the warm-up left: a leak of anything per cycle passes it."""

COUNTED = ("wsapi", "asyncio", "_asyncio", "socket", "ssl", "uvloop", "websockets")
"""The top-level modules whose objects ``live_objects`` counts."""


def live_objects() -> collections.Counter[str]:
    """The objects of ``COUNTED`` modules the garbage collector tracks, by type, after a
    collection; cancelled timers aside (asyncio drops them from its heap lazily)."""
    gc.collect()
    counts: collections.Counter[str] = collections.Counter()
    for obj in gc.get_objects():
        kind = type(obj)
        module = getattr(kind, "__module__", None)
        if not isinstance(module, str) or module.partition(".")[0] not in COUNTED:
            continue
        if isinstance(obj, asyncio.TimerHandle) and obj.cancelled():
            continue
        counts[f"{module}.{kind.__qualname__}"] += 1
    return counts


def load_churn() -> ModuleType:
    """bench/churn.py, a script, imported as a module."""
    path = Path(__file__).resolve().parent.parent / "bench" / "churn.py"
    spec = importlib.util.spec_from_file_location("churn", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["churn"] = module
    spec.loader.exec_module(module)
    return module


async def resets(reader: Reader, writer: Writer) -> None:
    with contextlib.suppress(ConnectionError):
        await read_request(reader)
    reset(writer)


async def never_answers(reader: Reader, writer: Writer) -> None:
    await silent(reader)


async def test_churn_leaves_no_descriptor_no_task_and_bounded_memory() -> None:
    """200 cycles after 50 of warm-up, one in five a failure (refused, reset, timeout): each
    ends as expected, and afterwards no file descriptor or task is left and fewer than
    GROWTH more objects are alive."""
    churn = load_churn()
    async with (
        echo_server() as echo,
        raw_server(resets) as reset_url,
        raw_server(never_answers, cut_off=True) as silent_url,
    ):
        urls = {
            "echo": echo.url,
            "refused": await refused_url(),
            "reset": reset_url,
            "timeout": silent_url,
        }
        fds, tasks = open_fds(), other_tasks()
        await churn.churn(urls, 50, workers=4, every=5, open_timeout=0.1)
        before = live_objects()
        outcomes, snapshots = await churn.churn(urls, 200, workers=4, every=5, open_timeout=0.1)
        growth = live_objects() - before
        assert churn.unexpected(outcomes) == {}
        assert sum(outcomes.values()) == 200
        assert len(outcomes) == 4  # Every kind of cycle ran.
        await nothing_left(fds, tasks, "churn")
        assert snapshots[-1]["tasks"] == snapshots[0]["tasks"]
        assert sum(growth.values()) < GROWTH, f"objects left by the cycles: {growth}"
