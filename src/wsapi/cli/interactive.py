"""Interactive mode: a line editor (prompt_toolkit) on a terminal, the events above it.

Each line typed is sent as a text message; slash commands (``commands``) say what a line
cannot. Events are printed through ``patch_stdout``, which redraws the prompt and the line
being typed below each printed line, so a message arriving mid-word does not break the
line. The history is kept in a file under the user's state directory.

The command line imports this module (and prompt_toolkit) only when a terminal session
starts: pipe mode and the demo do not pay for it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.application import get_app
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.patch_stdout import patch_stdout

from wsapi import DOMException

from .commands import Command, Text, parse_close, parse_line, run_command
from .session import Session

__all__ = ["history_path", "interact"]

_STATE_PROMPTS = ("connecting", "", "closing", "closed")


def history_path() -> Path | None:
    """Where the line history lives: ``$WSAPI_HISTORY`` if set (empty: no file), else
    ``$XDG_STATE_HOME/wsapi/history`` (``~/.local/state/wsapi/history``; on Windows under
    ``%LOCALAPPDATA%``)."""
    chosen = os.environ.get("WSAPI_HISTORY")
    if chosen is not None:
        return Path(chosen).expanduser() if chosen else None
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        state = os.environ.get("XDG_STATE_HOME", "")
        # The XDG spec: a relative path is invalid and is ignored.
        base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "wsapi" / "history"


def _open_history(path: Path | None) -> Path | None:
    """Create the history file, readable by its owner only: typed lines may hold tokens."""
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    except OSError:
        return None
    return path


async def interact(session: Session, *, binary: bool = False) -> int:
    """Run the prompt until /quit, Ctrl-D, Ctrl-C or the close event; return the exit
    status."""
    ws, output = session.ws, session.output
    wanted = history_path()
    path = _open_history(wanted)
    history: History = FileHistory(str(path)) if path is not None else InMemoryHistory()
    if wanted is not None and path is None:
        output.problem(f"cannot write the history file {wanted}: history kept in memory")
    color = output.color("stdout")

    def prompt() -> ANSI:
        state = _STATE_PROMPTS[ws.readyState]
        text = f"({state}) > " if state else "> "
        return ANSI(f"\x1b[1m{text}\x1b[0m" if color else text)

    prompts: PromptSession[str] = PromptSession(history=history, key_bindings=_leave_keys())

    def end_prompt() -> None:
        future = prompts.app.future
        if prompts.app.is_running and future is not None and not future.done():
            # The connection is over: the empty prompt goes, the close event line stays.
            prompts.app.erase_when_done = True
            prompts.app.exit(exception=EOFError())

    session.stopped.add_done_callback(lambda _: end_prompt())

    def pre_run() -> None:
        # The session may have stopped while the previous line was being handled.
        if session.stopped.done():
            end_prompt()

    with patch_stdout(raw=True):
        output.info("/help lists the commands; Ctrl-D or /quit closes and leaves")
        while not session.stopped.done():
            try:
                # No prompt_toolkit SIGINT or exception handler: the command line has its
                # own, and an exception must not wait for a key press.
                line = await prompts.prompt_async(
                    prompt, pre_run=pre_run, handle_sigint=False, set_exception_handler=False
                )
            except (EOFError, KeyboardInterrupt):
                break
            parsed = parse_line(line)
            if isinstance(parsed, Command):
                before = ws.readyState
                outcome = run_command(parsed, ws)
                if parsed.name == "close" and ws.readyState > before:
                    session.sent_close(parse_close(parsed.argument)[0])
                if outcome.note:
                    output.note(outcome.note)
                if outcome.problem:
                    output.problem(outcome.problem)
                if outcome.quit:
                    break
            elif line:
                _send(session, parsed, binary=binary)
        return await session.finish()


def _leave_keys() -> KeyBindings:
    """Ctrl-C, and Ctrl-D on an empty line, leave without leaving an empty prompt behind
    (the close event line then follows the last line typed)."""
    bindings = KeyBindings()
    empty = Condition(lambda: not get_app().current_buffer.text)

    @bindings.add("c-c")
    @bindings.add("c-d", filter=empty)
    def leave(event: KeyPressEvent) -> None:
        event.app.erase_when_done = True
        event.app.exit(exception=EOFError())

    return bindings


def _send(session: Session, text: Text, *, binary: bool) -> None:
    try:
        session.ws.send(text.data.encode("utf-8") if binary else text.data)
    except DOMException as exc:
        # send() while CONNECTING: the InvalidStateError a browser script would get.
        session.output.problem(str(exc))
