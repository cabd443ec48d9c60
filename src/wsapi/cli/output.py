"""What the command line prints: the events a browser script would see, one line each.

Three layouts, one per use:

- ``log`` (interactive mode, the demo): every event, messages included, as a line on
  standard output, e.g. ``message  text (5 bytes): hello``.
- ``pipe`` (standard input is not a terminal, ``-x``): the data of each message on standard
  output, so that ``wsapi URL | jq`` sees only data; ``open``, ``error`` and ``close`` on
  standard error.
- ``jsonl``: one JSON object per event on standard output, for scripts; notes on standard
  error.

Lines are written in the order the events were dispatched. Reading a ``Blob`` is
asynchronous, so an event that arrives after a Blob message waits for that message's line
(``Output`` chains the writes) rather than overtaking it. What a peer sends is escaped in
event lines: a server cannot move the cursor or retitle the window of the person watching
(message data on stdout in pipe mode is data, and is written as it came).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TextIO

from wsapi import Blob, CloseEvent, ConnectionFailure, MessageEvent, WebSocket

__all__ = ["CLOSE_CODE_NAMES", "Output", "color_wanted"]

Layout = Literal["log", "pipe", "jsonl"]
BinaryFormat = Literal["hex", "base64", "raw"]
_Item = tuple[str, str] | bytes
"""A line for a stream ("stdout" or "stderr", text), or raw message bytes for stdout."""

PREVIEW_BYTES = 32
"""Bytes of a binary message shown in hex on an event line: two terminal-width groups, enough
to recognise a header or a magic number; the whole message is on stdout in pipe mode."""

PREVIEW_CHARS = 4000
"""Characters of a text message shown on an event line: a page of text. A longer message is
cut with a note of its size, so that one large message does not scroll the session away."""

LABEL_WIDTH = 8

CLOSE_CODE_NAMES = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status received",
    1006: "abnormal closure",
    1007: "invalid payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake",
}
"""RFC 6455 7.4.1 and the IANA WebSocket close code registry, for the close line."""

# SGR colours: event names stand out, data stays in the terminal's own colour.
_GREEN, _CYAN, _YELLOW, _RED, _DIM, _BOLD = "32", "36", "33", "1;31", "2", "1"

# C0 and C1 controls and DEL, except tab and newline: what a terminal would act upon.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def color_wanted(stream: TextIO, choice: str) -> bool:
    """``--color``: ``always``, ``never``, or ``auto`` (a terminal, ``NO_COLOR`` unset or
    empty as no-color.org says, and ``TERM`` not ``dumb``)."""
    if choice in ("always", "never"):
        return choice == "always"
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _escape(text: str) -> str:
    return _CONTROLS.sub(lambda match: repr(match.group())[1:-1], text)


def _quote(text: str) -> str:
    """A string as JavaScript would show it: double quotes, escapes for controls (JSON
    escapes C0; C1 and DEL too, since some terminals act on them)."""
    return _escape(json.dumps(text, ensure_ascii=False))


def _hex_preview(data: bytes, size: int) -> str:
    shown = data[:PREVIEW_BYTES].hex(" ")
    return shown + (" …" if size > PREVIEW_BYTES else "")


class Output:
    """Writes event lines and message data, in dispatch order, in one of the layouts."""

    def __init__(
        self,
        layout: Layout,
        *,
        quiet: bool = False,
        color: str = "auto",
        binary_format: BinaryFormat = "hex",
    ) -> None:
        self.layout = layout
        self.quiet = quiet
        self.binary_format = binary_format
        # Where event lines go; messages go to stdout in every layout.
        self._events_stream = "stdout" if layout == "log" else "stderr"
        self._color = {
            name: color_wanted(getattr(sys, name), color) for name in ("stdout", "stderr")
        }
        self._pending: asyncio.Task[None] | None = None
        self._flush_scheduled = False
        self.broken_pipe = False
        """Standard output was closed by its reader (``wsapi URL | head -1``)."""
        self.on_broken_pipe: Callable[[], None] | None = None
        """Called once when that happens: the session then closes the connection."""

    def color(self, stream: str) -> bool:
        """Whether ``stream`` ("stdout" or "stderr") gets colours."""
        return self._color[stream]

    # Writing, in order.

    def _stream(self, name: str) -> TextIO:
        # Looked up at each write: patch_stdout() replaces sys.stdout while the prompt runs.
        stream: TextIO = getattr(sys, name)
        return stream

    def _paint(self, text: str, sgr: str, stream: str) -> str:
        return f"\x1b[{sgr}m{text}\x1b[0m" if self._color[stream] else text

    def _write(self, stream: str, text: str) -> None:
        if stream == "stdout" and self.broken_pipe:
            return
        try:
            out = self._stream(stream)
            out.write(text + "\n")
            if stream == "stdout" and self.layout != "log":
                self._flush_soon()
            else:
                out.flush()
        except BrokenPipeError:
            self._pipe_broke()

    def _flush_soon(self) -> None:
        """Flush stdout once the messages being dispatched now are written: one system call
        for a burst of messages rather than one each, and still no message held back."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush_stdout()
            return
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush_stdout)

    def _flush_stdout(self) -> None:
        self._flush_scheduled = False
        if self.broken_pipe:
            return
        try:
            self._stream("stdout").flush()
        except BrokenPipeError:
            self._pipe_broke()

    def _write_bytes(self, data: bytes) -> None:
        if self.broken_pipe:
            return
        try:
            out = self._stream("stdout")
            out.flush()
            out.buffer.write(data)
            out.buffer.flush()
        except BrokenPipeError:
            self._pipe_broke()

    def _pipe_broke(self) -> None:
        if self.broken_pipe:
            return
        self.broken_pipe = True
        # Python would report the broken pipe again when it flushes stdout at exit.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        if self.on_broken_pipe is not None:
            self.on_broken_pipe()

    def _emit(self, write: Awaitable[None] | None, now: _Item | None = None) -> None:
        """Write ``now`` at once, or run ``write`` after the writes before it."""
        if write is None and self._pending is None:
            assert now is not None
            self._write_item(now)
            return

        async def chained(previous: asyncio.Task[None] | None) -> None:
            if previous is not None:
                await previous
            if write is not None:
                await write
            elif now is not None:
                self._write_item(now)

        task = asyncio.get_running_loop().create_task(chained(self._pending))
        self._pending = task
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[None]) -> None:
        if self._pending is task:
            self._pending = None
        if not task.cancelled() and task.exception() is not None:
            self._write("stderr", f"wsapi: cannot show a message: {task.exception()}")

    async def flush(self) -> None:
        """Wait until every event so far is written."""
        while self._pending is not None:
            await self._pending
        self._flush_stdout()

    def _event_line(self, label: str, text: str, sgr: str) -> tuple[str, str]:
        stream = self._events_stream
        return stream, f"{self._paint(label.ljust(LABEL_WIDTH), sgr, stream)} {text}"

    def _json(self, record: dict[str, Any]) -> tuple[str, str]:
        return "stdout", json.dumps(record, ensure_ascii=False)

    # Notes from the command line itself (not events).

    def info(self, text: str) -> None:
        """A diagnostic line (server address, connecting): dim; none with --quiet."""
        if self.quiet:
            return
        stream = "stderr" if self.layout != "log" else "stdout"
        self._emit(None, (stream, self._paint(text, _DIM, stream)))

    def note(self, text: str) -> None:
        """The answer to a slash command: shown even with --quiet."""
        stream = "stderr" if self.layout == "jsonl" else self._events_stream
        self._emit(None, (stream, self._paint(text, _DIM, stream)))

    def problem(self, text: str) -> None:
        """Something the user should fix (a DOMException from a command, bad input)."""
        stream = "stderr" if self.layout == "jsonl" else self._events_stream
        self._emit(None, (stream, self._paint(text, _RED, stream)))

    # The four events of the WebSocket interface.

    def on_open(self, ws: WebSocket, time_stamp: float) -> None:
        if self.layout == "jsonl":
            record = {
                "event": "open",
                "url": ws.url,
                "protocol": ws.protocol,
                "extensions": ws.extensions,
                "timeStamp": time_stamp,
            }
            self._emit(None, self._json(record))
        elif not self.quiet:
            text = f"protocol={_quote(ws.protocol)} extensions={_quote(ws.extensions)}"
            self._emit(None, self._event_line("open", text, _GREEN))

    def on_message(self, event: MessageEvent) -> None:
        data = event.data
        if isinstance(data, Blob):
            self._emit(self._blob_message(event, data))
        elif isinstance(data, (bytes, str)):
            self._emit(None, self._message(event, data, "ArrayBuffer"))

    async def _blob_message(self, event: MessageEvent, blob: Blob) -> None:
        # Only the preview is read for an event line: a large Blob may live in a file.
        if self.layout == "log":
            data = await blob.slice(0, PREVIEW_BYTES).arrayBuffer()
        else:
            data = await blob.arrayBuffer()
        self._write_item(self._message(event, data, "Blob", blob.size))

    def _write_item(self, item: _Item) -> None:
        if isinstance(item, bytes):
            self._write_bytes(item)
        else:
            self._write(*item)

    def _message(
        self, event: MessageEvent, data: str | bytes, kind: str, size: int | None = None
    ) -> _Item:
        """The line (stream, text), or raw bytes for ``--binary-format raw`` in pipe mode."""
        if isinstance(data, str):
            if self.layout == "jsonl":
                record = {
                    "event": "message",
                    "type": "text",
                    "data": data,
                    "size": len(data.encode("utf-8", "surrogatepass")),
                    "origin": event.origin,
                    "timeStamp": event.timeStamp,
                }
                return self._json(record)
            if self.layout == "pipe":
                return "stdout", data
            return self._text_line(data)
        size = len(data) if size is None else size
        if self.layout == "jsonl":
            record = {
                "event": "message",
                "type": "binary",
                "binaryType": "blob" if kind == "Blob" else "arraybuffer",
                "data_base64": base64.b64encode(data).decode("ascii"),
                "size": size,
                "origin": event.origin,
                "timeStamp": event.timeStamp,
            }
            return self._json(record)
        if self.layout == "pipe":
            if self.binary_format == "raw":
                return data
            if self.binary_format == "base64":
                return "stdout", base64.b64encode(data).decode("ascii")
            return "stdout", data.hex()
        plural = "" if size == 1 else "s"
        text = f"{kind} ({size} byte{plural})" + (f": {_hex_preview(data, size)}" if size else "")
        return self._event_line("message", text, _CYAN)

    def _text_line(self, data: str) -> tuple[str, str]:
        size = len(data.encode("utf-8", "surrogatepass"))
        shown = data[:PREVIEW_CHARS]
        cut = f" … ({size} bytes in all)" if len(data) > PREVIEW_CHARS else ""
        # Escaped even when not on a terminal: a log read later with `cat` or `less -R`
        # is a terminal then.
        shown = _escape(shown)
        # Continuation lines line up with the first line's text.
        shown = shown.replace("\n", "\n" + " " * (LABEL_WIDTH + 1))
        plural = "" if size == 1 else "s"
        return self._event_line("message", f"text ({size} byte{plural}): {shown}{cut}", _CYAN)

    def on_error(self, ws: WebSocket, time_stamp: float) -> None:
        failure = ws.failure
        if self.layout == "jsonl":
            details = None
            if failure is not None:
                details = {
                    "kind": failure.kind,
                    "reason": failure.reason,
                    "status_code": failure.status_code,
                }
            record = {"event": "error", "failure": details, "timeStamp": time_stamp}
            self._emit(None, self._json(record))
            if self.quiet or failure is None:
                return
            # Scripts parse stdout; a person reading the terminal still sees why.
            self._emit(None, ("stderr", f"wsapi: {_escape(failure.reason)}"))
        else:
            text = f"{_escape(failure.reason)} [{failure.kind}]" if failure else ""
            stream, line = self._event_line("error", text, _RED)
            self._emit(None, (stream, line.rstrip()))

    def on_close(self, event: CloseEvent, failure: ConnectionFailure | None = None) -> None:
        """The close line; ``failure`` is why it was not clean when no error line said it
        (a closing handshake that ``close_timeout`` ended)."""
        if self.layout == "jsonl":
            record: dict[str, object] = {
                "event": "close",
                "code": event.code,
                "reason": event.reason,
                "wasClean": event.wasClean,
                "timeStamp": event.timeStamp,
            }
            if failure is not None:
                record["failure"] = {"kind": failure.kind, "reason": failure.reason}
            self._emit(None, self._json(record))
            return
        if self.quiet and event.wasClean:
            return
        name = CLOSE_CODE_NAMES.get(event.code)
        code = f"{event.code} ({name})" if name else str(event.code)
        clean = "true" if event.wasClean else "false"
        text = f"code={code} reason={_quote(event.reason)} wasClean={clean}"
        if failure is not None:
            text += f": {_escape(failure.reason)} [{failure.kind}]"
        self._emit(None, self._event_line("close", text, _YELLOW if event.wasClean else _RED))
