"""The Python half of the parity harness: runs a scenario's steps with wsapi, as runner.js
runs them in the page, and returns the same log. Keep the two step for step alike."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from wsapi import Blob, DOMException, Event, UserAgent, WebSocket
from wsapi.events import AddEventListenerOptions, CloseEvent, MessageEvent

from .data import describe_bytes, describe_text, make_data

Entry = dict[str, Any]

WAIT_TIMEOUT = 5.0
DRAIN_POLL = 0.005
SETTLE = 0.05
"""After the close event, how long stray events are still logged (as in runner.js)."""
EVENT_TYPES = ("open", "message", "error", "close")


class _HandleEventObject:
    """A listener object with ``handleEvent``, the other kind the DOM accepts."""

    def __init__(self, function: Callable[[Event], None]) -> None:
        self.function = function

    def handleEvent(self, event: Event) -> None:
        self.function(event)


class _Listener:
    def __init__(self, step: dict[str, Any], function: Callable[[Event], None]) -> None:
        self.step = step
        self.function = function
        self.target: Any = _HandleEventObject(function) if step["how"] == "object" else function


class Run:
    """One run of a scenario's program."""

    def __init__(self, program: dict[str, Any], host: str, agent: UserAgent) -> None:
        self.program = program
        self.host = host
        self.agent = agent
        self.log: list[Entry] = []
        self.blobs: list[tuple[dict[str, Any], Blob]] = []
        self.counts = dict.fromkeys(EVENT_TYPES, 0)
        self.waiters: list[tuple[str, int, asyncio.Future[None]]] = []
        self.listeners: dict[str, _Listener] = {}
        self.ws: WebSocket | None = None

    async def run(self) -> list[Entry]:
        for step in self.program["steps"]:
            op = step["op"]
            if op == "construct":
                self.construct(step)
            elif self.ws is None:
                break
            elif op == "wait":
                if not await self.until(step["event"], step["count"], WAIT_TIMEOUT):
                    self.log.append({"step": "wait", "event": step["event"], "timeout": True})
            elif op == "sleep":
                await asyncio.sleep(step["ms"] / 1000)
            elif op == "drain":
                await self.drain()
            else:
                self.do_step(step, None)
        if self.ws is not None:
            if not await self.until("close", 1, self.program["end_timeout_ms"] / 1000):
                # Still not closed: log it, then close it as a script would.
                self.log.append({"step": "end", "timeout": True, "readyState": self.ws.readyState})
                self.ws.close()
                await self.until("close", 1, WAIT_TIMEOUT)
            await asyncio.sleep(SETTLE)
        for into, blob in self.blobs:
            describe_bytes(into, await blob.arrayBuffer())
        return self.log

    async def finish(self) -> None:
        """Close what the scenario left open (after its log was taken), as leaving a page
        does, and wait for the close event."""
        ws = self.ws
        if ws is None or ws.readyState == WebSocket.CLOSED:
            return
        ws.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(ws.closed), 15.0)

    async def drain(self) -> None:
        ws = self.ws
        assert ws is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_TIMEOUT
        while ws.bufferedAmount > 0 and loop.time() < deadline:
            await asyncio.sleep(DRAIN_POLL)
        if ws.bufferedAmount > 0:
            self.log.append({"step": "drain", "timeout": True})

    def state(self, **entry: Any) -> Entry:
        ws = self.ws
        assert ws is not None
        entry.update(
            readyState=ws.readyState,
            bufferedAmount=ws.bufferedAmount,
            protocol=ws.protocol,
            extensions=ws.extensions,
        )
        return entry

    def event_entry(self, name: str, event: Event) -> Entry:
        entry = self.state(event=event.type, listener=name)
        if isinstance(event, MessageEvent):
            data = event.data
            if isinstance(data, str):
                entry["data"] = describe_text(data)
            elif isinstance(data, bytes):
                entry["data"] = describe_bytes({"kind": "arraybuffer"}, data)
            elif isinstance(data, Blob):
                into: dict[str, Any] = {"kind": "blob", "size": data.size, "type": data.type}
                entry["data"] = into
                self.blobs.append((into, data))
            else:
                entry["data"] = {"kind": type(data).__name__}
            entry["origin"] = event.origin
            entry["lastEventId"] = event.lastEventId
        elif isinstance(event, CloseEvent):
            entry.update(code=event.code, reason=event.reason, wasClean=event.wasClean)
        return entry

    def count(self, event: Event) -> None:
        self.counts[event.type] += 1
        for waiter in list(self.waiters):
            kind, number, future = waiter
            if kind == event.type and self.counts[kind] >= number:
                self.waiters.remove(waiter)
                # The waiting coroutine resumes after this dispatch, as a later callback.
                if not future.done():
                    future.set_result(None)

    async def until(self, kind: str, number: int, timeout: float) -> bool:
        if self.counts[kind] >= number:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (kind, number, future)
        self.waiters.append(waiter)
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            if waiter in self.waiters:
                self.waiters.remove(waiter)
            return False
        return True

    def listen(self, step: dict[str, Any]) -> None:
        ws = self.ws
        assert ws is not None
        calls = 0

        def function(event: Event) -> None:
            nonlocal calls
            calls += 1
            self.log.append(self.event_entry(step["name"], event))
            if step.get("at") is None or step["at"] == calls:
                for inner in step["do"]:
                    self.do_step(inner, event)

        listener = _Listener(step, function)
        self.listeners[step["name"]] = listener
        if step["how"] == "on":
            setattr(ws, "on" + step["type"], function)
        else:
            options: AddEventListenerOptions | None = {"once": True} if step.get("once") else None
            ws.addEventListener(step["type"], listener.target, options)

    def do_step(self, step: dict[str, Any], event: Event | None) -> None:
        """The steps a script may run anywhere, inside a listener too."""
        ws = self.ws
        assert ws is not None
        op = step["op"]
        try:
            if op == "send":
                ws.send(make_data(step["data"]))
            elif op == "close":
                ws.close(step.get("code"), step.get("reason"))
            elif op == "binaryType":
                ws.binaryType = step["value"]
            elif op == "check":
                self.log.append(
                    self.state(
                        step="check", label=step["label"], binaryType=ws.binaryType, url=ws.url
                    )
                )
            elif op == "listen":
                self.listen(step)
            elif op == "unlisten":
                listener = self.listeners[step["name"]]
                if listener.step["how"] == "on":
                    setattr(ws, "on" + listener.step["type"], None)
                else:
                    ws.removeEventListener(listener.step["type"], listener.target)
            elif op == "handler":
                name = step["name"]
                value = None if name is None else self.listeners[name].function
                setattr(ws, "on" + step["type"], value)
            elif op == "stop":
                assert event is not None
                event.stopImmediatePropagation()
            else:
                raise ValueError(f"unknown step {op!r}")
        except DOMException as error:
            self.log.append({"step": op, "exception": error.name})
        except TypeError:
            self.log.append({"step": op, "exception": "TypeError"})

    def construct(self, step: dict[str, Any]) -> None:
        url = step["url"].replace("{host}", self.host)
        try:
            if "protocols" in step:
                self.ws = WebSocket(url, step["protocols"], agent=self.agent)
            else:
                self.ws = WebSocket(url, agent=self.agent)
        except DOMException as error:
            self.log.append({"step": "construct", "exception": error.name})
            return
        for kind in EVENT_TYPES:
            self.ws.addEventListener(kind, self.count)
        self.log.append(
            self.state(step="construct", binaryType=self.ws.binaryType, url=self.ws.url)
        )
        if step["log"]:
            for kind in EVENT_TYPES:
                self.listen({"type": kind, "how": "add", "name": "log", "do": []})
