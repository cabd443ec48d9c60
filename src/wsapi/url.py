"""WebSocket URL parsing on the WHATWG URL parser (``ada-url``, the parser inside Node.js).

The W3C API's constructor (CR 2011, "parse a WebSocket URL's components", and RFC 6455 3)
needs /host/, /port/, /resource name/ and /secure/ from the URL; this module gives them.
"""

from __future__ import annotations

from dataclasses import dataclass

import ada_url

__all__ = ["WebSocketURL", "parse_websocket_url"]

DEFAULT_PORTS = {"ws": 80, "wss": 443}


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

    @property
    def host_header(self) -> str:
        """The ``Host`` request header: the host, and the port when it is not the default
        (RFC 6455 4.1 step "the |Host| header field ... followed by ":" and the port")."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == DEFAULT_PORTS["wss" if self.secure else "ws"]:
            return host
        return f"{host}:{self.port}"


def parse_websocket_url(url: str) -> WebSocketURL:
    """Parse an absolute ``ws:`` or ``wss:`` URL; raise ``ValueError`` saying what is wrong."""
    try:
        parsed = ada_url.URL(url)
    except ValueError:
        raise ValueError(f"{url!r} is not a valid absolute URL") from None
    scheme = parsed.protocol[:-1]
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"the URL scheme is {scheme!r}; a WebSocket URL needs ws or wss")
    if parsed.hash or parsed.href.endswith("#"):
        raise ValueError(f"a WebSocket URL may not have a fragment: {url!r}")
    secure = scheme == "wss"
    host = parsed.hostname
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(parsed.port) if parsed.port else DEFAULT_PORTS[scheme]
    # WHATWG "establish a WebSocket connection": the path, then "?" and the query when the
    # query is non-null -- an empty query ("ws://h/?") keeps its "?". ada-url reports an
    # empty query as "", like a missing one; the serialization tells them apart.
    query = parsed.search or ("?" if "?" in parsed.href else "")
    resource_name = (parsed.pathname or "/") + query
    return WebSocketURL(parsed.href, secure, host, port, resource_name)
