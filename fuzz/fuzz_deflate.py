"""Fuzz target: permessage-deflate negotiation and inflation (``protocol/deflate.py``, with
the extension header's parser in ``protocol/handshake.py``).

Input: byte 0 chooses the size limit (bits 0-2) and text or binary (bit 3); byte 1 the
number N of chunk sizes that follow (0-31); then a ``Sec-WebSocket-Extensions`` value up to
the first newline, and after it the payload of a compressed message.

Invariants:

- negotiation never raises: the header parses to elements or a reason, the parameters to
  ``DeflateParameters`` or a reason, and agreed parameters are within RFC 7692's ranges;
- inflation never raises, returns one of the ``INFLATE_*`` results, never grows the message
  past the limit, and agrees with zlib itself on a payload that is one DEFLATE stream;
- what ``compress`` makes of the payload's chunks, as messages with the agreed parameters,
  inflates back to them on a receiver with the same parameters.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import chunks, instrumented, run

with instrumented(__name__ == "__main__"):
    from wsapi.protocol.codec import Utf8Validator
    from wsapi.protocol.deflate import (
        INFLATE_CORRUPT,
        INFLATE_OK,
        INFLATE_TOO_BIG,
        INFLATE_UTF8,
        MAX_WINDOW_BITS,
        MIN_WINDOW_BITS,
        TAIL,
        DeflateParameters,
        PerMessageDeflate,
        parse_response,
    )
    from wsapi.protocol.handshake import parse_extension_list


__all__ = ["check"]

LIMITS = (0, 1, 10, 100, 1000, 4096, 65536, 1 << 20)
"""Message size limits, chosen by bits 0-2 of the first byte."""

RESULTS = (INFLATE_OK, INFLATE_TOO_BIG, INFLATE_CORRUPT, INFLATE_UTF8)


def _negotiate(value: str) -> DeflateParameters | None:
    elements = parse_extension_list(value)
    if isinstance(elements, str):
        return None
    if len(elements) != 1 or elements[0].name != "permessage-deflate":
        return None
    agreed = parse_response(elements[0].params)
    if isinstance(agreed, str):
        return None
    for bits in (agreed.server_max_window_bits, agreed.client_max_window_bits):
        assert MIN_WINDOW_BITS <= bits <= MAX_WINDOW_BITS, agreed
    return agreed


def _inflate(
    params: DeflateParameters, payload: bytes, cuts: bytes, limit: int, text: bool
) -> int:
    """Inflate one message arriving in chunks; its result."""
    receiver = PerMessageDeflate(params)
    receiver.start_message()
    message = bytearray()
    validator = Utf8Validator() if text else None
    parts = [*chunks(payload, cuts), TAIL]
    for part in parts:
        status = receiver.inflate(part, message, limit, validator)
        assert status in RESULTS, status
        assert len(message) <= limit, (len(message), limit)
        if status != INFLATE_OK:
            return status
    receiver.end_message()
    # One DEFLATE stream, no final block: zlib itself says what the message is.
    reference = zlib.decompressobj(wbits=-params.server_max_window_bits)
    try:
        inflated = reference.decompress(payload + TAIL)
    except zlib.error:
        return INFLATE_OK
    if not reference.eof and not reference.unused_data:
        assert bytes(message) == inflated, "inflate() differs from zlib"
    return INFLATE_OK


def _round_trip(params: DeflateParameters, payload: bytes, cuts: bytes) -> None:
    """Messages compressed with ``params`` inflate back with a mirror receiver."""
    sender = PerMessageDeflate(params)
    # Our compressor's window is the client's; the receiver reads with that window.
    mirror = DeflateParameters(
        server_no_context_takeover=params.client_no_context_takeover,
        server_max_window_bits=max(params.client_max_window_bits, 9),
    )
    receiver = PerMessageDeflate(mirror)
    for message in chunks(payload, cuts):
        compressed = sender.compress(message)
        receiver.start_message()
        out = bytearray()
        status = receiver.inflate(compressed + TAIL, out, len(message), None)
        assert status == INFLATE_OK, status
        assert bytes(out) == message
        receiver.end_message()


def check(data: bytes) -> None:
    """Run ``data`` through negotiation and inflation; assert the invariants above."""
    if len(data) < 2:
        return
    options, count = data[0], data[1] & 31
    cuts = data[2 : 2 + count]
    header, _, payload = data[2 + count :].partition(b"\n")
    params = _negotiate(header.decode("latin-1")) or DeflateParameters()
    _inflate(params, payload, cuts, LIMITS[options & 7], bool(options & 8))
    _round_trip(params, payload, cuts)


def main() -> None:
    run(check)


if __name__ == "__main__":
    main()
