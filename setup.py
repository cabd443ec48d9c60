"""Builds the optional compiled hot path: the engine, the pump, its timers, the socket
transport, the DOM events and the WebSocket from their own sources (``engine.py``,
``pump.py``, ``timers.py``, ``socket_transport.py``, ``events.py``, ``websocket.py``, with the
``.pxd`` beside each), and the compiled twins ``wsapi.protocol._speedups``,
``wsapi.protocol._plain_head``, ``wsapi._reading``, ``wsapi._socket`` and
``wsapi._cpython_calls``.

Everything else is in pyproject.toml. The extension is optional: without Cython or a C
compiler the build goes on without it, and the pure-Python code runs (same behaviour).
"""

from __future__ import annotations

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Build extensions, but never fail the installation for them."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            print(f"wsapi: building the compiled speedups failed ({exc}); using pure Python")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"wsapi: building {ext.name} failed ({exc}); using pure Python")


def extensions() -> list[Extension]:
    if os.environ.get("WSAPI_NO_EXTENSIONS"):
        return []
    try:
        from Cython.Build import cythonize  # noqa: PLC0415 (optional at build time)
    except ImportError:
        print("wsapi: Cython is not available; installing the pure-Python code only")
        return []
    compiled = [
        # Compiled from their own sources, with the .pxd beside each (protocol/_build.py:
        # SOURCE_BUILDS).
        Extension("wsapi.protocol.engine", ["src/wsapi/protocol/engine.py"]),
        Extension("wsapi.timers", ["src/wsapi/timers.py"]),
        Extension("wsapi.socket_transport", ["src/wsapi/socket_transport.py"]),
        Extension("wsapi.pump", ["src/wsapi/pump.py"]),
        Extension("wsapi.events", ["src/wsapi/events.py"]),
        Extension("wsapi.websocket", ["src/wsapi/websocket.py"]),
        Extension("wsapi.protocol._speedups", ["src/wsapi/protocol/_speedups.pyx"]),
        Extension("wsapi.protocol._plain_head", ["src/wsapi/protocol/_plain_head.pyx"]),
        Extension("wsapi._reading", ["src/wsapi/_reading.pyx"]),
        Extension("wsapi._socket", ["src/wsapi/_socket.pyx"]),
        Extension("wsapi._cpython_calls", ["src/wsapi/_cpython_calls.pyx"]),
    ]
    # include_path: the modules cimport one another's .pxd files.
    # annotation_typing off: the .py sources' annotations are for type checkers; their C
    # types are in their .pxd files.
    return list(
        cythonize(
            compiled,
            quiet=True,
            include_path=["src"],
            compiler_directives={"annotation_typing": False},
        )
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
