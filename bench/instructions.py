"""User-space instructions of wsapi's hot paths, counted by valgrind's cachegrind: per round trip
of a 32-byte text message, sent from the message handler as the shared harness's scenario A
does (A), per received 64-byte message (B64), and per round trip of the blocking API
(``wsapi.sync``: ``send()``, then ``recv()`` once the echo is in the socket, so that every
call takes the same path), against this folder's server. Counts are deterministic where
timings on a shared machine are not: they compare two builds (or two commits, with
``PYTHONPATH``) without noise.

Each figure is the difference between two runs of different lengths, divided by the
difference in length, so start-up and the handshake cancel out.

    python bench/instructions.py              # needs valgrind
    python bench/instructions.py --loop uvloop
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


async def client(port: int, mode: str, n: int) -> None:
    """``n`` round trips (mode "A") or one push of ``n`` 64-byte messages (mode "B")."""
    from wsapi import MessageEvent, UserAgent, WebSocket  # noqa: PLC0415 (in the child)

    loop = asyncio.get_running_loop()
    path = "echo" if mode == "A" else "push"
    ws = WebSocket(f"ws://127.0.0.1:{port}/{path}", agent=UserAgent(proxy=None))
    await ws.opened
    done = loop.create_future()
    count = 0

    def on_message(event: MessageEvent) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set_result(None)
        elif mode == "A":
            ws.send(event.data)  # (The echo of the last one: the next round trip.)

    ws.onmessage = on_message
    ws.send("x" * 32 if mode == "A" else f"{n} 64")
    await done
    ws.close()
    await ws.closed


def sync_client(port: int, n: int) -> None:
    """``n`` round trips of wsapi.sync, each ``recv()`` called once the echo has arrived."""
    import select  # noqa: PLC0415 (in the child)

    from wsapi import UserAgent  # noqa: PLC0415
    from wsapi.sync import connect  # noqa: PLC0415

    conn = connect(f"ws://127.0.0.1:{port}/echo", agent=UserAgent(proxy=None))
    assert conn._transport is not None, "plain TCP on the socket transport"
    echoed = select.poll()
    echoed.register(conn._transport._fd, select.POLLIN)
    message = "x" * 32
    for _ in range(n):
        conn.send(message)
        # (Bounded: should the loop take reading back meanwhile, the echo is in the inbox.)
        echoed.poll(100)
        conn.recv()
    conn.close()


def count(port: int, mode: str, n: int, loop: str) -> int:
    """Instructions of one client run under cachegrind."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "cachegrind.out")
        command = ["valgrind", "--tool=cachegrind", "--cache-sim=no"]
        command += [f"--cachegrind-out-file={out}", sys.executable, __file__]
        command += ["--loop", loop, "--client", mode, str(port), str(n)]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", result.stderr)
    assert found is not None, result.stderr
    return int(found[1].replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--client", nargs=3, metavar=("MODE", "PORT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        mode, port, n = args.client
        if mode == "S":
            sync_client(int(port), int(n))
        elif args.loop == "uvloop":
            import uvloop  # noqa: PLC0415 (only when asked for)

            uvloop.run(client(int(port), mode, int(n)))
        else:
            asyncio.run(client(int(port), mode, int(n)))
        return
    server = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "server.py"), "--loop", "asyncio"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        a = (count(port, "A", 12000, args.loop) - count(port, "A", 2000, args.loop)) // 10000
        b = (count(port, "B", 120000, args.loop) - count(port, "B", 20000, args.loop)) // 100000
        sync = (count(port, "S", 2500, args.loop) - count(port, "S", 500, args.loop)) // 2000
    finally:
        server.terminate()
        server.wait()
    print(f"{args.loop}: A: {a} instructions per round trip; B64: {b} per message received")
    print(f"A (wsapi.sync, on its own loop thread): {sync} instructions per round trip")


if __name__ == "__main__":
    main()
