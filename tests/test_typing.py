"""The public API's types under ``mypy --strict``: a program that uses it as the README
does type-checks, and the lines the run time would reject (or that do nothing) are errors."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

# Each line that must be rejected ends with "# E: <error code>"; no other line may be.
PROGRAM = textwrap.dedent(
    """\
    from __future__ import annotations

    import asyncio

    from wsapi import (
        AbortController,
        AbortSignal,
        Blob,
        CloseEvent,
        Event,
        MessageEvent,
        WebSocket,
        WebSocketError,
    )


    def on_message(event: MessageEvent) -> None:
        data = event.data
        if isinstance(data, str):
            text: str = data
        elif isinstance(data, bytes):
            raw: bytes = data
        else:
            blob: Blob = data
        x: int = event.data  # E: assignment


    def on_close(event: CloseEvent) -> None:
        code: int = event.code
        reason: str = event.reason


    def takes_int(n: int) -> None:
        pass


    class Listener:
        def handleEvent(self, event: MessageEvent) -> None:
            pass


    async def main() -> None:
        ws = WebSocket("ws://127.0.0.1:8765/")
        ws.onmessage = on_message
        ws.onclose = on_close
        ws.onopen = lambda event: print(event.type)
        ws.onclose = lambda event: print(event.code, event.wasClean)
        ws.onmessage = None
        ws.addEventListener("message", on_message)
        ws.addEventListener("message", Listener())
        ws.addEventListener("close", on_close)
        ws.addEventListener("error", lambda event: print(event.type))
        ws.binaryType = "arraybuffer"
        binary_type: str = ws.binaryType
        ws.binaryType = "blobby"  # E: assignment
        ws.onmessage = takes_int  # E: assignment
        ws.onmessage = on_close  # E: assignment
        ws.addEventListener("message", takes_int)  # E: arg-type
        ws.addEventListener("message", on_close)  # E: arg-type
        ws.addEventListener("close", on_message)  # E: arg-type
        ws.onmesage = on_message  # E: attr-defined
        try:
            await ws.opened
        except WebSocketError as exc:
            kind: str = exc.failure.kind
            status: int | None = exc.failure.status_code
            content_type: str | None = exc.failure.headers.get("Content-Type")
            body: bytes = exc.failure.body
            if exc.failure.kind == "http-status":  # E: comparison-overlap
                pass
        failure = ws.failure
        if failure is not None and failure.kind == "dns":
            print(failure.reason)
        event: CloseEvent = await ws.closed
        error = WebSocketError("done", closeCode=4000, reason="bye")
        close_code: int | None = error.closeCode
        close_reason: str = error.reason
        error_name: str = error.name
        WebSocketError("done", 4000)  # E: call-arg
        WebSocketError(closeCode="4000")  # E: arg-type
        controller = AbortController()
        controller.signal.onabort = lambda event: print(event.type)
        controller.signal.onabort = on_close  # E: assignment
        controller.abort("why")
        aborted: bool = AbortSignal.any([controller.signal, AbortSignal.timeout(5000)]).aborted
        AbortSignal.timeout("5000")  # E: arg-type
        ws.send(b"bytes")
        ws.send(1)  # E: arg-type


    asyncio.run(main())
    """
)

ERROR = re.compile(r"^program\.py:(\d+): error: .*\[([a-z-]+)\]$")


def test_public_api_under_mypy_strict(tmp_path: Path) -> None:
    """mypy --strict accepts the program's correct lines and reports exactly the marked
    ones: a wrong type for event.data, binaryType, a handler or listener taking the wrong
    event, a misspelt handler, a failure kind that does not exist, WebSocketError's init
    given by position or with a code that is not an int, an abort handler taking a
    CloseEvent, a timeout that is not a number. (The failure of the WebSocketError that
    opened raises is a ConnectionFailure, not Optional, so the README's line type-checks.)"""
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n")
    expected = [
        (number, line.rpartition("# E: ")[2])
        for number, line in enumerate(PROGRAM.splitlines(), start=1)
        if "# E: " in line
    ]
    stdout, stderr, status = mypy_api.run(
        [
            "--strict",
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--follow-imports",
            "silent",
            "--no-error-summary",
            "--hide-error-context",
            str(program),
        ]
    )
    reported = []
    for line in stdout.splitlines():
        if ": note: " in line:
            continue
        match = ERROR.match(line.replace(str(program), "program.py"))
        assert match is not None, stdout
        reported.append((int(match[1]), match[2]))
    assert (reported, stderr) == (expected, ""), stdout
    assert status == 1
    messages = stdout.replace(str(program), "program.py")
    # The messages name the types, so that a regression to Any cannot pass unseen.
    assert 'expression has type "str | bytes | Blob", variable has type "int"' in messages
    assert "\"Literal['blobby']\"" in messages
    assert "Literal['blob', 'arraybuffer']" in messages
