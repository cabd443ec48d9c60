"""The command line's parts that need no connection: slash commands and option values."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from wsapi.cli import build_agent, build_parser
from wsapi.cli_commands import Command, Text, help_text, parse_binary, parse_close, parse_line


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


def test_sizes_and_seconds_are_parsed_with_units_and_none() -> None:
    """--max-size takes K/M/G suffixes; timeouts take 0, none or inf for no limit."""
    parser = build_parser()
    args = parser.parse_args(["--max-size", "1M", "--open-timeout", "none", "-p", "a,b"])
    assert args.max_size == 1024 * 1024
    assert args.open_timeout == 0
    agent = build_agent(args, embedded=False)
    assert agent.max_message_size == 1024 * 1024
    assert agent.open_timeout is None
    assert build_parser().parse_args(["--max-size", "64KiB"]).max_size == 65536
    assert build_parser().parse_args(["-w", "inf"]).wait == float("inf")


def test_agent_settings_from_options() -> None:
    """Headers, --auth, the standard, --compression, --no-proxy and -k reach the UserAgent;
    the embedded server never goes through a proxy from the environment."""
    args = build_parser().parse_args(
        ["-H", "X-A: 1", "--auth", "u:p", "--standard", "whatwg", "--compression", "none", "-k"]
    )
    agent = build_agent(args, embedded=False)
    assert agent.headers == (("X-A", "1"), ("Authorization", "Basic dTpw"))
    assert (agent.standard, agent.compression, agent.proxy) == ("whatwg", None, "env")
    assert agent.ssl_context is not None
    assert agent.ssl_context.check_hostname is False
    assert build_agent(build_parser().parse_args([]), embedded=True).proxy is None
    assert build_agent(build_parser().parse_args(["--no-proxy"]), embedded=False).proxy is None


def test_bad_header_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """-H without a colon exits 2 with the reason."""
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["-H", "nocolon"])
    assert raised.value.code == 2
    assert "'Name: value'" in capsys.readouterr().err


def test_parser_help_mentions_every_option_group() -> None:
    """The option groups a user looks for are in --help."""
    text = build_parser().format_help()
    for group in ("connection:", "limits and timers:", "messages:", "output:", "echo server:"):
        assert group in text
    assert isinstance(build_parser(), argparse.ArgumentParser)
