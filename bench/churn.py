"""Churn: many open/send/close cycles, failures among them, and what is left afterwards.

Runs N cycles (default 100,000) from ``--workers`` concurrent tasks against local servers in
other processes: most open a connection to bench/server.py's echo, send a message, wait for
its echo and close; one in ``--every`` of each fails instead, in turn refused (a port where
nothing listens), reset (a server that resets the connection after the request) and timed
out (a server that never answers, against ``--open-timeout``). Reports the process's file
descriptors, tasks and RSS at the start (after a warm-up) and as it goes; the goal is flat.
The exit status is 1 if a cycle ended otherwise than expected (counted per outcome).

    python bench/churn.py [-n 100000] [--workers 8] [--loop asyncio|uvloop]

``churn()`` is also what tests/test_churn.py runs, briefly and in one process.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from wsapi import UserAgent, WebSocket

EXPECTED = {
    "echo": "close 1005 clean",
    "refused": "close 1006 refused",
    "reset": "close 1006 connection_lost",
    "timeout": "close 1006 timeout",
}
"""What each kind of cycle must end in: the close event (code, clean) and the failure kind."""

FAILURES = ("refused", "reset", "timeout")

CYCLE_TIMEOUT = 30.0
"""Seconds after which a cycle that has not closed counts as "hung" (and is closed)."""


def plan(index: int, every: int) -> str:
    """The kind of cycle ``index``: a failure one cycle in ``every``, the three in turn."""
    if every and index % every == every - 1:
        return FAILURES[(index // every) % len(FAILURES)]
    return "echo"


async def cycle(url: str, agent: UserAgent, kind: str) -> str:
    """One connection: for "echo", open, send, wait for the echo, close; for a failure, wait
    for the close. Returns the outcome, as ``EXPECTED`` shows it."""
    ws = WebSocket(url, agent=agent)
    if kind == "echo":
        ws.onopen = lambda _event: ws.send("churn")
        ws.onmessage = lambda _event: ws.close()
    try:
        event = await asyncio.wait_for(ws.closed, CYCLE_TIMEOUT)
    except asyncio.TimeoutError:
        ws.close()
        return "hung"
    failure = ws.failure
    clean = " clean" if event.wasClean else ""
    return f"close {event.code}{clean}" + (f" {failure.kind}" if failure is not None else "")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def snapshot(done: int, own: set[asyncio.Task[None]]) -> dict[str, int]:
    """The process's state after ``done`` cycles: its file descriptors, its RSS and the
    tasks of the loop but the current one and ``own`` (the churn's)."""
    gc.collect()
    current = asyncio.current_task()
    return {
        "cycles": done,
        "fds": open_fds(),
        "tasks": len(asyncio.all_tasks() - own - {current}),
        "rss_kib": rss_kib(),
    }


async def churn(
    urls: Mapping[str, str],
    cycles: int,
    *,
    workers: int = 8,
    every: int = 100,
    open_timeout: float = 0.2,
    warm_up: int = 0,
    reports: int = 10,
    report: Callable[[dict[str, int]], None] | None = None,
) -> tuple[collections.Counter[str], list[dict[str, int]]]:
    """Run ``warm_up`` then ``cycles`` cycles against ``urls`` (one URL per kind of cycle);
    returns the count of each (kind, outcome) of the ``cycles`` and the snapshots: after
    the warm-up (nothing open), at each tenth (``reports``: connections in flight) and at
    the end (nothing open)."""
    # (open_timeout for the cycles meant to time out; the others get all the time they need.)
    agents = {
        kind: UserAgent(
            proxy=None,
            open_timeout=open_timeout if kind == "timeout" else CYCLE_TIMEOUT / 2,
            close_timeout=5.0,
        )
        for kind in EXPECTED
    }
    outcomes: collections.Counter[str] = collections.Counter()
    snapshots: list[dict[str, int]] = []
    own: set[asyncio.Task[None]] = set()
    done = 0

    async def run(first: int, count: int) -> None:
        """Cycles ``first`` to ``first + count`` on ``workers`` tasks."""
        nonlocal done
        indexes = iter(range(first, first + count))

        async def work() -> None:
            nonlocal done
            for index in indexes:
                kind = plan(index, every)
                outcomes[f"{kind}: {await cycle(urls[kind], agents[kind], kind)}"] += 1
                done += 1

        working = [asyncio.ensure_future(work()) for _ in range(workers)]
        own.update(working)
        await asyncio.gather(*working)
        own.difference_update(working)

    def take(cycles_done: int) -> None:
        snapshots.append(snapshot(cycles_done, own))
        if report is not None:
            report(snapshots[-1])

    async def watch() -> None:
        step = max(1, cycles // reports)
        for mark in range(step, cycles, step):
            while done < warm_up + mark:
                await asyncio.sleep(0.01)
            take(done - warm_up)

    await run(0, warm_up)
    outcomes.clear()
    take(0)  # The start: every connection of the warm-up has ended.
    watcher = asyncio.ensure_future(watch())
    own.add(watcher)
    await run(warm_up, cycles)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    own.discard(watcher)
    take(cycles)  # The end: every connection has ended.
    return outcomes, snapshots


def unexpected(outcomes: Mapping[str, int]) -> dict[str, int]:
    """The outcomes that are not the expected one of their kind."""
    wrong = {}
    for key, count in outcomes.items():
        kind, _, outcome = key.partition(": ")
        if EXPECTED[kind] != outcome:
            wrong[key] = count
    return wrong


# --- the failing servers (run in their own process with --serve) ----------------------------


async def serve_failures() -> None:
    """Two listeners: "reset" reads a request and resets the connection (SO_LINGER 0);
    "timeout" reads and never answers. Prints their ports, then runs until stdin closes."""
    loop = asyncio.get_running_loop()

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass
        writer.close()

    servers = [
        await asyncio.start_server(handler, "127.0.0.1", 0, backlog=1024)
        for handler in (reset, silent)
    ]
    ports = [server.sockets[0].getsockname()[1] for server in servers]
    print(f"PORTS {ports[0]} {ports[1]}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # Until the parent goes.


def refused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def start(command: list[str], prefix: str) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline().split()
    if not line or line[0] != prefix:
        process.kill()
        raise SystemExit(f"{command}: no {prefix} line")
    return process, line[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", type=int, default=100_000, help="cycles (default 100,000)")
    parser.add_argument("--workers", type=int, default=8, help="concurrent cycles")
    parser.add_argument("--every", type=int, default=100, help="one failure in EVERY cycles")
    parser.add_argument("--open-timeout", type=float, default=0.2)
    parser.add_argument("--warm-up", type=int, default=1000)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_failures())
        return
    here = Path(__file__).resolve().parent
    echo, (echo_port,) = start([sys.executable, str(here / "server.py")], "PORT")
    failing, (reset_port, silent_port) = start([sys.executable, __file__, "--serve"], "PORTS")
    urls = {
        "echo": f"ws://127.0.0.1:{echo_port}/echo",
        "refused": f"ws://127.0.0.1:{refused_port()}/",
        "reset": f"ws://127.0.0.1:{reset_port}/",
        "timeout": f"ws://127.0.0.1:{silent_port}/",
    }
    started = time.monotonic()

    def report(state: dict[str, int]) -> None:
        print(
            f"{state['cycles']:>8} cycles  {time.monotonic() - started:7.1f} s  "
            f"fds {state['fds']:>4}  tasks {state['tasks']:>3}  RSS {state['rss_kib']} KiB",
            file=sys.stderr,
            flush=True,
        )

    run = churn(
        urls,
        args.n,
        workers=args.workers,
        every=args.every,
        open_timeout=args.open_timeout,
        warm_up=args.warm_up,
        report=report,
    )
    try:
        if args.loop == "uvloop":
            import uvloop  # noqa: PLC0415 (optional)

            outcomes, snapshots = uvloop.run(run)
        else:
            outcomes, snapshots = asyncio.run(run)
    finally:
        for process in (echo, failing):
            process.terminate()
            process.wait()
    elapsed = time.monotonic() - started
    first, last = snapshots[0], snapshots[-1]
    build = "pure Python" if os.environ.get("WSAPI_PURE_PYTHON") else "compiled (if built)"
    print(
        f"{args.n} cycles in {elapsed:.0f} s on {args.loop}, wsapi {build}, {args.workers} workers"
    )
    print("\n| | start (after the warm-up) | end | change |\n| --- | --- | --- | --- |")
    for key, label in (("fds", "file descriptors"), ("tasks", "tasks"), ("rss_kib", "RSS (KiB)")):
        print(f"| {label} | {first[key]} | {last[key]} | {last[key] - first[key]:+} |")
    print("\n| cycle: outcome | count |\n| --- | --- |")
    for key, count in sorted(outcomes.items()):
        print(f"| {key} | {count} |")
    wrong = unexpected(outcomes)
    if wrong:
        print(f"\nunexpected outcomes: {wrong}")
        sys.exit(1)


if __name__ == "__main__":
    main()
