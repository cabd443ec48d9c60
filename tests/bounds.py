"""What a test of a misbehaving peer measures: time, traced memory, file descriptors and tasks,
each held to a named bound (``within``); and what such tests share (the outcome as the
table shows it, a silent peer, a reset).

``WSAPI_RELIABILITY_TABLE=path`` appends each measured row to ``path`` as a Markdown table
row (peer, outcome, bound, measured value): docs/reliability.md's table is made that way."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from support import TIMEOUT, Log, Reader, Writer, raw_server, wait_closed, wait_opened
from wsapi import UserAgent, WebSocket
from wsapi.deadlines import deadlines_of

MiB = 1024 * 1024

SETTLE = 2 * TIMEOUT
"""How long the sockets and tasks of a finished connection may take to go away."""


def open_fds() -> set[int]:
    """The file descriptors this process has open (Linux: /proc/self/fd), but /dev/null:
    libuv (uvloop) opens it once per loop, at its first listening socket, as a spare
    descriptor against EMFILE, and closes it with the loop."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "/dev/null":
                continue
        except OSError:
            continue  # (The descriptor listdir used, closed since.)
        fds.add(int(name))
    return fds


def other_tasks() -> set[asyncio.Task[object]]:
    """The running loop's tasks, but the current one."""
    current = asyncio.current_task()
    return {task for task in asyncio.all_tasks() if task is not current}


@dataclass
class Measure:
    """What ``within`` measured; ``outcome`` is set by the test (the events it saw)."""

    peer: str
    seconds: float = 0.0
    peak_memory: int = 0
    outcome: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@asynccontextmanager
async def within(
    peer: str, *, seconds: float, memory: int, trace: bool = True
) -> AsyncIterator[Measure]:
    """Run the block (a server and a connection to it) and assert that it took less than
    ``seconds`` (scaled by the test time unit), that the memory traced by tracemalloc
    during it peaked below ``memory`` bytes above its start, and that afterwards no file
    descriptor and no task it made is left. ``trace=False`` leaves tracemalloc off (a block
    that only measures time)."""
    fds = open_fds()
    tasks = other_tasks()
    measure = Measure(peer)
    if trace:
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
    start = time.monotonic()
    try:
        yield measure
    finally:
        measure.seconds = time.monotonic() - start
        if trace:
            measure.peak_memory = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
    await nothing_left(fds, tasks, peer)
    assert measure.seconds < seconds * TIMEOUT, f"{peer}: took {measure.seconds:.2f} s"
    assert measure.peak_memory < memory, f"{peer}: {measure.peak_memory / MiB:.1f} MiB traced"
    _record(measure, seconds, memory if trace else 0)


async def nothing_left(fds: set[int], tasks: set[asyncio.Task[object]], what: str) -> None:
    """Assert that no file descriptor but ``fds`` and no task but ``tasks`` is left, once
    closed transports have let go of their sockets (a callback or two, ``SETTLE`` at most).
    The loop's timer descriptor (``deadlines.py``), made with the loop's first timer and
    kept with the loop, is the loop's, not a leak."""
    deadlines = deadlines_of.get(asyncio.get_running_loop())
    if deadlines is not None and deadlines._timer_fd >= 0:
        fds = fds | {deadlines._timer_fd}
    deadline = time.monotonic() + SETTLE
    while (open_fds() - fds or other_tasks() - tasks) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    leaked = open_fds() - fds
    assert not leaked, f"{what}: file descriptors leaked: {_describe_fds(leaked)}"
    assert not other_tasks() - tasks, f"{what}: tasks left: {other_tasks() - tasks}"


def _record(measure: Measure, seconds: float, memory: int) -> None:
    path = os.environ.get("WSAPI_RELIABILITY_TABLE")
    if not path:
        return
    bound = f"{seconds:g} s" + (f", {_size(memory)}" if memory else "")
    value = f"{measure.seconds:.2f} s" + (f", {_size(measure.peak_memory)}" if memory else "")
    value += "".join(f", {name} {figure}" for name, figure in measure.extra.items())
    with open(path, "a", encoding="utf-8") as table:
        table.write(f"| {measure.peer} | {measure.outcome} | {bound} | {value} |\n")


def _size(amount: int) -> str:
    if amount >= MiB:
        return f"{amount / MiB:.1f} MiB"
    return f"{amount / 1024:.0f} KiB"


def _describe_fds(fds: set[int]) -> list[str]:
    """What each descriptor is (socket:[inode], a file's path, ...)."""
    described = []
    for fd in sorted(fds):
        try:
            described.append(f"{fd}: {os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            described.append(f"{fd}: (closed since)")
    return described


# --- what the tests of misbehaving peers share ---------------------------------------------


async def against(
    peer: str,
    handler: Callable[[Reader, Writer], Awaitable[None]],
    *,
    seconds: float,
    memory: int = 4 * MiB,
    trace: bool = True,
    cut_off: bool = False,
    proxy: bool = False,
    after_open: Callable[[WebSocket], Awaitable[None]] | None = None,
    binary_type: Literal["blob", "arraybuffer"] = "blob",
    **settings: Any,
) -> tuple[WebSocket, Log, Measure]:
    """Connect to a raw server running ``handler`` (as the server, or as its HTTP proxy with
    ``proxy``), run ``after_open`` once open, and wait for the close event, all within the
    bounds; the outcome is in the measure."""
    async with (
        within(peer, seconds=seconds, memory=memory, trace=trace) as measure,
        raw_server(handler, cut_off=cut_off) as server,
    ):
        url = server
        if proxy:
            settings["proxy"] = "http://" + settings.pop("credentials", "") + server[5:-1]
            url = "ws://127.0.0.1:8080/"  # (The proxy never connects anywhere.)
        ws = WebSocket(url, agent=UserAgent(**{"proxy": None, **settings}))
        ws.binaryType = binary_type
        log = Log(ws)
        if after_open is not None:
            await wait_opened(ws)
            await after_open(ws)
        await wait_closed(ws, seconds * TIMEOUT)
        outcome(ws, log, measure)
    return ws, log, measure


def outcome(ws: WebSocket, log: Log, measure: Measure) -> str:
    """The events ``log`` saw and the failure kind, as the table shows them; stored in
    ``measure``."""
    parts = []
    for type_, _, detail in log.entries:
        if type_ == "close":
            assert isinstance(detail, tuple)
            parts.append(f"close {detail[1]}" + (" clean" if detail[0] else ""))
        elif type_ != "message":
            parts.append(type_)
    kind = ws.failure.kind if ws.failure is not None else None
    if kind is not None:
        parts.append(f"kind {kind}")
    measure.outcome = ", ".join(parts)
    return measure.outcome


async def silent(reader: Reader) -> None:
    """Read until the client's end of stream: the peer says nothing more."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass


def reset(writer: Writer) -> None:
    """Close the connection with a RST: SO_LINGER on with a zero timeout."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@contextlib.contextmanager
def client_socket(ws: WebSocket) -> Iterator[socket.socket]:
    """The connection's own socket, for a test to set an option on it or shut it: a
    socket object over a duplicate of its descriptor (uvloop's transport socket has no
    shutdown(), and closing the duplicate leaves the connection's socket open)."""
    pump = ws._pump
    assert pump is not None
    assert pump.transport is not None
    fd = os.dup(pump.transport.get_extra_info("socket").fileno())
    with socket.socket(fileno=fd) as sock:
        yield sock
