"""permessage-deflate (RFC 7692): the client's offer, the server's answer, and the per-message
compressor and decompressor.

Negotiation. The client offers ``permessage-deflate; client_max_window_bits``, what browsers
send: it lets the server cap our window, asks nothing of the server, and so is accepted by
every server that does permessage-deflate at all. ``parse_response`` applies RFC 7692 7.1 to
the server's answer and returns the ``DeflateParameters`` in force, or the reason the
connection must fail. The header's syntax (RFC 6455 9.1) is read by ``handshake``.

Payload transformation (RFC 7692 7.2). ``PerMessageDeflate`` holds the two zlib contexts of a
connection: the compressor for what we send (its window capped by ``client_max_window_bits``)
and the decompressor for what the server sends (``server_max_window_bits``). Each is created
when the first message that needs it comes, not at the handshake: a zlib compressor with a
32 KiB window costs about 260 KiB, and a connection that only ever sends short messages, or
that stays idle, never pays it. With "no context takeover" on a side, that side's context
lives for one message only, so an idle connection holds no zlib memory at all.

Memory, measured with tracemalloc (CPython 3.11, zlib 1.2.13; ``tests/test_deflate.py``
asserts these bounds), per open engine: idle, 1.7 KiB without compression and 1.9 KiB with
permessage-deflate negotiated (this object and its parameters; no zlib context yet). After
one message each way with context takeover: 312 KiB with 15-bit windows (the compressor 262
KiB, zlib's ``(1 << (windowBits + 2)) + (1 << (memLevel + 9))`` plus its state; the
decompressor 39 KiB, its 32 KiB window and 7 KiB of state), 54 KiB with the 12-bit windows
the websockets server asks for, and back to 3.4 KiB with no context takeover both ways.

Decompression is bounded: ``inflate`` never produces more than the room left under the
message size limit plus one byte, in chunks of ``INFLATE_CHUNK``, so a "zip bomb" (a
message of a few hundred KiB that inflates to gigabytes) is refused as soon as it passes the
limit, having cost no more memory than the limit itself.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from .codec import Utf8Validator

__all__ = [
    "COMPRESSION_LEVEL",
    "COMPRESSION_THRESHOLD",
    "EXTENSION_NAME",
    "INFLATE_CHUNK",
    "INFLATE_CORRUPT",
    "INFLATE_OK",
    "INFLATE_TOO_BIG",
    "INFLATE_UTF8",
    "OFFER",
    "TAIL",
    "DeflateParameters",
    "PerMessageDeflate",
    "parse_response",
]

EXTENSION_NAME = "permessage-deflate"

OFFER = "permessage-deflate; client_max_window_bits"
"""The client's offer: Chromium's and Firefox's. RFC 7692 7.1.2.2: by including
``client_max_window_bits`` "a client informs the server that the client supports the
client_max_window_bits extension parameter in an extension negotiation response" (the server
may then shrink our window to save its memory); we ask for no restriction on the server."""

COMPRESSION_THRESHOLD = 128
"""Messages shorter than this many bytes are sent uncompressed (RSV1 clear): compression is
per message (RFC 7692 6: the bit is set on a message "to which the PMCE is applied"). Below
128 bytes deflate saves a few dozen bytes at best, less than the IP, TCP and TLS headers
around them, while it costs a zlib call per message and, on the first one, a 260 KiB
compressor that a chatty connection of small messages would otherwise never allocate. ws
(Node) uses 1024; browsers compress everything; 128 keeps most of the gain on small JSON."""

COMPRESSION_LEVEL = zlib.Z_DEFAULT_COMPRESSION
"""zlib's default level (6), as Chromium uses: higher levels cost much more time for a few
percent of size."""

INFLATE_CHUNK = 256 * 1024
"""Most bytes one zlib call may inflate before the limits are checked again: large enough
that the Python loop costs nothing next to inflating, small enough to be noise next to the
message size limit (and the most a bomb can cost beyond that limit)."""

MIN_WINDOW_BITS = 8
MAX_WINDOW_BITS = 15
"""RFC 7692 7.1.2.1: the window bits are "a decimal integer value without leading zeroes
between 8 to 15, inclusive"."""

ZLIB_MIN_COMPRESS_WINDOW_BITS = 9
"""zlib refuses a raw deflate compressor with an 8-bit window since 1.2.9 ("Invalid
initialization option"). A 9-bit zlib compressor never refers back further than 512 - 262 =
250 bytes (deflate.c: ``MAX_DIST(s) = w_size - MIN_LOOKAHEAD``), so its output is valid for
a peer that inflates with a 256-byte window: when the server asks for 8, we compress with 9,
as Chromium does (crbug.com/691074); websockets refuses 8 outright."""

TAIL = b"\x00\x00\xff\xff"
"""RFC 7692 7.2.1 step 3 removes these 4 octets from the tail of every compressed message;
7.2.2 step 1: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of the payload of the
message" before inflating it."""
# RFC 7692 7.2.1 step 2: "If the resulting data does not end with an empty DEFLATE block
# with no compression ... append an empty DEFLATE block with no compression" (after a sync
# flush the data is byte-aligned, so the block is the 0x00 header byte and LEN/NLEN).
_EMPTY_STORED_BLOCK = b"\x00" + TAIL

_WINDOW_BITS = re.compile(r"(?:8|9|1[0-5])")

# inflate() results.
INFLATE_OK = 0
INFLATE_TOO_BIG = 1
"""The message would exceed the size limit (close code 1009)."""
INFLATE_CORRUPT = 2
"""The payload is not valid DEFLATE data (close code 1007)."""
INFLATE_UTF8 = 3
"""A text message's inflated bytes are not UTF-8 (close code 1007)."""


@dataclass(frozen=True, slots=True)
class DeflateParameters:
    """The agreed parameters of RFC 7692 7.1 ("agreed parameters"), as the client uses them:
    the ``server_`` ones configure our decompressor, the ``client_`` ones our compressor."""

    server_no_context_takeover: bool = False
    """The server compresses each message with an empty window (7.1.1.1)."""
    client_no_context_takeover: bool = False
    """We must compress each message with an empty window (7.1.1.2)."""
    server_max_window_bits: int = MAX_WINDOW_BITS
    """The server's window is at most this many bits (7.1.2.1); 15 when not given."""
    client_max_window_bits: int = MAX_WINDOW_BITS
    """Our window may be at most this many bits (7.1.2.2); 15 when not given."""
    extension: str = EXTENSION_NAME
    """The accepted element, normalized: ``permessage-deflate`` and the server's
    parameters in its order, each as ``; name`` or ``; name=value``."""


def parse_response(
    params: Sequence[tuple[str, str | None]], *, client_max_window_bits_offered: bool = True
) -> DeflateParameters | str:
    """Apply RFC 7692 7.1 to the parameters of the ``permessage-deflate`` element that the
    server's response accepted (names and unquoted values, in order; None for no value).
    Returns the agreed parameters, or why the connection must fail."""
    # RFC 7692 7.1: "A client MUST _Fail the WebSocket Connection_ if the peer server
    # accepted an extension negotiation offer for this extension with an extension
    # negotiation response meeting any of the following conditions:
    #  o The negotiation response contains an extension parameter not defined for use in a
    #    response.
    #  o The negotiation response contains an extension parameter with an invalid value.
    #  o The negotiation response contains multiple extension parameters with the same name.
    #  o The client does not support the configuration that the response represents."
    # (Every valid configuration is supported here: window bits 8 are taken as 9 for our
    # compressor, see ZLIB_MIN_COMPRESS_WINDOW_BITS.)
    seen: set[str] = set()
    flags = {"server_no_context_takeover": False, "client_no_context_takeover": False}
    bits = {"server_max_window_bits": MAX_WINDOW_BITS, "client_max_window_bits": MAX_WINDOW_BITS}
    parts = [EXTENSION_NAME]
    for name, value in params:
        if name in seen:
            return f"the server's permessage-deflate response repeats the parameter {name}"
        seen.add(name)
        if name in flags:
            # 7.1.1.1 and 7.1.1.2: "This extension parameter has no value."
            if value is not None:
                return (
                    f"the server's permessage-deflate parameter {name} has the value "
                    f"{value!r}; it takes none"
                )
            flags[name] = True
            parts.append(name)
        elif name == "server_max_window_bits":
            # 7.1.2.1: "A server MAY include the "server_max_window_bits" extension parameter
            # in an extension negotiation response even if the extension negotiation offer
            # being accepted by the response didn't include" it; it then has a value.
            if value is None or not _WINDOW_BITS.fullmatch(value):
                return _bad_bits(name, value)
            bits[name] = int(value)
            parts.append(f"{name}={value}")
        elif name == "client_max_window_bits":
            # 7.1.2.2: "If a received extension negotiation offer doesn't have the
            # "client_max_window_bits" extension parameter, the corresponding extension
            # negotiation response to the offer MUST NOT include the "client_max_window_bits"
            # extension parameter."
            if not client_max_window_bits_offered:
                return f"the server's permessage-deflate response sets {name}, not offered"
            if value is None:
                # Without a value it limits nothing: ASP.NET Core answers this way when it
                # keeps 15 bits. Failing it would refuse a server that browsers accept.
                parts.append(name)
            elif _WINDOW_BITS.fullmatch(value):
                bits[name] = int(value)
                parts.append(f"{name}={value}")
            else:
                return _bad_bits(name, value)
        else:
            return f"the server's permessage-deflate response has the unknown parameter {name}"
    return DeflateParameters(
        server_no_context_takeover=flags["server_no_context_takeover"],
        client_no_context_takeover=flags["client_no_context_takeover"],
        server_max_window_bits=bits["server_max_window_bits"],
        client_max_window_bits=bits["client_max_window_bits"],
        extension="; ".join(parts),
    )


def _bad_bits(name: str, value: str | None) -> str:
    shown = "no value" if value is None else f"the value {value!r}"
    return f"the server's permessage-deflate parameter {name} has {shown}, not 8 to 15"


class PerMessageDeflate:
    """One connection's permessage-deflate state: the agreed parameters and the two zlib
    contexts, each created when first needed (RFC 7692 7.2)."""

    __slots__ = (
        "_compress_bits",
        "_compressor",
        "_decompressor",
        "_inflate_bits",
        "_mem_level",
        "_stream_ended",
        "params",
    )

    def __init__(self, params: DeflateParameters) -> None:
        self.params = params
        # 7.2.1: "If the "agreed parameters" contain the "client_max_window_bits" extension
        # parameter with a value of w, the client MUST NOT use an LZ77 sliding window longer
        # than the w-th power of 2 bytes to compress messages to send."
        self._compress_bits = max(params.client_max_window_bits, ZLIB_MIN_COMPRESS_WINDOW_BITS)
        # zlib's hash table has 1 << (memLevel + 7) heads: memLevel = bits - 7 gives one head
        # per window position, the ratio of zlib's own default (15 bits, memLevel 8), and
        # shrinks the compressor with its window (12 bits: 32 KiB instead of 256 KiB).
        self._mem_level = self._compress_bits - 7
        self._inflate_bits = params.server_max_window_bits
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None
        # The last part inflated ended right after a final block (see inflate()).
        self._stream_ended = False

    @property
    def memory_contexts(self) -> tuple[bool, bool]:
        """Whether the compressor and the decompressor currently exist (for tests and
        memory accounting)."""
        return self._compressor is not None, self._decompressor is not None

    # Sending.

    def compress(self, payload: bytes | bytearray | memoryview) -> bytes:
        """Compress one whole message (RFC 7692 7.2.1), ready to send with RSV1 set."""
        compressor = self._compressor
        if compressor is None:
            compressor = zlib.compressobj(
                COMPRESSION_LEVEL, zlib.DEFLATED, -self._compress_bits, self._mem_level
            )
            # 7.2.1: with "client_no_context_takeover" the client "MUST start compressing
            # each new message with an empty LZ77 sliding window": the context lives for
            # one message. Otherwise it is kept, and so is its window.
            if not self.params.client_no_context_takeover:
                self._compressor = compressor
        # 7.2.1 step 1: "Compress all the octets of the payload of the message using
        # DEFLATE." A sync flush ends the data on a byte boundary with an empty stored block.
        data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        # Step 2: the flush wrote that empty block unless there was nothing left to flush.
        if not data.endswith(TAIL):
            data += _EMPTY_STORED_BLOCK
        # Step 3: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail end."
        return data[:-4]

    # Receiving.

    def inflate(
        self,
        data: bytes | bytearray,
        message: bytearray,
        limit: int,
        validator: Utf8Validator | None,
    ) -> int:
        """Inflate ``data``, the next part of a compressed message's payload (its last part
        ending with ``TAIL``), onto ``message``, never letting it grow past ``limit`` bytes;
        ``validator`` checks the inflated bytes of a text message as they come (the caller
        checks the end). Returns INFLATE_OK or the reason to fail."""
        if not data:
            return INFLATE_OK
        if self._stream_ended:
            # The previous part ended exactly after a final block: the tail we append is
            # not a block of its own there (see below).
            self._stream_ended = False
            if data == TAIL:
                return INFLATE_OK
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = self._decompressor = zlib.decompressobj(wbits=-self._inflate_bits)
        while True:
            room = limit - len(message)
            # One byte more than the room left: getting it proves the limit is exceeded,
            # without inflating further.
            max_length = room + 1 if room < INFLATE_CHUNK else INFLATE_CHUNK
            try:
                chunk = decompressor.decompress(data, max_length)
            except zlib.error:
                return INFLATE_CORRUPT
            if chunk:
                if len(chunk) > room:
                    return INFLATE_TOO_BIG
                if validator is not None and not validator.feed(chunk, False):
                    return INFLATE_UTF8
                message += chunk
            if decompressor.eof:
                # A block with BFINAL set ended the DEFLATE stream: RFC 7692 7.2.3.4 lets a
                # sender flush that way ("0xf3 0x48 0xcd 0xc9 0xc9 0x07 0x00 0x00" is
                # "Hello"). What follows starts a new stream, as in Chromium, but with the
                # window kept as far as this message provides it (7.2.2: takeover uses "the
                # LZ77 sliding window used to process the last compressed message").
                data = decompressor.unused_data
                window = bytes(message[-(1 << self._inflate_bits) :])
                decompressor = self._decompressor = (
                    zlib.decompressobj(wbits=-self._inflate_bits, zdict=window)
                    if window
                    else zlib.decompressobj(wbits=-self._inflate_bits)
                )
                # The 4 octets of 7.2.2 complete an empty stored block only after the block
                # header bits a sync flush leaves in the last byte: right after a final block
                # they would start a broken one. The RFC's example sends that byte (the last
                # 0x00); a sender that does not is understood too.
                if not data:
                    self._stream_ended = True
                    return INFLATE_OK
                if data == TAIL:
                    return INFLATE_OK
                continue
            data = decompressor.unconsumed_tail
            # Done when all input is consumed and the output was not cut short by
            # max_length (zlib may still hold output when exactly max_length came out).
            if not data and len(chunk) < max_length:
                return INFLATE_OK

    def start_message(self) -> None:
        """A compressed message begins: RFC 7692 7.2.2, with "server_no_context_takeover"
        the server compressed it with an empty window, so it gets a fresh decompressor."""
        self._stream_ended = False
        if self.params.server_no_context_takeover:
            self._decompressor = None

    def end_message(self) -> None:
        """A compressed message ended: a context that will not be taken over is dropped now,
        so that an idle connection holds no zlib memory."""
        if self.params.server_no_context_takeover:
            self._decompressor = None
