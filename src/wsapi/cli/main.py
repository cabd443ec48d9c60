"""The ``wsapi`` command: a WebSocket client for the terminal that shows what a browser script
would see, event by event (open, message, error, close), in the style of wscat and websocat.
``main`` chooses the mode, runs it on an event loop and returns the exit status.

Modes, chosen from the arguments and from what standard input is:

- interactive (standard input and output are a terminal): a line editor; each line is a text
  message, slash commands say the rest (``interactive``, ``commands``);
- pipe (standard input is not a terminal): each input line is a message, each message
  received is a line on standard output, events go to standard error (``session``);
- ``-x MESSAGE``: send these messages, then close (like pipe mode, without reading input);
- no URL: the embedded echo server on 127.0.0.1, so that everything works with no network;
  with no terminal and no input that is the demo round trip the README's first command runs;
- ``--serve``: only the echo server.

The command builds on the public API only (``WebSocket``, ``UserAgent``, the events,
``ws.failure``, ``await ws.opened`` / ``ws.closed``, ``ws.drained()``, ``wsapi.ping``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import os
import platform
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from wsapi import DOMException, WebSocket, __version__
from wsapi.protocol._build import describe

from .options import build_agent, build_parser
from .output import Layout, Output
from .session import (
    EXIT_FAILURE,
    LineReader,
    Session,
    converse,
    messages_from,
    messages_from_lines,
)

if TYPE_CHECKING:
    from wsapi.echo import EchoServer

__all__ = ["main"]

CLI_DEPENDENCIES = {"prompt_toolkit": "prompt-toolkit", "websockets": "websockets"}
"""The command line's own dependencies (the ``cli`` extra), module name to package name:
the line editor, and the library the embedded echo server runs on."""

EXIT_MISSING_DEPENDENCIES = 4
"""Exit status when the ``cli`` extra is not installed."""

DEMO_MESSAGES: tuple[str | bytes, ...] = ("Hello from wsapi", b"\x00\x01\x02 binary")


def version() -> str:
    """What ``--version`` prints: the package's version, the build in use (compiled modules
    or pure Python), the interpreter and the event loop."""
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"wsapi {__version__} ({describe()}; {python}, event loop: {_loop_name()})"


# Running.


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed (never required; WSAPI_NO_UVLOOP=1 declines it)."""
    if os.environ.get("WSAPI_NO_UVLOOP"):
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _loop_name() -> str:
    return "asyncio" if _loop_factory() is None else "uvloop"


def _run(main: Coroutine[Any, Any, int]) -> int:
    factory = _loop_factory()
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(main)
    if factory is not None:  # Python 3.10: no loop_factory; a policy does the same.
        asyncio.set_event_loop_policy(importlib.import_module("uvloop").EventLoopPolicy())
    return asyncio.run(main)


class _Signals:
    """SIGINT and SIGTERM: the first one closes cleanly (``on_first``), the second cancels
    the program, whose connections the event loop's end then drops within two seconds."""

    def __init__(self, on_first: Callable[[int], None]) -> None:
        self._on_first = on_first
        self._seen = False
        self._task = asyncio.current_task()
        self._loop = asyncio.get_running_loop()
        self.installed: list[int] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._loop.add_signal_handler(signum, self._handle, signum)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # Windows, or not the main thread: Ctrl-C is KeyboardInterrupt.
            self.installed.append(signum)

    def _handle(self, signum: int) -> None:
        if not self._seen:
            self._seen = True
            self._on_first(signum)
        elif self._task is not None:
            self._task.cancel()

    def remove(self) -> None:
        for signum in self.installed:
            self._loop.remove_signal_handler(signum)


async def _serve(host: str, port: int, output: Output) -> int:
    from wsapi.echo import start_echo_server  # noqa: PLC0415 (checked by main())

    try:
        server = await start_echo_server(host, port)
    except OSError as exc:
        output.problem(f"wsapi: cannot listen on {host}:{port}: {exc.strerror or exc}")
        return EXIT_FAILURE
    stop: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_signal(signum: int) -> None:
        if not stop.done():
            stop.set_result(signum)

    signals = _Signals(on_signal)
    async with server:
        # The URL is the result of this mode: on stdout, even with --quiet.
        print(server.url, flush=True)
        output.info("echo server running; Ctrl-C stops it")
        try:
            await stop
        finally:
            signals.remove()
    return 0


class _UsageError(Exception):
    """A value the library refused (reported by argparse, exit status 2, outside the loop)."""


async def _client(args: argparse.Namespace) -> int:
    interactive = not args.execute and sys.stdin.isatty() and sys.stdout.isatty()
    embedded = args.url is None
    reader: LineReader | None = None
    demo = False
    if not interactive and not args.execute:
        reader = LineReader()
        # No URL and no terminal: input lines are echoed; no input at all is the demo.
        demo = embedded and not sys.stdin.isatty() and not await reader.has_input()
    if args.jsonl:
        layout: Layout = "jsonl"
    elif interactive or demo:
        layout = "log"
    else:
        layout = "pipe"
    output = Output(layout, quiet=args.quiet, color=args.color, binary_format=args.binary_format)
    try:
        agent = build_agent(args, embedded=embedded)
    except (ValueError, TypeError, OSError) as exc:
        raise _UsageError(str(exc)) from None
    protocols = [name.strip() for value in args.protocol for name in value.split(",")]

    server: EchoServer | None = None
    url = args.url
    if embedded:
        from wsapi.echo import start_echo_server  # noqa: PLC0415 (checked by main())

        server = await start_echo_server()
        url = server.url
        if demo:
            output.info(
                f"wsapi {__version__}: no URL and no input: a round trip with the echo server"
            )
        output.info(f"embedded echo server listening on {server.url}")
    try:
        try:
            ws = WebSocket(url, protocols, agent=agent)
            ws.binaryType = args.binary_type
        except DOMException as exc:
            raise _UsageError(str(exc)) from None
        session = Session(ws, output, count=1 if args.once else args.count)
        signals = _Signals(session.interrupt)
        output.info(f"connecting to {ws.url}")
        try:
            if interactive:
                # Imported on demand: prompt_toolkit is for terminals only.
                from .interactive import interact  # noqa: PLC0415

                return await interact(session, binary=args.binary)
            if demo:
                source = messages_from(DEMO_MESSAGES)
            elif args.execute:
                source = messages_from(args.execute)
            else:
                assert reader is not None
                source = messages_from_lines(reader, output, binary=args.binary)
            status = await converse(
                session, source, linger=args.linger, wait=args.wait, echo=embedded
            )
            if demo and status == 0:
                output.info("next: `wsapi` in a terminal, `wsapi URL`, or `wsapi --help`")
            return status
        finally:
            signals.remove()
    finally:
        if server is not None:
            await server.close()


def _missing_dependencies() -> list[str]:
    """The packages of ``CLI_DEPENDENCIES`` that cannot be imported (looked up, not
    imported: prompt_toolkit is slow to import and only interactive sessions use it)."""
    missing = []
    for module, package in CLI_DEPENDENCIES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # an import hook refused it, or a broken module
            found = False
        if not found:
            missing.append(package)
    return missing


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: parse the arguments, run, return the exit status."""
    parser = build_parser(version())
    args = parser.parse_args(argv)
    missing = _missing_dependencies()
    if missing:
        print(
            f"wsapi: the command line needs the 'cli' extra, which is not installed "
            f"(missing: {', '.join(missing)}). Install it with: pip install 'wsapi[cli]'",
            file=sys.stderr,
        )
        return EXIT_MISSING_DEPENDENCIES
    if args.serve is not None and args.url is not None:
        parser.error("--serve runs the echo server only: give no URL")
    if args.key and not args.cert:
        parser.error("--key goes with --cert")
    try:
        if args.serve is not None:
            output = Output("pipe", quiet=args.quiet, color=args.color)
            host, port = args.serve
            return _run(_serve(host, port, output))
        return _run(_client(args))
    except _UsageError as exc:
        parser.error(str(exc))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 128 + signal.SIGINT
