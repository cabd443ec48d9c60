"""Tests of the frame codec: masking, frame headers and incremental UTF-8 validation."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support import KEY
from wsapi.protocol import codec as codec_module
from wsapi.protocol.codec import (
    LENGTH_HIGH_BIT,
    NEED_MORE,
    Utf8Validator,
    apply_mask,
    encode_frame_header,
    mask_key,
    parse_frame_header,
)

# apply_mask


def test_apply_mask_rfc_example() -> None:
    """Masking "Hello" with 37 fa 21 3d gives the RFC 6455 5.7 bytes 7f 9f 4d 51 58."""
    assert apply_mask(b"Hello", KEY) == b"\x7f\x9f\x4d\x51\x58"


def test_apply_mask_unmasks_rfc_example() -> None:
    """Unmasking the RFC 6455 5.7 masked bytes gives back "Hello"."""
    assert apply_mask(b"\x7f\x9f\x4d\x51\x58", KEY) == b"Hello"


def test_apply_mask_empty() -> None:
    """Masking no bytes gives no bytes."""
    assert apply_mask(b"", KEY) == b""


def test_apply_mask_accepts_bytearray_and_memoryview() -> None:
    """apply_mask takes any bytes-like value and returns bytes."""
    assert apply_mask(bytearray(b"Hello"), KEY) == b"\x7f\x9f\x4d\x51\x58"
    assert apply_mask(memoryview(b"xHello")[1:], KEY) == b"\x7f\x9f\x4d\x51\x58"


def test_apply_mask_keeps_leading_and_trailing_zero_bytes() -> None:
    """Zero bytes at either end survive masking with a zero key (no integer truncation)."""
    data = b"\x00\x00abc\x00\x00"
    assert apply_mask(data, b"\x00\x00\x00\x00") == data


def test_apply_mask_matches_bytewise_definition() -> None:
    """Octet i is XORed with key octet i mod 4 (RFC 6455 5.3) for lengths not a multiple of 4."""
    data = bytes(range(256)) * 3 + b"\x01\x02\x03"
    expected = bytes(b ^ KEY[i % 4] for i, b in enumerate(data))
    assert apply_mask(data, KEY) == expected


@given(data=st.binary(max_size=2048), key=st.binary(min_size=4, max_size=4))
def test_apply_mask_round_trip(data: bytes, key: bytes) -> None:
    """Masking twice with the same key gives back the data."""
    masked = apply_mask(data, key)
    assert len(masked) == len(data)
    assert apply_mask(masked, key) == data


# mask_key


def test_mask_key_is_four_bytes() -> None:
    """mask_key returns 4 bytes."""
    key = mask_key()
    assert isinstance(key, bytes)
    assert len(key) == 4


def test_mask_key_differs_across_calls() -> None:
    """Successive keys differ (drawn from a CSPRNG, RFC 6455 5.3), also across pool refills."""
    keys = [mask_key() for _ in range(3000)]
    assert all(len(key) == 4 for key in keys)
    # 3000 random 32-bit keys collide with probability ~1e-3; demand near-uniqueness.
    assert len(set(keys)) >= 2998


def frame_key() -> bytes:
    """The masking key of a frame from the compiled frame writer."""
    assert codec_module.encode_masked_frame is not None
    return codec_module.encode_masked_frame(0x81, b"x")[2:6]


DRAWS = [
    pytest.param(codec_module.mask_key, id="pure pool"),
    pytest.param(
        frame_key,
        id="compiled pool",
        marks=pytest.mark.skipif(not codec_module.SPEEDUPS, reason="the pure-Python build"),
    ),
]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
@pytest.mark.parametrize("draw", DRAWS)
def test_a_forked_child_draws_other_keys_than_its_parent(draw: Callable[[], bytes]) -> None:
    """After fork(), the child's masking keys and nonces are not its parent's: both would
    otherwise go on drawing the same bytes from the pool they shared at the fork."""
    draw()  # (The pool is filled, with most of it left.)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        try:
            os.write(write_end, b"".join(draw() for _ in range(4)))
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        in_child = pipe.read()
    assert os.waitpid(child, 0)[1] == 0
    in_parent = b"".join(draw() for _ in range(4))
    assert len(in_child) == len(in_parent) > 0
    assert in_child != in_parent


# encode_frame_header


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (0, b"\x81\x00"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (65535, b"\x81\x7e\xff\xff"),
        (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_encode_frame_header_unmasked(length: int, expected: bytes) -> None:
    """The 7-bit, 16-bit and 64-bit length encodings switch at 126 and 65536 (RFC 6455 5.2)."""
    assert encode_frame_header(0x81, length, None) == expected


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (0, b"\x82\x80"),
        (125, b"\x82\xfd"),
        (126, b"\x82\xfe\x00\x7e"),
        (65535, b"\x82\xfe\xff\xff"),
        (65536, b"\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_encode_frame_header_masked(length: int, expected: bytes) -> None:
    """A masked header sets the MASK bit and ends with the 4-byte key."""
    assert encode_frame_header(0x82, length, KEY) == expected + KEY


def test_encode_frame_header_keeps_first_byte() -> None:
    """FIN, RSV bits and opcode pass through unchanged in the first byte."""
    assert encode_frame_header(0x09, 3, None) == b"\x09\x03"
    assert encode_frame_header(0xF8, 0, None) == b"\xf8\x00"


# parse_frame_header


@pytest.mark.parametrize(
    ("header", "length"),
    [
        (b"\x81\x00", 0),
        (b"\x81\x7d", 125),
        (b"\x81\x7e\x00\x7e", 126),
        (b"\x81\x7e\xff\xff", 65535),
        (b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 65536),
        (b"\x81\x7f\x7f\xff\xff\xff\xff\xff\xff\xff", 2**63 - 1),
    ],
)
def test_parse_frame_header_lengths(header: bytes, length: int) -> None:
    """Each length encoding parses to its length and header size."""
    assert parse_frame_header(header + b"payload", 0) == (0x81, length, len(header), None, 0)


def test_parse_frame_header_masked() -> None:
    """A masked header returns its key and counts it in the header length."""
    buf = b"\x81\x85" + KEY + b"\x7f\x9f\x4d\x51\x58"
    assert parse_frame_header(buf, 0) == (0x81, 5, 6, KEY, 0)


def test_parse_frame_header_masked_extended_length() -> None:
    """The key follows the extended length."""
    buf = b"\x82\xfe\x01\x00" + KEY
    assert parse_frame_header(buf, 0) == (0x82, 256, 8, KEY, 0)
    buf = b"\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00" + KEY
    assert parse_frame_header(buf, 0) == (0x82, 65536, 14, KEY, 0)


def test_parse_frame_header_at_offset() -> None:
    """``pos`` selects where the header starts."""
    buf = b"junk\x8a\x02hi"
    assert parse_frame_header(buf, 4) == (0x8A, 2, 2, None, 0)
    assert parse_frame_header(bytearray(buf), 4) == (0x8A, 2, 2, None, 0)


@pytest.mark.parametrize(
    "header",
    [
        b"\x81\x05",
        b"\x81\x85" + KEY,
        b"\x81\x7e\x01\x00",
        b"\x81\xfe\x01\x00" + KEY,
        b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00",
        b"\x81\xff\x00\x00\x00\x00\x00\x01\x00\x00" + KEY,
    ],
)
def test_parse_frame_header_need_more_at_every_truncation(header: bytes) -> None:
    """Every strict prefix of a header, at any offset, asks for more bytes."""
    for cut in range(len(header)):
        assert parse_frame_header(header[:cut], 0)[4] == NEED_MORE
        assert parse_frame_header(b"xx" + header[:cut], 2)[4] == NEED_MORE
    assert parse_frame_header(header, 0)[4] == 0
    assert parse_frame_header(header, 0)[2] == len(header)


def test_parse_frame_header_length_high_bit() -> None:
    """A 64-bit length with its top bit set is reported (RFC 6455 5.2), even unmasked."""
    buf = b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00"
    first, length, header_length, key, status = parse_frame_header(buf, 0)
    assert status == LENGTH_HIGH_BIT
    assert first == 0x82
    assert length == 2**63
    assert header_length == 10
    assert key is None


def test_parse_frame_header_length_high_bit_before_mask_key() -> None:
    """The high-bit length is reported without waiting for a mask key."""
    buf = b"\x82\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    assert parse_frame_header(buf, 0)[4] == LENGTH_HIGH_BIT


# Utf8Validator

VALID_TEXT = "κόσμε Hello ∀ 😀 \u0000 \U0010ffff".encode()


def test_utf8_valid_text_whole() -> None:
    """Valid UTF-8 passes in one final chunk."""
    assert Utf8Validator().feed(VALID_TEXT, True)


def test_utf8_valid_text_byte_by_byte() -> None:
    """Valid UTF-8 passes when split at every byte, including inside code points."""
    validator = Utf8Validator()
    for i in range(len(VALID_TEXT)):
        assert validator.feed(VALID_TEXT[i : i + 1], False)
    assert validator.feed(b"", True)


def test_utf8_empty_text() -> None:
    """An empty text is valid."""
    assert Utf8Validator().feed(b"", True)


def test_utf8_invalid_whole() -> None:
    """A byte that can never appear in UTF-8 fails."""
    assert not Utf8Validator().feed(b"ab\xffcd", True)
    assert not Utf8Validator().feed(b"ab\xff", False)


def test_utf8_fails_on_chunk_with_code_point_above_max() -> None:
    """F4 90 (above U+10FFFF) fails on the chunk holding 0x90, not later (Autobahn 6.4.1)."""
    validator = Utf8Validator()
    assert validator.feed(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", False)
    assert validator.feed(b"\xf4", False)
    assert not validator.feed(b"\x90", False)


def test_utf8_fails_on_chunk_f4_90_together() -> None:
    """F4 90 arriving in one non-final chunk fails at once."""
    validator = Utf8Validator()
    assert validator.feed(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", False)
    assert not validator.feed(b"\xf4\x90", False)


def test_utf8_fails_on_surrogate_second_byte() -> None:
    """ED A0 (a UTF-16 surrogate) fails on the chunk holding 0xA0, with final False."""
    validator = Utf8Validator()
    assert validator.feed(b"\xed", False)
    assert not validator.feed(b"\xa0", False)


def test_utf8_fails_on_surrogate_in_one_chunk() -> None:
    """ED A0 in one non-final chunk fails without waiting for a third byte."""
    assert not Utf8Validator().feed(b"abc\xed\xa0", False)


def test_utf8_ed_with_valid_second_byte() -> None:
    """ED 9F BF (U+D7FF, just below the surrogates) is valid."""
    validator = Utf8Validator()
    assert validator.feed(b"\xed", False)
    assert validator.feed(b"\x9f", False)
    assert validator.feed(b"\xbf", True)


@pytest.mark.parametrize("prefix", [b"\xe0\x80", b"\xf0\x80", b"\xc0", b"\xc1", b"\xf5"])
def test_utf8_overlong_and_out_of_range_fail_early(prefix: bytes) -> None:
    """Overlong forms and bytes above F4 fail as soon as they are seen, non-final."""
    assert not Utf8Validator().feed(b"ok" + prefix, False)


@pytest.mark.parametrize("tail", [b"\xce", b"\xe1\xbd", b"\xf0\x9f\x98"])
def test_utf8_incomplete_at_final_fails(tail: bytes) -> None:
    """A code point cut off at the end of the text fails when final is True."""
    validator = Utf8Validator()
    assert validator.feed(b"abc" + tail, False)
    assert not validator.feed(b"", True)
    assert not Utf8Validator().feed(b"abc" + tail, True)


def test_utf8_reset_starts_new_text() -> None:
    """reset() drops a pending partial code point."""
    validator = Utf8Validator()
    assert validator.feed(b"\xe1\xbd", False)
    validator.reset()
    assert validator.feed(b"abc", True)


@given(st.text(max_size=200), st.data())
def test_utf8_any_text_any_split(text: str, data: st.DataObject) -> None:
    """Any UTF-8 encodable text, split anywhere, validates."""
    encoded = text.encode("utf-8")  # st.text() draws no surrogates.
    cuts = sorted(data.draw(st.lists(st.integers(0, len(encoded)), max_size=10)))
    validator = Utf8Validator()
    start = 0
    for cut in [*cuts, len(encoded)]:
        assert validator.feed(encoded[start:cut], False)
        start = cut
    assert validator.feed(b"", True)


def test_compiled_mask_matches_pure_python() -> None:
    """The compiled apply_mask (when built) gives the pure-Python function's bytes for
    every length around its 8-byte steps and for bytes, bytearray and memoryview inputs."""
    compiled = pytest.importorskip("wsapi.protocol._speedups")
    pure = codec_module._pure_apply_mask
    key = bytes([0x37, 0xFA, 0x21, 0x3D])
    for length in [*range(0, 34), 1000, 65537]:
        data = bytes((i * 7 + 3) & 0xFF for i in range(length))
        expected = pure(data, key)
        assert compiled.apply_mask(data, key) == expected
        assert compiled.apply_mask(bytearray(data), key) == expected
        assert compiled.apply_mask(memoryview(data), key) == expected
    view = memoryview(bytes(range(40)))[3:35]
    assert compiled.apply_mask(view, key) == pure(bytes(view), key)
    with pytest.raises(ValueError, match="4 bytes"):
        compiled.apply_mask(b"x", b"abc")


def test_speedups_used_when_built_unless_refused() -> None:
    """The compiled hot path is used exactly when it was built and WSAPI_PURE_PYTHON is not
    set (CI also checks that its build produced it)."""
    try:
        import wsapi.protocol._speedups  # noqa: F401, PLC0415
    except ImportError:
        built = False
    else:
        built = True
    assert (built and not os.environ.get("WSAPI_PURE_PYTHON")) == codec_module.SPEEDUPS


# encode_masked_frame (the compiled frame writer) and the engine's framing on either path


def _frames_written(count: int, payload: bytes) -> list[bytes]:
    """``count`` binary frames as the engine writes them (on the active path)."""
    from support import switching_protocols  # noqa: PLC0415
    from wsapi.protocol.engine import ClientConnection  # noqa: PLC0415

    conn = ClientConnection("127.0.0.1", "/")
    conn.receive_data(switching_protocols(b"".join(conn.data_to_send())))
    conn.next_event()
    frames = []
    for _ in range(count):
        conn.send_binary(payload)
        frames.append(b"".join(conn.data_to_send()))
    return frames


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 70_001])
def test_engine_frames_are_masked_with_a_fresh_key(size: int) -> None:
    """Every frame the engine writes is masked (MASK bit, 4-byte key) and unmasks to the
    payload; the keys differ from frame to frame (RFC 6455 5.3)."""
    payload = os.urandom(size)
    frames = _frames_written(50, payload)
    keys = set()
    for frame in frames:
        first, length, header_length, key, status = parse_frame_header(frame, 0)
        assert (status, first, length) == (0, 0x82, size)
        assert key is not None
        assert len(frame) == header_length + size
        assert apply_mask(frame[header_length:], key) == payload
        keys.add(key)
    # 50 random 32-bit keys collide with probability ~3e-7.
    assert len(keys) == 50


@pytest.mark.skipif(
    codec_module.encode_masked_frame is None, reason="the compiled frame writer is not in use"
)
@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_encode_masked_frame_equals_header_plus_masked_payload(kind: type) -> None:
    """The compiled writer gives what encode_frame_header + apply_mask give with its key,
    for every length class and every buffer type; keys do not repeat across pool refills."""
    writer = codec_module.encode_masked_frame
    assert writer is not None
    keys: list[bytes] = []
    for size in (0, 3, 125, 126, 65535, 65536, 100_000):
        payload = os.urandom(size)
        # Small payloads 700 times each: 2800 keys, more than two pools of 1024.
        for _ in range(700 if size < 1000 else 1):
            frame = writer(0x81, kind(payload))
            key = parse_frame_header(frame, 0)[3]
            assert key is not None
            assert frame == encode_frame_header(0x81, size, key) + apply_mask(payload, key)
            keys.append(key)
    # 2803 random 32-bit keys collide with probability ~1e-3; demand near-uniqueness.
    assert len(set(keys)) >= len(keys) - 2
