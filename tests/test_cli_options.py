"""The command line's options (``wsapi.cli.options``): the values they take and the
``UserAgent`` they describe, without a connection."""

from __future__ import annotations

import argparse

import pytest

from wsapi.cli.options import build_agent, build_parser

VERSION = "wsapi (test)"


def test_sizes_and_seconds_are_parsed_with_units_and_none() -> None:
    """--max-size takes K/M/G suffixes; timeouts take 0, none or inf for no limit."""
    parser = build_parser(VERSION)
    args = parser.parse_args(["--max-size", "1M", "--open-timeout", "none", "-p", "a,b"])
    assert args.max_size == 1024 * 1024
    assert args.open_timeout == 0
    agent = build_agent(args, embedded=False)
    assert agent.max_message_size == 1024 * 1024
    assert agent.open_timeout is None
    assert build_parser(VERSION).parse_args(["--max-size", "64KiB"]).max_size == 65536
    assert build_parser(VERSION).parse_args(["-w", "inf"]).wait == float("inf")


def test_agent_settings_from_options() -> None:
    """Headers, --auth, the standard, --compression, --no-proxy and -k reach the UserAgent;
    the embedded server never goes through a proxy from the environment."""
    args = build_parser(VERSION).parse_args(
        ["-H", "X-A: 1", "--auth", "u:p", "--standard", "whatwg", "--compression", "none", "-k"]
    )
    agent = build_agent(args, embedded=False)
    assert agent.headers == (("X-A", "1"), ("Authorization", "Basic dTpw"))
    assert (agent.standard, agent.compression, agent.proxy) == ("whatwg", None, "env")
    assert agent.ssl_context is not None
    assert agent.ssl_context.check_hostname is False
    assert build_agent(build_parser(VERSION).parse_args([]), embedded=True).proxy is None
    assert (
        build_agent(build_parser(VERSION).parse_args(["--no-proxy"]), embedded=False).proxy is None
    )


def test_bad_header_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """-H without a colon exits 2 with the reason."""
    with pytest.raises(SystemExit) as raised:
        build_parser(VERSION).parse_args(["-H", "nocolon"])
    assert raised.value.code == 2
    assert "'Name: value'" in capsys.readouterr().err


def test_parser_help_mentions_every_option_group() -> None:
    """The option groups a user looks for are in --help."""
    text = build_parser(VERSION).format_help()
    for group in ("connection:", "limits and timers:", "messages:", "output:", "echo server:"):
        assert group in text
    assert isinstance(build_parser(VERSION), argparse.ArgumentParser)
