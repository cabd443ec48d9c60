"""wsapi: the web platform's WebSocket API for Python, on asyncio, over an RFC 6455 engine of
its own.

The API objects (``WebSocket``, events, ``Blob``, ``UserAgent``) are being built; today the
package holds the engine (``wsapi.protocol``), the asyncio transport (``wsapi.transport``),
URL parsing (``wsapi.url``) and the embedded echo server (``wsapi.echo``).
"""

from __future__ import annotations

__all__: list[str] = []

__version__ = "0.1.0"
