"""Tunnels through proxies: HTTP CONNECT (``http://`` and ``https://`` proxies, on h11) and
SOCKS4/5 (on ``python-socks``, the ``socks`` extra, imported only when a SOCKS proxy is used).
Part of the transport layer.

``open_tunnel`` returns an asyncio transport connected, through the proxy, to the WebSocket
server (TLS to the server not yet started: the caller does that, inside the tunnel). Every
failure is a ``ProxyError`` with a readable reason and, for an HTTP proxy that refused, its
status and headers.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import unquote

import ada_url
import h11

__all__ = ["MAX_PROXY_RESPONSE_SIZE", "ProxyError", "ProxyURL", "open_tunnel", "parse_proxy_url"]

MAX_PROXY_RESPONSE_SIZE = 64 * 1024
"""Largest CONNECT response head accepted from an HTTP proxy (the same bound as for the
WebSocket handshake response: a proxy that sends more is broken or hostile)."""

SOCKS_EXTRA_HINT = "pip install 'wsapi[socks]'"
"""What to install for SOCKS proxies: python-socks is an optional dependency."""

DEFAULT_PORTS = {"http": 80, "https": 443, "socks4": 1080, "socks5": 1080, "socks5h": 1080}


class ProxyError(Exception):
    """The proxy could not be reached, refused, or broke its protocol."""

    def __init__(
        self,
        reason: str,
        status_code: int | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.headers = headers


@dataclass(frozen=True, slots=True)
class ProxyURL:
    """A parsed proxy URL."""

    scheme: str
    host: str
    port: int
    username: str | None = field(repr=False)
    password: str | None = field(repr=False)  # Never shown: not in repr, nor in str.

    @property
    def resolves_names(self) -> bool:
        """Whether the proxy, not wsapi, resolves the server's host name (then the
        one-connection-in-CONNECTING rule of RFC 6455 4.1 applies per host name)."""
        return self.scheme in ("http", "https", "socks5h")

    def __str__(self) -> str:
        # Never show the credentials.
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_proxy_url(url: str) -> ProxyURL:
    """Parse a proxy URL (``UserAgent`` has checked its scheme and host)."""
    parsed = ada_url.URL(url)
    scheme = parsed.protocol[:-1]
    host = parsed.hostname.strip("[]")
    port = int(parsed.port) if parsed.port else DEFAULT_PORTS[scheme]
    username = unquote(parsed.username) if parsed.username else None
    password = unquote(parsed.password) if parsed.password else None
    return ProxyURL(scheme, host, port, username, password)


async def open_tunnel(
    proxy: ProxyURL,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext,
    user_agent: str | None,
) -> tuple[asyncio.Transport, bytes]:
    """Connect to ``host``:``port`` through ``proxy``; return the transport and any bytes the
    proxy sent after its answer (normally none). The caller owns the transport: it must set
    its protocol (``transport.set_protocol``) before the loop runs again."""
    if proxy.scheme in ("http", "https"):
        return await _http_connect(proxy, host, port, ssl_context, user_agent)
    return await _socks_connect(proxy, host, port), b""


async def _http_connect(
    proxy: ProxyURL,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext,
    user_agent: str | None,
) -> tuple[asyncio.Transport, bytes]:
    loop = asyncio.get_running_loop()
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    headers = [("Host", authority)]
    if proxy.username is not None:
        credentials = f"{proxy.username}:{proxy.password or ''}".encode()
        headers.append(("Proxy-Authorization", "Basic " + base64.b64encode(credentials).decode()))
    if user_agent is not None:
        headers.append(("User-Agent", user_agent))
    request = h11.Request(method="CONNECT", target=authority, headers=headers)
    tunnel = _ConnectProtocol(request, has_credentials=proxy.username is not None)
    try:
        # An https:// proxy is reached over TLS first (verified like any server).
        transport, _ = await loop.create_connection(
            lambda: tunnel,
            proxy.host,
            proxy.port,
            ssl=ssl_context if proxy.scheme == "https" else None,
            server_hostname=proxy.host if proxy.scheme == "https" else None,
        )
    except ssl.SSLCertVerificationError as exc:
        raise ProxyError(
            f"the TLS certificate of the proxy {proxy} was refused: {exc.verify_message}"
        ) from exc
    except OSError as exc:
        raise ProxyError(f"could not connect to the proxy {proxy}: {exc.strerror or exc}") from exc
    except UnicodeError as exc:  # The resolver's IDNA step: a label DNS cannot carry.
        raise ProxyError(f"could not resolve the proxy {proxy}: not a name DNS can carry") from exc
    try:
        await tunnel.established
    except BaseException:
        transport.abort()
        raise
    return transport, bytes(tunnel.leftover)


class _ConnectProtocol(asyncio.Protocol):
    """Sends CONNECT and reads the proxy's answer with h11."""

    def __init__(self, request: h11.Request, *, has_credentials: bool) -> None:
        self._request = request
        self._has_credentials = has_credentials
        self._http = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_PROXY_RESPONSE_SIZE)
        self.established: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.leftover = bytearray()
        """What the server sent behind the proxy's answer, until the caller takes the
        transport over (reads may come between the answer and that moment)."""
        self._tunnel_up = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        data = self._http.send(self._request)
        assert data is not None
        cast(asyncio.Transport, transport).write(data)

    def data_received(self, data: bytes) -> None:
        if self._tunnel_up:
            self.leftover += data
            return
        if self.established.done():
            return
        try:
            self._http.receive_data(data)
            event = self._http.next_event()
            # 1xx answers before the final one, however many came in this read.
            while isinstance(event, h11.InformationalResponse):
                event = self._http.next_event()
        except h11.RemoteProtocolError as exc:
            self._fail(ProxyError(f"the proxy's answer to CONNECT is not valid HTTP: {exc}"))
            return
        if event is h11.NEED_DATA:
            return
        if isinstance(event, h11.Response):
            headers = tuple(
                (name.decode("ascii", "replace").lower(), value.decode("latin-1"))
                for name, value in event.headers
            )
            if 200 <= event.status_code < 300:
                self._tunnel_up = True
                self.leftover += self._http.trailing_data[0]
                self.established.set_result(None)
                return
            phrase = event.reason.decode("latin-1", "replace")
            hint = ""
            if event.status_code in (401, 407):  # tinyproxy answers 401 to bad credentials
                hint = (
                    " (the proxy refused the credentials)"
                    if self._has_credentials
                    else " (the proxy wants credentials: user:password@ in the proxy URL)"
                )
            self._fail(
                ProxyError(
                    f"the proxy answered CONNECT with HTTP {event.status_code} {phrase}{hint}",
                    event.status_code,
                    headers,
                )
            )
            return
        self._fail(ProxyError(f"unexpected answer from the proxy: {type(event).__name__}"))

    def eof_received(self) -> bool:
        self._fail(ProxyError("the proxy closed the connection before answering CONNECT"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ProxyError(f"the connection to the proxy was lost: {exc or 'closed'}"))

    def _fail(self, error: ProxyError) -> None:
        if not self.established.done():
            self.established.set_exception(error)


async def _socks_connect(proxy: ProxyURL, host: str, port: int) -> asyncio.Transport:
    # Imported here: most programs use no SOCKS proxy and need not install python-socks.
    try:
        from python_socks import (  # noqa: PLC0415
            ProxyConnectionError,
            ProxyTimeoutError,
            ProxyType,
        )
        from python_socks import ProxyError as SocksError  # noqa: PLC0415
        from python_socks.async_.asyncio import Proxy as SocksProxy  # noqa: PLC0415
    except ImportError as exc:
        raise ProxyError(
            f"the proxy {proxy} is a SOCKS proxy, and SOCKS support is not installed "
            f"({exc}): {SOCKS_EXTRA_HINT}"
        ) from exc
    loop = asyncio.get_running_loop()
    kind = ProxyType.SOCKS4 if proxy.scheme == "socks4" else ProxyType.SOCKS5
    socks = SocksProxy(
        kind,
        proxy.host,
        proxy.port,
        proxy.username,
        proxy.password,
        # socks5h: the proxy resolves the name; socks5/socks4: the caller passes an address.
        rdns=proxy.scheme == "socks5h",
    )
    try:
        # The caller's deadline (open_timeout) bounds this; python-socks wants a number.
        sock = await socks.connect(host, port, timeout=3600)
    except ProxyTimeoutError as exc:
        raise ProxyError(f"the proxy {proxy} did not answer in time") from exc
    except ProxyConnectionError as exc:
        raise ProxyError(f"could not connect to the proxy {proxy}: {exc}") from exc
    except SocksError as exc:
        raise ProxyError(f"the proxy {proxy} refused: {exc}") from exc
    except OSError as exc:
        raise ProxyError(f"the proxy {proxy} failed: {exc.strerror or exc}") from exc
    except UnicodeError as exc:  # The resolver's IDNA step: a label DNS cannot carry.
        raise ProxyError(f"could not resolve the proxy {proxy}: not a name DNS can carry") from exc
    try:
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=sock)
    except BaseException:
        sock.close()
        raise
    return transport
