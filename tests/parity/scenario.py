"""Scenarios as data: the steps a page script runs, the peer it talks to, and the differences
from Chromium that are declared with their reason.

A scenario's steps are plain JSON-ready dictionaries, made by the functions below and read by
two interpreters kept step for step alike: ``runner.js`` in the page, ``wsapi_runner.py`` in
Python. Both produce a log of entries of the same shape:

- ``{"step": "construct", "url", "readyState", "bufferedAmount", "protocol", "extensions",
  "binaryType"}`` after the constructor, or ``{"step": op, "exception": name}`` when a step
  threw (a ``DOMException``'s name, or ``"TypeError"``);
- ``{"event": type, "listener": name, "readyState", "bufferedAmount", "protocol",
  "extensions", ...}`` for every listener call, with ``data``, ``origin`` and ``lastEventId``
  for a message and ``code``, ``reason`` and ``wasClean`` for a close;
- ``{"step": "check", "label", ...}`` for a ``check()`` step: the attributes at that moment;
- ``{"step": "wait" | "drain" | "end", "timeout": true}`` when a wait ran out of time.

Received data is described as ``{"kind": "text", "value"}``, ``{"kind": "arraybuffer",
"hex"}`` or ``{"kind": "blob", "size", "type", "hex"}``; past ``INLINE_LIMIT`` bytes as its
``length`` and ``sha256`` (16 hex digits) instead of its value.

Steps outside a listener run one after the other; ``wait``, ``sleep`` and ``drain`` let time
pass. After the last step the runner waits for the close event (``end_timeout_ms``), then
logs stray events for a short while. A ``listen`` step's ``do`` steps run inside the
listener, synchronously, as a script's code in an event handler does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .compare import Difference
from .data import Data
from .peers import Peer

Step = dict[str, Any]

END_TIMEOUT_MS = 5000
"""How long a scenario waits for the close event after its last step, by default."""


# --- Steps ------------------------------------------------------------------------------------


_MISSING: Any = object()


def construct(
    url: str = "ws://{host}/", protocols: str | Sequence[str] = _MISSING, *, log: bool = True
) -> Step:
    """``new WebSocket(url, protocols)``; ``{host}`` is the peer's 127.0.0.1:PORT. With
    ``log``, a listener named "log" is added for each event type right after."""
    step: Step = {"op": "construct", "url": url, "log": log}
    if protocols is not _MISSING:
        step["protocols"] = protocols if isinstance(protocols, str) else list(protocols)
    return step


def send(data: Data) -> Step:
    return {"op": "send", "data": data}


def close(code: float = _MISSING, reason: str = _MISSING) -> Step:
    """``close()``, ``close(code)``, ``close(code, reason)``; ``close(reason=...)`` passes
    ``undefined`` (``None``) as the code."""
    step: Step = {"op": "close"}
    if code is not _MISSING:
        step["code"] = code
    if reason is not _MISSING:
        step["reason"] = reason
    return step


def binary_type(value: str) -> Step:
    return {"op": "binaryType", "value": value}


def check(label: str) -> Step:
    """Log readyState, bufferedAmount, protocol, extensions, binaryType and url now."""
    return {"op": "check", "label": label}


def listen(
    type: str,
    name: str,
    *,
    how: str = "add",
    once: bool = False,
    at: int | None = None,
    do: Sequence[Step] = (),
) -> Step:
    """A listener named ``name`` that logs the event, then runs ``do`` (only on its
    ``at``-th call when given). ``how``: ``"add"`` (addEventListener with a function),
    ``"object"`` (addEventListener with a ``handleEvent`` object) or ``"on"`` (the ``on*``
    attribute)."""
    step: Step = {"op": "listen", "type": type, "name": name, "how": how, "do": list(do)}
    if once:
        step["once"] = True
    if at is not None:
        step["at"] = at
    return step


def unlisten(name: str) -> Step:
    """removeEventListener (or ``on* = null``) for the listener named ``name``."""
    return {"op": "unlisten", "name": name}


def handler(type: str, name: str | None) -> Step:
    """``ws.on<type> = <the listener named name>`` (``null`` for None)."""
    return {"op": "handler", "type": type, "name": name}


def stop() -> Step:
    """``event.stopImmediatePropagation()``, inside a listener."""
    return {"op": "stop"}


def wait(event: str, count: int = 1) -> Step:
    """Wait until ``count`` events of this type have been dispatched in all; the next step
    runs after that dispatch, as a later task."""
    return {"op": "wait", "event": event, "count": count}


def sleep(ms: int) -> Step:
    return {"op": "sleep", "ms": ms}


def drain() -> Step:
    """Poll bufferedAmount until it is 0 (everything sent reached the network)."""
    return {"op": "drain"}


# --- Scenarios --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    """The pytest id."""
    doc: str
    """What the scenario shows, in one sentence."""
    peer: Peer
    steps: tuple[Step, ...]
    differences: tuple[Difference, ...] = ()
    """Known differences from Chromium, each with its reason (compare.py)."""
    end_timeout_ms: int = END_TIMEOUT_MS
    close_timeout: float | None = None
    """wsapi's ``close_timeout`` (seconds) in this scenario, when not the default: Chromium's
    are fixed (60 s for the peer's Close, 2 s for its TCP close after the closing
    handshake), and the results do not depend on the length."""

    def program(self) -> dict[str, Any]:
        """What both runners read."""
        return {"steps": list(self.steps), "end_timeout_ms": self.end_timeout_ms}
