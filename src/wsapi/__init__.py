"""wsapi: the web platform's WebSocket API for Python, on asyncio, over an RFC 6455 engine of
its own.

``WebSocket(url, protocols)`` is the object a browser script gets, with the same attributes,
exceptions and events in the same order. See the README for the Python conveniences around it
(``await ws.opened``, ``await ws.closed``, ``async with``, ``ws.failure``).
"""

from __future__ import annotations

# First: protocol/_build decides which build of the compiled modules Python imports.
from . import protocol  # noqa: F401  (isort: skip)
from ._version import __version__ as __version__
from .abort import AbortController, AbortSignal
from .agent import UserAgent
from .blob import Blob
from .connection import Connection, ConnectionClosed, connect, ping
from .errors import ConnectionFailure, DOMException, WebSocketError
from .events import CloseEvent, Event, EventTarget, MessageEvent
from .reconnecting import ReconnectingWebSocket
from .streams import (
    ByteLengthQueuingStrategy,
    CountQueuingStrategy,
    ReadableStream,
    WritableStream,
)
from .websocket import WebSocket
from .websocketstream import WebSocketCloseInfo, WebSocketOpenInfo, WebSocketStream

__all__ = [
    "AbortController",
    "AbortSignal",
    "Blob",
    "ByteLengthQueuingStrategy",
    "CloseEvent",
    "Connection",
    "ConnectionClosed",
    "ConnectionFailure",
    "CountQueuingStrategy",
    "DOMException",
    "Event",
    "EventTarget",
    "MessageEvent",
    "ReadableStream",
    "ReconnectingWebSocket",
    "UserAgent",
    "WebSocket",
    "WebSocketCloseInfo",
    "WebSocketError",
    "WebSocketOpenInfo",
    "WebSocketStream",
    "WritableStream",
    "connect",
    "ping",
]
