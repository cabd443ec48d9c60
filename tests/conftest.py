"""Test settings: async tests run on a fresh event loop in debug mode, under a timeout, and
fail if they leave a task pending. WSAPI_TEST_LOOP=uvloop runs them on uvloop instead of the
default loop. A call of an event loop's exception handler (an error in a callback, a listener,
a transport) fails the test it happens in, unless the test captures it
(support.capture_reports)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import traceback
from collections.abc import Callable, Coroutine, Generator
from typing import Any

import pytest

from support import TIMEOUT

REPORTS: list[dict[str, Any]] = []
"""What event loops reported to their exception handler during the running test."""

SERVER_ERRORS: list[logging.LogRecord] = []
"""What the ``websockets`` servers of the running test logged as errors (a connection
handler that raised, above all): they fail it, unless it is marked ``server_errors``."""


class _RecordServerErrors(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        SERVER_ERRORS.append(record)


logging.getLogger("websockets.server").addHandler(_RecordServerErrors(logging.ERROR))

_DEFAULT_EXCEPTION_HANDLER = asyncio.BaseEventLoop.default_exception_handler


def _record(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An exception handler that records the report for the test, then logs it as usual."""
    REPORTS.append(context)
    if isinstance(loop, asyncio.BaseEventLoop):
        _DEFAULT_EXCEPTION_HANDLER(loop, context)
    else:
        loop.default_exception_handler(context)


# Loops a test makes itself (asyncio.run(), new_event_loop()) report through their default
# handler: record those too.
asyncio.BaseEventLoop.default_exception_handler = _record  # type: ignore[method-assign,assignment]


def _describe(context: dict[str, Any]) -> str:
    lines = [str(context.get("message", "(no message)"))]
    lines += [
        f"  {key}: {value!r}"
        for key, value in context.items()
        if key != "message" and not key.endswith("traceback")
    ]
    exc = context.get("exception")
    if isinstance(exc, BaseException):
        lines += ["".join(traceback.format_exception(type(exc), exc, exc.__traceback__))]
    return "\n".join(lines)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Fail a test during which an event loop's exception handler was called, showing what
    it was given; a test that expects a report captures it (support.capture_reports)."""
    REPORTS.clear()
    SERVER_ERRORS.clear()
    yield
    if item.get_closest_marker("server_errors") is not None:
        SERVER_ERRORS.clear()
    if SERVER_ERRORS:
        errors = "\n".join(
            record.getMessage() + (f": {record.exc_info[1]!r}" if record.exc_info else "")
            for record in SERVER_ERRORS
        )
        SERVER_ERRORS.clear()
        pytest.fail(f"a websockets server of the test logged errors:\n{errors}", pytrace=False)
    if REPORTS:
        count = len(REPORTS)
        reports = "\n\n".join(_describe(context) for context in REPORTS)
        REPORTS.clear()
        pytest.fail(
            f"the event loop's exception handler was called {count} time(s) "
            f"(capture expected reports with support.capture_reports):\n{reports}",
            pytrace=False,
        )


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in names}

    # A test marked slow(seconds) gets that many more seconds (a fixed delay of a peer's).
    slow = pyfuncitem.get_closest_marker("slow")
    limit = 30 * TIMEOUT + (slow.args[0] if slow is not None else 0)

    async def run() -> None:
        await asyncio.wait_for(pyfuncitem.obj(**kwargs), limit)
        # Let callbacks already scheduled run, then no task may be left behind.
        for _ in range(3):
            await asyncio.sleep(0)
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        assert not pending, f"tasks left pending: {pending}"

    run_on_test_loop(run())
    return True


def run_on_test_loop(coroutine: Coroutine[Any, Any, None]) -> None:
    """asyncio.run() in debug mode, on the loop WSAPI_TEST_LOOP names (asyncio.Runner's
    loop_factory needs Python 3.11; this works on 3.10 too)."""
    loop = LOOP_FACTORY() if LOOP_FACTORY is not None else asyncio.new_event_loop()
    loop.set_debug(True)
    loop.set_exception_handler(_record)
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(coroutine)
    finally:
        try:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    name = os.environ.get("WSAPI_TEST_LOOP", "asyncio")
    if name == "uvloop":
        import uvloop  # noqa: PLC0415 (only when asked for)

        return uvloop.new_event_loop
    if name != "asyncio":
        raise ValueError(f"WSAPI_TEST_LOOP is asyncio or uvloop, not {name!r}")
    return None


LOOP_FACTORY = _loop_factory()
