"""Test settings: async tests run on a fresh event loop in debug mode, under a timeout, and
fail if they leave a task pending."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from support import TIMEOUT


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in names}

    async def run() -> None:
        await asyncio.wait_for(pyfuncitem.obj(**kwargs), 30 * TIMEOUT)
        # Let callbacks already scheduled run, then no task may be left behind.
        for _ in range(3):
            await asyncio.sleep(0)
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        assert not pending, f"tasks left pending: {pending}"

    asyncio.run(run(), debug=True)
    return True
