"""Which build runs: the compiled modules (the Cython extensions ``setup.py`` builds) or the
pure-Python code they stand in for.

Two kinds of compiled module:

- A module compiled from its own ``.py`` file (``SOURCE_BUILDS``): Cython compiles the file
  with the ``.pxd`` beside it into an extension of the same name, which Python imports
  instead of the file. One source, two builds. Under ``WSAPI_PURE_PYTHON`` a finder on
  ``sys.meta_path`` imports the file instead.
- A compiled twin (a ``.pyx`` file) of Python code: each module with one asks
  ``compiled(name)`` once, where it wires the twin in. A twin that was not built is no
  error: the Python code runs, with the same behaviour. A twin that was built but does not
  import is one: an ``ImportError`` naming the module and the cause, never a silent
  fallback to pure Python.

``WSAPI_PURE_PYTHON`` (any non-empty value) refuses every compiled module, which is how the
tests run the Python code too. This module imports nothing from the package (the engine
uses it, and so does every layer above).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

__all__ = [
    "IN_USE",
    "NOT_BUILT",
    "PURE_PYTHON",
    "SOURCE_BUILDS",
    "compiled",
    "describe",
    "in_use",
]

PURE_PYTHON: bool = bool(os.environ.get("WSAPI_PURE_PYTHON"))
"""WSAPI_PURE_PYTHON is set: every compiled module is refused."""

SOURCE_BUILDS = (
    "wsapi.protocol.engine",
    "wsapi.timers",
    "wsapi.socket_transport",
    "wsapi.pump",
    "wsapi.events",
    "wsapi.websocket",
)
"""The modules Cython compiles from their own ``.py`` file (``setup.py`` lists the same)."""

CIMPORTED_TWINS = {
    "wsapi._cpython_calls": "wsapi.events",
    "wsapi._reading": "wsapi.pump",
    "wsapi._socket": "wsapi.socket_transport",
}
"""The compiled twins wired in by the ``cimport`` of a ``.pxd`` rather than by ``compiled()``,
each with the module compiled from its own source that cimports it: imported with that
module, never on their own."""


class _PythonSourceFinder(importlib.abc.MetaPathFinder):
    """Finds the ``.py`` file of a module of ``SOURCE_BUILDS``, never its compiled build:
    on ``sys.meta_path`` under ``WSAPI_PURE_PYTHON`` (this module is imported before any of
    them: ``wsapi/__init__.py`` imports ``protocol`` first, which imports it first)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in SOURCE_BUILDS or not path:
            return None
        for folder in path:
            source = os.path.join(folder, fullname.rpartition(".")[2] + ".py")
            if os.path.isfile(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None


class _StaleBuildCheck(importlib.abc.MetaPathFinder):
    """Warns, in a source checkout (``src/wsapi`` beside a ``pyproject.toml``: an editable
    install), when a module of ``SOURCE_BUILDS`` is about to be imported from an extension
    built before its ``.py`` file last changed: the old code would run. (An installed
    package is never rebuilt in place, and its files' times say nothing.)"""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in SOURCE_BUILDS or not path:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        origin = spec.origin if spec is not None else None
        if origin is None or origin.endswith(".py"):
            return spec
        source = os.path.join(os.path.dirname(origin), fullname.rpartition(".")[2] + ".py")
        with contextlib.suppress(OSError):
            if os.stat(source).st_mtime > os.stat(origin).st_mtime:
                warnings.warn(
                    f"wsapi: {origin} was built before {source} last changed, so the old "
                    "code runs: rebuild it (pip install -e . again), or set "
                    "WSAPI_PURE_PYTHON=1 to run the source",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return spec


def _in_a_source_checkout() -> bool:
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = os.path.dirname(package)
    return os.path.basename(src) == "src" and os.path.isfile(
        os.path.join(os.path.dirname(src), "pyproject.toml")
    )


if PURE_PYTHON:
    sys.meta_path.insert(0, _PythonSourceFinder())
elif _in_a_source_checkout():
    # Just before the finder of files on sys.path, whose answer it checks (any finder put
    # before that one, an import hook, keeps its place).
    _at = next(
        (
            index
            for index, finder in enumerate(sys.meta_path)
            if finder is importlib.machinery.PathFinder
        ),
        len(sys.meta_path),
    )
    sys.meta_path.insert(_at, _StaleBuildCheck())


def _is_compiled(module: ModuleType) -> bool:
    return not (module.__file__ or "").endswith(".py")


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


def in_use() -> tuple[list[str], list[str]]:
    """The compiled modules in use and those not built, among the modules imported so far:
    those of ``SOURCE_BUILDS`` first, then the twins in the order they were wired in, then
    those cimported."""
    compiled_now: list[str] = []
    not_built: list[str] = []
    if not PURE_PYTHON:
        for name in SOURCE_BUILDS:
            module = sys.modules.get(name)
            if module is not None:
                (compiled_now if _is_compiled(module) else not_built).append(name)
    cimported = [name for name in CIMPORTED_TWINS if name in sys.modules]
    return compiled_now + list(IN_USE) + cimported, not_built + NOT_BUILT


def describe() -> str:
    """The build in use, in words (``wsapi --version`` prints it), once the package is
    imported: ``compiled: <modules>``, with ``; not built: <modules>`` when only some were
    built, or ``pure Python: <why>``."""
    if PURE_PYTHON:
        return "pure Python: WSAPI_PURE_PYTHON is set"
    compiled_now, not_built = in_use()
    if not compiled_now:
        return "pure Python: the extensions were not built"
    text = "compiled: " + ", ".join(compiled_now)
    if not_built:
        text += "; not built: " + ", ".join(not_built)
    return text
