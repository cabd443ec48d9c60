"""Collects the Python examples of README.md and docs/**/*.md as tests: the hooks and the
fixture live in tests/doc_examples.py (type-checked with the tests)."""

from tests.doc_examples import (  # noqa: F401
    example_echo_url,
    pytest_collect_file,
    pytest_collection_modifyitems,
)
