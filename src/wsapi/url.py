"""WebSocket URL parsing on the WHATWG URL parser (``ada-url``, the parser inside Node.js).

``parse_websocket_url`` is the CR's "parse a WebSocket URL's components" (section 7, on RFC
6455 3) and, with ``standard="whatwg"``, the living standard's constructor steps 1-7 (a
relative URL resolved against a base, ``http:``/``https:`` turned into ``ws:``/``wss:``). It
raises ``ValueError`` with a readable reason; the API turns that into a "SyntaxError"
``DOMException``.
"""

from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import dataclass, field

import ada_url

__all__ = ["WebSocketURL", "parse_websocket_url"]

DEFAULT_PORTS = {"ws": 80, "wss": 443}
_WHATWG_SCHEMES = {"http": "ws", "https": "wss"}
_CREDENTIALS = re.compile(r"^(wss?://)[^/@]*@")


@dataclass(frozen=True, slots=True)
class WebSocketURL:
    """The components of a WebSocket URL (RFC 6455 3)."""

    href: str
    """The serialized URL."""
    secure: bool
    host: str
    """The host as it goes to DNS or a connect call: ASCII, IPv6 without brackets."""
    port: int
    resource_name: str
    """The path (``/`` if empty) and the query, with its ``?``."""
    explicit_port: bool = False
    """Whether the URL named its port (the serialization then shows it)."""
    # Derived from the above once, when the URL is made (parse_websocket_url caches URLs:
    # a program that reconnects computes them once).
    host_header: str = field(init=False, repr=False, compare=False)
    """The ``Host`` request header: the host, and the port when it is not the default
    (RFC 6455 4.1: "the |Host| header field ... followed by ":" and the port").
    It is also the authority of ``http_url``."""
    http_url: str = field(init=False, repr=False, compare=False)
    """The URL with ``http``/``https`` for ``ws``/``wss``, as Fetch and the cookie rules
    see the handshake request."""
    _origins: tuple[str, str] = field(init=False, repr=False, compare=False)
    shown: str = field(init=False, repr=False, compare=False)
    """The serialized URL without its credentials (``user:password@``), for logs, task
    names and ``repr``: a password in a URL is no one else's business."""

    def __post_init__(self) -> None:
        default = self.port == DEFAULT_PORTS[self.scheme]
        port = "" if default else f":{self.port}"
        host_header = (f"[{self.host}]" if ":" in self.host else self.host) + port
        object.__setattr__(self, "host_header", host_header)
        http = "https" if self.secure else "http"
        object.__setattr__(self, "http_url", f"{http}://{host_header}{self.resource_name}")
        unicode_host = _unicode_host(self.host)
        if ":" in unicode_host:
            unicode_host = f"[{unicode_host}]"
        origins = (f"{self.scheme}://{host_header}", f"{self.scheme}://{unicode_host}{port}")
        object.__setattr__(self, "_origins", origins)
        # The serialized userinfo has every "@" and "/" percent-encoded: the first "@"
        # before the path ends it.
        object.__setattr__(self, "shown", _CREDENTIALS.sub(r"\1", self.href, count=1))

    def __repr__(self) -> str:
        return f"WebSocketURL({self.shown!r})"

    @property
    def scheme(self) -> str:
        return "wss" if self.secure else "ws"

    def origin(self, *, unicode: bool) -> str:
        """The serialization of the URL's origin; ``unicode`` gives the CR's "Unicode
        serialization" (IDN host names decoded), otherwise the ASCII one."""
        return self._origins[unicode]


@functools.lru_cache(maxsize=256)
def parse_websocket_url(
    url: str, *, standard: str = "cr-2011", base_url: str | None = None
) -> WebSocketURL:
    """Parse a WebSocket URL; raise ``ValueError`` saying what is wrong. (Parsing is a pure
    function of the arguments and the result immutable: a program that reconnects to the
    same URLs parses each once; a failure is not cached.)"""
    if standard == "whatwg":
        # WHATWG constructor step 2: "Let urlRecord be the result of applying the URL parser
        # to url with baseURL."  Step 3: failure is a SyntaxError.
        try:
            parsed = ada_url.URL(url, base_url) if base_url is not None else ada_url.URL(url)
        except ValueError:
            if base_url is None:
                raise ValueError(
                    f"{url!r} is not an absolute URL, and the agent has no base_url"
                ) from None
            raise ValueError(f"{url!r} is not a valid URL against {base_url!r}") from None
        scheme = parsed.protocol[:-1]
        # Steps 4-5: "http" becomes "ws", "https" becomes "wss".
        if scheme in _WHATWG_SCHEMES:
            parsed.protocol = _WHATWG_SCHEMES[scheme] + ":"
            scheme = parsed.protocol[:-1]
    else:
        # CR section 7 step 1: "If the url string is not an absolute URL, then fail."
        try:
            parsed = ada_url.URL(url)
        except ValueError:
            raise ValueError(f"{url!r} is not an absolute URL") from None
        scheme = parsed.protocol[:-1]
    # CR 7 step 3 / WHATWG step 6: the scheme must be ws or wss.
    if scheme not in DEFAULT_PORTS:
        allowed = "ws, wss, http or https" if standard == "whatwg" else "ws or wss"
        raise ValueError(f"the URL scheme is {scheme!r}; a WebSocket URL needs {allowed}")
    # CR 7 step 4 / WHATWG step 7: "If urlRecord's fragment is non-null, throw" -- an empty
    # fragment ("ws://h/#") is non-null too.
    if parsed.hash or parsed.href.endswith("#"):
        raise ValueError(f"a WebSocket URL may not have a fragment: {url!r}")
    secure = scheme == "wss"
    host = parsed.hostname
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(parsed.port) if parsed.port else DEFAULT_PORTS[scheme]
    # CR 7 steps 8-9 / WHATWG "obtain a WebSocket connection": the path ("/" if empty),
    # then "?" and the query when the query is non-null -- an empty query ("ws://h/?")
    # keeps its "?". ada-url reports an empty query as "", like a missing one; the
    # serialization tells them apart.
    query = parsed.search or ("?" if "?" in parsed.href else "")
    resource_name = (parsed.pathname or "/") + query
    return WebSocketURL(parsed.href, secure, host, port, resource_name, bool(parsed.port))


def _unicode_host(host: str) -> str:
    """Decode the punycode labels of an IDN host name (for display: the CR's Unicode
    serialization of an origin)."""
    return ".".join(_unicode_label(label) for label in host.split("."))


def _unicode_label(label: str) -> str:
    if label.lower().startswith("xn--"):
        with contextlib.suppress(UnicodeError, ValueError):
            return label[4:].encode("ascii").decode("punycode")
    return label
