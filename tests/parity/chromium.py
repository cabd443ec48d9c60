"""Headless Chromium, driven over the DevTools protocol with the ``websockets`` library's
client (an implementation independent of wsapi, so a wsapi bug cannot hide in the harness).

One Chromium process and one page server serve the whole test session; each test opens its
own DevTools connection (each async test runs on a fresh event loop), opens a new tab on the
runner page, runs the scenario there and closes the tab, which also drops whatever the
scenario left open.

Chromium is Debian's ``chromium`` package (scripts/install-chromium.sh), or the program named
by ``WSAPI_CHROMIUM``. It runs with a fresh profile in a temporary directory, headless, with
everything that would reach beyond 127.0.0.1 turned off; its DevTools port is chosen by
Chromium (``--remote-debugging-port=0``) and read from the profile's DevToolsActivePort file.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

RUNNER_JS = Path(__file__).with_name("runner.js")
START_TIMEOUT = 30.0
"""Seconds Chromium may take to write its DevToolsActivePort file (it takes well under one)."""
STOP_TIMEOUT = 5.0
FLAGS = (
    "--headless",
    "--no-sandbox",  # root on a CI machine: the sandbox needs an unprivileged user
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>wsapi parity</title>
<link rel="icon" href="data:,">
<script>
{script}
</script></head><body>wsapi parity runner</body></html>
"""


class ChromiumUnavailable(RuntimeError):
    """No Chromium to run: not installed, or it did not start."""


def find_chromium() -> str | None:
    """The Chromium program: ``WSAPI_CHROMIUM``, else the first of the usual names."""
    named = os.environ.get("WSAPI_CHROMIUM")
    if named:
        return shutil.which(named) or (named if os.access(named, os.X_OK) else None)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


class _PageHandler(http.server.BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/":
            body, status = self.page, 200
        else:
            body, status = b"not found", 404
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class PageServer:
    """The runner page on http://127.0.0.1:PORT/, from a thread (it outlives event loops)."""

    def __init__(self) -> None:
        handler = type(
            "Handler",
            (_PageHandler,),
            {"page": PAGE.replace("{script}", RUNNER_JS.read_text()).encode()},
        )
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="parity page server", daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class Chromium:
    """A headless Chromium process and the page server, for the test session."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.profile = Path(tempfile.mkdtemp(prefix="wsapi-chromium-"))
        self.output = self.profile.parent / (self.profile.name + ".log")
        self.process: subprocess.Popen[bytes] | None = None
        self.page: PageServer | None = None
        self.endpoint = ""
        self.version = ""

    def start(self) -> None:
        self.page = PageServer()
        with self.output.open("wb") as output:
            # A process group of its own: Chromium's helpers are stopped with it.
            self.process = subprocess.Popen(
                [self.executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ChromiumUnavailable(
                    f"{self.executable} exited with {self.process.returncode}:\n{self.log()}"
                )
            with contextlib.suppress(OSError):
                lines = active.read_text().split("\n")
                if len(lines) >= 2 and lines[1].startswith("/devtools/"):
                    self.endpoint = f"ws://127.0.0.1:{int(lines[0])}{lines[1].strip()}"
                    return
            time.sleep(0.05)
        raise ChromiumUnavailable(f"{self.executable} did not start in time:\n{self.log()}")

    def log(self) -> str:
        """The last lines Chromium printed."""
        try:
            return self.output.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process is not None:
            # The helpers (zygote, renderers) follow the browser out; wait for them, and
            # kill the ones that linger.
            deadline = time.monotonic() + STOP_TIMEOUT
            try:
                while time.monotonic() < deadline:
                    os.killpg(process.pid, 0)
                    time.sleep(0.05)
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.page is not None:
            self.page.stop()
            self.page = None
        shutil.rmtree(self.profile, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.output.unlink()


class CDPError(RuntimeError):
    """A DevTools command failed, or the page's script threw."""


@dataclass
class DevTools:
    """One DevTools protocol connection (flat sessions): commands by id, events kept."""

    connection: ClientConnection
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    event_arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        try:
            async for raw in self.connection:
                message = json.loads(raw)
                if "id" in message:
                    future = self.pending.pop(message["id"], None)
                    if future is not None and not future.done():
                        future.set_result(message)
                else:
                    self.events.append(message)
                    self.event_arrived.set()
        finally:
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(CDPError("the DevTools connection closed"))

    async def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        number = next(self.ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future = asyncio.get_running_loop().create_future()
        self.pending[number] = future
        await self.connection.send(json.dumps(message))
        reply = await future
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply["result"]
        return result

    async def event(self, method: str, session: str, timeout: float) -> dict[str, Any]:
        """Wait for an event of the session."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = 0
        while True:
            for message in self.events[seen:]:
                if message.get("method") == method and message.get("sessionId") == session:
                    return message
            seen = len(self.events)
            self.event_arrived.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise CDPError(f"no {method} event within {timeout} s")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.event_arrived.wait(), remaining)

    def console(self, session: str) -> list[str]:
        """What the page printed, and what Chromium logged about it (e.g. why a WebSocket
        connection failed): for the failure message."""
        said = []
        for message in self.events:
            if message.get("sessionId") != session:
                continue
            params = message.get("params", {})
            if message.get("method") == "Log.entryAdded":
                entry = params.get("entry", {})
                said.append(f"{entry.get('level')}: {entry.get('text')}")
            elif message.get("method") == "Runtime.consoleAPICalled":
                args = [str(arg.get("value", arg.get("description"))) for arg in params["args"]]
                said.append(f"console.{params.get('type')}: {' '.join(args)}")
            elif message.get("method") == "Runtime.exceptionThrown":
                said.append(f"exception: {params['exceptionDetails'].get('text')}")
        return said


@asynccontextmanager
async def devtools(chromium: Chromium) -> AsyncIterator[DevTools]:
    async with connect(
        chromium.endpoint, max_size=None, proxy=None, ping_interval=None, compression=None
    ) as connection:
        tools = DevTools(connection)
        reader = asyncio.create_task(tools.read())
        try:
            yield tools
        finally:
            await connection.close()
            await reader


@dataclass
class PageRun:
    log: list[dict[str, Any]]
    console: list[str]


async def run_in_page(
    chromium: Chromium,
    program: dict[str, Any],
    host: str,
    timeout: float,
    runner: str = "runScenario",
) -> PageRun:
    """Run a scenario's program in a new tab of the runner page; its log and console.
    ``runner``: runner.js's function, ``runStreamScenario`` for a WebSocketStream one."""
    assert chromium.page is not None
    async with devtools(chromium) as tools:
        target = (await tools.call("Target.createTarget", {"url": "about:blank"}))["targetId"]
        try:
            session = (
                await tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})
            )["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                await tools.call(f"{domain}.enable", session=session)
            await tools.call("Page.navigate", {"url": chromium.page.url}, session)
            await tools.event("Page.loadEventFired", session, timeout)
            expression = f"{runner}({json.dumps(program)}, {json.dumps(host)})"
            reply = await asyncio.wait_for(
                tools.call(
                    "Runtime.evaluate",
                    {"expression": expression, "awaitPromise": True, "returnByValue": True},
                    session,
                ),
                timeout,
            )
            if "exceptionDetails" in reply:
                details = reply["exceptionDetails"]
                thrown = details.get("exception", {}).get("description") or details.get("text")
                raise CDPError(f"the scenario threw in the page: {thrown}")
            log: list[dict[str, Any]] = reply["result"]["value"]
            return PageRun(log, tools.console(session))
        finally:
            await tools.call("Target.closeTarget", {"targetId": target})
