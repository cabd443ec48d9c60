"""Autobahn|Testsuite client driver for wsapi: runs every case the fuzzing server offers.

Usage: ``AUTOBAHN_URL=ws://127.0.0.1:9001 python autobahn/client.py [AGENT]`` (``run.py``
starts the server and sets the variables). The driver is written the way a web page would
write it: a ``WebSocket`` whose ``onmessage`` sends every message back, with binaryType
"arraybuffer".
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from wsapi import Blob, MessageEvent, UserAgent, WebSocket

CASE_TIMEOUT = 120.0
"""Seconds one case may take; the slowest (9.x at 16 MiB) take a few."""

AGENT = UserAgent(proxy=None, compression="deflate", user_agent="wsapi autobahn driver")
"""permessage-deflate is offered in every case: sections 12 and 13 need it, and sections 1-10
must pass with it on (the fuzzing server does not accept it there, so they run uncompressed)."""


async def run(url: str, *, echo: bool = True) -> list[str | bytes]:
    """Connect to ``url``; echo (or collect) messages until the connection closes."""
    ws = WebSocket(url, agent=AGENT)
    ws.binaryType = "arraybuffer"
    received: list[str | bytes] = []

    def on_message(event: MessageEvent) -> None:
        data = event.data
        assert not isinstance(data, Blob), "binaryType is arraybuffer"
        if echo:
            ws.send(data)
        else:
            received.append(data)

    ws.onmessage = on_message
    try:
        await asyncio.wait_for(asyncio.shield(ws.closed), CASE_TIMEOUT)
    except asyncio.TimeoutError:
        print(f"timed out: {url}", file=sys.stderr)
        ws.close()
        await ws.closed
    return received


async def main(base: str, agent: str) -> None:
    counter = await run(f"{base}/getCaseCount", echo=False)
    count = json.loads(counter[0])
    print(f"{count} cases", flush=True)
    for case in range(1, count + 1):
        await run(f"{base}/runCase?case={case}&agent={agent}")
    # The server may stop as it answers (shutdownOnComplete): a cut handshake is fine.
    await run(f"{base}/updateReports?agent={agent}", echo=False)


if __name__ == "__main__":
    agent = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("AUTOBAHN_AGENT", "wsapi")
    asyncio.run(main(os.environ.get("AUTOBAHN_URL", "ws://127.0.0.1:9001"), agent))
