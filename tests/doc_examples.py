"""The Python examples of README.md and docs/**/*.md (the documentation site) run as tests,
with Sybil (the root conftest.py imports the hooks and the fixture from here).

The examples connect to ``ws://127.0.0.1:8765/``, where ``wsapi --serve 8765`` runs the
embedded echo server for a reader. Here one echo server runs on a free port for the whole
session, and each example's copy of that address is replaced by the server's before it runs.

A code block runs as a program (its ``asyncio.run()`` makes its own loop). A block of
``>>>`` lines is a session of ``python -m asyncio``, the REPL with a running event loop: its
lines run, one after the other, inside a loop kept for the document. Either fails its test
when it raises, when the output of a ``>>>`` line differs from the one shown, or when the
event loop reports an error (a listener that raised, say): that goes to the ``asyncio``
logger, not to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sybil import Example, Sybil
from sybil.evaluators.doctest import DocTestEvaluator
from sybil.evaluators.python import pad
from sybil.integration.pytest import SybilItem
from sybil.parsers.abstract.doctest import DocTestStringParser
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser

ROOT = Path(__file__).resolve().parent.parent
"""The repository's root, where README.md and docs/ are."""

EXAMPLE_TIMEOUT = 60
"""Seconds one example may take (they take well under one)."""

EXAMPLE_ADDRESS = "127.0.0.1:8765"
"""The echo server's address as the examples write it (in ws: and http: URLs)."""


@pytest.fixture(scope="session")
def example_echo_url() -> Iterator[str]:
    """The URL of an embedded echo server running in a thread of its own for the session."""
    from wsapi.echo import EchoServer, start_echo_server  # noqa: PLC0415

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="docs echo server", daemon=True)
    thread.start()
    server: EchoServer = asyncio.run_coroutine_threadsafe(start_echo_server(), loop).result(60)
    try:
        yield server.url
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


class _LoopErrors(logging.Handler):
    """Collects what the example's event loop reports to its exception handler, and stops
    that loop: an example whose listener raised would often wait forever for an event."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []
        self._thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if threading.get_ident() != self._thread:
            return  # the echo server's loop
        self.messages.append(self.format(record))
        with contextlib.suppress(RuntimeError):  # reported outside a running loop
            asyncio.get_running_loop().stop()


@contextmanager
def _no_loop_errors() -> Iterator[None]:
    handler = _LoopErrors()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        if handler.messages:  # also when the example raised: this is the first cause
            raise AssertionError("the event loop reported:\n" + "\n".join(handler.messages))


EXAMPLE_UNKNOWN_HOST = "no-such-host.invalid"
"""The name the examples use for a host that does not resolve (RFC 6761's ``.invalid``)."""

UNKNOWN_HOST = ".".join(["a" * 63] * 4) + ".invalid"
"""What the tests resolve instead: over DNS's 255 octets, so the resolver fails it without
asking a name server, and no packet leaves the machine."""


def _local(source: str, example: Example) -> str:
    """The example's source, with the echo server's real address and an unknown host that
    is never sent to a name server."""
    address = example.namespace["example_echo_url"].removeprefix("ws://").rstrip("/")
    return source.replace(EXAMPLE_ADDRESS, address).replace(EXAMPLE_UNKNOWN_HOST, UNKNOWN_HOST)


def _run_program(example: Example) -> str | None:
    """A code block: run it as a program, in the document's namespace."""
    # Padded so that a traceback's line numbers are the document's.
    source = pad(_local(example.parsed, example), example.line + example.parsed.line_offset)
    try:
        code = compile(source, example.path, "exec", dont_inherit=True)
        with _no_loop_errors():
            exec(code, example.namespace)
    except Exception:
        # A returned text is Sybil's way to fail an example; its pytest plugin cannot show
        # every chain of exceptions itself.
        return traceback.format_exc()
    return None


class _AsyncioDocTest(DocTestEvaluator):
    """A ``>>>`` line, run inside the document's event loop as in ``python -m asyncio``."""

    def __call__(self, example: Example) -> str:
        loop = example.namespace.get("__loop__")
        if loop is None:
            loop = example.namespace["__loop__"] = asyncio.new_event_loop()
        example.parsed.source = _local(example.parsed.source, example)
        try:
            with _no_loop_errors():
                return loop.run_until_complete(self._in_loop(example))
        except Exception:
            return traceback.format_exc()

    async def _in_loop(self, example: Example) -> str:
        return super().__call__(example)


class _DocsParser(PythonCodeBlockParser):
    """Python code blocks and ``>>>`` sessions, run against the local echo server."""

    def __init__(self) -> None:
        super().__init__()
        self.codeblock_parser = CodeBlockParser("python", _run_program)
        self.doctest_parser = DocTestStringParser(_AsyncioDocTest())


def _close_loop(namespace: dict[str, Any]) -> None:
    """After a document's ``>>>`` sessions: close what they left open, as asyncio.run would."""
    loop = namespace.pop("__loop__", None)
    if loop is not None:
        with _no_loop_errors():
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Examples get a timeout of their own: one that waits for an event that never comes
    fails in a minute, not in the suite's five."""
    for item in items:
        if isinstance(item, SybilItem):
            item.add_marker(pytest.mark.timeout(EXAMPLE_TIMEOUT))


_sybil_traceback_filter = SybilItem._traceback_filter


def _traceback_filter(self: SybilItem, excinfo: Any) -> Any:
    """Sybil's filter, which fails on an exception chained to one raised outside the example
    (pytest's report of an unraisable exception, say): then the whole traceback is shown."""
    try:
        return _sybil_traceback_filter(self, excinfo)
    except IndexError:
        return excinfo.traceback


SybilItem._traceback_filter = _traceback_filter  # type: ignore[method-assign]

pytest_collect_file = Sybil(
    parsers=[_DocsParser()],
    path=str(ROOT),
    patterns=["README.md", "docs/*.md", "docs/**/*.md"],
    fixtures=["example_echo_url"],
    teardown=_close_loop,
).pytest()
