"""Which build runs (``wsapi.protocol._build``): a compiled module is in use when it was built,
refused under ``WSAPI_PURE_PYTHON``, quietly left out when it was not built, and an error
naming it when it was built but does not import; ``wsapi --version`` says which build runs.
The choice is made once, at import, so each case runs in a fresh interpreter."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import wsapi
from support import TIMEOUT
from wsapi import events, websocket
from wsapi.protocol import _build, codec, handshake

COMPILED_MODULES = (
    "wsapi.protocol.engine",
    "wsapi.timers",
    "wsapi.socket_transport",
    "wsapi.pump",
    "wsapi.events",
    "wsapi.websocket",
    "wsapi.protocol._speedups",
    "wsapi.protocol._plain_head",
    "wsapi._reading",
    "wsapi._socket",
    "wsapi._cpython_calls",
)
"""Every compiled module setup.py builds."""


def is_built(name: str) -> bool:
    """Whether the compiled module ``name`` was built (for a module compiled from its own
    source, whether its extension sits beside the ``.py`` file)."""
    if name in _build.SOURCE_BUILDS:
        folder = Path(wsapi.__file__).parent.joinpath(*name.split(".")[1:-1])
        base = name.rpartition(".")[2]
        return any((folder / (base + suffix)).exists() for suffix in EXTENSION_SUFFIXES)
    return importlib.util.find_spec(name) is not None


BROKEN = textwrap.dedent(
    """
    import importlib.machinery
    import sys

    class Broken:
        # A built extension whose loading fails, as one built for another Python does.
        def create_module(self, spec):
            raise ImportError("undefined symbol: wsapi_broken_on_purpose")

        def exec_module(self, module):
            pass

    class BrokenBuild:
        def find_spec(self, name, path=None, target=None):
            if name in BROKEN_MODULES:
                origin = f"/built/{name}.so"
                return importlib.machinery.ModuleSpec(name, Broken(), origin=origin)
            return None

    sys.meta_path.insert(0, BrokenBuild())
    """
)
"""An import hook under which the modules ``BROKEN_MODULES`` names exist but fail to load."""


def broken(names: set[str]) -> str:
    """Code that makes the compiled modules ``names`` exist but fail to load."""
    return f"BROKEN_MODULES = {names!r}\n{BROKEN}"


def run(
    code: str, *, pure: bool = False, path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter with warnings as errors, with ``WSAPI_PURE_PYTHON``
    set only when ``pure``, and ``path`` (a copy of the package) first on ``sys.path``."""
    env = {name: value for name, value in os.environ.items() if name != "WSAPI_PURE_PYTHON"}
    if pure:
        env["WSAPI_PURE_PYTHON"] = "1"
    if path is not None:
        env["PYTHONPATH"] = str(path)
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60 * TIMEOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        check=False,
    )


def build_in(version: str) -> tuple[set[str], set[str], str]:
    """The compiled modules, the modules not built, and the pure-Python reason that a
    ``wsapi --version`` line names."""
    found = re.fullmatch(r"wsapi \S+ \((.*); \w+ \S+, event loop: \w+\)", version)
    assert found is not None, version
    build = found[1]
    if build.startswith("pure Python: "):
        return set(), set(), build.removeprefix("pure Python: ")
    compiled, _, not_built = build.removeprefix("compiled: ").partition("; not built: ")
    return set(compiled.split(", ")), set(filter(None, not_built.split(", "))), ""


@pytest.mark.parametrize("name", COMPILED_MODULES)
def test_built_module_that_does_not_import_is_an_error_naming_it(name: str) -> None:
    """A compiled module that exists but fails to load makes ``import wsapi`` raise an
    ImportError that names the module, its file and the cause; no fallback to pure Python.
    (A module compiled from its own source is imported as itself, and one it cimports is
    imported first: Python's own ImportError, which names the extension's file, comes out
    unchanged.)"""
    result = run(broken({name}) + "import wsapi\n")
    assert result.returncode == 1, result.stdout
    last = result.stderr.strip().splitlines()[-1]
    cimported_by = _build.CIMPORTED_TWINS.get(name)
    if name in _build.SOURCE_BUILDS or (cimported_by is not None and is_built(cimported_by)):
        # (A compiled module cimports the twin: the twin's import comes first, unchanged too.)
        assert last == "ImportError: undefined symbol: wsapi_broken_on_purpose"
        assert f"/built/{name}.so" not in result.stdout
        return
    assert last == (
        f"ImportError: wsapi: the compiled module {name} (/built/{name}.so) was built but does "
        "not import: undefined symbol: wsapi_broken_on_purpose. Rebuild it (pip install the "
        "package again), or set WSAPI_PURE_PYTHON=1 to run the pure-Python code."
    )


def test_pure_python_variable_refuses_every_compiled_module() -> None:
    """Under WSAPI_PURE_PYTHON no compiled module is even looked at (broken ones included),
    and ``wsapi --version`` says why the build is pure Python."""
    code = """
        from wsapi.cli import main
        print(sorted(
            name for name in BROKEN_MODULES & set(sys.modules)
            if not sys.modules[name].__file__.endswith(".py")
        ))
        main(["--version"])
        """
    result = run(broken(set(COMPILED_MODULES)) + textwrap.dedent(code), pure=True)
    assert result.returncode == 0, result.stderr
    loaded, version = result.stdout.splitlines()
    assert loaded == "[]"  # (The modules compiled from their own source run as .py files.)
    assert build_in(version) == (set(), set(), "WSAPI_PURE_PYTHON is set")


def _without_extensions(tmp_path: Path, left_out: set[str]) -> Path:
    """A copy of the package without the built files of the modules ``left_out``."""
    basenames = {name.rpartition(".")[2] for name in left_out}
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)

    def ignore(directory: str, names: list[str]) -> set[str]:
        return {
            name
            for name in names
            if name == "__pycache__"
            or (name.partition(".")[0] in basenames and name.endswith(suffixes))
        }

    shutil.copytree(Path(wsapi.__file__).parent, tmp_path / "wsapi", ignore=ignore)
    return tmp_path


@pytest.mark.parametrize(
    "left_out", [set(COMPILED_MODULES), {"wsapi.websocket"}], ids=["none-built", "one-not-built"]
)
def test_modules_not_built_leave_their_python_code_quietly(
    tmp_path: Path, left_out: set[str]
) -> None:
    """A compiled module that was not built is no error and no warning: its Python code runs,
    and ``wsapi --version`` names what is compiled and what was not built."""
    code = """
        import wsapi
        from wsapi.cli import main
        print(wsapi.__file__)
        main(["--version"])
        """
    result = run(textwrap.dedent(code), path=_without_extensions(tmp_path, left_out))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    origin, version = result.stdout.splitlines()
    assert origin == str(tmp_path / "wsapi" / "__init__.py")
    built = {name for name in COMPILED_MODULES if is_built(name)}
    if built - left_out:
        assert build_in(version) == (
            built - left_out,
            set(COMPILED_MODULES) - built | left_out,
            "",
        )
    else:
        assert build_in(version) == (set(), set(), "the extensions were not built")


def test_version_names_the_build_in_use() -> None:
    """``wsapi --version`` lists exactly the compiled modules that were built (all four, in
    CI), or says the build is pure Python and why; the list matches what is wired in."""
    result = subprocess.run(
        [sys.executable, "-m", "wsapi", "--version"],
        capture_output=True,
        text=True,
        timeout=60 * TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    compiled, not_built, reason = build_in(result.stdout.strip())
    built = {name for name in COMPILED_MODULES if is_built(name)}
    if _build.PURE_PYTHON:
        assert (compiled, reason) == (set(), "WSAPI_PURE_PYTHON is set")
    elif built:
        assert (compiled, not_built) == (built, set(COMPILED_MODULES) - built)
    else:
        assert reason == "the extensions were not built"
    # This interpreter's record tells the truth about what is wired in.
    assert set(_build.in_use()[0]) == compiled
    assert ("wsapi.protocol._speedups" in compiled) == codec.SPEEDUPS
    assert ("wsapi._socket" in sys.modules) == ("wsapi._socket" in compiled)
    assert (handshake._compiled_read_plain_head is not None) == (
        "wsapi.protocol._plain_head" in compiled
    )
    for module in (websocket, events):
        assert (module.__name__ in compiled) == (not (module.__file__ or "").endswith(".py"))


def test_a_build_older_than_its_source_is_reported_in_a_checkout(tmp_path: Path) -> None:
    """In a source checkout, importing a module compiled from its own source whose ``.py``
    changed after the build warns that the old code runs, naming both files; a fresh build,
    or an installed package (no checkout around it), imports quietly."""
    if _build.PURE_PYTHON or not is_built("wsapi.websocket"):
        pytest.skip("the compiled build of wsapi.websocket is not in use")
    checkout = tmp_path / "checkout"
    (checkout / "src").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("")
    shutil.copytree(Path(wsapi.__file__).parent, checkout / "src" / "wsapi")
    source = checkout / "src" / "wsapi" / "websocket.py"
    # (The extension this interpreter imports: others, built for other Pythons, may sit beside.)
    extension = next(
        path
        for suffix in EXTENSION_SUFFIXES
        if (path := checkout / "src" / "wsapi" / ("websocket" + suffix)).exists()
    )
    built = os.stat(extension)
    os.utime(source, (built.st_atime, built.st_mtime - 10))
    assert run("import wsapi\n", path=checkout / "src").returncode == 0
    os.utime(source, (built.st_atime, built.st_mtime + 10))
    result = run("import wsapi\n", path=checkout / "src")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"RuntimeWarning: wsapi: {extension} was built "
        f"before {source} last changed, so the old code runs: rebuild it (pip install -e . "
        "again), or set WSAPI_PURE_PYTHON=1 to run the source"
    )
    (checkout / "pyproject.toml").unlink()  # Not a checkout: an installed package.
    assert run("import wsapi\n", path=checkout / "src").returncode == 0


def this_interpreters_extension(name: str) -> Path | None:
    """The file of the compiled module ``name`` built for this interpreter, if any."""
    folder = Path(wsapi.__file__).parent.joinpath(*name.split(".")[1:-1])
    path = folder / (name.rpartition(".")[2] + EXTENSION_SUFFIXES[0])
    return path if path.exists() else None


@pytest.mark.skipif(shutil.which("nm") is None, reason="needs binutils' nm (with the compiler)")
@pytest.mark.parametrize("name", COMPILED_MODULES)
def test_a_compiled_module_exports_its_init_function_only(name: str) -> None:
    """An extension defines no global function but ``PyInit_<module>``. (A ``.pxd`` that
    declares a C function under the name of a function of the ``.py`` file makes Cython
    compile the Python body as that C function: named like one of CPython's, it would stand
    in for the interpreter's own wherever the platform binds a call to its own image.)"""
    path = this_interpreters_extension(name)
    if path is None:
        pytest.skip(f"{name} is not built for this interpreter")
    listing = subprocess.run(
        ["nm", "-D", "--defined-only", str(path)],
        capture_output=True,
        text=True,
        timeout=60 * TIMEOUT,
        check=True,
    ).stdout
    functions = [line.split()[2] for line in listing.splitlines() if line.split()[1:2] == ["T"]]
    assert functions == [f"PyInit_{name.rpartition('.')[2]}"]
