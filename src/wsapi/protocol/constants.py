"""Wire constants and limits of the engine, each limit with the reason for its default."""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "CONTROL_OPCODES",
    "DATA_OPCODES",
    "MAX_HANDSHAKE_RESPONSE_SIZE",
    "MAX_MESSAGE_SIZE",
    "CloseCode",
    "Opcode",
    "is_valid_received_close_code",
]


class Opcode(IntEnum):
    """Frame opcodes (RFC 6455 5.2 and 11.8)."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


DATA_OPCODES = frozenset({Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY})
CONTROL_OPCODES = frozenset({Opcode.CLOSE, Opcode.PING, Opcode.PONG})


class CloseCode(IntEnum):
    """Close status codes (RFC 6455 7.4.1 and the IANA registry)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RECEIVED = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_FRAME_PAYLOAD_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


def is_valid_received_close_code(code: int) -> bool:
    """Whether a peer may send ``code`` in a Close frame.

    RFC 6455 7.4.1/7.4.2: 1004, 1005, 1006 and 1015 are reserved and "MUST NOT be set as a
    status code in a Close control frame"; below 1000 is unused; 1016-2999 are reserved for
    future extensions of the RFC (none registered beyond 1014: IANA's 1012-1014 are valid);
    3000-4999 belong to libraries and applications.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


# Limits.

MAX_MESSAGE_SIZE = 64 * 1024 * 1024
"""Largest message accepted, in bytes of payload (decompressed, once compression exists).
A browser has no fixed limit; 64 MiB bounds memory per connection while the largest
Autobahn|Testsuite message (16 MiB in 9.1.6/9.2.6) passes with room to spare. A message of
exactly the limit is accepted; one byte more fails the connection with 1009."""

MAX_HANDSHAKE_RESPONSE_SIZE = 64 * 1024
"""Largest opening handshake response head (status line and headers), in bytes. Real
servers answer the upgrade in well under 1 KiB; Chromium allows 256 KiB of response
headers for ordinary HTTP, but a WebSocket server that needs more than 64 KiB is either
broken or hostile, and this bounds what a peer that never ends its headers can make us
buffer."""
