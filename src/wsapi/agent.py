"""UserAgent: what a browser knows about its environment and a Python program must say.

The specification speaks of "the user agent" (its cookie store, the ports it blocks, the
connections it has in flight) and of "the entry script" (its origin). A browser knows these;
a Python program states them once, in a ``UserAgent``, and every ``WebSocket`` created with
that agent shares them. One default instance serves when no agent is given.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import sys
import urllib.request
from collections import deque
from collections.abc import Iterable, Mapping
from email.message import Message
from enum import Enum
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Literal

import ada_url

from ._version import __version__
from .loops import PerLoop
from .protocol.constants import MAX_MESSAGE_SIZE
from .protocol.handshake import check_header, is_protocol_owned_header

__all__ = [
    "BAD_PORTS",
    "DEFAULT_MAX_BUFFERED_AMOUNT",
    "UserAgent",
    "default_agent",
]

Standard = Literal["cr-2011", "whatwg"]

BAD_PORTS = frozenset(
    {0, 1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95,
     101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179,
     389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601,
     636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000,
     6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080}
)  # fmt: skip
"""The Fetch standard's "bad port" list: ports of protocols that a WebSocket handshake could
be smuggled into (SMTP, IRC, ...). The CR tells user agents to block "well-known ports like
SMTP" and never 80 or 443; browsers block exactly this list."""

DEFAULT_MAX_BUFFERED_AMOUNT = 256 * 1024 * 1024
"""``bufferedAmount`` past which ``send()`` finds "the buffer is full" and closes the connection
with prejudice (error, close 1006), as the specification says. 256 MiB: four times the largest
message the default receive limit accepts, so that no program that streams large messages at
network speed ever meets it, while a program that sends faster than the network forever runs
out of this budget long before it runs out of memory."""

DEFAULT_USER_AGENT = (
    f"wsapi/{__version__} Python/{sys.version_info.major}.{sys.version_info.minor}"
)

_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h", "socks4")


class _Unset(Enum):
    """Marks a setting whose default depends on another (compression on ``standard``)."""

    UNSET = 0


class UserAgent:
    """The settings every ``WebSocket`` made with this agent shares (keyword-only)."""

    __slots__ = (
        "__weakref__",
        "_throttles",
        "base_url",
        "blocked_ports",
        "close_timeout",
        "compression",
        "cookie_jar",
        "headers",
        "max_buffered_amount",
        "max_message_size",
        "open_timeout",
        "origin",
        "ping_interval",
        "ping_timeout",
        "proxy",
        "ssl_context",
        "standard",
        "user_agent",
    )

    def __init__(
        self,
        *,
        standard: Standard = "cr-2011",
        origin: str | None = None,
        base_url: str | None = None,
        cookie_jar: CookieJar | None = None,
        ssl_context: ssl.SSLContext | None = None,
        compression: Literal["deflate"] | _Unset | None = _Unset.UNSET,
        proxy: str | None = "env",
        open_timeout: float | None = 30.0,
        close_timeout: float | None = 10.0,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        max_message_size: int | None = MAX_MESSAGE_SIZE,
        max_buffered_amount: int = DEFAULT_MAX_BUFFERED_AMOUNT,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        user_agent: str | None = DEFAULT_USER_AGENT,
        blocked_ports: Iterable[int] = BAD_PORTS,
    ) -> None:
        if standard not in ("cr-2011", "whatwg"):
            raise ValueError(f"standard is 'cr-2011' or 'whatwg', not {standard!r}")
        self.standard: Standard = standard
        self.origin = None if origin is None else _serialize_origin(origin)
        if base_url is not None:
            try:
                base_url = ada_url.URL(base_url).href
            except ValueError:
                raise ValueError(f"base_url {base_url!r} is not an absolute URL") from None
        self.base_url = base_url
        if cookie_jar is None:
            # RFC 6265 5.3 step 6: a cookie without a Domain attribute goes back only to the
            # host that set it (the standard library's default is looser).
            policy = DefaultCookiePolicy(
                strict_ns_domain=DefaultCookiePolicy.DomainStrictNonDomain
            )
            cookie_jar = CookieJar(policy)
        self.cookie_jar = cookie_jar
        self.ssl_context = ssl_context
        if compression is _Unset.UNSET:
            # The CR's constructor offers "an empty list for the extensions"; the living
            # standard offers permessage-deflate, as browsers do.
            compression = "deflate" if standard == "whatwg" else None
        if compression not in (None, "deflate"):
            raise ValueError(f"compression is None or 'deflate', not {compression!r}")
        self.compression = compression
        if proxy is not None and proxy != "env":
            _check_proxy_url(proxy)
        self.proxy = proxy
        self.open_timeout = _seconds("open_timeout", open_timeout)
        self.close_timeout = _seconds("close_timeout", close_timeout)
        self.ping_interval = _seconds("ping_interval", ping_interval)
        self.ping_timeout = _seconds("ping_timeout", ping_timeout)
        if max_message_size is not None and max_message_size < 0:
            raise ValueError(f"max_message_size must be >= 0 or None, not {max_message_size}")
        self.max_message_size = max_message_size
        if max_buffered_amount <= 0:
            raise ValueError(f"max_buffered_amount must be > 0, not {max_buffered_amount}")
        self.max_buffered_amount = max_buffered_amount
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
        for name, value in pairs:
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError("headers are pairs of str")
            if is_protocol_owned_header(name):
                raise ValueError(f"the {name} header belongs to the WebSocket protocol")
            check_header(name, value)
        self.headers = tuple(pairs)
        if user_agent is not None:
            check_header("User-Agent", user_agent)
        self.user_agent = user_agent
        self.blocked_ports = frozenset(blocked_ports)
        # RFC 6455 4.1 step 2: at most one connection per (IP address, port) in CONNECTING,
        # per event loop (a connection belongs to one loop).
        self._throttles: PerLoop[dict[tuple[str, int], deque[asyncio.Future[None]]]] = PerLoop(
            lambda loop: {}
        )

    def __repr__(self) -> str:
        return f"UserAgent(standard={self.standard!r}, origin={self.origin!r})"

    def request_headers(self, http_url: str) -> list[tuple[str, str]]:
        """The handshake request's headers that come from the agent for ``http_url``:
        ``Origin``, ``Cookie``, ``User-Agent`` and the extra ``headers``, in that order."""
        headers: list[tuple[str, str]] = []
        if self.origin is not None:
            headers.append(("Origin", self.origin))
        # "The headers to send appropriate cookies must be a Cookie header whose value is
        # the cookie-string computed from the user's cookie store and the URL url".
        cookie = self.cookie_header(http_url)
        if cookie:
            headers.append(("Cookie", cookie))
        if self.user_agent is not None:
            headers.append(("User-Agent", self.user_agent))
        headers.extend(self.headers)
        return headers

    # Cookies (RFC 6265 through http.cookiejar).

    def cookie_header(self, http_url: str) -> str | None:
        """The ``Cookie`` header value for ``http_url`` (the ws URL as http/https, as the
        cookie rules know only HTTP), or None when no cookie applies."""
        if not _has_cookies(self.cookie_jar):
            return None  # The common case, answered without building a request.
        request = urllib.request.Request(http_url)
        self.cookie_jar.add_cookie_header(request)
        return request.get_header("Cookie")

    def store_cookies(self, http_url: str, headers: Iterable[tuple[str, str]]) -> None:
        """Store the cookies of a handshake response's ``Set-Cookie`` headers."""
        headers = tuple(headers)
        for name, _ in headers:
            if name == "set-cookie":
                break
        else:
            return  # The common case: no cookie to store.
        message = Message()
        for name, value in headers:
            if name == "set-cookie":
                message["Set-Cookie"] = value
        if message.get_all("Set-Cookie"):
            response: Any = _Response(message)  # http.cookiejar only calls .info()
            self.cookie_jar.extract_cookies(response, urllib.request.Request(http_url))

    # Proxies.

    def proxy_for(self, secure: bool, host: str) -> str | None:
        """The proxy URL to use for a connection, or None for a direct one.

        From the environment, ``ws:`` takes ``ws_proxy``, then ``http_proxy``, then
        ``all_proxy``; ``wss:`` takes ``wss_proxy``, then ``https_proxy``, then
        ``all_proxy``; ``no_proxy`` is honoured (any case for every name).
        """
        if self.proxy is None:
            return None
        if self.proxy != "env":
            return self.proxy
        names = ("wss_proxy", "https_proxy") if secure else ("ws_proxy", "http_proxy")
        for name in (*names, "all_proxy"):
            value = _getenv(name)
            if value:
                if _bypassed(host, _getenv("no_proxy") or ""):
                    return None
                _check_proxy_url(value)
                return value
        return None

    # The connection throttle of RFC 6455 4.1 step 2.

    def try_connecting_slot(self, key: tuple[str, int]) -> bool:
        """Take the turn of ``key`` (address, port) if no other connection to it is
        CONNECTING, without waiting; whether it was taken."""
        queues = self._throttles(asyncio.get_running_loop())
        if key in queues:
            return False
        queues[key] = deque()
        return True

    async def acquire_connecting_slot(self, key: tuple[str, int]) -> bool:
        """Wait until no other connection to ``key`` (address, port) is CONNECTING; return
        whether it had to wait."""
        if self.try_connecting_slot(key):
            return False
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        queue = self._throttles(loop)[key]
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release_connecting_slot(key)  # We were handed the slot: pass it on.
            else:
                queue.remove(waiter)
            raise
        return True

    def release_connecting_slot(self, key: tuple[str, int]) -> None:
        """The connection to ``key`` is established or failed: let the next one go."""
        queues = self._throttles(asyncio.get_running_loop())
        if key not in queues:
            return
        queue = queues[key]
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        del queues[key]


def _has_cookies(jar: CookieJar) -> bool:
    """Whether ``jar`` may hold a cookie. (A ``CookieJar`` keeps them in a dict by domain,
    ``_cookies``, emptied by ``clear()``; ``len()`` walks every cookie through generators.)"""
    cookies = getattr(jar, "_cookies", None)
    if type(cookies) is dict:
        return bool(cookies)
    return bool(len(jar))


class _Response:
    """The one method http.cookiejar needs from a response."""

    def __init__(self, message: Message) -> None:
        self._message = message

    def info(self) -> Message:
        return self._message


def _seconds(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} is a number of seconds or None, not {value!r}")
    if not value > 0:
        raise ValueError(f"{name} must be > 0 seconds or None, not {value!r}")
    return float(value)


def _serialize_origin(origin: str) -> str:
    try:
        parsed = ada_url.URL(origin)
    except ValueError:
        raise ValueError(f"origin {origin!r} is not a URL such as 'https://app.example'") from None
    serialized = parsed.origin
    if serialized == "null":
        raise ValueError(f"origin {origin!r} has an opaque origin (use http or https)")
    return serialized


def _check_proxy_url(url: str) -> None:
    # The URL is named without its credentials: the message may reach a log or a failure
    # reason.
    shown = _PROXY_CREDENTIALS.sub("//", url, count=1)
    try:
        parsed = ada_url.URL(url)
    except ValueError:
        raise ValueError(f"proxy {shown!r} is not a URL") from None
    scheme = parsed.protocol[:-1]
    if scheme not in _PROXY_SCHEMES or not parsed.hostname:
        raise ValueError(
            f"proxy {shown!r}: the scheme must be one of {', '.join(_PROXY_SCHEMES)}, with a host"
        )


_PROXY_CREDENTIALS = re.compile(r"//[^/?#]*@")
"""The userinfo of a URL (up to its last "@" before the path, as URL parsers read it)."""


def _getenv(name: str) -> str | None:
    """The variable ``name`` of the environment, in lower or else upper case."""
    # The proxy variables are usually unset, and os.environ.get() answers "unset" by raising
    # and catching a KeyError (0.6 us each: six of them were 5% of a connection's set-up).
    # On POSIX, os.environ keeps the variables in a dict of bytes, which every change made
    # through os.environ updates: it is read directly, and found only when it is there.
    data = getattr(os.environ, "_data", None) if _POSIX else None
    if type(data) is dict:
        keys = _ENVIRONMENT_KEYS.get(name)
        if keys is None:
            keys = _ENVIRONMENT_KEYS[name] = (name.lower().encode(), name.upper().encode())
        value = data.get(keys[0]) or data.get(keys[1])
        return None if value is None else os.fsdecode(value)
    return os.environ.get(name.lower()) or os.environ.get(name.upper())


_POSIX = os.name == "posix"
_ENVIRONMENT_KEYS: dict[str, tuple[bytes, bytes]] = {}
"""A variable's name -> its names in lower and upper case, as os.environ's keys."""


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether ``no_proxy`` (comma-separated hosts, domain suffixes, ``*``) covers host, as
    curl and requests read it."""
    host = host.lower().rstrip(".")
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower().rstrip(".")
        if entry == "*":
            return True
        if entry.startswith("["):
            entry = entry[1 : entry.find("]")]  # [IPv6] or [IPv6]:port
        elif entry.count(":") == 1:
            entry = entry.split(":")[0]  # host:port; a bare IPv6 address has more colons
        entry = entry.lstrip(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


_default_agent: UserAgent | None = None


def default_agent() -> UserAgent:
    """The agent a ``WebSocket`` uses when none is given (created on first use)."""
    global _default_agent
    if _default_agent is None:
        _default_agent = UserAgent()
    return _default_agent
