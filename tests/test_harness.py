"""The test harness itself can fail a test: what a raw server's handler raises, a handler
left running, and a report to the event loop's exception handler (tests/conftest.py)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Awaitable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from support import TIMEOUT, RawHandler, capture_reports, connect, raw_server, read_request

HERE = Path(__file__).parent


async def visit(
    handler: RawHandler,
    *,
    leave_at: Awaitable[object],
    cut_off: bool = False,
    leave_after: bool = False,
) -> None:
    """Run ``raw_server(handler)`` for one plain TCP client that stays until ``leave_at``
    is done, and closes its connection then, or (``leave_after``) once the server is gone."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with raw_server(handler, cut_off=cut_off) as url:
            port = urlsplit(url).port
            assert port is not None
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.wait_for(leave_at, 10 * TIMEOUT)
            if not leave_after:
                writer.close()
                await writer.wait_closed()
    finally:
        if writer is not None and leave_after:
            writer.close()
            await writer.wait_closed()


async def test_an_assertion_in_a_raw_server_handler_fails_the_test() -> None:
    """An assertion that fails inside a raw server's handler is raised when the server
    exits, even though the client saw only a closed connection."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        assert b"x-not-sent" in request.lower(), "the handler's own check"

    async def run() -> None:
        async with raw_server(handler) as url:
            _, recorder = await connect(url)
            await asyncio.wait_for(recorder.closed, 10 * TIMEOUT)

    with pytest.raises(AssertionError, match="the handler's own check"):
        await run()


async def test_a_read_past_the_end_in_a_raw_server_handler_fails_the_test() -> None:
    """A handler that expects more than the client sent fails the test with the read's
    error, instead of the error being taken for the client leaving."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(1)

    with pytest.raises(asyncio.IncompleteReadError):
        await visit(handler, leave_at=asyncio.sleep(0))


async def test_a_raw_server_handler_left_running_fails_the_test() -> None:
    """A handler still running after the test's grace time fails it, naming cut_off."""
    started = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        started.set()
        await asyncio.sleep(60)

    with pytest.raises(AssertionError, match="cut_off=True"):
        await visit(handler, leave_at=started.wait(), leave_after=True)


async def test_a_cut_off_handler_is_cancelled_but_its_earlier_failure_is_raised() -> None:
    """cut_off=True cancels a handler still running at exit without failing the test, but
    what a handler raised before still fails it."""
    cancelled: list[bool] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    await visit(silent, leave_at=asyncio.sleep(0.05), cut_off=True, leave_after=True)
    assert cancelled == [True]

    async def failing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise ValueError("failed before the test ended")

    with pytest.raises(ValueError, match="failed before the test ended"):
        await visit(failing, leave_at=asyncio.sleep(0.05), cut_off=True)


async def test_capture_reports_takes_the_report() -> None:
    """A test that expects a report captures it, and then does not fail for it."""
    reports = capture_reports()
    asyncio.get_running_loop().call_soon(lambda: 1 / 0)
    await asyncio.sleep(0)
    assert [type(context["exception"]) for context in reports] == [ZeroDivisionError]


INNER_TESTS = """
import asyncio


async def test_a_failing_callback() -> None:
    asyncio.get_running_loop().call_soon(lambda: 1 / 0)
    await asyncio.sleep(0)


def test_a_failing_callback_on_a_loop_of_its_own() -> None:
    async def main() -> None:
        asyncio.get_running_loop().call_soon(lambda: {}["missing key"])
        await asyncio.sleep(0)

    asyncio.run(main())


async def test_quiet() -> None:
    await asyncio.sleep(0)
"""


def test_a_report_to_the_loops_exception_handler_fails_the_test(tmp_path: Path) -> None:
    """A callback that raises (on the test's loop, or on a loop the test runs itself) fails
    its test, and the failure shows the report; a test without a report passes."""
    for name in ("conftest.py", "support.py"):
        shutil.copy(HERE / name, tmp_path / name)
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TESTS))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", tmp_path],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60 * TIMEOUT,
        check=False,
    )
    output = result.stdout + result.stderr
    assert "2 failed, 1 passed" in output, output
    assert "exception handler was called 1 time(s)" in output, output
    assert "ZeroDivisionError" in output, output
    assert "'missing key'" in output, output
