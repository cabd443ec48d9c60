"""The documentation site, checked in a real browser: ``mkdocs build --strict`` builds it
into site/, a server on 127.0.0.1 serves it, and headless Chromium (the parity tests' one,
tests/parity/chromium.py) opens every page: each must load with no console error, the
search must find "bufferedAmount", and screenshots of the home page and of the performance
chart are kept under site/screenshots/ (CI's artifacts).

Without MkDocs (the ``docs`` extra) or Chromium these tests skip, loudly; with CI=true they
fail instead (CI installs both). Also here: the engine's state table, which
scripts/draw_states.py draws for docs/architecture.md, still names exactly its states.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import http.server
import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from parity.chromium import Chromium, ChromiumUnavailable, DevTools, devtools, find_chromium
from support import WAIT
from wsapi.protocol.engine import State

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
"""Where ``mkdocs build`` writes the site (mkdocs.yml's site_dir)."""
SCREENSHOTS = SITE / "screenshots"
BUILD_TIMEOUT = 300
"""Seconds the strict build may take (it takes a few)."""
SEARCH_TERM = "bufferedAmount"


def _unavailable(reason: str) -> None:
    """Skip, loudly; under CI=true, fail: CI must check the site."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true: the documentation site must be checked", False)
    pytest.skip(f"DOCUMENTATION SITE NOT CHECKED: {reason}")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Site:
    url: str
    pages: list[str]
    """Every page's path under the site, as served (``guides/receiving.html``, ...)."""


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    """The site built strictly into site/ and served from a thread on 127.0.0.1."""
    if importlib.util.find_spec("mkdocs") is None:
        _unavailable("no MkDocs: pip install -e '.[docs]'")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(SITE)],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stderr}"
    pages = sorted(
        str(path.relative_to(SITE))
        for path in SITE.rglob("*.html")
        if path.name != "404.html" and SCREENSHOTS not in path.parents
    )
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="docs site server", daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_address[1]}/", pages)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    """One headless Chromium for the module's tests."""
    executable = find_chromium()
    if executable is None:
        _unavailable("no Chromium: run scripts/install-chromium.sh, or name it in WSAPI_CHROMIUM")
    assert executable is not None
    browser = Chromium(executable)
    try:
        browser.start()
    except ChromiumUnavailable as exc:
        browser.stop()
        _unavailable(f"Chromium did not start: {exc}")
    try:
        yield browser
    finally:
        browser.stop()


def _errors(events: list[dict[str, Any]], session: str) -> list[str]:
    """The console errors, exceptions and failed loads Chromium reported for the tab."""
    errors = []
    for message in events:
        if message.get("sessionId") != session:
            continue
        params = message.get("params", {})
        method = message.get("method")
        if method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            errors.append(f"{entry.get('text')} ({entry.get('url', '')})")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            errors.append("console.error: " + json.dumps(params["args"])[:500])
        elif method == "Runtime.exceptionThrown":
            errors.append(f"exception: {params['exceptionDetails'].get('text')}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            errors.append(f"load failed: {params.get('errorText')}")
    return errors


@contextlib.asynccontextmanager
async def _tab(tools: DevTools) -> Any:
    """A new tab with its Page, Runtime, Log and Network events on; closed after."""
    target = (await tools.call("Target.createTarget", {"url": "about:blank"}))["targetId"]
    try:
        attached = await tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            await tools.call(f"{domain}.enable", session=session)
        yield session
    finally:
        await tools.call("Target.closeTarget", {"targetId": target})


async def _open(tools: DevTools, session: str, url: str) -> None:
    """Navigate the tab and wait for this navigation's load event."""
    seen = len(tools.events)
    await tools.call("Page.navigate", {"url": url}, session)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not any(
        message.get("method") == "Page.loadEventFired" and message.get("sessionId") == session
        for message in tools.events[seen:]
    ):
        assert loop.time() < deadline, f"{url} did not load within {WAIT} s"
        tools.event_arrived.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(tools.event_arrived.wait(), 0.5)


async def _evaluate(tools: DevTools, session: str, expression: str) -> Any:
    reply = await tools.call(
        "Runtime.evaluate",
        {"expression": expression, "awaitPromise": True, "returnByValue": True},
        session,
    )
    assert "exceptionDetails" not in reply, reply["exceptionDetails"]
    return reply["result"].get("value")


async def _wait_for(tools: DevTools, session: str, condition: str) -> Any:
    """Poll a JavaScript expression in the page until it is truthy (or WAIT passes)."""
    expression = f"""new Promise((resolve) => {{
        const deadline = Date.now() + {int(WAIT * 1000)};
        const poll = () => {{
            const value = ({condition});
            if (value || Date.now() > deadline) resolve(value || null); else setTimeout(poll, 50);
        }};
        poll();
    }})"""
    return await _evaluate(tools, session, expression)


async def _screenshot(tools: DevTools, session: str, name: str, selector: str | None) -> Path:
    """A PNG of the page's viewport, or of one element, under site/screenshots/."""
    params: dict[str, Any] = {"format": "png"}
    if selector is not None:
        box = await _wait_for(
            tools,
            session,
            f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
                if (!e || !e.complete || !e.naturalWidth) return null;
                e.scrollIntoView({{block: "center"}}); const r = e.getBoundingClientRect();
                return {{x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}};
            }})()""",
        )
        assert box, f"no loaded {selector} on the page"
        params["clip"] = {**box, "scale": 1}
        params["captureBeyondViewport"] = True
    shot = await tools.call("Page.captureScreenshot", params, session)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


async def test_every_page_loads_without_console_errors(site: Site, chromium: Chromium) -> None:
    """Every page of the built site loads in Chromium with no console error, exception or
    failed load (a missing image, a script from a network that is not there)."""
    assert "index.html" in site.pages
    assert "reference.html" in site.pages
    problems = {}
    async with devtools(chromium) as tools, _tab(tools) as session:
        for page in site.pages:
            seen = len(tools.events)
            await _open(tools, session, site.url + page)
            # Let the page's scripts run (the search index loads in a worker).
            await _wait_for(tools, session, "document.readyState === 'complete'")
            errors = _errors(tools.events[seen:], session)
            if errors:
                problems[page] = errors
    assert not problems, f"console errors: {json.dumps(problems, indent=1)}"


async def test_search_finds_buffered_amount(site: Site, chromium: Chromium) -> None:
    """The site's search (Material's, in the page) finds "bufferedAmount"."""
    async with devtools(chromium) as tools, _tab(tools) as session:
        await _open(tools, session, f"{site.url}index.html?q={SEARCH_TERM}")
        found = await _wait_for(
            tools,
            session,
            """(() => {
                const found = [...document.querySelectorAll('.md-search-result__item')]
                    .map((item) => item.textContent);
                return found.length ? found : null;
            })()""",
        )
        assert found, "the search found nothing for " + SEARCH_TERM
        assert any(SEARCH_TERM.lower() in text.lower() for text in found), found


async def test_screenshots_of_home_and_performance_chart(site: Site, chromium: Chromium) -> None:
    """Screenshots of the home page and of the performance chart are PNGs under
    site/screenshots/."""
    async with devtools(chromium) as tools, _tab(tools) as session:
        await tools.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        await _open(tools, session, site.url + "index.html")
        home = await _screenshot(tools, session, "home.png", None)
        await _open(tools, session, site.url + "performance.html")
        chart = await _screenshot(
            tools, session, "performance-chart.png", "img[src$='performance-ratios.png']"
        )
    for path in (home, chart):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
        assert path.stat().st_size > 5000, f"{path} is nearly empty"


def test_state_table_names_the_engine_states() -> None:
    """The engine's table of transitions, which docs/architecture.md's picture is drawn from,
    names exactly the engine's states and reaches each of them."""
    spec = importlib.util.spec_from_file_location("draw_states", ROOT / "scripts/draw_states.py")
    assert spec is not None
    assert spec.loader is not None
    draw_states = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(draw_states)
    engine = ROOT / "src" / "wsapi" / "protocol" / "engine.py"
    edges = draw_states.transitions(engine.read_text())
    assert tuple(draw_states.STATES) == tuple(state.name for state in State)
    named = {start for start, _, _ in edges} | {end for _, _, end in edges}
    assert named == set(draw_states.STATES)
    assert ("CONNECTING", "101 and valid response", "OPEN") in edges
