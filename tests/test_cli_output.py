"""What the command line prints: the event lines and JSON records of each layout."""

from __future__ import annotations

import json

import pytest

from wsapi import CloseEvent, ConnectionFailure, MessageEvent
from wsapi.cli.output import Output


def _lines(capsys: pytest.CaptureFixture[str]) -> tuple[list[str], list[str]]:
    captured = capsys.readouterr()
    return captured.out.splitlines(), captured.err.splitlines()


def test_log_layout_escapes_what_the_peer_sends(capsys: pytest.CaptureFixture[str]) -> None:
    """Event lines escape terminal controls in text and close reasons; no colour off a tty."""
    output = Output("log", color="auto")
    output.on_message(MessageEvent("message", data="a\x1b]0;pwned\x07b\nline 2"))
    output.on_message(MessageEvent("message", data=b"\x00" * 40))
    output.on_close(CloseEvent("close", code=4000, reason="\x9b2J", wasClean=True))
    out, _ = _lines(capsys)
    assert out == [
        "message  text (19 bytes): a\\x1b]0;pwned\\x07b",
        "         line 2",
        "message  ArrayBuffer (40 bytes): " + " ".join(["00"] * 32) + " …",
        'close    code=4000 reason="\\x9b2J" wasClean=true',
    ]


def test_pipe_layout_writes_data_on_stdout_and_events_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In pipe mode a message is its data on stdout; close goes to stderr."""
    output = Output("pipe", binary_format="base64")
    output.on_message(MessageEvent("message", data="as is\x1b"))
    output.on_message(MessageEvent("message", data=b"\xff"))
    output.on_close(CloseEvent("close", code=1006, wasClean=False))
    out, err = _lines(capsys)
    assert out == ["as is\x1b", "/w=="]
    assert err == ['close    code=1006 (abnormal closure) reason="" wasClean=false']


def test_jsonl_layout_records(capsys: pytest.CaptureFixture[str]) -> None:
    """--jsonl writes one object per event with the event's attributes."""
    output = Output("jsonl")
    output.on_message(MessageEvent("message", data="hé", origin="ws://h"))
    output.on_close(CloseEvent("close", code=1000, reason="done", wasClean=True))
    out, _ = _lines(capsys)
    message, close = (json.loads(line) for line in out)
    assert message == {**message, "event": "message", "type": "text", "data": "hé", "size": 3}
    assert message["origin"] == "ws://h"
    assert close == {**close, "event": "close", "code": 1000, "reason": "done", "wasClean": True}


def test_quiet_hides_clean_events_but_not_failures(capsys: pytest.CaptureFixture[str]) -> None:
    """--quiet drops notes and a clean close, never an unclean one."""
    output = Output("pipe", quiet=True)
    output.info("connecting")
    output.on_close(CloseEvent("close", code=1000, wasClean=True))
    output.on_close(CloseEvent("close", code=1006, wasClean=False))
    _, err = _lines(capsys)
    assert err == ['close    code=1006 (abnormal closure) reason="" wasClean=false']


def test_close_line_names_a_close_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    """A failure given with the close event (close_timeout) ends the close line, and is a
    member of the close record in --jsonl."""
    failure = ConnectionFailure("close_timeout", "no Close from the server within 0.3 s")
    event = CloseEvent("close", code=1006, wasClean=False)
    Output("log").on_close(event, failure)
    Output("jsonl").on_close(event, failure)
    out, _ = _lines(capsys)
    assert out[0] == (
        'close    code=1006 (abnormal closure) reason="" wasClean=false: '
        "no Close from the server within 0.3 s [close_timeout]"
    )
    assert json.loads(out[1])["failure"] == {
        "kind": "close_timeout",
        "reason": "no Close from the server within 0.3 s",
    }
