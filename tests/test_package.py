"""The package's public API: ``wsapi.__all__`` is exactly the documented names, each one
importable from ``wsapi`` and defined where DESIGN.md's layers put it."""

from __future__ import annotations

import wsapi

PUBLIC = {
    # The IDL names (DESIGN.md section 1), with the DOM's and the Streams standard's.
    "WebSocket": "wsapi.websocket",
    "Event": "wsapi.events",
    "EventTarget": "wsapi.events",
    "MessageEvent": "wsapi.events",
    "CloseEvent": "wsapi.events",
    "Blob": "wsapi.blob",
    "DOMException": "wsapi.errors",
    "WebSocketError": "wsapi.errors",
    "AbortController": "wsapi.abort",
    "AbortSignal": "wsapi.abort",
    "ReadableStream": "wsapi.streams",
    "WritableStream": "wsapi.streams",
    "WebSocketStream": "wsapi.websocketstream",
    "WebSocketOpenInfo": "wsapi.websocketstream",
    "WebSocketCloseInfo": "wsapi.websocketstream",
    "CountQueuingStrategy": "wsapi.streams",
    "ByteLengthQueuingStrategy": "wsapi.streams",
    # What a browser knows and a program must say, and the Python conveniences.
    "UserAgent": "wsapi.agent",
    "ConnectionFailure": "wsapi.errors",
    "ping": "wsapi.connection",
    "connect": "wsapi.connection",
    "Connection": "wsapi.connection",
    "ConnectionClosed": "wsapi.connection",
    "ReconnectingWebSocket": "wsapi.reconnecting",
}


def test_all_is_the_public_api() -> None:
    """wsapi.__all__ names exactly the public API, with no name twice."""
    assert sorted(wsapi.__all__) == sorted(PUBLIC)
    assert len(set(wsapi.__all__)) == len(wsapi.__all__)


def test_each_public_name_comes_from_its_module() -> None:
    """Each public name is defined in the module of its layer, not re-made elsewhere."""
    for name, module in PUBLIC.items():
        assert getattr(wsapi, name).__module__ == module, name


def test_version_is_a_string() -> None:
    """wsapi.__version__ is the package's version, as pyproject.toml reads it."""
    assert isinstance(wsapi.__version__, str)
    assert wsapi.__version__.count(".") == 2
