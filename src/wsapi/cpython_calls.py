"""Three calls into the interpreter that the hot paths make: the current thread's
identifier (``WebSocket``'s thread check), the monotonic clock (``Event.timeStamp``) and
the generic attribute assignment (``EventTarget.__setattr__``).

The compiled build: ``_cpython_calls.pyx`` is their twin (same names and results, made
from C through CPython's C API, with no call through Python), cimported by ``events.pxd``;
``WSAPI_PURE_PYTHON=1`` runs these.
"""

from __future__ import annotations

from threading import get_ident
from time import monotonic

__all__ = ["get_ident", "monotonic", "set_attribute"]


def set_attribute(target: object, name: str, value: object) -> None:
    """``object.__setattr__(target, name, value)``: the generic assignment, past the
    ``__setattr__`` of the target's classes. (The compiled twin calls the C function behind
    it, which ``object.__setattr__`` refuses to apply to the instance of a Python subclass of
    an extension type that has its own ``__setattr__``, as the compiled ``EventTarget``.)"""
    object.__setattr__(target, name, value)
