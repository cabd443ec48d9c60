"""What the engine reports to the layer above.

A received message is reported as the value itself (``str`` for text, ``bytes`` for
binary): messages are the bulk of the traffic and need no wrapper. Everything else is one of
the small frozen classes below.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "CloseReceived",
    "EngineEvent",
    "Failed",
    "Opened",
    "PingReceived",
    "PongReceived",
    "RefusalBodyExpected",
]


@dataclass(frozen=True, slots=True)
class Opened:
    """The server accepted the opening handshake (RFC 6455 4.1: "The WebSocket Connection
    is Established")."""

    protocol: str
    """The subprotocol the server selected, or ``""``."""
    extensions: str
    """The extensions in use, as the ``Sec-WebSocket-Extensions`` value, or ``""``."""
    headers: tuple[tuple[str, str], ...]
    """The response headers, names lower-cased, in order."""


@dataclass(frozen=True, slots=True)
class PingReceived:
    """A Ping arrived; the engine has already queued the Pong (RFC 6455 5.5.2)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PongReceived:
    """A Pong arrived (an answer to our Ping, or unsolicited: RFC 6455 5.5.3)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer's Close frame arrived: the closing handshake is started, or, if we sent our
    Close first, it is complete. ``code`` is 1005 when the frame had no status code."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The connection failed (RFC 6455 7.1.7 "_Fail the WebSocket Connection_", or a
    handshake that did not succeed). The transport must close the TCP connection now,
    after writing what the engine queued (our Close frame, when one could be sent)."""

    reason: str
    """A readable explanation, for logs and the Python-side failure reason."""
    kind: str = "protocol"
    """What failed: "handshake" (the opening handshake), "protocol" (a violation by the peer
    after it), "connection_lost" (the stream ended without a Close frame) or "local" (the
    layer above called ``fail``)."""
    close_code: int | None = None
    """The status code of the Close frame the engine sent, or None when it sent none."""
    status_code: int | None = None
    """The HTTP status of a handshake response that was not 101, if that is the failure."""
    headers: tuple[tuple[str, str], ...] = field(default=())
    """The headers of that HTTP response."""
    body: bytes = b""
    """The start of that response's body (at most ``handshake.MAX_REFUSAL_BODY_SIZE``)."""


@dataclass(frozen=True, slots=True)
class RefusalBodyExpected:
    """The server answered the handshake with a status other than 101 and its body is still
    arriving: the failure is reported once it has (the layer above bounds the wait by
    calling ``receive_eof``)."""

    status_code: int


EngineEvent = (
    str
    | bytes
    | Opened
    | PingReceived
    | PongReceived
    | CloseReceived
    | Failed
    | RefusalBodyExpected
)
