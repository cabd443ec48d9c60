"""The ``wsapi`` command: a first, line-based client (the full interactive client is the
command-line issue's work). It shows the events a browser script would see.

``wsapi`` with no URL starts the embedded echo server on 127.0.0.1 and runs a round trip
against it; ``wsapi URL`` sends each line of standard input as a text message and prints
what arrives, until standard input ends or the server closes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from .agent import UserAgent
from .echo import start_echo_server
from .errors import DOMException
from .events import CloseEvent, Event, MessageEvent
from .websocket import WebSocket, WebSocketError

DEMO_MESSAGES: tuple[str | bytes, ...] = ("Hello from wsapi", b"\x00\x01\x02 binary")


def _watch(ws: WebSocket) -> None:
    """Print every event as it is dispatched."""

    def on_open(event: Event) -> None:
        print(f"open     protocol={ws.protocol!r} extensions={ws.extensions!r}")

    def on_message(event: MessageEvent) -> None:
        data = event.data
        if isinstance(data, str):
            print(f"message  text ({len(data)} chars): {data}")
        else:  # bytes: binaryType is "arraybuffer"
            print(f"message  binary ({len(data)} bytes): {data.hex(' ')}")

    def on_error(event: Event) -> None:
        reason = f": {ws.failure}" if ws.failure else ""
        print(f"error{reason}")

    def on_close(event: CloseEvent) -> None:
        print(f"close    code={event.code} reason={event.reason!r} wasClean={event.wasClean}")

    ws.binaryType = "arraybuffer"
    ws.onopen = on_open
    ws.onmessage = on_message
    ws.onerror = on_error
    ws.onclose = on_close


def _open(url: str, protocols: Sequence[str], agent: UserAgent) -> WebSocket:
    ws = WebSocket(url, list(protocols), agent=agent)
    print(f"connecting to {ws.url}")
    _watch(ws)
    return ws


async def demo(protocols: Sequence[str]) -> int:
    """Round trip against the embedded echo server."""
    async with await start_echo_server() as server:
        print(f"embedded echo server listening on {server.url}")
        # The echo server is local: no proxy from the environment applies to it.
        ws = _open(server.url, protocols, UserAgent(proxy=None))
        received: list[object] = []
        ws.addEventListener("message", lambda event: received.append(event.data))
        try:
            await ws.opened
        except WebSocketError:
            await ws.closed
            return 1
        for message in DEMO_MESSAGES:
            ws.send(message)
        while len(received) < len(DEMO_MESSAGES) and ws.readyState == WebSocket.OPEN:
            await asyncio.sleep(0.01)
        ws.close(1000, "done")
        await ws.closed
        return 0 if len(received) == len(DEMO_MESSAGES) else 1


async def lines(url: str, protocols: Sequence[str]) -> int:
    """Send each line of standard input; print what arrives."""
    ws = _open(url, protocols, UserAgent())
    try:
        await ws.opened
    except WebSocketError:
        await ws.closed
        return 1
    loop = asyncio.get_running_loop()
    while ws.readyState == WebSocket.OPEN:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        if ws.readyState == WebSocket.OPEN:
            ws.send(line.rstrip("\n"))
    if ws.readyState == WebSocket.OPEN:
        await ws.drained()
        await asyncio.sleep(0.5)  # Let replies to the last lines arrive.
        ws.close(1000)
    await ws.closed
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wsapi", description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", help="ws:// or wss:// URL (none: embedded echo server)")
    parser.add_argument("-p", "--protocol", action="append", default=[], help="subprotocol")
    args = parser.parse_args(argv)
    try:
        if args.url is None:
            return asyncio.run(demo(args.protocol))
        return asyncio.run(lines(args.url, args.protocol))
    except DOMException as exc:
        parser.error(f"{exc.name}: {exc.message}")
    except KeyboardInterrupt:
        return 130
