"""The package's version: one place, read by the package, the User-Agent header and the
build (pyproject.toml's dynamic version)."""

__version__ = "0.1.0"
