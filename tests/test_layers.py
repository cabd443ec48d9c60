"""The architecture's rules, checked on the source: the engine does no I/O, and each layer
imports only the layers before it (DESIGN.md section 3)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "wsapi"
IO_MODULES = {"asyncio", "socket", "ssl", "selectors"}

LAYERS: list[tuple[str, list[str]]] = [
    # 1. The package version, and WebSocket URL parsing.
    ("url", ["wsapi._version", "wsapi.url"]),
    # 2. DOMException, DOM events and EventTarget, AbortController and AbortSignal, Blob,
    #    the Web IDL string conversions they share, and the Streams standard's streams. No
    #    I/O (asyncio only for the loop's timers, tasks and futures, which the engine above
    #    must not import).
    (
        "dom",
        [
            "wsapi.errors",
            "wsapi.cpython_calls",
            "wsapi._cpython_calls",
            "wsapi.events",
            "wsapi.abort",
            "wsapi.blob",
            "wsapi.webidl",
            "wsapi.streams",
        ],
    ),
    # 3. The sans-I/O RFC 6455 engine: the whole package, its compiled module included.
    ("protocol", ["wsapi.protocol.*"]),
    # 4. UserAgent, and the values kept per event loop (the agent's connection throttle, the
    #    transport's timers, the API's open sockets).
    #    The reconnect policy (options and backoff state, sans-I/O) is settings too.
    ("agent", ["wsapi.agent", "wsapi.loops", "wsapi.reconnect"]),
    # 5. The asyncio adapter: connect (TCP, TLS, proxy), the pump between socket and engine,
    #    timers; and the compiled read path.
    (
        "transport",
        [
            "wsapi.timers",
            "wsapi.pump",
            "wsapi.opening",
            "wsapi.socket_transport",
            "wsapi.socket_calls",
            "wsapi.proxy",
            "wsapi.deadlines",
            "wsapi._reading",
            "wsapi._socket",
        ],
    ),
    # 6. The API objects and their compiled twins, and the package that exports them.
    #    WebSocketStream beside WebSocket, on the same connection machinery, and
    #    wsapi.connect's Connection on WebSocketStream, and wsapi.sync's blocking one on it.
    (
        "api",
        [
            "wsapi",
            "wsapi.websocket",
            "wsapi.websocketstream",
            "wsapi.connection",
            "wsapi.reconnecting",
            "wsapi.sync",
        ],
    ),
    # 7. Programs on the library: the command line and its echo server.
    (
        "tools",
        [
            "wsapi.__main__",
            "wsapi.cli.*",
            "wsapi.echo",
        ],
    ),
]
"""The layers, lowest first, each with its modules: a name, or ``package.*`` for a package
and every module under it. A module may import its own layer and the layers before it.
A module found in the source but in no layer fails the test until it is placed here."""

SOURCE_SUFFIXES = (".py", ".pyi", ".pyx", ".pxd")
"""A module's files: Python, its stub, and a compiled module's Cython source and header."""

CYTHON_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(?P<module>[.\w]+)[ \t]+c?import[ \t]+(?P<names>\([^)]*\)|[^\n]*)"
    r"|c?import[ \t]+(?P<plain>[^\n]*))",
    re.MULTILINE,
)


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


def module_name(path: Path) -> str:
    """The dotted name of a source file under src/wsapi (a package by its own name)."""
    parts = ["wsapi", *path.relative_to(SRC).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, list[Path]]:
    """Every module of the package, with its source files."""
    modules: dict[str, list[Path]] = {}
    for path in sorted(SRC.rglob("*")):
        if path.suffix in SOURCE_SUFFIXES:
            modules.setdefault(module_name(path), []).append(path)
    return modules


MODULES = source_files()


def statements(path: Path) -> Iterator[tuple[int, int, str | None, list[str]]]:
    """The import statements of a file, at any depth (in functions, under TYPE_CHECKING):
    (line, level, module, names) for ``from``, (line, 0, None, modules) for ``import``.
    Cython files are read line by line (``cimport`` too), Python files with ast."""
    text = path.read_text()
    if path.suffix in (".pyx", ".pxd"):
        for match in CYTHON_IMPORT.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            if match["module"] is not None:
                module = match["module"]
                level = len(module) - len(module.lstrip("."))
                names = match["names"].split("#")[0].strip("() \n").replace("\n", " ")
                aliases = [name.split()[0] for name in names.split(",") if name.strip()]
                yield line, level, module[level:] or None, aliases
            else:
                plain = match["plain"].split("#")[0]
                yield line, 0, None, [name.split()[0] for name in plain.split(",") if name]
        return
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            yield node.lineno, node.level, node.module, names
        elif isinstance(node, ast.Import):
            yield node.lineno, 0, None, [alias.name for alias in node.names]


def package_imports(name: str) -> Iterator[tuple[Path, int, str]]:
    """The modules of the package that module ``name`` imports: (file, line, module)."""
    is_package = any(path.stem == "__init__" for path in MODULES[name])
    package = name if is_package else name.rpartition(".")[0]
    for path in MODULES[name]:
        for line, level, module, names in statements(path):
            if level:
                base = ".".join(package.split(".")[: len(package.split(".")) - level + 1])
                target = f"{base}.{module}" if module else base
            elif module is not None:
                target = module
            else:  # import a, b
                for imported in names:
                    if imported.split(".")[0] == "wsapi":
                        yield path, line, imported
                continue
            if target.split(".")[0] != "wsapi":
                continue
            # ``from package import name``: a submodule, or a name the package defines.
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            yield from ((path, line, found) for found in submodules or [target])


def layer_of(name: str) -> int | None:
    """The index in LAYERS of the layer that lists module ``name``, or None."""
    for index, (_, modules) in enumerate(LAYERS):
        for entry in modules:
            if name == entry or (entry.endswith(".*") and f"{name}.".startswith(entry[:-1])):
                return index
    return None


def test_every_module_has_a_layer() -> None:
    """Every module of src/wsapi (Python, stub or Cython) is placed in a layer."""
    unplaced = [name for name in MODULES if layer_of(name) is None]
    assert not unplaced, f"add these modules to a layer of LAYERS: {unplaced}"


def test_every_listed_module_exists() -> None:
    """Each name in LAYERS is a module of the package (the table follows renames)."""
    listed = {entry for _, modules in LAYERS for entry in modules}
    missing = [entry for entry in listed if entry.removesuffix(".*") not in MODULES]
    assert not missing, f"LAYERS lists modules that do not exist: {missing}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_imports_only_its_layer_and_lower(name: str) -> None:
    """The module imports modules of its own layer or lower ones (at any depth: in
    functions and under TYPE_CHECKING too, since a type-only import upward still ties the
    lower layer to the higher one's names)."""
    own = layer_of(name)
    assert own is not None, f"{name} is in no layer of LAYERS"
    wrong = []
    for path, line, imported in package_imports(name):
        if imported not in MODULES:
            pytest.fail(f"{path.relative_to(SRC)}:{line} imports {imported}: no such module")
        layer = layer_of(imported)
        assert layer is not None, f"{imported} is in no layer of LAYERS"
        if layer > own:
            wrong.append(
                f"{path.relative_to(SRC)}:{line} imports {imported} ({LAYERS[layer][0]}), "
                f"above {name}'s layer ({LAYERS[own][0]})"
            )
    assert not wrong, "\n".join(wrong)


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
