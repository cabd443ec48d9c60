"""The ``wsapi`` command, run as a user runs it: ``python -m wsapi`` in a subprocess, against
the embedded echo server and against a ``websockets`` server started here, with standard
input a pipe (pipe mode) or a pseudo-terminal (interactive mode)."""

from __future__ import annotations

import asyncio
import base64
import http
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from support import TIMEOUT, blocking_server

RUN_TIMEOUT = 20 * TIMEOUT
"""Seconds one run of the command may take before the test fails."""

PROXY_VARIABLES = ("http_proxy", "https_proxy", "ws_proxy", "wss_proxy", "all_proxy")


# The server: one websockets server whose path picks a behaviour.


async def _handler(connection: ServerConnection) -> None:
    assert connection.request is not None
    path = connection.request.path
    try:
        if path == "/close4000":
            await connection.close(4000, "go away")
            return
        if path == "/error1011":
            await connection.close(1011, "oops")
            return
        if path == "/headers":
            headers = {
                name.lower(): value for name, value in connection.request.headers.raw_items()
            }
            await connection.send(json.dumps(headers))
        if path == "/three":
            for text in ("one", "two", "three"):
                await connection.send(text)
        if path == "/binary":
            await connection.send(b"\x00\x01\xfe\xff")
        if path == "/drop":
            assert connection.transport is not None
            connection.transport.abort()
            return
        async for message in connection:
            if path == "/slow":
                await asyncio.sleep(0.5)
            await connection.send(message)
    except ConnectionClosed:
        pass


def _process_request(connection: ServerConnection, request: Request) -> Response | None:
    if request.path == "/missing":
        return connection.respond(http.HTTPStatus.NOT_FOUND, "no such endpoint\n")
    return None


def _select_subprotocol(
    connection: ServerConnection, subprotocols: Sequence[Subprotocol]
) -> Subprotocol | None:
    return Subprotocol("chat") if "chat" in subprotocols else None


@dataclass
class Servers:
    ws: str
    """ws://127.0.0.1:PORT (append a path)."""
    wss: str
    """wss://localhost:PORT, with a certificate from the test CA."""
    cafile: Path


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """A plain and a TLS websockets server on a loop in a thread, for the whole module."""
    ca = trustme.CA()
    cafile = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> list[Server]:
        return [
            await serve(
                _handler,
                "127.0.0.1",
                0,
                ssl=tls,
                process_request=_process_request,
                select_subprotocol=_select_subprotocol,
            )
            for tls in (None, context)
        ]

    started = asyncio.run_coroutine_threadsafe(start(), loop).result(10 * TIMEOUT)
    ports = [next(iter(server.sockets)).getsockname()[1] for server in started]
    try:
        yield Servers(f"ws://127.0.0.1:{ports[0]}", f"wss://localhost:{ports[1]}", cafile)
    finally:

        async def stop() -> None:
            for server in started:
                server.close()
                await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10 * TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10 * TIMEOUT)
        loop.close()


# Running the command.


def _env(**extra: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name.lower() not in PROXY_VARIABLES and name != "NO_COLOR"
    }
    env.update(extra)
    return env


def wsapi(
    *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m wsapi ARGS`` with ``input`` on stdin (none: /dev/null)."""
    return subprocess.run(
        [sys.executable, "-m", "wsapi", *args],
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=env or _env(),
        check=False,
    )


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def events(stderr: str) -> list[str]:
    """The names of the event lines in pipe mode's standard error."""
    return [line.split()[0] for line in stderr.splitlines() if line[:1] != " " and line.split()]


# The README's commands, with no terminal.


def test_no_url_no_input_runs_the_demo_round_trip() -> None:
    """``wsapi`` with no URL and no input (CI) echoes text and binary, closes cleanly, exits 0."""
    result = wsapi()
    assert result.returncode == 0, result.stderr
    assert "embedded echo server listening on ws://127.0.0.1:" in result.stdout
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names[names.index("open") :][:4] == ["open", "message", "message", "close"]
    assert "message  text (16 bytes): Hello from wsapi" in result.stdout
    assert "message  Blob (10 bytes): 00 01 02 20 62 69 6e 61 72 79" in result.stdout
    assert 'close    code=1000 (normal closure) reason="" wasClean=true' in result.stdout


def test_piped_line_to_embedded_server_prints_only_the_echo() -> None:
    """``printf 'hello\\n' | wsapi`` prints exactly ``hello`` on stdout and exits 0."""
    result = wsapi(input="hello\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n"
    assert events(result.stderr)[-2:] == ["open", "close"]


# Pipe mode against a server.


def test_pipe_mode_sends_lines_and_prints_replies_in_order(servers: Servers) -> None:
    """Each input line is a message; replies are stdout lines in order; events on stderr."""
    result = wsapi(f"{servers.ws}/echo", "--linger", "0.3", input="one\ntwo\r\n\nthree")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "one\ntwo\n\nthree\n"
    assert events(result.stderr) == ["connecting", "open", "close"]
    assert "wasClean=true" in result.stderr


def test_jsonl_output_is_one_parseable_object_per_event(servers: Servers) -> None:
    """--jsonl prints open (with the subprotocol), messages and close as JSON objects."""
    result = wsapi(
        f"{servers.ws}/binary", "--jsonl", "-p", "other,chat", "--linger", "0.3", input="hi\n"
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["event"] for record in records] == ["open", "message", "message", "close"]
    assert records[0]["protocol"] == "chat"
    assert records[0]["extensions"] == ""
    assert records[1]["type"] == "binary"
    assert records[1]["binaryType"] == "blob"
    assert base64.b64decode(records[1]["data_base64"]) == b"\x00\x01\xfe\xff"
    assert records[2] == {**records[2], "type": "text", "data": "hi", "size": 2}
    assert records[3] == {**records[3], "code": 1000, "reason": "", "wasClean": True}


def test_binary_messages_in_pipe_mode_follow_binary_format(servers: Servers) -> None:
    """A binary message is a hex line by default, base64 or raw bytes on request."""
    url = f"{servers.ws}/binary"
    assert wsapi(url, "-1").stdout == "0001feff\n"
    assert wsapi(url, "-1", "--binary-format", "base64").stdout == "AAH+/w==\n"
    raw = subprocess.run(
        [sys.executable, "-m", "wsapi", url, "-1", "--binary-format", "raw"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=RUN_TIMEOUT,
        env=_env(),
        check=False,
    )
    assert raw.stdout == b"\x00\x01\xfe\xff"


def test_binary_lines_and_arraybuffer_binary_type(servers: Servers) -> None:
    """-b sends lines as binary messages; --binary-type arraybuffer is what they arrive as."""
    result = wsapi(f"{servers.ws}/echo", "-b", "--linger", "0.3", input="hi\n")
    assert (result.returncode, result.stdout) == (0, "6869\n")
    result = wsapi(f"{servers.ws}/binary", "-1", "--jsonl", "--binary-type", "arraybuffer")
    assert json.loads(result.stdout.splitlines()[1])["binaryType"] == "arraybuffer"


def test_execute_sends_messages_then_closes(servers: Servers) -> None:
    """-x sends each message once open, without reading stdin, then closes cleanly."""
    result = wsapi(f"{servers.ws}/echo", "-x", "first", "-x", "second", "--linger", "0.3")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "first\nsecond\n"


def test_count_and_once_close_after_that_many_messages(servers: Servers) -> None:
    """-n 2 closes after the second message received, -1 after the first."""
    result = wsapi(f"{servers.ws}/three", "-n", "2", "-w", "inf")
    assert (result.returncode, result.stdout) == (0, "one\ntwo\n")
    result = wsapi(f"{servers.ws}/three", "--once", "-w", "inf")
    assert (result.returncode, result.stdout) == (0, "one\n")


def test_headers_origin_auth_and_user_agent_reach_the_server(servers: Servers) -> None:
    """-H, --origin, --auth and --user-agent are sent in the handshake request."""
    result = wsapi(
        f"{servers.ws}/headers",
        "-1",
        "-H",
        "X-Token: abc 123",
        "--origin",
        "http://app.example:8080/ignored/path",
        "--auth",
        "user:pa:ss",
        "--user-agent",
        "probe/1",
    )
    assert result.returncode == 0, result.stderr
    headers = json.loads(result.stdout)
    assert headers["x-token"] == "abc 123"
    assert headers["origin"] == "http://app.example:8080"
    assert headers["authorization"] == "Basic " + base64.b64encode(b"user:pa:ss").decode()
    assert headers["user-agent"] == "probe/1"


# Outcomes and exit statuses.


def test_refused_connection_prints_the_reason_and_exits_1() -> None:
    """A refused connection shows error with the reason, close 1006, and exits 1."""
    result = wsapi(f"ws://127.0.0.1:{free_port()}/")
    assert result.returncode == 1
    assert re.search(r"^error +127\.0\.0\.1:\d+ refused the connection \[refused\]$",
                     result.stderr, re.M)  # fmt: skip
    assert 'close    code=1006 (abnormal closure) reason="" wasClean=false' in result.stderr


def test_http_404_fails_the_connection_with_the_status(servers: Servers) -> None:
    """A 404 answer to the handshake is a failure that names the status; exit 1."""
    result = wsapi(f"{servers.ws}/missing")
    assert result.returncode == 1
    assert re.search(r"^error .*HTTP 404.*\[http_status\]$", result.stderr, re.M), result.stderr
    result = wsapi(f"{servers.ws}/missing", "--jsonl")
    error = json.loads(result.stdout.splitlines()[0])
    assert error["event"] == "error"
    assert error["failure"]["status_code"] == 404


def test_server_close_with_4000_is_shown_and_exits_3(servers: Servers) -> None:
    """A clean close by the server with code 4000 shows code and reason and exits 3."""
    result = wsapi(f"{servers.ws}/close4000", input="ignored\n")
    assert result.returncode == 3, result.stderr
    assert 'close    code=4000 reason="go away" wasClean=true' in result.stderr
    result = wsapi(f"{servers.ws}/error1011", "--jsonl")
    assert result.returncode == 3
    assert json.loads(result.stdout.splitlines()[-1])["code"] == 1011


def test_lost_connection_is_an_error_and_exits_1(servers: Servers) -> None:
    """TCP closed without a Close frame: error (connection lost), close 1006, exit 1."""
    result = wsapi(f"{servers.ws}/drop", "-w", "inf")
    assert result.returncode == 1
    assert events(result.stderr) == ["connecting", "open", "error", "close"]
    assert "[connection_lost]" in result.stderr


def test_message_over_max_size_fails_the_connection(servers: Servers) -> None:
    """--max-size 3 against a 4-byte message: the connection fails (1009 sent), exit 1."""
    result = wsapi(f"{servers.ws}/binary", "--max-size", "3", "-w", "inf")
    assert result.returncode == 1
    assert events(result.stderr) == ["connecting", "open", "error", "close"]
    assert result.stdout == ""


def test_close_timeout_is_named_on_the_close_line() -> None:
    """A server that never answers our Close: no error line, and the close line (1006,
    wasClean=false) says close_timeout ended it; exit 1."""
    with blocking_server(lambda _connection: None) as url:  # Reads, never answers.
        result = wsapi(url, "-x", "hi", "--close-timeout", "0.3")
    assert result.returncode == 1
    assert events(result.stderr) == ["connecting", "open", "close"]
    close_line = result.stderr.splitlines()[-1]
    assert close_line.startswith('close    code=1006 (abnormal closure) reason="" wasClean=false')
    assert close_line.endswith("[close_timeout]")


def test_open_timeout_bounds_a_silent_server() -> None:
    """--open-timeout: a server that accepts TCP and never answers fails with timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        started = time.monotonic()
        result = wsapi(f"ws://127.0.0.1:{port}/", "--open-timeout", "0.5")
    assert result.returncode == 1
    assert "[timeout]" in result.stderr
    assert time.monotonic() - started < 10 * TIMEOUT


def test_proxy_options_choose_the_route(servers: Servers) -> None:
    """--proxy and the *_proxy variables are used; --no-proxy goes direct."""
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    result = wsapi(f"{servers.ws}/echo", "--proxy", dead_proxy, "-x", "x")
    assert result.returncode == 1
    assert "[proxy]" in result.stderr
    env = _env(ws_proxy=dead_proxy)
    assert wsapi(f"{servers.ws}/echo", "-x", "x", env=env).returncode == 1
    result = wsapi(f"{servers.ws}/echo", "-x", "direct", "--no-proxy", "--linger", "0.3", env=env)
    assert (result.returncode, result.stdout) == (0, "direct\n")


def test_whatwg_standard_takes_http_urls(servers: Servers) -> None:
    """--standard whatwg turns an http: URL into ws:, as the living standard says."""
    url = f"{servers.ws}/echo".replace("ws:", "http:")
    result = wsapi(url, "--standard", "whatwg", "-x", "living", "--linger", "0.3")
    assert (result.returncode, result.stdout) == (0, "living\n")
    assert "connecting to ws://127.0.0.1:" in result.stderr


def test_usage_errors_exit_2() -> None:
    """A URL the constructor refuses, a reserved header or a bad option exits 2 with why."""
    result = wsapi("http://example.com/")
    assert result.returncode == 2
    assert "SyntaxError" in result.stderr
    assert "needs ws or wss" in result.stderr
    result = wsapi("ws://127.0.0.1:25/")
    assert (result.returncode, "SecurityError" in result.stderr) == (2, True)
    result = wsapi("-H", "Upgrade: h2c", "ws://127.0.0.1/")
    assert (result.returncode, "Upgrade" in result.stderr) == (2, True)
    assert wsapi("--linger", "-1").returncode == 2


def test_help_shows_examples_and_exit_statuses() -> None:
    """--help lists the options, examples and exit statuses; --version names the version."""
    result = wsapi("--help")
    assert result.returncode == 0
    for text in ("--protocol", "--jsonl", "examples:", "exit status:", "NO_COLOR"):
        assert text in result.stdout
    assert wsapi("--version").stdout.startswith("wsapi 0.1.0")


# TLS options.


def test_tls_verification_cacert_and_insecure(servers: Servers) -> None:
    """An unknown CA fails (exit 1, tls); --cacert trusts it; -k skips verification."""
    url = f"{servers.wss}/echo"
    result = wsapi(url, "-x", "x")
    assert result.returncode == 1
    assert "[tls]" in result.stderr
    result = wsapi(url, "-x", "secure", "--cacert", str(servers.cafile), "--linger", "0.3")
    assert (result.returncode, result.stdout) == (0, "secure\n")
    result = wsapi(url, "-x", "anyway", "-k", "--linger", "0.3")
    assert (result.returncode, result.stdout) == (0, "anyway\n")


# Signals and the echo server mode.


def test_sigint_in_pipe_mode_closes_cleanly_and_exits_130(servers: Servers) -> None:
    """Ctrl-C (SIGINT) while stdin is still open: close 1000, wait for close, exit 130."""
    process = subprocess.Popen(
        [sys.executable, "-m", "wsapi", f"{servers.ws}/echo"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert process.stderr is not None
    try:
        while "open" not in process.stderr.readline():
            pass
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=RUN_TIMEOUT)
    finally:
        process.kill()
    assert process.returncode == 130
    assert 'close    code=1000 (normal closure) reason="" wasClean=true' in stderr


def test_serve_runs_an_echo_server_until_sigint() -> None:
    """--serve prints its URL; a client gets echoes; SIGINT stops it with status 0."""
    process = subprocess.Popen(
        [sys.executable, "-m", "wsapi", "--serve", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert process.stdout is not None
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("ws://127.0.0.1:")
        result = wsapi(url, "--linger", "0.3", input="ping\n")
        assert (result.returncode, result.stdout) == (0, "ping\n")
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=RUN_TIMEOUT)
    finally:
        process.kill()
    assert process.returncode == 0
