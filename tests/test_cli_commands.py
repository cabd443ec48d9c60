"""The slash commands of interactive mode (``wsapi.cli.commands``), parsed without a
connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsapi.cli.commands import Command, Text, help_text, parse_binary, parse_close, parse_line


def test_lines_are_text_commands_or_escaped_slashes() -> None:
    """A plain line is text; ``/name args`` a command (aliases resolved); ``//`` sends ``/``."""
    assert parse_line("hello") == Text("hello")
    assert parse_line("/close 4000 bye now") == Command("close", "4000 bye now")
    assert parse_line("/BUFFERED") == Command("state", "")
    assert parse_line("/q") == Command("quit", "")
    assert parse_line("//etc/passwd") == Text("/etc/passwd")
    assert parse_line("/") == Text("/")
    assert parse_line("/ not a command") == Text("/ not a command")


def test_binary_argument_is_hex_base64_or_a_file(tmp_path: Path) -> None:
    """/binary takes hex (spaces, colons, 0x allowed), base64:DATA (padding optional), @FILE."""
    assert parse_binary("00 ff:10") == b"\x00\xff\x10"
    assert parse_binary("0xCAFE") == b"\xca\xfe"
    assert parse_binary("base64:AAH+/w") == b"\x00\x01\xfe\xff"
    file = tmp_path / "data.bin"
    file.write_bytes(b"\x01\x02")
    assert parse_binary(f"@{file}") == b"\x01\x02"
    for bad in ("", "abc", "zz", "base64:!!"):
        with pytest.raises(ValueError, match=r"needs data|not hex|not base64"):
            parse_binary(bad)
    with pytest.raises(FileNotFoundError):
        parse_binary(f"@{tmp_path / 'missing'}")


def test_close_argument_is_an_optional_code_and_a_reason_with_spaces() -> None:
    """/close gives ws.close() nothing, a code, or a code and the rest of the line."""
    assert parse_close("") == (None, None)
    assert parse_close("4000") == (4000, None)
    assert parse_close("4000 going  away now") == (4000, "going  away now")
    with pytest.raises(ValueError, match="numeric code"):
        parse_close("bye")
    assert "/close [code [reason]]" in help_text()
