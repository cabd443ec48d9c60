"""The ``wsapi`` command: a first, line-based client (the full interactive client is the
command-line issue's work).

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
from .protocol.engine import State
from .protocol.events import CloseReceived, Opened
from .transport import ConnectionFailure, WebSocketTransport, establish_a_websocket_connection
from .url import parse_websocket_url

DEMO_MESSAGES: tuple[str | bytes, ...] = ("Hello from wsapi", b"\x00\x01\x02 binary")


class Printer:
    """Prints the connection's events as a browser's event log would show them."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[bool] = loop.create_future()
        self.closed: asyncio.Future[int] = loop.create_future()
        self.received = 0

    def on_open(self, event: Opened) -> None:
        print(f"open     protocol={event.protocol!r} extensions={event.extensions!r}")
        self.opened.set_result(True)

    def on_message(self, data: str | bytes) -> None:
        self.received += 1
        if isinstance(data, str):
            print(f"message  text ({len(data)} chars): {data}")
        else:
            print(f"message  binary ({len(data)} bytes): {data.hex(' ')}")

    def on_close_frame(self, event: CloseReceived) -> None:
        print(f"closing  code={event.code} reason={event.reason!r}")

    def on_failure(self, event: ConnectionFailure) -> None:
        print(f"error    {event.reason}")
        if not self.opened.done():
            self.opened.set_result(False)

    def on_drained(self) -> None:
        pass

    def on_closed(self, was_clean: bool, code: int, reason: str) -> None:
        print(f"close    code={code} reason={reason!r} wasClean={was_clean}")
        if not self.opened.done():
            self.opened.set_result(False)
        self.closed.set_result(code)


def _send(transport: WebSocketTransport, message: str | bytes) -> None:
    size = len(message.encode()) if isinstance(message, str) else len(message)
    transport.send_message(message, size)


async def _connect(
    url: str, protocols: Sequence[str]
) -> tuple[WebSocketTransport | None, Printer]:
    parsed = parse_websocket_url(url)
    printer = Printer()
    print(f"connecting to {parsed.href}")
    transport = await establish_a_websocket_connection(
        UserAgent(), parsed, printer, protocols=protocols
    )
    return transport, printer


async def demo(protocols: Sequence[str]) -> int:
    """Round trip against the embedded echo server."""
    async with await start_echo_server() as server:
        print(f"embedded echo server listening on {server.url}")
        transport, printer = await _connect(server.url, protocols)
        if transport is None or not await printer.opened:
            return 1
        for message in DEMO_MESSAGES:
            _send(transport, message)
        while printer.received < len(DEMO_MESSAGES) and not printer.closed.done():
            await asyncio.sleep(0.01)
        transport.close(1000, "done")
        await printer.closed
        return 0 if printer.received == len(DEMO_MESSAGES) else 1


async def lines(url: str, protocols: Sequence[str]) -> int:
    """Send each line of standard input; print what arrives."""
    transport, printer = await _connect(url, protocols)
    if transport is None or not await printer.opened:
        return 1
    loop = asyncio.get_running_loop()
    while not printer.closed.done():
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        if transport.engine.state is State.OPEN:
            _send(transport, line.rstrip("\n"))
    if transport.engine.state is State.OPEN:
        await asyncio.sleep(0.5)  # Let replies to the last lines arrive.
        transport.close(1000, "")
    await printer.closed
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
    except ValueError as exc:
        parser.error(str(exc))
    except KeyboardInterrupt:
        return 130
