"""Which build runs: the compiled modules (the Cython extensions ``setup.py`` builds) or the
pure-Python code they stand in for.

Each module with a compiled twin asks ``compiled(name)`` once, where it wires the twin in. A
twin that was not built is no error: the Python code runs, with the same behaviour. A twin that
was built but does not import is one: an ``ImportError`` naming the module and the cause,
never a silent fallback to pure Python. ``WSAPI_PURE_PYTHON`` (any non-empty value) refuses
every compiled module, which is how the tests run the Python code too.

It imports nothing from the package (the engine uses it, and so does every layer above).
"""

from __future__ import annotations

import importlib
import importlib.util
import os

__all__ = ["IN_USE", "NOT_BUILT", "PURE_PYTHON", "compiled", "describe"]

PURE_PYTHON: bool = bool(os.environ.get("WSAPI_PURE_PYTHON"))
"""WSAPI_PURE_PYTHON is set: every compiled module is refused."""

IN_USE: dict[str, str] = {}
"""The compiled modules in use, in the order they were wired in, each with its file."""

NOT_BUILT: list[str] = []
"""The compiled modules asked for that were not built (their Python code runs)."""


def compiled(name: str) -> bool:
    """Import the compiled module ``name`` (absolute, e.g. ``"wsapi._reading"``) and say
    whether it is in use: False when ``WSAPI_PURE_PYTHON`` is set or it was not built.

    Raises ``ImportError`` naming the module and the cause when it was built but does not
    import (built for another Python, or out of step with the source it reads)."""
    if PURE_PYTHON:
        return False
    if name in IN_USE:
        return True
    spec = importlib.util.find_spec(name)
    if spec is None:
        if name not in NOT_BUILT:
            NOT_BUILT.append(name)
        return False
    try:
        importlib.import_module(name)
    except Exception as exc:
        raise ImportError(
            f"wsapi: the compiled module {name} ({spec.origin}) was built but does not "
            f"import: {exc}. Rebuild it (pip install the package again), or set "
            f"WSAPI_PURE_PYTHON=1 to run the pure-Python code.",
            name=name,
            path=spec.origin,
        ) from exc
    IN_USE[name] = spec.origin or name
    return True


def describe() -> str:
    """The build in use, in words (``wsapi --version`` prints it), once the package is
    imported: ``compiled: <modules>``, with ``; not built: <modules>`` when only some were
    built, or ``pure Python: <why>``."""
    if PURE_PYTHON:
        return "pure Python: WSAPI_PURE_PYTHON is set"
    if not IN_USE:
        return "pure Python: the extensions were not built"
    text = "compiled: " + ", ".join(IN_USE)
    if NOT_BUILT:
        text += "; not built: " + ", ".join(NOT_BUILT)
    return text
