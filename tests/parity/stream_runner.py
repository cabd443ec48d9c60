"""The Python half of the WebSocketStream parity scenarios: ``runStreamScenario`` of
runner.js, step for step, on wsapi's ``WebSocketStream``. Keep the two alike."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from wsapi import UserAgent, WebSocketError, WebSocketStream
from wsapi.streams import ReadableStreamDefaultReader, WritableStreamDefaultWriter

from .data import describe_bytes, describe_text, make_data
from .peers import Entry

STREAM_WAIT = 5.0
"""runner.js's STREAM_WAIT_MS, in seconds."""


def stream_error(error: BaseException) -> Entry:
    """How runner.js logs a rejection."""
    if isinstance(error, WebSocketError):
        return {"error": error.name, "closeCode": error.closeCode, "reason": error.reason}
    if isinstance(error, asyncio.TimeoutError):
        return {"timeout": True}
    return {"error": getattr(error, "name", type(error).__name__)}


class _Plain:
    """A reason that is not a WebSocketError but has its fields (ignored by close)."""

    def __init__(self, close_code: int | None, reason: str | None) -> None:
        self.closeCode = close_code
        self.reason = reason


def stream_reason(spec: dict[str, Any] | None) -> object:
    if spec is None:
        return None
    if spec.get("plain"):
        return _Plain(spec.get("closeCode"), spec.get("reason"))
    return WebSocketError("", closeCode=spec.get("closeCode"), reason=spec.get("reason", ""))


def describe_chunk(value: str | bytes) -> dict[str, Any]:
    if isinstance(value, str):
        return describe_text(value)
    # bytes: the proposal's Uint8Array (runner.js logs the chunk's class).
    return describe_bytes({"kind": "Uint8Array"}, value)


async def run_stream_scenario(program: dict[str, Any], host: str, agent: UserAgent) -> list[Entry]:
    """Run the program's steps; the log, as runner.js makes it."""
    log: list[Entry] = []
    wss: WebSocketStream | None = None
    reader: ReadableStreamDefaultReader[str | bytes] | None = None
    writer: WritableStreamDefaultWriter[Any] | None = None

    async def settle(
        entry: Entry,
        awaitable: Awaitable[Any],
        describe: Callable[[Any], Entry] | None = None,
    ) -> None:
        try:
            value = await asyncio.wait_for(asyncio.ensure_future(awaitable), STREAM_WAIT)
        except Exception as error:
            entry.update(stream_error(error))
        else:
            entry.update(describe(value) if describe is not None else {"ok": True})
        log.append(entry)

    def opened(info: Any) -> Entry:
        nonlocal reader, writer
        reader = info.readable.getReader()
        writer = info.writable.getWriter()
        return {"protocol": info.protocol, "extensions": info.extensions}

    def read(result: Any) -> Entry:
        value, done = result
        return {"done": True} if done else {"value": describe_chunk(value)}

    for step in program["steps"]:
        op = step["op"]
        if op == "construct":
            options: dict[str, Any] = {}
            if "protocols" in step:
                options["protocols"] = step["protocols"]
            wss = WebSocketStream(step["url"].replace("{host}", host), agent=agent, **options)
            log.append({"step": "construct", "url": wss.url.replace(host, "{host}")})
            continue
        assert wss is not None
        if op == "opened":
            await settle({"step": "opened"}, wss.opened, opened)
        elif op == "write":
            assert writer is not None
            await settle({"step": "write"}, writer.write(make_data(step["data"])))
        elif op == "read":
            assert reader is not None
            for _ in range(step["count"]):
                await settle({"step": "read"}, reader.read(), read)
        elif op == "close":
            entry: Entry = {"step": "close"}
            try:
                wss.close(closeCode=step.get("closeCode"), reason=step.get("reason", ""))
            except Exception as error:
                entry.update(stream_error(error))
            log.append(entry)
        elif op == "cancel":
            assert reader is not None
            await settle({"step": "cancel"}, reader.cancel(stream_reason(step.get("reason"))))
        elif op == "abort":
            assert writer is not None
            await settle({"step": "abort"}, writer.abort(stream_reason(step.get("reason"))))
        elif op == "writerClose":
            assert writer is not None
            await settle({"step": "writerClose"}, writer.close())
        elif op == "sleep":
            await asyncio.sleep(step["ms"] / 1000)
        else:
            raise ValueError(f"unknown stream step {op!r}")
    assert wss is not None
    await settle(
        {"step": "closed"},
        wss.closed,
        lambda info: {"closeCode": info.closeCode, "reason": info.reason},
    )
    return log
