"""Tests that exist only because the hot path is written more than once: compiled twins beside the
Python code (``_reading``, ``_socket``, ``_speedups``, ``_plain_head``) and the one-listener
shortcut of message dispatch. Which path is in use, the compiled functions' own guards, and
that the shortcut is taken; the behaviour itself is tested on both paths by the rest of the
suite."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import sys
import threading
import time
from types import ModuleType
from typing import Any

import pytest

import wsapi.events as events_module
import wsapi.pump as pump_module
import wsapi.websocket as websocket_module
from support import COMPILED, agent, burst_server, close_cleanly, compiled_only, texts, until
from wsapi import Event, EventTarget, MessageEvent, WebSocket, cpython_calls
from wsapi.protocol import engine as engine_module
from wsapi.protocol.engine import ClientConnection
from wsapi.socket_transport import SocketTransport

# --- which path is in use ---------------------------------------------------------------------


def test_compiled_path_in_use_iff_built_and_not_refused() -> None:
    """Without WSAPI_PURE_PYTHON, the compiled read path is in use exactly when its
    extension is built, and so are the compiled builds of the engine, the events and the
    WebSocket; with it, none is."""
    pure = bool(os.environ.get("WSAPI_PURE_PYTHON"))
    socket_built = importlib.util.find_spec("wsapi._socket") is not None
    # (The compiled socket transport cimports its system calls: importing it imports them.)
    assert ("wsapi._socket" in sys.modules) == (socket_built and not pure)
    # The engine itself: compiled from engine.py when built, the file itself when refused.
    for module in (engine_module, events_module, websocket_module):
        assert module.__file__ is not None
        assert module.__file__.endswith(".py") == (pure or not COMPILED)


def test_the_paths_in_use() -> None:
    """The compiled twins are wired in exactly when they are built and not refused
    (WSAPI_PURE_PYTHON); the classes compiled from their own source are extension types
    then, and plain classes otherwise."""
    compiled_from_source: list[type] = [
        pump_module.ConnectionPump,
        SocketTransport,
        ClientConnection,
        events_module.Event,
        events_module.MessageEvent,
        events_module.EventTarget,
        websocket_module.WebSocket,
    ]
    if COMPILED:
        assert "wsapi._socket" in sys.modules
        # (An extension type has no instance __dict__ and refuses new class attributes.)
        for cls in compiled_from_source:
            with pytest.raises(TypeError):
                setattr(cls, "anything", None)  # noqa: B010
    else:
        assert "wsapi._socket" not in sys.modules
        for cls in compiled_from_source:
            assert (sys.modules[cls.__module__].__file__ or "").endswith(".py")
            setattr(cls, "anything", None)  # noqa: B010  (A Python class takes it.)
            delattr(cls, "anything")


# --- the compiled functions' guards -------------------------------------------------------------


@compiled_only
def test_compiled_functions_check_their_objects() -> None:
    """Called with the wrong object, the compiled functions raise TypeError (they read
    typed fields: anything else must never reach that)."""
    from wsapi import _reading  # noqa: PLC0415 (compiled only)

    deliver = _reading.deliver_messages
    with pytest.raises(TypeError, match="ClientConnection"):
        deliver(object(), print, print, 1)  # type: ignore[arg-type]
    assert deliver(ClientConnection("example.com", "/"), print, print, 1) == 0


# --- the calls into the interpreter -------------------------------------------------------------


def cpython_call_modules() -> list[ModuleType]:
    """cpython_calls, and its compiled twin where it is built and not refused."""
    found = [cpython_calls]
    if importlib.util.find_spec("wsapi._cpython_calls") is not None and COMPILED:
        found.append(importlib.import_module("wsapi._cpython_calls"))
    return found


@pytest.mark.parametrize("calls", cpython_call_modules(), ids=lambda module: module.__name__)
def test_the_calls_into_the_interpreter_give_what_python_gives(calls: ModuleType) -> None:
    """get_ident and monotonic (Python and compiled): this thread's identifier, and a
    reading of time.monotonic()'s clock, between two of its own."""
    assert calls.get_ident() == threading.get_ident()
    before = time.monotonic()
    now = calls.monotonic()
    assert before <= now <= time.monotonic()


def test_the_attribute_assignment_in_use_goes_past_event_target_s_own() -> None:
    """The generic assignment events.py uses (compiled where EventTarget is) sets an
    attribute on a Python subclass of EventTarget, past the check of EventTarget's
    __setattr__, which refuses a misspelt event handler."""

    class Target(EventTarget):
        pass

    target = Target()
    with pytest.raises(AttributeError):
        target.onmesage = print  # type: ignore[attr-defined]
    calls = sys.modules["wsapi._cpython_calls" if COMPILED else "wsapi.cpython_calls"]
    calls.set_attribute(target, "onmesage", print)
    assert target.onmesage is print  # type: ignore[attr-defined]


# --- the one-listener shortcut of message dispatch ---------------------------------------------


async def test_one_plain_listener_takes_the_fast_dispatch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A target with one plain message listener never runs the general dispatch
    (``events._dispatch``) for its messages (fire_a_message_event's own shortcut), and one
    with two listeners does. (Pure-Python build: in the compiled one, events.py's functions
    call one another at C level, which replacing a module attribute does not reach.)"""
    if not (events_module.__file__ or "").endswith(".py"):
        pytest.skip("the compiled events module calls _dispatch at C level")
    dispatched: list[object] = []
    original = events_module._dispatch

    def counting(event: Event, target: Any) -> bool:
        if event.type == "message":
            dispatched.append(event.data)  # type: ignore[attr-defined]
        return original(event, target)

    monkeypatch.setattr(events_module, "_dispatch", counting)
    received: list[object] = []
    done = asyncio.get_running_loop().create_future()
    async with burst_server(texts("1", "2", "3")) as url:
        ws = WebSocket(url, agent=agent())

        def onmessage(event: MessageEvent) -> None:
            received.append(event.data)
            if event.data == "2":
                ws.addEventListener("message", lambda _event: None)
            if event.data == "3":
                done.set_result(None)

        ws.onmessage = onmessage
        await until(done)
        assert received == ["1", "2", "3"]
        assert dispatched == ["3"]
        await close_cleanly(ws)
