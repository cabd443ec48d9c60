"""What the fuzz targets share: running a target under atheris, splitting an input into
chunks, and a second copy of wsapi on its pure-Python path beside the compiled one.

A target is a module of this directory with ``check(data: bytes) -> None``, which raises
``AssertionError`` when an invariant breaks (and anything else only on a bug), and a
``main()`` that hands ``check`` to ``run``. ``tests/test_fuzz_corpus.py`` runs every
``check`` on the seed corpus in the normal suite, without atheris.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import cast

__all__ = ["CORPUS", "chunks", "instrumented", "pure_copy", "run"]

CORPUS = Path(__file__).resolve().parent / "corpus"
"""The seed corpus: one directory per target (its module name without ``fuzz_``)."""


def run(check: Callable[[bytes], None]) -> None:
    """Fuzz ``check`` with atheris, the command line's arguments going to libFuzzer
    (``-runs=N``, ``-max_total_time=S``, corpus directories)."""
    import atheris  # noqa: PLC0415 (only the fuzzing run needs it: the tests do not)

    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


def instrumented(fuzzing: bool) -> contextlib.AbstractContextManager[object]:
    """Around a target's imports: when ``fuzzing`` (the target runs as a program), the
    Python code of wsapi and h11 imported inside is instrumented for coverage (the pure
    copy's too, if made inside). The compiled twins are C, which guides nothing without a
    sanitizer build, but their results are compared with the Python code's."""
    if not fuzzing:
        return contextlib.nullcontext()
    import atheris  # noqa: PLC0415

    return cast(
        "contextlib.AbstractContextManager[object]",
        atheris.instrument_imports(include=["wsapi", "h11"]),
    )


def chunks(data: bytes, cuts: bytes) -> Iterator[bytes]:
    """``data`` in pieces whose sizes the bytes of ``cuts`` choose (1 to 256 each; the
    rest in one piece once ``cuts`` runs out): how the network may hand bytes over."""
    pos = 0
    for size in cuts:
        if pos >= len(data):
            return
        yield data[pos : pos + size + 1]
        pos += size + 1
    if pos < len(data):
        yield data[pos:]


_PURE: dict[str, ModuleType] = {}


def pure_copy(name: str) -> ModuleType:
    """The module ``name`` of wsapi from a second import of the package with
    ``WSAPI_PURE_PYTHON`` set: the pure-Python build, in this process, beside the build
    that ``import wsapi`` gave (the compiled one, unless that was refused too). The two
    copies share no module object, so each runs its own code."""
    if name in _PURE:
        return _PURE[name]
    ours = {key: value for key, value in sys.modules.items() if key.split(".")[0] == "wsapi"}
    before = os.environ.get("WSAPI_PURE_PYTHON")
    for key in ours:
        del sys.modules[key]
    os.environ["WSAPI_PURE_PYTHON"] = "1"
    try:
        module = importlib.import_module(name)
        for key, value in list(sys.modules.items()):
            if key.split(".")[0] == "wsapi":
                _PURE[key] = value
    finally:
        if before is None:
            del os.environ["WSAPI_PURE_PYTHON"]
        else:
            os.environ["WSAPI_PURE_PYTHON"] = before
        for key in [key for key in sys.modules if key.split(".")[0] == "wsapi"]:
            del sys.modules[key]
        sys.modules.update(ours)
    return module
