"""Scale: N concurrent idle connections in one process, wsapi next to the websockets client.

Starts bench/server.py (the echo server, in its own process, on uvloop when installed), then
for each client (``LIB@LOOP``) runs one measurement in a fresh process: open N connections at
once and wait until all are open, measure the process's RSS, send one message on every
connection (a broadcast) and wait for every echo, then close them all. Prints a Markdown
table: time to open all, RSS per connection, broadcast time, close time.

    python bench/scale.py [-n 10000] [--clients wsapi@asyncio wsapi@uvloop ...]

Both processes raise their file-descriptor limit (RLIMIT_NOFILE) to the hard limit; N
must stay below it. wsapi opens connections to one server one at a time, as RFC 6455 4.1
step 2 asks ("there MUST be no more than one connection in a CONNECTING state" per
address); the websockets client does not, and opens up to ``--concurrency`` at once (the
server's listen backlog is 1024).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CLIENTS = ("wsapi@asyncio", "wsapi@uvloop", "websockets@asyncio", "websockets@uvloop")

MESSAGE = "broadcast"


def raise_fd_limit(needed: int) -> None:
    """Raise RLIMIT_NOFILE to the hard limit; exit if ``needed`` descriptors do not fit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and needed > hard:
        raise SystemExit(f"{needed} file descriptors needed, the hard limit is {hard}")


def rss_kib() -> int:
    gc.collect()
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def measure_wsapi(url: str, n: int, _concurrency: int) -> dict[str, float]:
    from wsapi import UserAgent, WebSocket  # noqa: PLC0415 (in the measuring process only)

    loop = asyncio.get_running_loop()
    agent = UserAgent(proxy=None, open_timeout=300.0)
    before = rss_kib()
    start = time.perf_counter()
    sockets = [WebSocket(url, agent=agent) for _ in range(n)]
    await asyncio.gather(*(ws.opened for ws in sockets))
    opened = time.perf_counter()
    after = rss_kib()
    received = 0
    all_received: asyncio.Future[None] = loop.create_future()

    def on_message(_event: object) -> None:
        nonlocal received
        received += 1
        if received == n:
            all_received.set_result(None)

    for ws in sockets:
        ws.onmessage = on_message
    broadcast = time.perf_counter()
    for ws in sockets:
        ws.send(MESSAGE)
    await all_received
    echoed = time.perf_counter()
    for ws in sockets:
        ws.close()
    events = await asyncio.gather(*(ws.closed for ws in sockets))
    closed = time.perf_counter()
    assert all(event.wasClean for event in events)
    return result(n, (before, after), (start, opened, broadcast, echoed, closed))


async def measure_websockets(url: str, n: int, concurrency: int) -> dict[str, float]:
    from websockets.asyncio.client import ClientConnection, connect  # noqa: PLC0415

    limit = asyncio.Semaphore(concurrency)

    async def one() -> ClientConnection:
        async with limit:
            return await connect(
                url, compression=None, ping_interval=None, open_timeout=300, max_queue=None
            )

    before = rss_kib()
    start = time.perf_counter()
    connections = await asyncio.gather(*(one() for _ in range(n)))
    opened = time.perf_counter()
    after = rss_kib()
    broadcast = time.perf_counter()
    for connection in connections:
        await connection.send(MESSAGE)
    answers = await asyncio.gather(*(connection.recv() for connection in connections))
    echoed = time.perf_counter()
    assert answers == [MESSAGE] * n
    await asyncio.gather(*(connection.close() for connection in connections))
    closed = time.perf_counter()
    return result(n, (before, after), (start, opened, broadcast, echoed, closed))


def result(n: int, rss: tuple[int, int], times: tuple[float, ...]) -> dict[str, float]:
    """The figures of a measurement: ``rss`` in KiB before and after opening, ``times`` at
    the start, all open, the broadcast, every echo back, all closed."""
    start, opened, broadcast, echoed, closed = times
    return {
        "n": n,
        "open_s": opened - start,
        "rss_before_kib": rss[0],
        "rss_open_kib": rss[1],
        "rss_per_connection_kib": (rss[1] - rss[0]) / n,
        "broadcast_s": echoed - broadcast,
        "close_s": closed - echoed,
    }


MEASURES = {"wsapi": measure_wsapi, "websockets": measure_websockets}


def measure(client: str, url: str, n: int, concurrency: int) -> None:
    """One measurement, in this process: prints one JSON line."""
    raise_fd_limit(n + 100)
    library, _, loop = client.partition("@")
    coroutine = MEASURES[library](url, n, concurrency)
    if loop == "uvloop":
        import uvloop  # noqa: PLC0415 (optional)

        figures = uvloop.run(coroutine)
    else:
        figures = asyncio.run(coroutine)
    print(json.dumps({"client": client, **figures}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", type=int, default=10_000, help="connections (default 10,000)")
    parser.add_argument("--clients", nargs="+", default=list(CLIENTS), help="LIB@LOOP names")
    parser.add_argument("--concurrency", type=int, default=500, help="websockets' opens at once")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.url, args.n, args.concurrency)
        return
    here = Path(__file__).resolve().parent
    server = subprocess.Popen(
        [sys.executable, str(here / "server.py")], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    port = server.stdout.readline().split()[1]
    url = f"ws://127.0.0.1:{port}/echo"
    rows: list[dict[str, Any]] = []
    try:
        for client in args.clients:
            print(f"{client}: {args.n} connections ...", file=sys.stderr, flush=True)
            command = [sys.executable, __file__, "--measure", client, "--url", url]
            command += ["-n", str(args.n), "--concurrency", str(args.concurrency)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                print(f"{client} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        server.terminate()
        server.wait()
    build = "pure Python" if os.environ.get("WSAPI_PURE_PYTHON") else "compiled (if built)"
    print(f"{args.n} connections per client, wsapi {build}\n")
    print("| client | open all | RSS per connection | broadcast + echoes | close all |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['client']} | {row['open_s']:.2f} s | "
            f"{row['rss_per_connection_kib']:.1f} KiB | {row['broadcast_s'] * 1000:.0f} ms | "
            f"{row['close_s']:.2f} s |"
        )
    if len(rows) < len(args.clients):
        sys.exit(1)


if __name__ == "__main__":
    main()
