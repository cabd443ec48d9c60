"""Fuzz target: the WebSocket URL parser entry (``url.py``), and the request it leads to.

Input: byte 0 chooses the standard (bit 0: the living standard, with a base URL when bit 1
is set); the rest, decoded as UTF-8 with surrogate escapes, is the URL a script passed.

Invariants:

- parsing raises ``ValueError`` or returns a ``WebSocketURL``, nothing else;
- a URL it returns is one a request can be written for: a host, a port in 0-65535, a
  resource name that starts with ``/``, and no CR, LF, NUL, space or other control
  character in the ``Host`` header or the request target (nothing a script writes in a URL
  can add a header line to the handshake); and the engine writes that request.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import instrumented, run

with instrumented(__name__ == "__main__"):
    from wsapi.protocol.engine import ClientConnection
    from wsapi.url import parse_websocket_url


__all__ = ["check"]

BASE_URL = "https://app.example/path/page.html?query"

_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
"""Characters that must not reach a request line or a header value unescaped."""


def check(data: bytes) -> None:
    """Parse ``data`` as a URL; assert the invariants above."""
    if not data:
        return
    options = data[0]
    text = data[1:].decode("utf-8", "surrogateescape")
    standard = "whatwg" if options & 1 else "cr-2011"
    base_url = BASE_URL if options & 3 == 3 else None
    try:
        url = parse_websocket_url(text, standard=standard, base_url=base_url)
    except ValueError:
        return
    assert url.host, url
    assert 0 <= url.port <= 65535, url  # Port 0 parses; the constructor blocks it.
    assert url.resource_name.startswith("/"), url
    assert not _UNSAFE.search(url.host_header), url
    assert not _UNSAFE.search(url.resource_name), url
    assert url.href.startswith(("ws://", "wss://")), url
    assert url.origin(unicode=True)
    assert url.origin(unicode=False)
    engine = ClientConnection(url.host_header, url.resource_name)
    request = engine.data_to_send()[0]
    assert request.startswith(b"GET " + url.resource_name.encode("ascii") + b" HTTP/1.1\r\n")


def main() -> None:
    run(check)


if __name__ == "__main__":
    main()
