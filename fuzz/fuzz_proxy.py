"""Fuzz target: the reader of an HTTP proxy's answer to CONNECT (``proxy.py``).

Input: byte 0 chooses the options (bit 0: the proxy URL has credentials; bit 1: end of
stream after the bytes); byte 1 the number N of chunk sizes that follow (0-31); then the
proxy's answer.

Invariants:

- reading the answer never raises: the tunnel is established (with the bytes after the
  answer's head handed back) or fails with a ``ProxyError``, or is still waiting;
- the outcome is the same whether the answer comes in one piece, in chunks or a byte at a
  time;
- a tunnel still waiting holds no more than ``MAX_PROXY_RESPONSE_SIZE`` bytes of the answer
  (plus the last read);
- a failure's reason never shows the credentials.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import chunks, instrumented, run

with instrumented(__name__ == "__main__"):
    import h11

    from wsapi.proxy import MAX_PROXY_RESPONSE_SIZE, ProxyError, _ConnectProtocol


__all__ = ["check"]

USER, PASSWORD = "fuzzuser", "fuzz-secret"
CREDENTIALS = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class _Transport:
    """What the protocol needs of a transport: the bytes it writes."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


def _outcome(options: int, pieces: list[bytes]) -> Any:
    headers = [("Host", "example.test:443")]
    if options & 1:
        headers.append(("Proxy-Authorization", "Basic " + CREDENTIALS))
    request = h11.Request(method="CONNECT", target="example.test:443", headers=headers)
    tunnel = _ConnectProtocol(request, has_credentials=bool(options & 1))
    transport = _Transport()
    tunnel.connection_made(transport)  # type: ignore[arg-type]
    assert b"".join(transport.written).startswith(b"CONNECT example.test:443 HTTP/1.1\r\n")
    for piece in pieces:
        tunnel.data_received(piece)
        if not tunnel.established.done():
            held = len(tunnel._http.trailing_data[0])
            assert held <= MAX_PROXY_RESPONSE_SIZE + len(piece), held
    if options & 2:
        tunnel.eof_received()
    if not tunnel.established.done():
        tunnel.connection_lost(None)
        tunnel.established.exception()  # (Retrieved: asyncio would warn otherwise.)
        return ("waiting",)
    error = tunnel.established.exception()
    if error is None:
        return ("established", bytes(tunnel.leftover))
    assert isinstance(error, ProxyError), error
    for secret in (USER, PASSWORD, CREDENTIALS):
        assert secret not in error.reason, error.reason
    # (h11's own words for a malformed answer depend on what had arrived.)
    reason = error.reason.split(": ")[0]
    return ("failed", reason, error.status_code, error.headers)


async def _both(options: int, data: bytes, cuts: bytes) -> None:
    whole = _outcome(options, [data] if data else [])
    parts = _outcome(options, list(chunks(data, cuts)))
    assert whole == parts, (whole, parts)
    single = _outcome(options, [data[i : i + 1] for i in range(min(len(data), 2000))])
    if len(data) <= 2000:
        assert whole == single, (whole, single)


_loop = asyncio.new_event_loop()
atexit.register(_loop.close)


def check(data: bytes) -> None:
    """Feed ``data`` to the CONNECT answer reader; assert the invariants above."""
    if len(data) < 2:
        return
    options, count = data[0], data[1] & 31
    _loop.run_until_complete(_both(options, data[2 + count :], data[2 : 2 + count]))


def main() -> None:
    run(check)


if __name__ == "__main__":
    main()
