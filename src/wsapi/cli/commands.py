"""The slash commands of interactive mode: what a typed line cannot say.

A typed line is a text message. A line that starts with ``/`` is a command, each one a call
a browser script could make (``ws.close(code, reason)``, ``ws.send(bytes)``, reading
``readyState``) or the one outside the IDL, ``wsapi.ping``; ``//`` at the start sends the
rest, starting with ``/``, as text. Parsing is separate from running so that it can be tested
without a connection.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import Path

from wsapi import DOMException, WebSocket, ping

__all__ = ["COMMANDS", "Command", "Outcome", "Text", "help_text", "parse_line", "run_command"]

COMMANDS: tuple[tuple[str, str], ...] = (
    ("/ping [text]", "send a Ping (wsapi.ping); the Pong is not an event"),
    ("/close [code [reason]]", "ws.close(code, reason): code 1000 or 3000-4999"),
    ("/binary HEX", "send a binary message: /binary 00 ff 10"),
    ("/binary base64:DATA", "... given in base64"),
    ("/binary @FILE", "... read from a file"),
    ("/state", "readyState, bufferedAmount, protocol, extensions (also /buffered)"),
    ("/help", "this list"),
    ("/quit", "close with 1000, wait for the close event, leave (also Ctrl-D, Ctrl-C)"),
    ("//text", "send the text message /text"),
)

READY_STATES = ("CONNECTING", "OPEN", "CLOSING", "CLOSED")

MAX_FILE_SIZE = 64 * 1024 * 1024
"""Largest file ``/binary @FILE`` reads: the default receive limit of wsapi (and of most
servers), so that a mistyped path to a disk image does not fill memory."""

_ALIASES = {"buffered": "state", "exit": "quit", "q": "quit", "?": "help"}


@dataclass(frozen=True)
class Text:
    """A line to send as a text message."""

    data: str


@dataclass(frozen=True)
class Command:
    """A slash command: its name (aliases resolved) and the rest of the line."""

    name: str
    argument: str


def parse_line(line: str) -> Text | Command:
    """A typed line: a ``Command`` if it starts with one ``/``, else ``Text``."""
    if line.startswith("//"):
        return Text(line[1:])
    if line.startswith("/") and len(line) > 1 and not line[1].isspace():
        name, _, argument = line[1:].partition(" ")
        name = name.lower()
        return Command(_ALIASES.get(name, name), argument.strip())
    return Text(line)


def parse_binary(argument: str) -> bytes:
    """``HEX`` (spaces and colons allowed), ``base64:DATA`` or ``@FILE``."""
    if not argument:
        raise ValueError("/binary needs data: hex digits, base64:DATA or @FILE")
    if argument.startswith("@"):
        path = Path(argument[1:]).expanduser()
        size = path.stat().st_size
        if size > MAX_FILE_SIZE:
            raise ValueError(f"{path} has {size} bytes; /binary sends at most {MAX_FILE_SIZE}")
        return path.read_bytes()
    if argument.lower().startswith(("base64:", "b64:")):
        encoded = argument.partition(":")[2].strip()
        try:
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error:
            raise ValueError(f"not base64: {encoded!r}") from None
    digits = re.sub(r"[\s:]", "", argument)
    if digits.lower().startswith("0x"):
        digits = digits[2:]
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise ValueError(
            f"not hex: {argument!r} (an even number of hex digits; base64:DATA or @FILE "
            "for other data)"
        ) from None


def parse_close(argument: str) -> tuple[int | None, str | None]:
    """``[code [reason]]``: the arguments of ``ws.close()``; the reason is the rest of the
    line, spaces included."""
    if not argument:
        return None, None
    code_text, _, reason = argument.partition(" ")
    try:
        code = int(code_text)
    except ValueError:
        raise ValueError(f"/close takes a numeric code first, not {code_text!r}") from None
    reason = reason.strip()
    return code, reason or None


def help_text() -> str:
    width = max(len(usage) for usage, _ in COMMANDS)
    lines = ["A line is sent as a text message. Commands:"]
    lines += [f"  {usage.ljust(width)}  {what}" for usage, what in COMMANDS]
    return "\n".join(lines)


def state_text(ws: WebSocket) -> str:
    return (
        f"readyState={ws.readyState} ({READY_STATES[ws.readyState]}) "
        f"bufferedAmount={ws.bufferedAmount} protocol={ws.protocol!r} "
        f"extensions={ws.extensions!r} binaryType={ws.binaryType!r} url={ws.url}"
    )


@dataclass(frozen=True)
class Outcome:
    """What a command did: ``quit`` asks to leave; ``note`` is an answer to show;
    ``problem`` is an error to show (the DOMException a script would get, bad input)."""

    quit: bool = False
    note: str | None = None
    problem: str | None = None


def run_command(command: Command, ws: WebSocket) -> Outcome:
    """Run a slash command on ``ws``."""
    name, argument = command.name, command.argument
    try:
        if name == "quit":
            return Outcome(quit=True)
        if name == "help":
            return Outcome(note=help_text())
        if name == "state":
            return Outcome(note=state_text(ws))
        if name == "ping":
            data = argument.encode("utf-8")
            ping(ws, data)
            return Outcome(note=f"sent a Ping ({len(data)} bytes)")
        if name == "close":
            code, reason = parse_close(argument)
            ws.close(code, reason)
            return Outcome()
        if name == "binary":
            payload = parse_binary(argument)
            ws.send(payload)
            return Outcome(note=f"sent binary ({len(payload)} bytes)")
    except DOMException as exc:
        # The exception a browser script would get, as a browser console shows it.
        return Outcome(problem=str(exc))
    except (ValueError, OSError) as exc:
        return Outcome(problem=str(exc))
    return Outcome(
        problem=f"unknown command /{name}: /help lists them; // sends a line that starts with /"
    )
