"""The architecture's rules, checked on the source: the engine does no I/O, and each layer
imports only the layers before it (DESIGN.md section 3)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "wsapi"
IO_MODULES = {"asyncio", "socket", "ssl", "selectors"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            prefix = "." * node.level
            names.add(prefix + (node.module or ""))
    return names


@pytest.mark.parametrize("path", sorted((SRC / "protocol").glob("*.py")), ids=lambda p: p.name)
def test_engine_does_no_io(path: Path) -> None:
    """No module of the engine imports asyncio, socket, ssl or selectors."""
    roots = {name.split(".")[0] for name in imported_modules(path) if not name.startswith(".")}
    assert not roots & IO_MODULES


@pytest.mark.parametrize("path", sorted((SRC / "protocol").glob("*.py")), ids=lambda p: p.name)
def test_engine_imports_only_itself(path: Path) -> None:
    """The engine's relative imports stay inside ``protocol/``."""
    assert not {name for name in imported_modules(path) if name.startswith("..")}


def test_codec_is_self_contained() -> None:
    """The hot-path module imports nothing from the package but its own compiled twin and
    the build switch (``_build``, which imports nothing from the package), so it can be
    compiled alone."""
    relative = {n for n in imported_modules(SRC / "protocol" / "codec.py") if n.startswith(".")}
    assert relative <= {"._speedups", "._build"}
    assert not {n for n in imported_modules(SRC / "protocol" / "_build.py") if n.startswith(".")}
