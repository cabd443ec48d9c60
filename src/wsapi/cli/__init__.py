"""The ``wsapi`` command line (docs/cli.md), one job per module: ``main`` (the modes and the
exit status), ``options`` (the arguments), ``session`` (one connection and pipe mode),
``output`` (what is printed), ``interactive`` (the line editor) and ``commands`` (its slash
commands). It uses the library's public API only, and needs the ``cli`` extra."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
