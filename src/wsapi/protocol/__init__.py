"""The sans-I/O RFC 6455 client engine. It never imports asyncio, socket or ssl."""

from __future__ import annotations

# First: it decides which build of the modules compiled from their own source is imported.
from . import _build  # noqa: F401  (isort: skip)
from .constants import MAX_HANDSHAKE_RESPONSE_SIZE, MAX_MESSAGE_SIZE, CloseCode, Opcode
from .engine import ClientConnection, InvalidStateError, State
from .events import CloseReceived, EngineEvent, Failed, Opened, PingReceived, PongReceived

__all__ = [
    "MAX_HANDSHAKE_RESPONSE_SIZE",
    "MAX_MESSAGE_SIZE",
    "ClientConnection",
    "CloseCode",
    "CloseReceived",
    "EngineEvent",
    "Failed",
    "InvalidStateError",
    "Opcode",
    "Opened",
    "PingReceived",
    "PongReceived",
    "State",
]
