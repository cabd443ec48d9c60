"""Autobahn|Testsuite client driver for wsapi: runs every case the fuzzing server offers.

Usage: ``AUTOBAHN_URL=ws://127.0.0.1:9001 python autobahn/client.py [AGENT]`` (``run.py``
starts the server and sets the variables). Each case's messages are echoed as they arrive.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from wsapi.agent import UserAgent
from wsapi.protocol.engine import State
from wsapi.protocol.events import CloseReceived, Opened
from wsapi.transport import (
    ConnectionFailure,
    WebSocketTransport,
    establish_a_websocket_connection,
)
from wsapi.url import parse_websocket_url

CASE_TIMEOUT = 120.0
"""Seconds one case may take; the slowest (9.x at 16 MiB) take a few."""


class Echo:
    """Echoes every message; records the first text message (for /getCaseCount)."""

    def __init__(self, echo: bool) -> None:
        self.echo = echo
        self.transport: WebSocketTransport | None = None
        self.messages: list[str | bytes] = []
        self.done: asyncio.Future[tuple[bool, int]] = asyncio.get_running_loop().create_future()

    def on_open(self, event: Opened) -> None:
        pass

    def on_message(self, data: str | bytes) -> None:
        if not self.echo:
            self.messages.append(data)
            return
        transport = self.transport
        if transport is None or transport.engine.state is not State.OPEN:
            return
        transport.send_message(data, len(data))

    def on_close_frame(self, event: CloseReceived) -> None:
        pass

    def on_failure(self, event: ConnectionFailure) -> None:
        pass

    def on_drained(self) -> None:
        pass

    def on_closed(self, was_clean: bool, code: int, reason: str) -> None:
        if not self.done.done():
            self.done.set_result((was_clean, code))


async def run(url: str, *, echo: bool = True) -> Echo:
    """Connect to ``url``, echo (or collect) messages until the connection closes."""
    handler = Echo(echo)
    transport = await establish_a_websocket_connection(
        UserAgent(proxy=None), parse_websocket_url(url), handler
    )
    handler.transport = transport
    try:
        await asyncio.wait_for(asyncio.shield(handler.done), CASE_TIMEOUT)
    except asyncio.TimeoutError:
        print(f"timed out: {url}", file=sys.stderr)
        if transport is not None:
            transport.abort()
        await handler.done
    return handler


async def main(base: str, agent: str) -> None:
    counter = await run(f"{base}/getCaseCount", echo=False)
    count = json.loads(counter.messages[0])
    print(f"{count} cases", flush=True)
    for case in range(1, count + 1):
        await run(f"{base}/runCase?case={case}&agent={agent}")
    # The server may stop as it answers (shutdownOnComplete): a cut handshake is fine.
    await run(f"{base}/updateReports?agent={agent}", echo=False)


if __name__ == "__main__":
    agent = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("AUTOBAHN_AGENT", "wsapi")
    asyncio.run(main(os.environ.get("AUTOBAHN_URL", "ws://127.0.0.1:9001"), agent))
