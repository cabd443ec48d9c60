"""Browser parity: each scenario of tests/parity/scenarios.py runs in headless Chromium and in
wsapi (``UserAgent(standard="whatwg")``) against the same peer; the two logs (what the script
saw, what the peer received) must be equal, but for the scenario's declared differences,
each of which must really occur. See docs/parity.md.

Without Chromium these tests fail, unless WSAPI_SKIP_BROWSER=1 (then they are skipped, loudly);
with CI=true they fail all the same.
WSAPI_PARITY_DUMP=DIR writes both logs of every scenario to DIR/NAME.json.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parity import compare
from parity.chromium import Chromium, ChromiumUnavailable, find_chromium, run_in_page
from parity.peers import running
from parity.scenario import END_TIMEOUT_MS, Scenario
from parity.scenarios import GLOBAL_DIFFERENCES, KNOWN_DIFFERENCES, SCENARIOS
from parity.stream_runner import run_stream_scenario
from parity.stream_scenarios import STREAM_SCENARIOS
from parity.wsapi_runner import Run
from support import TIMEOUT
from wsapi import UserAgent

PAGE_TIMEOUT = 30 * TIMEOUT
"""The most one scenario may take in the page (they take well under a second, or the few
seconds of a deliberately slow peer)."""
QUIET_TIMEOUT = 6 * TIMEOUT
"""How long the peer may take to finish with its connections after the scenario ended."""
DOCS = Path(__file__).parent.parent / "docs" / "parity.md"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    """One headless Chromium for all the scenarios (they are all in this module), stopped
    before the other test modules run."""
    executable = find_chromium()
    reason = None
    browser: Chromium | None = None
    if executable is None:
        reason = (
            "no Chromium: run scripts/install-chromium.sh (Debian's chromium package), or "
            "name the program in WSAPI_CHROMIUM"
        )
    else:
        browser = Chromium(executable)
        try:
            browser.start()
        except ChromiumUnavailable as exc:
            browser.stop()
            browser, reason = None, f"Chromium did not start: {exc}"
    if browser is None:
        assert reason is not None
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true: the parity tests must run", False)
        if os.environ.get("WSAPI_SKIP_BROWSER") == "1":
            pytest.skip(f"BROWSER PARITY NOT TESTED (WSAPI_SKIP_BROWSER=1): {reason}")
        pytest.fail(f"{reason}; set WSAPI_SKIP_BROWSER=1 to skip the parity tests", False)
    try:
        yield browser
    finally:
        browser.stop()


def _agent(scenario: Scenario) -> UserAgent:
    if scenario.close_timeout is None:
        return UserAgent(standard="whatwg", proxy=None)
    return UserAgent(standard="whatwg", proxy=None, close_timeout=scenario.close_timeout)


def _extra_seconds(scenario: Scenario) -> float:
    """How much longer than usual the scenario may wait for its close (for a timeout of
    Chromium's)."""
    return max(0.0, (scenario.end_timeout_ms - END_TIMEOUT_MS) / 1000)


def _param(scenario: Scenario) -> Any:
    """The scenario as a pytest parameter, marked slow when it waits longer than usual."""
    extra = _extra_seconds(scenario)
    marks = [pytest.mark.slow(extra)] if extra else []
    return pytest.param(scenario, id=scenario.name, marks=marks)


@pytest.mark.parametrize("scenario", [_param(scenario) for scenario in SCENARIOS])
async def test_parity(scenario: Scenario, chromium: Chromium) -> None:
    """The scenario's logs in Chromium and in wsapi agree, but for its declared differences."""
    program = scenario.program()
    page_timeout = PAGE_TIMEOUT + _extra_seconds(scenario)
    async with running(scenario.peer) as peer:
        page = await run_in_page(chromium, program, peer.host, page_timeout)
        await peer.quiet(QUIET_TIMEOUT)
        browser_log: compare.Log = {"client": page.log, "server": peer.take_log()}

        run = Run(program, peer.host, _agent(scenario))
        try:
            client_log = await run.run()
            await peer.quiet(QUIET_TIMEOUT)
            wsapi_log: compare.Log = {"client": client_log, "server": peer.take_log()}
            failure = run.ws.failure if run.ws is not None else None
        finally:
            await run.finish()
    dump = os.environ.get("WSAPI_PARITY_DUMP")
    if dump:
        path = Path(dump) / f"{scenario.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"wsapi": wsapi_log, "chromium": browser_log}, indent=1))
    differences = (*GLOBAL_DIFFERENCES, *scenario.differences)
    found = compare.problems(wsapi_log, browser_log, differences, peer.host)
    if found:
        context = [
            f"scenario {scenario.name}: {scenario.doc}",
            "declared differences: " + ", ".join(d.id for d in differences),
            *found,
            "wsapi log:",
            *compare.lines(wsapi_log),
            "chromium log:",
            *compare.lines(browser_log),
            f"wsapi's failure reason: {failure}",
            "chromium's console:",
            *(page.console or ["(nothing)"]),
        ]
        pytest.fail("\n".join(context), False)


@pytest.mark.parametrize("scenario", [_param(scenario) for scenario in STREAM_SCENARIOS])
async def test_stream_parity(scenario: Scenario, chromium: Chromium) -> None:
    """The WebSocketStream scenario's logs in Chromium and in wsapi agree (what each step
    gave, what the peer received), but for its declared differences."""
    program = scenario.program()
    async with running(scenario.peer) as peer:
        page = await run_in_page(
            chromium, program, peer.host, PAGE_TIMEOUT, runner="runStreamScenario"
        )
        await peer.quiet(QUIET_TIMEOUT)
        browser_log: compare.Log = {"client": page.log, "server": peer.take_log()}
        client_log = await run_stream_scenario(program, peer.host, _agent(scenario))
        await peer.quiet(QUIET_TIMEOUT)
        wsapi_log: compare.Log = {"client": client_log, "server": peer.take_log()}
    differences = (*GLOBAL_DIFFERENCES, *scenario.differences)
    found = compare.problems(wsapi_log, browser_log, differences, peer.host)
    if found:
        context = [
            f"scenario {scenario.name}: {scenario.doc}",
            *found,
            "wsapi log:",
            *compare.lines(wsapi_log),
            "chromium log:",
            *compare.lines(browser_log),
            "chromium's console:",
            *(page.console or ["(nothing)"]),
        ]
        pytest.fail("\n".join(context), False)


def test_scenarios_are_enough_and_named_once() -> None:
    """There are at least 40 scenarios, each with a unique name and a one-line doc."""
    names = [scenario.name for scenario in SCENARIOS]
    assert len(names) >= 40
    assert len(set(names)) == len(names)
    assert all(scenario.doc and "\n" not in scenario.doc for scenario in SCENARIOS)


def test_known_differences_are_documented() -> None:
    """Every declared difference is in docs/parity.md under its id, with its scenarios."""
    text = DOCS.read_text()
    declared = {d.id for scenario in SCENARIOS for d in scenario.differences}
    assert declared <= {d.id for d in KNOWN_DIFFERENCES}
    for difference in KNOWN_DIFFERENCES:
        assert f"`{difference.id}`" in text, difference.id
        if difference in GLOBAL_DIFFERENCES:
            continue  # declared for every scenario
        users = [s.name for s in SCENARIOS if difference.id in {d.id for d in s.differences}]
        section = text.split(f"`{difference.id}`", 1)[1]
        section = re.split(r"\n### ", section, maxsplit=1)[0]
        for name in users:
            assert f"`{name}`" in section, (difference.id, name)


def test_scenarios_are_documented() -> None:
    """docs/parity.md gives the number of scenarios and names every one."""
    text = DOCS.read_text()
    assert f"{len(SCENARIOS)} scenarios" in text
    missing = [s.name for s in SCENARIOS if f"`{s.name}`" not in text]
    assert not missing


def test_scenarios_are_json() -> None:
    """A scenario's program survives JSON, which is how the page receives it."""
    for scenario in SCENARIOS:
        program = scenario.program()
        assert json.loads(json.dumps(program)) == program, scenario.name
