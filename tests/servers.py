"""Real servers for tests, as async context managers: TLS material, a `websockets` server,
HTTP CONNECT proxies (tinyproxy, and stunnel in front of it for an https:// proxy), a SOCKS5
proxy (microsocks) and a proxy that refuses every CONNECT.

Everything listens on 127.0.0.1 on a free port. External programs run in the foreground with
their configuration, output and pid file in a temporary directory; on exit they are
terminated (killed after 5 s) and the directory is deleted, also when the test fails.

The proxies bind their outgoing connections to 127.0.0.2 (routable on Linux loopback), so a
`websocket_server` behind them sees its peers as 127.0.0.2 rather than 127.0.0.1: proof that
the traffic went through the proxy.

Programs needed (Debian packages): tinyproxy, microsocks, stunnel4.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http
import inspect
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from ssl import Purpose, SSLContext, create_default_context
from typing import Any

import trustme
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

SCALE = float(os.environ.get("WSAPI_TEST_TIMEOUT_SCALE", "1"))
START_TIMEOUT = 10.0 * SCALE
"""How long a program may take to accept connections on its port."""
STOP_TIMEOUT = 5.0 * SCALE
"""How long a program may take to exit after SIGTERM before it is killed."""
START_ATTEMPTS = 3
"""Starts retried when the program exits early, e.g. because another one took its port."""

LOCALHOST = "127.0.0.1"
OUTGOING = "127.0.0.2"

Handler = Callable[[ServerConnection], Awaitable[None]]
ProcessRequest = Callable[
    [ServerConnection, Request], Response | Awaitable[Response | None] | None
]


class ServerStartError(RuntimeError):
    """A helper program did not start: the message holds its command and output."""


# --- TLS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """A test CA, certificates it issued, and an untrusted CA's certificate."""

    ca: trustme.CA
    server: trustme.LeafCert
    """For localhost, 127.0.0.1 and ::1, issued by `ca`."""
    untrusted_ca: trustme.CA
    untrusted_server: trustme.LeafCert
    """For the same names as `server`, issued by `untrusted_ca`, which clients do not trust."""
    wrong_name_server: trustme.LeafCert
    """For wrong.example only, issued by `ca`: a host-name mismatch for localhost."""

    def server_context(self) -> SSLContext:
        """A server context presenting `server`."""
        return _server_context(self.server)

    def client_context(self) -> SSLContext:
        """A client context that trusts `ca` and checks host names."""
        context = create_default_context(Purpose.SERVER_AUTH)
        self.ca.configure_trust(context)
        return context

    def untrusted_server_context(self) -> SSLContext:
        """A server context presenting a certificate from a CA the client does not trust."""
        return _server_context(self.untrusted_server)

    def wrong_name_server_context(self) -> SSLContext:
        """A server context presenting a trusted certificate for wrong.example."""
        return _server_context(self.wrong_name_server)

    def ca_pem(self) -> bytes:
        """The trusted CA's certificate, PEM-encoded (for a cafile)."""
        return self.ca.cert_pem.bytes()


def _server_context(cert: trustme.LeafCert) -> SSLContext:
    context = create_default_context(Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


SERVER_NAMES = ("localhost", "127.0.0.1", "::1")


@functools.cache
def tls_certificates() -> Certificates:
    """The session's TLS material, made once."""
    ca = trustme.CA()
    untrusted_ca = trustme.CA()
    return Certificates(
        ca=ca,
        server=ca.issue_cert(*SERVER_NAMES),
        untrusted_ca=untrusted_ca,
        untrusted_server=untrusted_ca.issue_cert(*SERVER_NAMES),
        wrong_name_server=ca.issue_cert("wrong.example"),
    )


# --- Helpers -----------------------------------------------------------------------------------


def free_port(host: str = LOCALHOST) -> int:
    """A port nobody listens on right now (another process may take it before we do)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _userinfo(auth: tuple[str, str] | None) -> str:
    if auth is None:
        return ""
    user, password = auth
    return f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}@"


async def _accepts(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-limit:]


async def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the process, kill it if it lingers, and reap it, without blocking the loop."""
    if process.poll() is not None:
        return
    try:
        process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        # Also reached when cancelled while waiting: never leave the process behind.
        if process.poll() is None:
            process.kill()
            process.wait()


@asynccontextmanager
async def _program(
    name: str,
    workdir: Path,
    argv_for_port: Callable[[int], Sequence[str]],
    *,
    logs: Sequence[Path] = (),
) -> AsyncIterator[tuple[subprocess.Popen[bytes], int]]:
    """Run a program that listens on 127.0.0.1, on a free port, until its port accepts.

    `argv_for_port` gets the port (and may write a config file using it). Standard output and
    error go to WORKDIR/NAME.out; the error on failure shows it and the files in `logs`. If the
    program exits before accepting, it is started again on another port (the free port may have
    been taken meanwhile), up to START_ATTEMPTS times.
    """
    executable = shutil.which(name)
    if executable is None:
        raise ServerStartError(f"{name} is not installed (apt-get install {name})")
    output = workdir / f"{name}.out"
    failure = ""
    for _attempt in range(START_ATTEMPTS):
        port = free_port()
        argv = [executable, *argv_for_port(port)[1:]]
        with output.open("wb") as sink:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
            )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            ready = False
            while process.poll() is None and time.monotonic() < deadline:
                if await _accepts(LOCALHOST, port):
                    # Was it another program on that port? Ours would exit on failing to bind.
                    await asyncio.sleep(0.05)
                    ready = process.poll() is None
                    break
                await asyncio.sleep(0.02)
            if not ready:
                failure = _describe_failure(name, argv, process, output, logs)
                if process.poll() is None:  # timed out: retrying will not help
                    raise ServerStartError(failure)
                continue
            yield process, port
            return
        finally:
            await _stop(process)
    raise ServerStartError(failure)


def _describe_failure(
    name: str,
    argv: Sequence[str],
    process: subprocess.Popen[bytes],
    output: Path,
    logs: Sequence[Path],
) -> str:
    code = process.poll()
    if code is None:
        summary = f"{name} did not accept connections within {START_TIMEOUT:g} s"
    else:
        summary = f"{name} exited with code {code} before accepting connections"
    parts = [
        summary,
        f"command: {' '.join(argv)}",
        f"output:\n{_tail(output)}",
    ]
    parts.extend(f"{log.name}:\n{_tail(log)}" for log in logs if log.exists())
    return "\n".join(parts)


# --- A websockets server ---------------------------------------------------------------------


@dataclass
class WebSocketServer:
    url: str
    """ws://127.0.0.1:PORT/, or wss://localhost:PORT/ with TLS so that host names are checked."""
    ip_url: str
    """The URL with the IP address the server listens on (the certificate covers it too): for
    where "localhost" may resolve to ::1 first, e.g. through microsocks."""
    host: str
    port: int
    peers: list[tuple[str, int]] = field(default_factory=list)
    """Remote (ip, port) of every connection that sent a handshake request, in order."""


async def echo(connection: ServerConnection) -> None:
    """Send every message back, until the connection closes (cleanly or not)."""
    with contextlib.suppress(ConnectionClosed):
        async for message in connection:
            await connection.send(message)


@asynccontextmanager
async def websocket_server(
    handler: Handler | None = None,
    *,
    ssl: SSLContext | None = None,
    host: str = LOCALHOST,
    **options: Any,
) -> AsyncIterator[WebSocketServer]:
    """A `websockets` server on a free port, echoing by default; `options` go to `serve`."""
    peers: list[tuple[str, int]] = []
    user_process_request: ProcessRequest | None = options.pop("process_request", None)

    async def process_request(connection: ServerConnection, request: Request) -> Response | None:
        address = connection.remote_address
        peers.append((str(address[0]), int(address[1])))
        if user_process_request is None:
            return None
        result = user_process_request(connection, request)
        if inspect.isawaitable(result):
            return await result
        return result

    async with serve(
        handler or echo, host, 0, ssl=ssl, process_request=process_request, **options
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        # With TLS, name the host so that the certificate's host name is checked.
        authority = "localhost" if ssl is not None else _url_host(host)
        scheme = "wss" if ssl is not None else "ws"
        yield WebSocketServer(
            url=f"{scheme}://{authority}:{port}/",
            ip_url=f"{scheme}://{_url_host(host)}:{port}/",
            host=host,
            port=port,
            peers=peers,
        )


# --- tinyproxy -------------------------------------------------------------------------------

_TINYPROXY_WORD = re.compile(r"[-a-z0-9._]+", re.IGNORECASE)
"""What tinyproxy's config parser accepts as a BasicAuth user name or password."""

_CONNECT_REQUEST = re.compile(r"Request \(file descriptor \d+\): CONNECT (\S+) ")


@dataclass
class TinyProxy:
    url: str
    """http://127.0.0.1:PORT, with user:password@ when the proxy requires authentication."""
    port: int
    workdir: Path
    log_path: Path

    def log(self) -> str:
        """tinyproxy's log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def output(self) -> str:
        """What tinyproxy printed."""
        return _tail(self.workdir / "tinyproxy.out", limit=1 << 20)

    def connect_targets(self) -> list[str]:
        """The HOST:PORT of every CONNECT request logged, in order."""
        return _CONNECT_REQUEST.findall(self.log())

    def connect_count(self) -> int:
        """How many CONNECT requests tinyproxy logged."""
        return len(self.connect_targets())


@asynccontextmanager
async def tinyproxy(
    *, auth: tuple[str, str] | None = None, bind_outgoing: str | None = OUTGOING
) -> AsyncIterator[TinyProxy]:
    """tinyproxy, an HTTP proxy allowing CONNECT to any port, for clients on 127.0.0.1.

    Runs as the current user: as root it only warns that no User is set. Outgoing connections
    come from `bind_outgoing` (None: left to the system). With `auth`, it requires Basic
    credentials (tinyproxy only parses [-A-Za-z0-9._] in them) and answers 407 without.
    """
    if auth is not None and not all(_TINYPROXY_WORD.fullmatch(word) for word in auth):
        raise ValueError(f"tinyproxy only accepts [-A-Za-z0-9._]+ credentials, not {auth!r}")
    with tempfile.TemporaryDirectory(prefix="wsapi-tinyproxy-") as directory:
        workdir = Path(directory)
        config = workdir / "tinyproxy.conf"
        log_path = workdir / "tinyproxy.log"

        def argv(port: int) -> list[str]:
            lines = [
                f"Listen {LOCALHOST}",
                f"Port {port}",
                f"Allow {LOCALHOST}",
                # No ConnectPort line: CONNECT is allowed to every port (tinyproxy.conf(5)).
                f'LogFile "{log_path}"',
                "LogLevel Connect",
                f'PidFile "{workdir / "tinyproxy.pid"}"',
                "Timeout 60",
                "MaxClients 100",
                "DisableViaHeader Yes",
            ]
            if bind_outgoing is not None:
                lines.append(f"Bind {bind_outgoing}")
            if auth is not None:
                lines.append(f"BasicAuth {auth[0]} {auth[1]}")
            config.write_text("\n".join(lines) + "\n")
            return ["tinyproxy", "-d", "-c", str(config)]

        async with _program("tinyproxy", workdir, argv, logs=[config, log_path]) as (_, port):
            yield TinyProxy(
                url=f"http://{_userinfo(auth)}{LOCALHOST}:{port}",
                port=port,
                workdir=workdir,
                log_path=log_path,
            )


# --- microsocks ------------------------------------------------------------------------------


@dataclass
class MicroSocks:
    url: str
    """socks5://127.0.0.1:PORT, with user:password@ when the proxy requires authentication."""
    port: int
    workdir: Path

    def output(self) -> str:
        """What microsocks printed: 1.0.3 logs "client[N] IP: connected to HOST:PORT" lines."""
        return _tail(self.workdir / "microsocks.out", limit=1 << 20)


@asynccontextmanager
async def microsocks(
    *, auth: tuple[str, str] | None = None, bind_outgoing: str | None = OUTGOING
) -> AsyncIterator[MicroSocks]:
    """microsocks, a SOCKS5 proxy; outgoing connections come from `bind_outgoing`.

    microsocks resolves a host name itself and uses the first address only; it binds to
    `bind_outgoing` only when that address is of the same family (so a target reached over
    ::1 sees ::1, not 127.0.0.2).
    """
    with tempfile.TemporaryDirectory(prefix="wsapi-microsocks-") as directory:
        workdir = Path(directory)

        def argv(port: int) -> list[str]:
            args = ["microsocks", "-i", LOCALHOST, "-p", str(port)]
            if auth is not None:
                args += ["-u", auth[0], "-P", auth[1]]
            if bind_outgoing is not None:
                args += ["-b", bind_outgoing]
            return args

        async with _program("microsocks", workdir, argv) as (_, port):
            yield MicroSocks(
                url=f"socks5://{_userinfo(auth)}{LOCALHOST}:{port}", port=port, workdir=workdir
            )


# --- stunnel: an https:// proxy ------------------------------------------------------------


@dataclass
class HttpsProxy:
    url: str
    """https://localhost:PORT (with the upstream's user:password@): its certificate is
    `tls_certificates().server`, so clients must trust `tls_certificates().ca`."""
    port: int
    workdir: Path
    output_path: Path

    def output(self) -> str:
        """stunnel's log so far."""
        return _tail(self.output_path, limit=1 << 20)


def _stunnel_name() -> str:
    return "stunnel4" if shutil.which("stunnel4") else "stunnel"


@asynccontextmanager
async def https_proxy(
    upstream_url: str, certificates: Certificates | None = None
) -> AsyncIterator[HttpsProxy]:
    """stunnel terminating TLS on a free port and forwarding the plain bytes to the HTTP proxy
    at `upstream_url` (e.g. `tinyproxy().url`), which then sees its client as 127.0.0.1.

    stunnel runs with `foreground = yes` (otherwise it forks and detaches) and, as root,
    stays root (no setuid); it logs to its standard error, captured in its temporary
    directory, and not to syslog.
    """
    certificates = certificates or tls_certificates()
    upstream = urllib.parse.urlsplit(upstream_url)
    if upstream.scheme != "http" or upstream.hostname is None or upstream.port is None:
        raise ValueError(f"expected http://HOST:PORT, not {upstream_url!r}")
    userinfo = upstream.netloc.rpartition("@")[0]
    name = _stunnel_name()
    with tempfile.TemporaryDirectory(prefix="wsapi-stunnel-") as directory:
        workdir = Path(directory)
        pem = workdir / "server.pem"
        certificates.server.private_key_and_cert_chain_pem.write_to_path(str(pem))
        pem.chmod(0o600)  # stunnel warns about a key others can read
        config = workdir / "stunnel.conf"

        def argv(port: int) -> list[str]:
            config.write_text(
                "\n".join(
                    [
                        "foreground = yes",
                        "syslog = no",
                        "debug = info",
                        f"pid = {workdir / 'stunnel.pid'}",
                        "[https-proxy]",
                        f"accept = {LOCALHOST}:{port}",
                        f"connect = {_url_host(upstream.hostname or '')}:{upstream.port}",
                        f"cert = {pem}",
                    ]
                )
                + "\n"
            )
            return [name, str(config)]

        async with _program(name, workdir, argv, logs=[config]) as (_, port):
            yield HttpsProxy(
                url=f"https://{userinfo + '@' if userinfo else ''}localhost:{port}",
                port=port,
                workdir=workdir,
                output_path=workdir / f"{name}.out",
            )


# --- A proxy that refuses --------------------------------------------------------------------


@dataclass
class RefusingProxy:
    url: str
    """http://127.0.0.1:PORT"""
    port: int
    status: int
    requests: list[bytes] = field(default_factory=list)
    """The head (request line and headers) of every request received, in order."""


@asynccontextmanager
async def refusing_http_proxy(
    status: int,
    *,
    reason: str | None = None,
    headers: Sequence[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> AsyncIterator[RefusingProxy]:
    """An HTTP proxy answering every request (CONNECT included) with `status`, then closing.

    Default headers: Proxy-Authenticate: Basic realm="wsapi-test" for 407, none otherwise.
    """
    if reason is None:
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Refused"
    if headers is None:
        headers = [("Proxy-Authenticate", 'Basic realm="wsapi-test"')] if status == 407 else []
    head = f"HTTP/1.1 {status} {reason}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    response = head.encode("latin-1") + body

    requests: list[bytes] = []
    writers: set[asyncio.StreamWriter] = set()
    handlers: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            handlers.add(task)
        writers.add(writer)
        try:
            with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                requests.append(await reader.readuntil(b"\r\n\r\n"))
                writer.write(response)
                await writer.drain()
        except OSError:
            pass
        finally:
            writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            if task is not None:
                handlers.discard(task)

    server = await asyncio.start_server(handle, LOCALHOST, 0)
    try:
        port = server.sockets[0].getsockname()[1]
        yield RefusingProxy(
            url=f"http://{LOCALHOST}:{port}", port=port, status=status, requests=requests
        )
    finally:
        server.close()
        for writer in list(writers):
            writer.close()
        # Closing its connection ends a handler; cancelling it instead would make Python
        # 3.11's asyncio report the cancellation to the loop's exception handler.
        if handlers:
            _, late = await asyncio.wait(set(handlers), timeout=5)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await server.wait_closed()
