"""The ``wsapi`` command, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys

from support import TIMEOUT


def test_no_url_round_trip_with_embedded_echo_server() -> None:
    """``python -m wsapi`` with no URL opens, echoes text and binary, and closes cleanly."""
    result = subprocess.run(
        [sys.executable, "-m", "wsapi"],
        capture_output=True,
        text=True,
        timeout=30 * TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [line.split()[0] for line in result.stdout.splitlines()]
    assert lines == ["embedded", "connecting", "open", "message", "message", "close"]
    assert "Hello from wsapi" in result.stdout
    assert "code=1000 reason='done' wasClean=True" in result.stdout


def test_bad_url_is_a_usage_error() -> None:
    """A URL that is not ws:// or wss:// is refused with a message and exit status 2."""
    result = subprocess.run(
        [sys.executable, "-m", "wsapi", "http://example.com/"],
        capture_output=True,
        text=True,
        timeout=30 * TIMEOUT,
        check=False,
    )
    assert result.returncode == 2
    assert "SyntaxError" in result.stderr
    assert "needs ws or wss" in result.stderr
