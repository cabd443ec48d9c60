"""Interactive mode, as a person uses it: ``python -m wsapi`` on a pseudo-terminal (typing,
reading what is printed) and in tmux (what the screen shows while a message arrives)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from support import TIMEOUT

if sys.platform == "win32":  # pragma: no cover
    pytest.skip("pseudo-terminals are POSIX", allow_module_level=True)

import pty
import termios
from fcntl import ioctl

RUN_TIMEOUT = 20 * TIMEOUT
"""Seconds one run of the command may take before the test fails."""


async def _slow_echo(connection: ServerConnection) -> None:
    """Echo each message half a second later: time to type while a reply is on its way."""
    try:
        async for message in connection:
            await asyncio.sleep(0.5)
            await connection.send(message)
    except ConnectionClosed:
        pass


@pytest.fixture(scope="module")
def slow_echo_url() -> Iterator[str]:
    """A slow echo server on a loop in a thread, for the whole module."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> Server:
        server: Server = await serve(_slow_echo, "127.0.0.1", 0)
        return server

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(10 * TIMEOUT)
    port = next(iter(server.sockets)).getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/"
    finally:

        async def stop() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10 * TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10 * TIMEOUT)
        loop.close()


def _env(**extra: str) -> dict[str, str]:
    # prompt_toolkit asks the terminal for the cursor position; a bare pty does not answer.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.lower().endswith("_proxy") and name != "NO_COLOR"
    }
    env.update(TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1", **extra)
    return env


# Interactive mode, in a pseudo-terminal.


class Terminal:
    """``python -m wsapi ARGS`` on a pseudo-terminal of 100x30: type, and read the output."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wsapi", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.output = b""

    def read_until(self, pattern: str, timeout: float = 10 * TIMEOUT) -> str:
        """Read until the output (escapes removed) matches ``pattern``; return that text."""
        deadline = time.monotonic() + timeout
        while True:
            text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.output.decode("utf-8", "replace"))
            if re.search(pattern, text):
                return text
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{pattern!r} never came; the terminal shows:\n{text}")
            readable, _, _ = select.select([self.master], [], [], remaining)
            if readable:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:  # EIO: the program ended and closed the terminal.
                    time.sleep(0.05)

    def settle(self, quiet: float = 0.3) -> None:
        """Read until nothing has come for ``quiet`` seconds: the next prompt is waiting.
        (A key typed between two prompts meets the terminal in cooked mode, where Ctrl-D
        is the end-of-file character, not a key.)"""
        while select.select([self.master], [], [], quiet)[0]:
            try:
                self.output += os.read(self.master, 65536)
            except OSError:
                return

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait(self) -> int:
        try:
            while self.process.poll() is None:
                readable, _, _ = select.select([self.master], [], [], 0.1)
                if readable:
                    with contextlib.suppress(OSError):
                        self.output += os.read(self.master, 65536)
            return self.process.wait(RUN_TIMEOUT)
        finally:
            self.process.kill()
            os.close(self.master)


def _terminal_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return _env(XDG_STATE_HOME=str(tmp_path / "state"), **extra)


def test_interactive_line_is_echoed_and_close_command_closes(tmp_path: Path) -> None:
    """In a terminal: a typed line comes back as a message event; /close 4001 bye closes
    with that code; the exit status is 0; the line is in the history file."""
    terminal = Terminal(env=_terminal_env(tmp_path))
    terminal.read_until(r"open +protocol")
    terminal.type("hello there\r")
    terminal.read_until(r"message +text \(11 bytes\): hello there")
    terminal.type("/close 4001 bye\r")
    text = terminal.read_until(r"close +code=4001 reason=\"bye\" wasClean=true")
    assert terminal.wait() == 0
    assert "\x1b[32m" in terminal.output.decode()  # a terminal, NO_COLOR unset: colours
    history = (tmp_path / "state" / "wsapi" / "history").read_text()
    assert "+hello there" in history
    assert (tmp_path / "state" / "wsapi" / "history").stat().st_mode & 0o077 == 0
    assert "Traceback" not in text


def test_interactive_commands_and_ctrl_d(tmp_path: Path) -> None:
    """/binary, /ping, /state and a DOMException from /close show their result; Ctrl-D
    closes with 1000 and exits 0; NO_COLOR turns colours off."""
    terminal = Terminal(env=_terminal_env(tmp_path, NO_COLOR="1"))
    terminal.read_until(r"open +protocol")
    terminal.type("/binary 00 ff\r")
    terminal.read_until(r"message +Blob \(2 bytes\): 00 ff")
    terminal.type("/ping hi\r")
    terminal.read_until(r"sent a Ping \(2 bytes\)")
    terminal.type("/state\r")
    terminal.read_until(r"readyState=1 \(OPEN\) bufferedAmount=\d+")
    terminal.type("/close 1001\r")
    terminal.read_until(r"InvalidAccessError: close code 1001")
    terminal.settle()
    terminal.type("\x04")
    terminal.read_until(r"close +code=1000 \(normal closure\)")
    assert terminal.wait() == 0
    assert "\x1b[32m" not in terminal.output.decode()


# Interactive mode, in tmux: what the screen shows.


def tmux_available() -> bool:
    return shutil.which("tmux") is not None


@pytest.mark.skipif(not tmux_available(), reason="tmux is not installed")
def test_message_arriving_while_typing_does_not_break_the_line(
    slow_echo_url: str, tmp_path: Path
) -> None:
    """In tmux: a message that arrives mid-line is printed above the prompt, and the
    prompt still shows the half-typed line, which is then sent intact."""
    socket_path = str(tmp_path / "tmux.sock")
    config = tmp_path / "tmux.conf"
    config.write_text("set -g remain-on-exit on\n")
    tmux = ["tmux", "-S", socket_path, "-f", str(config)]
    status = tmp_path / "status"
    command = f"{sys.executable} -m wsapi {slow_echo_url}; echo $? > {status}"
    # The tmux server starts here, with this environment, and passes it to the command.
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", "t", "-x", "100", "-y", "20", command],
        check=True,
        env=_terminal_env(tmp_path),
    )

    def screen() -> list[str]:
        shown = subprocess.run(
            [*tmux, "capture-pane", "-p", "-t", "t"], capture_output=True, text=True, check=True
        ).stdout
        return [line.rstrip() for line in shown.splitlines() if line.strip()]

    def wait_for(predicate: str) -> list[str]:
        deadline = time.monotonic() + 10 * TIMEOUT
        while True:
            lines = screen()
            if any(re.search(predicate, line) for line in lines):
                return lines
            assert time.monotonic() < deadline, "\n".join(lines)
            time.sleep(0.05)

    try:
        wait_for(r"^open ")
        subprocess.run([*tmux, "send-keys", "-t", "t", "first", "Enter", "half a li"], check=True)
        lines = wait_for(r"message +text \(5 bytes\): first")
        assert lines[-1] == "> half a li"
        subprocess.run([*tmux, "send-keys", "-t", "t", "ne", "Enter"], check=True)
        wait_for(r"message +text \(11 bytes\): half a line")
        subprocess.run([*tmux, "send-keys", "-t", "t", "/quit", "Enter"], check=True)
        wait_for(r"^close +code=1000 \(normal closure\)")
        deadline = time.monotonic() + 10 * TIMEOUT
        while not status.exists() or not status.read_text():
            assert time.monotonic() < deadline, "the command did not exit"
            time.sleep(0.05)
        assert status.read_text() == "0\n"
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)


def test_ctrl_c_closes_cleanly_and_jsonl_works_interactively(tmp_path: Path) -> None:
    """With --jsonl in a terminal, events are JSON lines; Ctrl-C closes with 1000, exit 0."""
    terminal = Terminal("--jsonl", env=_terminal_env(tmp_path))
    terminal.read_until(r'\{"event": "open"')
    terminal.type("json please\r")
    terminal.read_until(r'"data": "json please"')
    terminal.settle()
    terminal.type("\x03")
    terminal.read_until(r'\{"event": "close", "code": 1000, "reason": "", "wasClean": true')
    assert terminal.wait() == 0
