"""The hot path: frame header parsing, masking and UTF-8 validation.

Everything here is pure functions and one tiny class over ``bytes``-like values, with no
imports from the rest of the package but ``_build`` (which build runs), so that this module
can be compiled (or a compiled twin with the same names swapped in) without touching the
engine. RFC 6455 section 5.2 is the reference for the wire format.
"""

from __future__ import annotations

import codecs
import os
import struct
from collections.abc import Callable

from ._build import PURE_PYTHON, compiled

__all__ = [
    "LENGTH_HIGH_BIT",
    "MASK_POOL_SIZE",
    "NEED_MORE",
    "PURE_PYTHON",
    "SPEEDUPS",
    "Utf8Validator",
    "apply_mask",
    "encode_frame_header",
    "encode_masked_frame",
    "mask_key",
    "parse_frame_header",
    "random_bytes",
]

# RFC 6455 5.3: "The masking key MUST be derived from a strong source of entropy". One
# os.urandom() call per frame is a system call per frame; drawing keys from a pool of CSPRNG
# bytes keeps the same source at a fraction of the cost. 4 KiB is 1024 frames per refill.
MASK_POOL_SIZE = 4096

_mask_pool = b""
_mask_pos = MASK_POOL_SIZE


def random_bytes(n: int) -> bytes:
    """``n`` bytes (at most ``MASK_POOL_SIZE``) from the pool of CSPRNG bytes, each used
    once: masking keys, and the nonce of the opening handshake."""
    global _mask_pool, _mask_pos
    if _mask_pos + n > len(_mask_pool):
        _mask_pool = os.urandom(MASK_POOL_SIZE)
        _mask_pos = 0
    drawn = _mask_pool[_mask_pos : _mask_pos + n]
    _mask_pos += n
    return drawn


def mask_key() -> bytes:
    """Return a fresh 4-byte masking key from the CSPRNG pool."""
    return random_bytes(4)


def _forget_pool() -> None:
    """A forked child must not draw what its parent draws too (the same keys and nonces in
    two processes): it starts a pool of its own."""
    global _mask_pool, _mask_pos
    _mask_pool, _mask_pos = b"", MASK_POOL_SIZE


if hasattr(os, "register_at_fork"):  # (Not on Windows, which has no fork.)
    os.register_at_fork(after_in_child=_forget_pool)


def apply_mask(data: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """Mask or unmask ``data`` with the 4-byte ``key`` (RFC 6455 5.3; the operation is its
    own inverse)."""
    n = len(data)
    if n == 0:
        return b""
    # One big-integer XOR instead of a Python loop per byte: CPython does it in C.
    repeated = (key * ((n >> 2) + 1))[:n]
    value = int.from_bytes(data, "little") ^ int.from_bytes(repeated, "little")
    return value.to_bytes(n, "little")


_PACK_H = struct.Struct("!BB").pack
_PACK_H16 = struct.Struct("!BBH").pack
_PACK_H64 = struct.Struct("!BBQ").pack


def encode_frame_header(first_byte: int, length: int, key: bytes | None) -> bytes:
    """Encode a frame header: ``first_byte`` holds FIN, RSV1-3 and the opcode; ``key`` is
    the masking key, or None for an unmasked frame (RFC 6455 5.2)."""
    mask_bit = 0x80 if key is not None else 0
    if length < 126:
        header = _PACK_H(first_byte, mask_bit | length)
    elif length < 65536:
        header = _PACK_H16(first_byte, mask_bit | 126, length)
    else:
        header = _PACK_H64(first_byte, mask_bit | 127, length)
    return header + key if key is not None else header


_UNPACK_H16 = struct.Struct("!H").unpack_from
_UNPACK_H64 = struct.Struct("!Q").unpack_from

# parse_frame_header results when no header can be returned.
NEED_MORE = -1
"""Not enough bytes yet for the whole header."""
LENGTH_HIGH_BIT = -2
"""A 64-bit length with its most significant bit set (RFC 6455 5.2: "the most significant
bit MUST be 0")."""


def parse_frame_header(
    buf: bytes | bytearray, pos: int
) -> tuple[int, int, int, bytes | None, int]:
    """Parse the frame header at ``buf[pos:]``.

    Returns ``(first_byte, payload_length, header_length, mask_key_or_None, status)`` where
    ``status`` is 0 on success or one of NEED_MORE and LENGTH_HIGH_BIT. The caller checks
    opcode, RSV bits and limits, which depend on connection state.
    """
    available = len(buf) - pos
    if available < 2:
        return 0, 0, 0, None, NEED_MORE
    first = buf[pos]
    second = buf[pos + 1]
    length = second & 0x7F
    header_length = 2
    if length == 126:
        if available < 4:
            return 0, 0, 0, None, NEED_MORE
        (length,) = _UNPACK_H16(buf, pos + 2)
        header_length = 4
    elif length == 127:
        if available < 10:
            return 0, 0, 0, None, NEED_MORE
        (length,) = _UNPACK_H64(buf, pos + 2)
        if length >> 63:
            return first, length, 10, None, LENGTH_HIGH_BIT
        header_length = 10
    key = None
    if second & 0x80:
        if available < header_length + 4:
            return 0, 0, 0, None, NEED_MORE
        key = bytes(buf[pos + header_length : pos + header_length + 4])
        header_length += 4
    return first, length, header_length, key, 0


_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


class Utf8Validator:
    """Incremental UTF-8 validation that fails at the first byte that makes the text invalid.

    RFC 6455 8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that the
    byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket
    Connection_." Failing fast (inside a fragmented message, inside a frame still arriving)
    is what Autobahn 6.4.* checks.
    """

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = _Utf8Decoder("strict")

    def feed(self, data: bytes | bytearray | memoryview, final: bool) -> bool:
        """Validate the next chunk; ``final`` when no more bytes of this text follow.
        Returns False as soon as the bytes seen so far cannot start valid UTF-8."""
        decoder = self._decoder
        try:
            decoder.decode(data, final)
        except UnicodeDecodeError:
            return False
        if not final:
            pending = decoder.getstate()[0]
            # CPython's decoder rejects a bad second byte at once, except after 0xED, where
            # A0-BF starts a UTF-16 surrogate (U+D800-U+DFFF), invalid in UTF-8: it waits for
            # the third byte. Reject the surrogate as soon as its second byte is seen.
            if len(pending) >= 2 and pending[-2] == 0xED and pending[-1] >= 0xA0:
                return False
        return True

    def reset(self) -> None:
        """Start validating a new text."""
        self._decoder.reset()


_pure_apply_mask = apply_mask

encode_masked_frame: Callable[[int, bytes | bytearray | memoryview], bytes] | None = None
"""The compiled frame writer (``_speedups.encode_masked_frame``: header, fresh key and masked
payload in one ``bytes``), or None: the engine then uses the functions above."""

# The compiled twins (``_speedups.pyx``), when they were built and are not refused.
if compiled("wsapi.protocol._speedups"):
    from ._speedups import apply_mask, encode_masked_frame

SPEEDUPS = apply_mask.__module__ != __name__
"""Whether the compiled hot path is in use."""
