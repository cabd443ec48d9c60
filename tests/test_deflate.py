"""Tests of permessage-deflate (RFC 7692): the offer, every outcome of the server's answer,
the compressor and decompressor, the RSV1 rules, bombs and memory. Bytes in, bytes out:
server frames are byte literals or zlib output made here, client frames are unmasked with
the key each carries."""

from __future__ import annotations

import itertools
import random
import time
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import client_frames, server_frame
from test_engine import (
    accept_for,
    assert_failed,
    drain,
    request_key,
    sent,
)
from wsapi.protocol.codec import Utf8Validator
from wsapi.protocol.deflate import (
    COMPRESSION_THRESHOLD,
    INFLATE_CORRUPT,
    INFLATE_OK,
    INFLATE_TOO_BIG,
    INFLATE_UTF8,
    OFFER,
    TAIL,
    DeflateParameters,
    PerMessageDeflate,
    parse_response,
)
from wsapi.protocol.engine import ClientConnection, State
from wsapi.protocol.events import EngineEvent, Failed, Opened, PingReceived

DEFLATE = "permessage-deflate"
MiB = 1024 * 1024


# Helpers.


def response(key: str, extensions: list[str]) -> bytes:
    """A valid 101 with one Sec-WebSocket-Extensions header per item of ``extensions``."""
    lines = "".join(f"Sec-WebSocket-Extensions: {value}\r\n" for value in extensions)
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_for(key)}\r\n{lines}\r\n"
    ).encode("latin-1")


def handshake(
    *extensions: str, compression: str | None = "deflate", max_message_size: int = 64 * MiB
) -> tuple[ClientConnection, Opened | Failed]:
    """A connection offering ``compression``, answered with ``extensions``; its first event."""
    conn = ClientConnection(
        "example.com", "/", compression=compression, max_message_size=max_message_size
    )
    conn.receive_data(response(request_key(sent(conn)), list(extensions)))
    event = conn.next_event()
    assert isinstance(event, (Opened, Failed))
    return conn, event


def open_deflate(extension: str = DEFLATE, max_message_size: int = 64 * MiB) -> ClientConnection:
    """A connection with permessage-deflate agreed as ``extension`` says; Opened consumed."""
    conn, event = handshake(extension, max_message_size=max_message_size)
    assert isinstance(event, Opened), event
    assert conn.deflate is not None
    return conn


def deflated(data: bytes, compressor: zlib._Compress | None = None, bits: int = 15) -> bytes:
    """``data`` compressed as a server does it (RFC 7692 7.2.1): sync flush, tail removed."""
    if compressor is None:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -bits)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


def compressed_frame(opcode: int, data: bytes, *, fin: bool = True, rsv1: bool = True) -> bytes:
    """A server frame whose payload is ``data`` as is, with RSV1 set when ``rsv1``."""
    frame = bytearray(server_frame(opcode, data, fin=fin))
    if rsv1:
        frame[0] |= 0x40
    return bytes(frame)


def inflate_client(payload: bytes, decompressor: zlib._Decompress | None = None) -> bytes:
    """What a server inflates from one of our compressed messages (RFC 7692 7.2.2)."""
    if decompressor is None:
        decompressor = zlib.decompressobj(wbits=-15)
    return decompressor.decompress(payload + TAIL)


def text_sample(size: int) -> bytes:
    """Compressible text of ``size`` bytes (repeated words)."""
    words = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    return (words * (size // len(words) + 1))[:size]


# The offer.


def test_offer_is_browsers_offer() -> None:
    """compression="deflate" offers "permessage-deflate; client_max_window_bits"."""
    conn = ClientConnection("example.com", "/", compression="deflate")
    assert OFFER == "permessage-deflate; client_max_window_bits"
    assert b"\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" in (
        sent(conn)
    )
    assert conn.request.extensions == OFFER


def test_no_offer_without_compression() -> None:
    """compression=None (the default) sends no Sec-WebSocket-Extensions header."""
    conn = ClientConnection("example.com", "/")
    assert b"sec-websocket-extensions" not in sent(conn).lower()


def test_unknown_compression_raises() -> None:
    """A compression other than None or "deflate" is local misuse: ValueError."""
    with pytest.raises(ValueError, match="deflate"):
        ClientConnection("example.com", "/", compression="gzip")


# The server's answer: accepted.


@pytest.mark.parametrize(
    ("extensions", "params"),
    [
        pytest.param([DEFLATE], DeflateParameters(), id="plain"),
        pytest.param(
            ["permessage-deflate; server_no_context_takeover"],
            DeflateParameters(server_no_context_takeover=True),
            id="server_no_context_takeover",
        ),
        pytest.param(
            ["permessage-deflate; client_no_context_takeover"],
            DeflateParameters(client_no_context_takeover=True),
            id="client_no_context_takeover",
        ),
        pytest.param(
            ["permessage-deflate; server_max_window_bits=10"],
            DeflateParameters(server_max_window_bits=10),
            id="server_max_window_bits",
        ),
        pytest.param(
            ["permessage-deflate; server_max_window_bits=8"],
            DeflateParameters(server_max_window_bits=8),
            id="server_max_window_bits-8",
        ),
        pytest.param(
            ["permessage-deflate; client_max_window_bits=9"],
            DeflateParameters(client_max_window_bits=9),
            id="client_max_window_bits",
        ),
        pytest.param(
            ["permessage-deflate; client_max_window_bits=8"],
            DeflateParameters(client_max_window_bits=8),
            id="client_max_window_bits-8",
        ),
        pytest.param(
            ["permessage-deflate; client_max_window_bits"],
            DeflateParameters(),
            id="client_max_window_bits-no-value",
        ),
        pytest.param(
            [
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                "server_max_window_bits=12; client_max_window_bits=15"
            ],
            DeflateParameters(True, True, 12, 15),
            id="all-four",
        ),
    ],
)
def test_accepted_parameters(extensions: list[str], params: DeflateParameters) -> None:
    """Each response parameter of RFC 7692 7.1 is taken into the agreed parameters, and
    ``extensions`` (engine and Opened) is the accepted element."""
    conn, event = handshake(*extensions)
    assert isinstance(event, Opened)
    assert conn.deflate is not None
    assert conn.deflate.params == DeflateParameters(
        params.server_no_context_takeover,
        params.client_no_context_takeover,
        params.server_max_window_bits,
        params.client_max_window_bits,
        extensions[0],
    )
    assert event.extensions == conn.extensions == extensions[0]
    assert conn.state is State.OPEN


def test_extensions_normalized() -> None:
    """Spacing and quoting are normalized in ``extensions``; parameter order is kept."""
    conn, event = handshake(
        'permessage-deflate;client_max_window_bits="10" ;  server_no_context_takeover'
    )
    assert isinstance(event, Opened)
    expected = "permessage-deflate; client_max_window_bits=10; server_no_context_takeover"
    assert event.extensions == conn.extensions == expected
    assert conn.deflate is not None
    assert conn.deflate.params.client_max_window_bits == 10
    assert conn.deflate.params.server_no_context_takeover


def test_server_declines() -> None:
    """A 101 without the extension opens without compression, and RSV1 is then a violation."""
    conn, event = handshake()
    assert isinstance(event, Opened)
    assert (event.extensions, conn.extensions, conn.deflate) == ("", "", None)
    conn.receive_data(compressed_frame(1, deflated(b"hello")))
    assert_failed(conn, 1002)


def test_empty_extension_header_means_none() -> None:
    """An empty Sec-WebSocket-Extensions header is no extension."""
    conn, event = handshake("")
    assert isinstance(event, Opened)
    assert conn.deflate is None


# The server's answer: refused.


@pytest.mark.parametrize(
    ("extensions", "reason"),
    [
        pytest.param(["x-webkit-deflate-frame"], "not offered", id="other-extension"),
        pytest.param(["Permessage-Deflate"], "not offered", id="name-case"),
        pytest.param(["permessage-deflate, x-foo"], "not offered", id="plus-other"),
        pytest.param(["permessage-deflate, permessage-deflate"], "2 times", id="twice"),
        pytest.param([DEFLATE, DEFLATE], "2 times", id="twice-two-headers"),
        pytest.param(["permessage-deflate; foo"], "unknown parameter foo", id="unknown"),
        pytest.param(["permessage-deflate; foo=1"], "unknown parameter foo", id="unknown-value"),
        pytest.param(
            ["permessage-deflate; mem_level=8"], "unknown parameter mem_level", id="unknown-2"
        ),
        pytest.param(
            ["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
            "repeats",
            id="duplicate-flag",
        ),
        pytest.param(
            ["permessage-deflate; client_max_window_bits=10; client_max_window_bits=10"],
            "repeats",
            id="duplicate-bits",
        ),
        pytest.param(
            ["permessage-deflate; server_max_window_bits=10; server_max_window_bits=11"],
            "repeats",
            id="duplicate-server-bits",
        ),
        pytest.param(
            ["permessage-deflate; server_no_context_takeover=1"], "takes none", id="flag-value"
        ),
        pytest.param(
            ['permessage-deflate; client_no_context_takeover="true"'],
            "takes none",
            id="flag-quoted-value",
        ),
        pytest.param(["permessage-deflate; server_max_window_bits"], "no value", id="no-bits"),
        pytest.param(["permessage-deflate; server_max_window_bits=7"], "not 8 to 15", id="7"),
        pytest.param(["permessage-deflate; server_max_window_bits=16"], "not 8 to 15", id="16"),
        pytest.param(["permessage-deflate; server_max_window_bits=08"], "not 8 to 15", id="08"),
        pytest.param(["permessage-deflate; server_max_window_bits=+9"], "not 8 to 15", id="+9"),
        pytest.param(["permessage-deflate; server_max_window_bits=ten"], "not 8 to 15", id="ten"),
        pytest.param(["permessage-deflate; client_max_window_bits=0"], "not 8 to 15", id="c0"),
        pytest.param(["permessage-deflate; client_max_window_bits=010"], "not 8 to 15", id="c010"),
        pytest.param(["permessage-deflate;"], "malformed", id="empty-param"),
        pytest.param(["permessage-deflate; a=b c"], "malformed", id="two-values"),
        pytest.param(['permessage-deflate; server_max_window_bits="1 0"'], "malformed", id="q"),
        pytest.param(['permessage-deflate; server_max_window_bits=""'], "malformed", id="q0"),
        pytest.param(["permessage-deflate; server_max_window_bits="], "malformed", id="eq"),
        pytest.param(["; permessage-deflate"], "malformed", id="no-name"),
    ],
)
def test_invalid_response_fails_handshake(extensions: list[str], reason: str) -> None:
    """Every response RFC 7692 7.1 and RFC 6455 4.1/9.1 forbid fails the opening handshake
    with a readable reason, and nothing is sent after the request."""
    conn, event = handshake(*extensions)
    assert isinstance(event, Failed)
    assert event.kind == "handshake"
    assert reason in event.reason, event.reason
    assert conn.state is State.CLOSED
    assert (conn.extensions, conn.deflate) == ("", None)
    assert sent(conn) == b""


def test_extension_not_offered_fails() -> None:
    """permessage-deflate in the answer to a request that offered nothing fails."""
    _, event = handshake(DEFLATE, compression=None)
    assert isinstance(event, Failed)
    assert "not offered" in event.reason


def test_client_max_window_bits_not_offered_fails() -> None:
    """client_max_window_bits in a response to an offer without it fails (RFC 7692 7.1.2.2)."""
    params = [("client_max_window_bits", "10")]
    result = parse_response(params, client_max_window_bits_offered=False)
    assert isinstance(result, str)
    assert "not offered" in result
    assert isinstance(parse_response(params), DeflateParameters)


# The codec: compressing what we send.


def test_small_message_sent_uncompressed() -> None:
    """A message under the threshold goes out as is, with RSV1 clear."""
    conn = open_deflate()
    conn.send_text("x" * (COMPRESSION_THRESHOLD - 1))
    conn.send_binary(b"")
    assert client_frames(sent(conn)) == [
        (0x81, b"x" * (COMPRESSION_THRESHOLD - 1)),
        (0x82, b""),
    ]
    assert conn.deflate is not None
    assert conn.deflate.memory_contexts == (False, False)


def test_large_message_sent_compressed() -> None:
    """A message at the threshold goes out in one frame with RSV1, and inflates back."""
    conn = open_deflate()
    text = "é" * COMPRESSION_THRESHOLD
    conn.send_text(text)
    data = text_sample(100_000)
    conn.send_binary(data)
    frames = client_frames(sent(conn))
    assert [first for first, _ in frames] == [0xC1, 0xC2]
    decompressor = zlib.decompressobj(wbits=-15)
    assert inflate_client(frames[0][1], decompressor) == text.encode()
    assert inflate_client(frames[1][1], decompressor) == data
    assert len(frames[1][1]) < len(data) // 10


def test_send_context_takeover() -> None:
    """With context takeover, a repeated message compresses to a few bytes and needs the
    previous message's window to inflate."""
    conn = open_deflate()
    data = bytes(range(256)) * 2
    conn.send_binary(data)
    conn.send_binary(data)
    (_, first), (_, second) = client_frames(sent(conn))
    assert len(second) < 16 < len(first)
    decompressor = zlib.decompressobj(wbits=-15)
    assert inflate_client(first, decompressor) == data
    assert inflate_client(second, decompressor) == data
    assert conn.deflate is not None
    assert conn.deflate.memory_contexts == (True, False)


def test_send_client_no_context_takeover() -> None:
    """With client_no_context_takeover, each message inflates alone, and the compressor is
    not kept between messages (RFC 7692 7.1.1.2)."""
    conn = open_deflate("permessage-deflate; client_no_context_takeover")
    data = bytes(range(256)) * 2
    conn.send_binary(data)
    conn.send_binary(data)
    (_, first), (_, second) = client_frames(sent(conn))
    assert first == second
    assert inflate_client(second) == data
    assert conn.deflate is not None
    assert conn.deflate.memory_contexts == (False, False)


def repeats_at(distance: int, size: int = 20_000) -> bytes:
    """Data whose only redundancy is at ``distance`` bytes back (a window test)."""
    block = bytes((i * 7919 + (i >> 3) * 104729) % 251 for i in range(distance))
    return (block * (size // distance + 1))[:size]


@pytest.mark.parametrize("bits", [8, 9, 10, 12, 15])
def test_compressor_respects_client_max_window_bits(bits: int) -> None:
    """Our messages inflate with a window of the negotiated size, 8 bits included (we
    compress with 9, whose back-references stay within 250 bytes)."""
    conn = open_deflate(f"permessage-deflate; client_max_window_bits={bits}")
    data = b"".join(repeats_at(d) for d in (100, 200, 300, 600, 1500, 5000, 20000))
    conn.send_binary(data)
    conn.send_binary(data)
    decompressor = zlib.decompressobj(wbits=-bits)
    for _, payload in client_frames(sent(conn)):
        assert inflate_client(payload, decompressor) == data


def test_compress_empty_payload() -> None:
    """An empty payload compresses to a valid (tiny) message, twice in a row."""
    deflate = PerMessageDeflate(DeflateParameters())
    first, second = deflate.compress(b""), deflate.compress(b"")
    decompressor = zlib.decompressobj(wbits=-15)
    assert len(first) <= 2
    assert inflate_client(first, decompressor) == b""
    assert inflate_client(second, decompressor) == b""


# The codec: inflating what the server sends.


def test_receive_compressed_text_and_binary() -> None:
    """Compressed text and binary messages are inflated; the decompressor is kept."""
    conn = open_deflate()
    conn.receive_data(compressed_frame(1, deflated("héllo".encode())))
    conn.receive_data(compressed_frame(2, deflated(b"\x00\x01" * 1000)))
    assert drain(conn) == ["héllo", b"\x00\x01" * 1000]
    assert conn.deflate is not None
    assert conn.deflate.memory_contexts == (False, True)


@pytest.mark.parametrize(
    "payload", [b"\x00", b"\x02\x00", b"\x03\x00"], ids=["stored", "fixed", "final"]
)
def test_receive_empty_compressed_message(payload: bytes) -> None:
    """An empty compressed message in any of its encodings inflates to ``""`` (a payload of
    0 bytes is not one: with the tail it is an unfinished stored block)."""
    conn = open_deflate()
    conn.receive_data(compressed_frame(1, payload) + compressed_frame(1, deflated(b"next")))
    assert drain(conn) == ["", "next"]


RFC_7692_EXAMPLES = [
    # 7.2.3.1: "A Message Compressed Using 1 Compressed DEFLATE Block".
    pytest.param([bytes.fromhex("f248cdc9c90700")], id="7.2.3.1"),
    # 7.2.3.2: "Sharing LZ77 Sliding Window": the second "Hello" refers to the first.
    pytest.param([bytes.fromhex("f248cdc9c90700"), bytes.fromhex("f2001100 00")], id="7.2.3.2"),
    # 7.2.3.3: "Using a DEFLATE Block with No Compression".
    pytest.param([bytes.fromhex("000500faff48656c6c6f00")], id="7.2.3.3"),
    # 7.2.3.4: "Using a DEFLATE Block with BFINAL Set to 1".
    pytest.param([bytes.fromhex("f348cdc9c9070000")], id="7.2.3.4"),
    # 7.2.3.5: "Two DEFLATE Blocks in 1 Message".
    pytest.param([bytes.fromhex("f24805000000ffffcac9c90700")], id="7.2.3.5"),
]


@pytest.mark.parametrize("payloads", RFC_7692_EXAMPLES)
def test_rfc_7692_examples(payloads: list[bytes]) -> None:
    """The payloads of RFC 7692 7.2.3 each inflate to "Hello", and a message compressed
    afresh after them still inflates."""
    conn = open_deflate()
    for payload in payloads:
        conn.receive_data(compressed_frame(1, payload))
    conn.receive_data(compressed_frame(1, bytes.fromhex("f248cdc9c90700")))
    assert drain(conn) == ["Hello"] * (len(payloads) + 1)


def test_rfc_7692_fragmented_example() -> None:
    """7.2.3.1's fragmented form: "Hello" compressed and split over two frames."""
    conn = open_deflate()
    conn.receive_data(bytes.fromhex("4103f248cd") + bytes.fromhex("8004c9c90700"))
    assert drain(conn) == ["Hello"]


def test_receive_window_kept_across_final_block() -> None:
    """After a final block, a message may still refer back into the window (RFC 7692 7.2.2
    keeps "the LZ77 sliding window used to process the last compressed message")."""
    conn = open_deflate()
    data = text_sample(5000)
    first = zlib.compressobj(6, zlib.DEFLATED, -15)
    second = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=data)
    conn.receive_data(
        compressed_frame(2, first.compress(data) + first.flush(zlib.Z_FINISH))
        + compressed_frame(2, deflated(data, second))
    )
    assert drain(conn) == [data, data]


def test_receive_empty_fragments_in_compressed_message() -> None:
    """Empty frames inside a compressed message add nothing and break nothing."""
    conn = open_deflate()
    payload = deflated(b"fragmented")
    conn.receive_data(
        compressed_frame(1, b"", fin=False)
        + compressed_frame(0, payload, fin=False, rsv1=False)
        + compressed_frame(0, b"", fin=False, rsv1=False)
        + compressed_frame(0, b"", rsv1=False)
    )
    assert drain(conn) == ["fragmented"]


def test_receive_context_takeover() -> None:
    """Messages that refer back to earlier messages inflate (context takeover)."""
    conn = open_deflate()
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = random.Random(7).randbytes(3000)
    frames = [compressed_frame(2, deflated(data, compressor)) for _ in range(3)]
    assert len(frames[2]) < 40
    assert len(frames[0]) > len(data)
    conn.receive_data(b"".join(frames))
    assert drain(conn) == [data, data, data]


def test_receive_server_no_context_takeover() -> None:
    """With server_no_context_takeover each message gets a fresh decompressor, dropped
    after the message (RFC 7692 7.1.1.1)."""
    conn = open_deflate("permessage-deflate; server_no_context_takeover")
    data = text_sample(3000)
    conn.receive_data(compressed_frame(2, deflated(data)) * 3)
    assert drain(conn) == [data, data, data]
    assert conn.deflate is not None
    assert conn.deflate.memory_contexts == (False, False)


def test_receive_server_max_window_bits() -> None:
    """A server that compresses with the 9-bit window it announced is understood."""
    conn = open_deflate("permessage-deflate; server_max_window_bits=9")
    data = repeats_at(300) + repeats_at(500)
    conn.receive_data(compressed_frame(2, deflated(data, bits=9)))
    assert drain(conn) == [data]


def test_receive_fragmented_compressed_message_with_control_frames() -> None:
    """A compressed message in three frames (RSV1 on the first only), with a Ping between."""
    conn = open_deflate()
    payload = deflated(text_sample(5000))
    a, b, c = payload[:10], payload[10:20], payload[20:]
    conn.receive_data(
        compressed_frame(1, a, fin=False)
        + server_frame(9, b"p")
        + compressed_frame(0, b, fin=False, rsv1=False)
        + compressed_frame(0, c, rsv1=False)
    )
    assert drain(conn) == [PingReceived(b"p"), text_sample(5000).decode()]


def test_receive_byte_by_byte_consumes_as_it_goes() -> None:
    """A compressed frame fed one byte at a time is inflated as it arrives: the buffer never
    holds more than its header and one byte."""
    conn = open_deflate()
    data = text_sample(50_000)
    frame = compressed_frame(1, deflated(data)) + compressed_frame(1, deflated(b"end"))
    events = []
    for i in range(len(frame)):
        conn.receive_data(frame[i : i + 1])
        events.extend(drain(conn))
        assert conn.buffered <= 5
    assert events == [data.decode(), "end"]


def test_uncompressed_messages_still_accepted() -> None:
    """With permessage-deflate in use, messages without RSV1 are taken as they are, between
    compressed ones."""
    conn = open_deflate()
    conn.receive_data(
        server_frame(1, b"plain")
        + compressed_frame(1, deflated(b"packed"))
        + server_frame(2, b"\x01", fin=False)
        + server_frame(0, b"\x02")
    )
    assert drain(conn) == ["plain", "packed", b"\x01\x02"]


def test_receive_bfinal_block_resets_window() -> None:
    """A message flushed with BFINAL set (RFC 7692 7.2.3.4) inflates, and so does the next
    one, compressed from a fresh stream as the sender must."""
    conn = open_deflate()
    first = zlib.compressobj(6, zlib.DEFLATED, -15)
    final = first.compress(b"first message") + first.flush(zlib.Z_FINISH)
    conn.receive_data(compressed_frame(1, final) + compressed_frame(1, deflated(b"second")))
    assert drain(conn) == ["first message", "second"]


def test_receive_two_streams_in_one_message() -> None:
    """Data after a final block in the same message is a new stream (as Chromium does)."""
    conn = open_deflate()
    one = zlib.compressobj(6, zlib.DEFLATED, -15)
    two = zlib.compressobj(6, zlib.DEFLATED, -15)
    payload = one.compress(b"ab") + one.flush(zlib.Z_FINISH) + deflated(b"cd", two)
    conn.receive_data(compressed_frame(2, payload))
    assert drain(conn) == [b"abcd"]


# Properties.


@settings(max_examples=100, deadline=None)
@given(
    messages=st.lists(st.one_of(st.text(max_size=800), st.binary(max_size=3000)), max_size=4),
    takeover=st.booleans(),
    data=st.data(),
)
def test_any_compressed_fragmentation_and_chunking_round_trips(
    messages: list[str | bytes], takeover: bool, data: st.DataObject
) -> None:
    """Compressed messages (with or without context takeover), cut into any frames with
    Pings between them and fed in any chunks, arrive exactly."""
    extension = DEFLATE if takeover else "permessage-deflate; server_no_context_takeover"
    conn = open_deflate(extension)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    stream = b""
    expected: list[EngineEvent] = []
    for message in messages:
        raw = message.encode() if isinstance(message, str) else message
        if not takeover:
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        payload = deflated(raw, compressor)
        cuts = sorted(set(data.draw(st.lists(st.integers(0, len(payload)), max_size=6))))
        bounds = [0, *cuts, len(payload)]
        pieces = [payload[a:b] for a, b in itertools.pairwise(bounds)]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            opcode = (1 if isinstance(message, str) else 2) if i == 0 else 0
            stream += compressed_frame(opcode, piece, fin=last, rsv1=i == 0)
            if not last and data.draw(st.booleans()):
                stream += server_frame(9, b"ping")
                expected.append(PingReceived(b"ping"))
        expected.append(message)
    chunks = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    events: list[EngineEvent] = []
    start = 0
    for cut in [*chunks, len(stream)]:
        conn.receive_data(stream[start:cut])
        start = cut
        events.extend(drain(conn))
    assert events == expected
    assert conn.buffered == 0
    assert conn.state is State.OPEN


FIRST_BYTES = [0x81, 0x82, 0xC1, 0xC2, 0x41, 0x42, 0x01, 0x00, 0x80, 0xC0, 0x89, 0xC9, 0xE1]


@settings(max_examples=200, deadline=None)
@given(
    frames=st.lists(
        st.tuples(st.sampled_from(FIRST_BYTES), st.binary(max_size=300)), min_size=1, max_size=6
    ),
    chunk=st.integers(1, 64),
)
def test_hostile_compressed_frames_never_raise(
    frames: list[tuple[int, bytes]], chunk: int
) -> None:
    """Frames with any mix of RSV1, opcodes and garbage payloads never raise: each ends in
    messages, or in Failed with 1002, 1007 or 1009, and then nothing more."""
    conn = open_deflate(max_message_size=4096)
    stream = b""
    for first, payload in frames:
        body = payload[:125] if first in (0x89, 0xC9) else payload
        stream += bytes([first]) + server_frame(0, body)[1:]
    events: list[EngineEvent] = []
    for i in range(0, len(stream), chunk):
        conn.receive_data(stream[i : i + chunk])
        events.extend(drain(conn))
    failures = [event for event in events if isinstance(event, Failed)]
    if failures:
        assert events[-1] is failures[0]
        assert failures[0].close_code in (1002, 1007, 1009)
        assert conn.state is State.CLOSED


# RSV rules.


@pytest.mark.parametrize(
    "frames",
    [
        pytest.param(b"\x01\x01a\xc0\x01b", id="rsv1-on-continuation"),
        pytest.param(compressed_frame(1, b"\x02", fin=False) + b"\xc0\x01\x00", id="rsv1-cont-z"),
        pytest.param(b"\xc9\x00", id="rsv1-on-ping"),
        pytest.param(b"\xca\x00", id="rsv1-on-pong"),
        pytest.param(b"\xc8\x02\x03\xe8", id="rsv1-on-close"),
        pytest.param(b"\xc3\x00", id="rsv1-on-reserved-opcode"),
        pytest.param(b"\xcb\x00", id="rsv1-on-reserved-control-opcode"),
        pytest.param(b"\xc0\x00", id="rsv1-on-lone-continuation"),
        pytest.param(b"\xa1\x00", id="rsv2"),
        pytest.param(b"\x91\x00", id="rsv3"),
        pytest.param(b"\xe1\x00", id="rsv1-rsv2"),
        pytest.param(b"\xd2\x00", id="rsv1-rsv3"),
        pytest.param(b"\xa9\x00", id="rsv2-on-ping"),
        pytest.param(b"\xc1\x80\x00\x00\x00\x00", id="masked"),
        pytest.param(b"\x01\x01a\xc1\x01\x00", id="new-compressed-during-fragmented"),
        pytest.param(compressed_frame(1, b"", fin=False) + b"\x81\x00", id="new-during-z"),
        pytest.param(compressed_frame(1, b"", fin=False) + b"\xc1\x00", id="new-z-during-z"),
    ],
)
def test_rsv_violations_fail_with_1002(frames: bytes) -> None:
    """RSV1 only on the first frame of a data message; RSV2/RSV3 never (RFC 7692 6, RFC
    6455 5.2): anything else fails with 1002."""
    conn = open_deflate()
    conn.receive_data(frames)
    assert_failed(conn, 1002)


def test_rsv_violation_after_partial_first_frame() -> None:
    """The first frame of a compressed message seen in parts does not count as a second
    message start; a real second start still fails."""
    conn = open_deflate()
    payload = deflated(text_sample(1000))
    frame = compressed_frame(1, payload, fin=False)
    conn.receive_data(frame[:7])
    assert drain(conn) == []
    conn.receive_data(frame[7:20])
    assert drain(conn) == []
    conn.receive_data(frame[20:] + compressed_frame(1, b""))
    assert_failed(conn, 1002)


# Bad payloads.


def test_corrupt_deflate_fails_with_1007() -> None:
    """A payload that is not DEFLATE data fails with 1007."""
    conn = open_deflate()
    conn.receive_data(compressed_frame(2, b"\xff\xff\xff\xff"))
    event = assert_failed(conn, 1007)
    assert "DEFLATE" in event.reason


def test_garbage_after_final_block_fails_with_1007() -> None:
    """Bytes after a final block that do not start a valid stream fail with 1007."""
    conn = open_deflate()
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    payload = compressor.compress(b"ok") + compressor.flush(zlib.Z_FINISH) + b"\xff\xff"
    conn.receive_data(compressed_frame(2, payload))
    assert_failed(conn, 1007)


def test_invalid_utf8_in_compressed_text_fails_fast() -> None:
    """Inflated text is validated as it comes: bad UTF-8 in the first fragment fails before
    the message ends."""
    conn = open_deflate()
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    first = compressor.compress(b"valid then \xff") + compressor.flush(zlib.Z_SYNC_FLUSH)
    conn.receive_data(compressed_frame(1, first, fin=False))
    assert_failed(conn, 1007)


def test_incomplete_utf8_at_end_of_compressed_text_fails() -> None:
    """A compressed text message that ends inside a code point fails with 1007."""
    conn = open_deflate()
    conn.receive_data(compressed_frame(1, deflated("é".encode()[:1])))
    assert_failed(conn, 1007)


def test_invalid_utf8_in_compressed_binary_is_fine() -> None:
    """Binary messages are not validated."""
    conn = open_deflate()
    conn.receive_data(compressed_frame(2, deflated(b"\xff\xfe")))
    assert drain(conn) == [b"\xff\xfe"]


def test_inflated_size_of_exactly_the_limit_accepted() -> None:
    """A compressed message that inflates to exactly max_message_size is accepted."""
    conn = open_deflate(max_message_size=1000)
    conn.receive_data(compressed_frame(2, deflated(b"a" * 1000)))
    assert drain(conn) == [b"a" * 1000]


def test_inflated_size_over_the_limit_fails_with_1009() -> None:
    """One inflated byte over max_message_size fails with 1009, across fragments too."""
    conn = open_deflate(max_message_size=1000)
    conn.receive_data(compressed_frame(2, deflated(b"a" * 1001)))
    assert_failed(conn, 1009)
    conn = open_deflate(max_message_size=1000)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    part = compressor.compress(b"a" * 600) + compressor.flush(zlib.Z_SYNC_FLUSH)
    conn.receive_data(compressed_frame(2, part, fin=False) + compressed_frame(0, part, rsv1=False))
    assert_failed(conn, 1009)


def gigabyte_bomb() -> tuple[bytes, int]:
    """A compressed message of about 1 MB that inflates to 1 GiB of zeros, and that size.
    Deflating 1 GiB takes seconds; after the first 16 MiB every sync-flushed 16 MiB of zeros
    compresses to the same bytes, so the bomb is the first segment and 63 copies of the
    second (each copy checked to inflate to 16 MiB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    zeros = bytes(16 * MiB)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    repeat = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert repeat == compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert len(zlib.decompressobj(wbits=-15).decompress(first)) == 16 * MiB
    window = zlib.decompressobj(wbits=-15, zdict=bytes(32768))
    assert len(window.decompress(repeat)) == 16 * MiB
    bomb = first + repeat * 63
    assert bomb.endswith(TAIL)
    return bomb[:-4], 64 * 16 * MiB


def test_decompression_bomb_refused_with_bounded_memory() -> None:
    """A 1 GiB message compressed to about 1 MB is refused with 1009 as soon as it inflates
    past max_message_size (64 MiB), and peak traced memory while it arrives stays under
    max_message_size + 16 MiB."""
    bomb, inflated_size = gigabyte_bomb()
    assert inflated_size == 1 << 30
    assert len(bomb) < 1_100_000
    limit = 64 * MiB
    conn = open_deflate(max_message_size=limit)
    frame = compressed_frame(2, bomb)
    del bomb
    started = time.perf_counter()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        event = None
        for i in range(0, len(frame), 65536):
            conn.receive_data(frame[i : i + 65536])
            event = conn.next_event()
            if event is not None:
                break
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert isinstance(event, Failed), event
    assert event.close_code == 1009
    assert peak < limit + 16 * MiB, peak
    assert time.perf_counter() - started < 10
    assert client_frames(sent(conn)) == [(0x88, (1009).to_bytes(2, "big"))]


# The decompressor's result codes, directly.


def test_inflate_results() -> None:
    """inflate() reports OK, TOO_BIG, CORRUPT and UTF8 without raising."""
    deflate = PerMessageDeflate(DeflateParameters(server_no_context_takeover=True))
    message = bytearray()
    assert deflate.inflate(deflated(b"abc") + TAIL, message, 3, None) == INFLATE_OK
    assert message == b"abc"
    deflate.start_message()
    assert deflate.inflate(deflated(b"abcd") + TAIL, bytearray(), 3, None) == INFLATE_TOO_BIG
    deflate.start_message()
    assert deflate.inflate(b"\xff\xff", bytearray(), 3, None) == INFLATE_CORRUPT
    deflate.start_message()
    result = deflate.inflate(deflated(b"\xc3\x28"), bytearray(), 9, Utf8Validator())
    assert result == INFLATE_UTF8


# Memory.


def idle_engine_memory(extension: str | None, count: int = 100) -> float:
    """Traced bytes per open, idle engine (compression offered when ``extension`` is not
    None, agreed when it is not empty)."""
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        engines = []
        for _ in range(count):
            if extension is None:
                conn, event = handshake(compression=None)
            else:
                conn, event = handshake(*([extension] if extension else []))
            assert isinstance(event, Opened)
            engines.append(conn)
        used = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    return used / count


def test_idle_memory_with_compression_is_close_to_without() -> None:
    """An idle connection with permessage-deflate agreed holds no zlib context: it costs at
    most 1 KiB more than one without compression."""
    without = idle_engine_memory(None)
    declined = idle_engine_memory("")
    agreed = idle_engine_memory(DEFLATE)
    assert without < 4096
    assert declined < without + 512
    assert agreed < without + 1024


def test_active_memory_sized_by_window_bits() -> None:
    """After a message each way the contexts exist; their size follows the window bits."""

    def active(extension: str, bits: int) -> float:
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            engines = []
            for _ in range(20):
                conn = open_deflate(extension)
                conn.send_binary(text_sample(1000))
                sent(conn)
                conn.receive_data(compressed_frame(2, deflated(text_sample(1000), bits=bits)))
                assert drain(conn) == [text_sample(1000)]
                engines.append(conn)
            return (tracemalloc.get_traced_memory()[0] - baseline) / 20
        finally:
            tracemalloc.stop()

    full = active(DEFLATE, 15)
    small = active("permessage-deflate; server_max_window_bits=12; client_max_window_bits=12", 12)
    none = active("permessage-deflate; server_no_context_takeover; client_no_context_takeover", 15)
    assert 250 * 1024 < full < 400 * 1024
    assert small < 80 * 1024
    assert none < 8 * 1024
