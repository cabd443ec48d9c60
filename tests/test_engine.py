"""Tests of the sans-I/O client engine: bytes in, events and bytes out.

Server frames are byte literals (servers do not mask). Client frames are checked either as
exact bytes, with ``mask_key`` patched to return ``KEY``, or by unmasking them with the key
each frame carries.
"""

from __future__ import annotations

import base64
import hashlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsapi.protocol.engine as engine_module
from support import KEY, client_frames, server_frame, xor
from wsapi.protocol.engine import ClientConnection, InvalidStateError, State
from wsapi.protocol.events import (
    CloseReceived,
    EngineEvent,
    Failed,
    Opened,
    PingReceived,
    PongReceived,
)

RFC_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# Helpers.


def masked(first_byte: int, payload: bytes, key: bytes = KEY) -> bytes:
    """The exact bytes of a client frame with a small payload (< 126 bytes)."""
    assert len(payload) < 126
    return bytes([first_byte, 0x80 | len(payload)]) + key + xor(payload, key)


def sent(conn: ClientConnection) -> bytes:
    """Everything the engine queued for writing since the last call."""
    return b"".join(conn.data_to_send())


def drain(conn: ClientConnection) -> list[EngineEvent]:
    """Every event available now."""
    events = []
    while (event := conn.next_event()) is not None:
        events.append(event)
        assert len(events) < 1_000_000
    return events


def request_key(request: bytes) -> str:
    """The Sec-WebSocket-Key of the request bytes the engine wrote."""
    head, sep, rest = request.partition(b"\r\n\r\n")
    assert sep
    assert rest == b""
    keys = [
        line.split(b":", 1)[1].strip().decode("ascii")
        for line in head.split(b"\r\n")[1:]
        if line.split(b":", 1)[0].strip().lower() == b"sec-websocket-key"
    ]
    assert len(keys) == 1
    return keys[0]


def accept_for(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + RFC_GUID).digest()).decode()


def response_101(key: str, extra: str = "") -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_for(key)}\r\n"
        f"{extra}\r\n"
    ).encode("ascii")


def open_connection(
    *, max_message_size: int | None = 64 * 1024 * 1024, trailing: bytes = b""
) -> ClientConnection:
    """A connection whose opening handshake completed; the Opened event is consumed."""
    conn = ClientConnection("example.com", "/chat", max_message_size=max_message_size)
    request = sent(conn)
    assert request == conn.request.data
    assert request.startswith(b"GET /chat HTTP/1.1\r\n")
    key = request_key(request)
    assert key == conn.request.key
    conn.receive_data(response_101(key) + trailing)
    event = conn.next_event()
    assert isinstance(event, Opened)
    assert conn.state is State.OPEN
    assert sent(conn) == b""
    return conn


@pytest.fixture
def fixed_mask(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """Make every client masking key ``KEY`` (on the Python framing path: the compiled
    frame writer draws its keys itself, and is checked by unmasking what it writes)."""
    monkeypatch.setattr(engine_module, "mask_key", lambda: KEY)
    monkeypatch.setattr(engine_module, "encode_masked_frame", None)
    return KEY


def assert_failed(conn: ClientConnection, code: int) -> Failed:
    """The next event is Failed with ``code``, and the only bytes sent are Close(code)."""
    event = conn.next_event()
    assert isinstance(event, Failed), event
    assert event.close_code == code
    assert conn.state is State.CLOSED
    assert conn.failure is event
    assert client_frames(sent(conn)) == [(0x88, code.to_bytes(2, "big"))]
    assert conn.next_event() is None
    return event


# Opening handshake.


def test_handshake_opened_event() -> None:
    """A valid 101 gives Opened with the response headers, lower-cased, in order."""
    conn = ClientConnection("example.com", "/chat")
    key = request_key(sent(conn))
    conn.receive_data(response_101(key, "X-Extra: yes\r\n"))
    assert conn.next_event() == Opened(
        "",
        "",
        (
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-accept", accept_for(key)),
            ("x-extra", "yes"),
        ),
    )
    assert conn.next_event() is None


def test_handshake_response_byte_by_byte_then_trailing_frame() -> None:
    """A 101 fed byte by byte, with a frame in the same bytes, opens then delivers it."""
    conn = ClientConnection("example.com", "/chat")
    data = response_101(request_key(sent(conn))) + b"\x81\x05Hello"
    for i in range(len(data)):
        conn.receive_data(data[i : i + 1])
    assert isinstance(conn.next_event(), Opened)
    assert conn.next_event() == "Hello"
    assert conn.next_event() is None


def test_handshake_trailing_frames() -> None:
    """Frames that arrive with the 101 are parsed after Opened."""
    conn = open_connection(trailing=b"\x81\x02hi\x82\x01\x00")
    assert drain(conn) == ["hi", b"\x00"]


def test_handshake_selected_subprotocol() -> None:
    """Opened and the engine report the subprotocol the server selected."""
    conn = ClientConnection("h", "/", protocols=["chat", "superchat"])
    key = request_key(sent(conn))
    conn.receive_data(response_101(key, "Sec-WebSocket-Protocol: superchat\r\n"))
    event = conn.next_event()
    assert isinstance(event, Opened)
    assert event.protocol == "superchat"
    assert conn.protocol == "superchat"


def test_handshake_404_fails_with_status_and_headers() -> None:
    """A 404 fails the connection with its status and headers, sending nothing."""
    conn = ClientConnection("h", "/")
    sent(conn)
    conn.receive_data(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nX-A: b\r\n\r\n")
    event = conn.next_event()
    assert isinstance(event, Failed)
    assert event.status_code == 404
    assert event.headers == (("content-length", "0"), ("x-a", "b"))
    assert event.close_code is None
    assert conn.state is State.CLOSED
    assert sent(conn) == b""
    assert conn.next_event() is None


def test_handshake_wrong_accept_fails() -> None:
    """A 101 with the wrong accept value fails, without a status code and without a Close."""
    conn = ClientConnection("h", "/")
    sent(conn)
    conn.receive_data(response_101("dGhlIHNhbXBsZSBub25jZQ=="))
    event = conn.next_event()
    assert isinstance(event, Failed)
    assert event.status_code is None
    assert event.close_code is None
    assert sent(conn) == b""
    assert conn.state is State.CLOSED


def test_handshake_eof_fails() -> None:
    """End of stream before the response fails the connection."""
    conn = ClientConnection("h", "/")
    sent(conn)
    conn.receive_eof()
    event = conn.next_event()
    assert isinstance(event, Failed)
    assert event.close_code is None
    assert conn.state is State.CLOSED


def test_handshake_garbage_fails() -> None:
    """A response that is not HTTP fails the connection rather than raising."""
    conn = ClientConnection("h", "/")
    sent(conn)
    conn.receive_data(b"\x81\x05Hello\r\n\r\n")
    assert isinstance(conn.next_event(), Failed)
    assert conn.state is State.CLOSED


def test_no_events_while_connecting() -> None:
    """Before the response, next_event has nothing."""
    conn = ClientConnection("h", "/")
    assert conn.next_event() is None
    conn.receive_data(b"HTTP/1.1 101 Switching")
    assert conn.next_event() is None
    assert conn.state is State.CONNECTING


# Data messages.


def test_text_single_frame() -> None:
    """An unfragmented text frame is one str message."""
    conn = open_connection()
    conn.receive_data(b"\x81\x05Hello")
    assert conn.next_event() == "Hello"
    assert conn.next_event() is None


def test_text_single_frame_utf8() -> None:
    """Text is decoded as UTF-8."""
    conn = open_connection()
    conn.receive_data(b"\x81\x0b\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")
    assert conn.next_event() == "\u03ba\u1f79\u03c3\u03bc\u03b5"  # κόσμε, as in Autobahn 6.x


def test_binary_single_frame() -> None:
    """An unfragmented binary frame is one bytes message."""
    conn = open_connection()
    conn.receive_data(b"\x82\x04\x00\xff\x80\x7f")
    event = conn.next_event()
    assert event == b"\x00\xff\x80\x7f"
    assert type(event) is bytes


def test_binary_16_bit_and_64_bit_lengths() -> None:
    """Frames with 16-bit and 64-bit lengths are read whole."""
    conn = open_connection()
    medium = bytes(range(256)) * 100
    large = bytes(range(256)) * 300
    conn.receive_data(b"\x82\x7e\x64\x00" + medium)
    conn.receive_data(b"\x82\x7f\x00\x00\x00\x00\x00\x01\x2c\x00" + large)
    assert drain(conn) == [medium, large]


def test_empty_messages() -> None:
    """Empty text and binary messages, whole or fragmented, are delivered."""
    conn = open_connection()
    conn.receive_data(b"\x81\x00\x82\x00\x01\x00\x80\x00\x02\x00\x00\x00\x80\x00")
    assert drain(conn) == ["", b"", "", b""]


def test_fragmented_text_with_interleaved_control_frames(fixed_mask: bytes) -> None:
    """Ping and Pong between fragments are delivered; the text message is reassembled."""
    conn = open_connection()
    conn.receive_data(
        b"\x01\x03Hel" + b"\x89\x02p1" + b"\x00\x02lo" + b"\x8a\x02p2" + b"\x80\x01!"
    )
    assert drain(conn) == [PingReceived(b"p1"), PongReceived(b"p2"), "Hello!"]
    assert sent(conn) == masked(0x8A, b"p1")


def test_fragmented_binary_with_interleaved_control_frames(fixed_mask: bytes) -> None:
    """Binary fragments reassemble around control frames."""
    conn = open_connection()
    conn.receive_data(b"\x02\x02\x00\x01" + b"\x8a\x00" + b"\x00\x01\x02" + b"\x89\x00")
    conn.receive_data(b"\x80\x02\x03\x04")
    assert drain(conn) == [PongReceived(b""), PingReceived(b""), b"\x00\x01\x02\x03\x04"]
    assert sent(conn) == masked(0x8A, b"")


def test_fragmented_text_split_inside_code_point() -> None:
    """A code point split between fragments is reassembled."""
    conn = open_connection()
    conn.receive_data(b"\x01\x01\xce" + b"\x00\x02\xba\xe1" + b"\x80\x02\xbd\xb9")
    assert drain(conn) == ["κό"]


def test_frames_fed_byte_by_byte() -> None:
    """Messages arrive whole however the bytes are split."""
    conn = open_connection()
    data = b"\x81\x05Hello" + b"\x02\x01a" + b"\x89\x00" + b"\x80\x01b" + b"\x81\x02\xc3\xa9"
    events: list[EngineEvent] = []
    for i in range(len(data)):
        conn.receive_data(data[i : i + 1])
        events.extend(drain(conn))
    assert events == ["Hello", PingReceived(b""), b"ab", "é"]


def test_100000_tiny_fragments() -> None:
    """100,000 one-byte and empty fragments reassemble into the right text and binary."""
    conn = open_connection()
    text = "a\u00e9\u20ac\U0001f600" * 2500  # 1 + 2 + 3 + 4 bytes: splits every code point.
    encoded = text.encode()
    assert len(encoded) == 25_000
    frames = []
    for i, byte in enumerate(encoded):
        frames.append((b"\x01\x01" if i == 0 else b"\x00\x01") + bytes([byte]))
        frames.append(b"\x80\x00" if i == len(encoded) - 1 else b"\x00\x00")
    binary = bytes(range(256)) * 195 + bytes(range(80))
    assert len(binary) == 50_000
    for i, byte in enumerate(binary):
        first = 0x02 if i == 0 else 0x80 if i == len(binary) - 1 else 0x00
        frames.append(bytes([first, 1, byte]))
    assert len(frames) == 100_000
    conn.receive_data(b"".join(frames))
    events = drain(conn)
    assert events == [text, binary]
    assert conn.buffered == 0


# Ping and Pong.


def test_ping_answered_with_identical_pong(fixed_mask: bytes) -> None:
    """A Ping is reported and answered by a Pong with the same payload (RFC 6455 5.5.2)."""
    conn = open_connection()
    conn.receive_data(b"\x89\x05Hello")
    assert conn.next_event() == PingReceived(b"Hello")
    assert sent(conn) == b"\x8a\x85" + KEY + b"\x7f\x9f\x4d\x51\x58"


def test_empty_ping_answered(fixed_mask: bytes) -> None:
    """An empty Ping gets an empty Pong."""
    conn = open_connection()
    conn.receive_data(b"\x89\x00")
    assert conn.next_event() == PingReceived(b"")
    assert sent(conn) == b"\x8a\x80" + KEY


def test_ping_125_bytes_ok(fixed_mask: bytes) -> None:
    """A 125-byte control payload is allowed and echoed."""
    conn = open_connection()
    payload = bytes(range(125))
    conn.receive_data(b"\x89\x7d" + payload)
    assert conn.next_event() == PingReceived(payload)
    assert sent(conn) == b"\x8a\xfd" + KEY + xor(payload, KEY)


def test_pong_received() -> None:
    """A Pong is reported and not answered."""
    conn = open_connection()
    conn.receive_data(b"\x8a\x03abc")
    assert conn.next_event() == PongReceived(b"abc")
    assert sent(conn) == b""


def test_ping_after_our_close_not_answered() -> None:
    """After our Close, a Ping is reported but nothing more is sent (RFC 6455 5.5.1)."""
    conn = open_connection()
    conn.send_close(1000)
    sent(conn)
    conn.receive_data(b"\x89\x02hi")
    assert conn.next_event() == PingReceived(b"hi")
    assert sent(conn) == b""


# Protocol violations: 1002.


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(b"\x89\x7e\x00\x7e" + b"x" * 126, id="ping-126"),
        pytest.param(b"\x8a\x7e\x00\x7e" + b"x" * 126, id="pong-126"),
        pytest.param(b"\x88\x7e\x00\x7e\x03\xe8" + b"x" * 124, id="close-126"),
    ],
)
def test_control_payload_126_fails(frame: bytes) -> None:
    """A control frame with 126 bytes of payload fails with 1002 (RFC 6455 5.5)."""
    conn = open_connection()
    conn.receive_data(frame)
    assert_failed(conn, 1002)


def test_control_payload_126_fails_before_payload() -> None:
    """An oversized control frame fails on its header alone."""
    conn = open_connection()
    conn.receive_data(b"\x89\x7e\x00\x7e")
    assert_failed(conn, 1002)


@pytest.mark.parametrize("first", [0x09, 0x0A, 0x08])
def test_fragmented_control_frame_fails(first: int) -> None:
    """A control frame without FIN fails with 1002 (RFC 6455 5.5)."""
    conn = open_connection()
    conn.receive_data(bytes([first, 0]))
    assert_failed(conn, 1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcode_fails(opcode: int) -> None:
    """A reserved opcode fails with 1002 (RFC 6455 5.2)."""
    conn = open_connection()
    conn.receive_data(bytes([0x80 | opcode, 0]))
    assert_failed(conn, 1002)


@pytest.mark.parametrize("opcode", [3, 0xB])
def test_reserved_opcode_inside_fragmented_message_fails(opcode: int) -> None:
    """A reserved opcode between fragments fails with 1002."""
    conn = open_connection()
    conn.receive_data(b"\x01\x01a" + bytes([0x80 | opcode, 0]))
    assert_failed(conn, 1002)


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10, 0x70])
@pytest.mark.parametrize("opcode", [0x1, 0x2, 0x9, 0x0])
def test_rsv_bits_fail(rsv: int, opcode: int) -> None:
    """RSV1, RSV2 or RSV3 set without an extension fails with 1002 (RFC 6455 5.2)."""
    conn = open_connection()
    if opcode == 0:
        conn.receive_data(b"\x01\x01a")
    conn.receive_data(bytes([0x80 | rsv | opcode, 1]) + b"x")
    assert_failed(conn, 1002)


def test_masked_server_frame_fails() -> None:
    """A masked frame from the server fails with 1002 (RFC 6455 5.1)."""
    conn = open_connection()
    conn.receive_data(b"\x81\x85" + KEY + b"\x7f\x9f\x4d\x51\x58")
    assert_failed(conn, 1002)


def test_masked_server_control_frame_fails() -> None:
    """A masked Ping from the server fails with 1002 and is not answered."""
    conn = open_connection()
    conn.receive_data(b"\x89\x80" + KEY)
    assert_failed(conn, 1002)


def test_continuation_without_message_fails() -> None:
    """A continuation frame with no message in progress fails with 1002 (RFC 6455 5.4)."""
    conn = open_connection()
    conn.receive_data(b"\x80\x01a")
    assert_failed(conn, 1002)


def test_continuation_after_complete_message_fails() -> None:
    """A continuation after a finished message fails with 1002."""
    conn = open_connection()
    conn.receive_data(b"\x01\x01a\x80\x01b\x80\x01c")
    assert conn.next_event() == "ab"
    assert_failed(conn, 1002)


@pytest.mark.parametrize("first", [0x81, 0x01, 0x82, 0x02])
def test_new_message_during_fragmented_message_fails(first: int) -> None:
    """A new text or binary frame while a fragmented message is open fails with 1002."""
    conn = open_connection()
    conn.receive_data(b"\x01\x01a" + bytes([first, 1]) + b"b")
    assert_failed(conn, 1002)


def test_length_with_high_bit_fails_without_buffering() -> None:
    """A 64-bit length of 2**63 fails with 1002 on the header alone, buffering nothing."""
    conn = open_connection(max_message_size=None)
    conn.receive_data(b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00")
    assert_failed(conn, 1002)
    assert conn.buffered == 0


def test_failed_close_frame_bytes(fixed_mask: bytes) -> None:
    """The Close sent on failure carries the Failed event's code, as exact bytes."""
    conn = open_connection()
    conn.receive_data(b"\x80\x00")
    event = conn.next_event()
    assert isinstance(event, Failed)
    assert event.close_code == 1002
    assert conn.close_sent == (1002, "")
    assert sent(conn) == b"\x88\x82" + KEY + xor(b"\x03\xea", KEY)


def test_nothing_parsed_after_failure() -> None:
    """After a failure, buffered and new bytes are ignored and nothing more is sent."""
    conn = open_connection()
    conn.receive_data(b"\x83\x00" + b"\x81\x02hi" + b"\x89\x00")
    assert_failed(conn, 1002)
    conn.receive_data(b"\x81\x02hi\x89\x00")
    assert conn.buffered == 0
    assert conn.next_event() is None
    assert sent(conn) == b""
    conn.receive_eof()
    assert conn.next_event() is None
    assert conn.state is State.CLOSED


def test_ordering_message_before_failure() -> None:
    """A message before a bad frame in one read is delivered first; the Close waits for the
    next next_event call."""
    conn = open_connection()
    conn.receive_data(b"\x81\x02hi" + b"\x83\x00")
    assert conn.next_event() == "hi"
    assert sent(conn) == b""
    assert conn.state is State.OPEN
    assert_failed(conn, 1002)


def test_ordering_ping_before_failure(fixed_mask: bytes) -> None:
    """A Ping before a bad frame is answered, and its Pong goes out before the Close."""
    conn = open_connection()
    conn.receive_data(b"\x89\x01p" + b"\x80\x00")
    assert conn.next_event() == PingReceived(b"p")
    assert sent(conn) == masked(0x8A, b"p")
    event = conn.next_event()
    assert isinstance(event, Failed)
    assert sent(conn) == masked(0x88, b"\x03\xea")


# Message size limit: 1009.


def test_header_over_limit_fails_before_payload() -> None:
    """A frame header announcing more than max_message_size fails with 1009 at once."""
    conn = open_connection(max_message_size=10)
    conn.receive_data(b"\x82\x0b")
    assert_failed(conn, 1009)
    assert conn.buffered == 0


def test_huge_header_fails_with_default_limit() -> None:
    """A 1 TiB frame header fails with 1009 under the default limit, before any payload."""
    conn = open_connection()
    conn.receive_data(b"\x82\x7f\x00\x00\x01\x00\x00\x00\x00\x00" + b"x" * 100)
    assert_failed(conn, 1009)


def test_message_of_exactly_the_limit_accepted() -> None:
    """A message of exactly max_message_size bytes is accepted."""
    conn = open_connection(max_message_size=10)
    conn.receive_data(b"\x81\x0a0123456789")
    assert conn.next_event() == "0123456789"


def test_message_one_byte_over_limit_fails() -> None:
    """A message one byte over max_message_size fails with 1009."""
    conn = open_connection(max_message_size=10)
    conn.receive_data(b"\x81\x0b0123456789A")
    assert_failed(conn, 1009)


def test_fragmented_message_of_exactly_the_limit_accepted() -> None:
    """Fragments adding up to exactly max_message_size are accepted."""
    conn = open_connection(max_message_size=10)
    conn.receive_data(b"\x02\x04abcd" + b"\x00\x00" + b"\x80\x06efghij")
    assert conn.next_event() == b"abcdefghij"


def test_fragmented_message_over_limit_fails_at_header() -> None:
    """The fragment that takes a message over the limit fails with 1009 on its header."""
    conn = open_connection(max_message_size=10)
    conn.receive_data(b"\x02\x05abcde")
    assert conn.next_event() is None
    conn.receive_data(b"\x80\x06")
    assert_failed(conn, 1009)


def test_limit_counts_per_message() -> None:
    """The limit applies per message, not to the connection."""
    conn = open_connection(max_message_size=10)
    conn.receive_data(b"\x82\x0a0123456789" * 3)
    assert drain(conn) == [b"0123456789"] * 3


# UTF-8: 1007.


def test_invalid_utf8_single_frame_fails() -> None:
    """A text frame that is not UTF-8 fails with 1007 (RFC 6455 8.1)."""
    conn = open_connection()
    conn.receive_data(b"\x81\x04ab\xffc")
    assert_failed(conn, 1007)


def test_incomplete_utf8_at_end_of_message_fails() -> None:
    """A text message ending inside a code point fails with 1007."""
    conn = open_connection()
    conn.receive_data(b"\x81\x03a\xe1\xbd")
    assert_failed(conn, 1007)


def test_surrogate_fails() -> None:
    """An encoded UTF-16 surrogate (ED A0 80) fails with 1007."""
    conn = open_connection()
    conn.receive_data(b"\x81\x03\xed\xa0\x80")
    assert_failed(conn, 1007)


def test_invalid_utf8_fails_fast_in_partial_frame() -> None:
    """Invalid UTF-8 in the first chunk of a frame fails before the rest arrives."""
    conn = open_connection()
    conn.receive_data(b"\x81\x10" + b"ok\xff")
    assert_failed(conn, 1007)


def test_invalid_utf8_fails_fast_across_chunks_of_one_frame() -> None:
    """A frame arriving in pieces fails on the piece that makes it invalid."""
    conn = open_connection()
    conn.receive_data(b"\x81\x20" + b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")
    assert conn.next_event() is None
    conn.receive_data(b"\xf4")
    assert conn.next_event() is None
    conn.receive_data(b"\x90")
    assert_failed(conn, 1007)


def test_surrogate_fails_fast_in_partial_frame() -> None:
    """ED then A0 in a frame still arriving fails on the A0."""
    conn = open_connection()
    conn.receive_data(b"\x81\x20\xed")
    assert conn.next_event() is None
    conn.receive_data(b"\xa0")
    assert_failed(conn, 1007)


def test_valid_partial_frame_then_complete() -> None:
    """Validating a frame in pieces does not change the text delivered."""
    conn = open_connection()
    conn.receive_data(b"\x81\x0b\xce\xba\xe1")
    assert conn.next_event() is None
    conn.receive_data(b"\xbd\xb9\xcf\x83")
    assert conn.next_event() is None
    conn.receive_data(b"\xce\xbc\xce\xb5")
    assert conn.next_event() == "\u03ba\u1f79\u03c3\u03bc\u03b5"  # κόσμε, as in Autobahn 6.x


def test_incomplete_code_point_at_end_of_partially_validated_frame_fails() -> None:
    """A frame validated in pieces still fails if it ends inside a code point."""
    conn = open_connection()
    conn.receive_data(b"\x81\x03a")
    assert conn.next_event() is None
    conn.receive_data(b"\xe1\xbd")
    assert_failed(conn, 1007)


def test_invalid_utf8_in_fragment_fails_at_that_fragment() -> None:
    """Invalid text fails at the fragment where it becomes invalid, before FIN."""
    conn = open_connection()
    conn.receive_data(b"\x01\x0b\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")
    assert conn.next_event() is None
    conn.receive_data(b"\x00\x01\xf4")
    assert conn.next_event() is None
    conn.receive_data(b"\x00\x01\x90")
    assert_failed(conn, 1007)


def test_surrogate_split_across_fragments_fails_at_second() -> None:
    """ED in one fragment and A0 in the next fails at the second fragment."""
    conn = open_connection()
    conn.receive_data(b"\x01\x01\xed")
    assert conn.next_event() is None
    conn.receive_data(b"\x00\x01\xa0")
    assert_failed(conn, 1007)


def test_invalid_utf8_in_partial_continuation_frame_fails() -> None:
    """A continuation frame still arriving fails on its first bad byte."""
    conn = open_connection()
    conn.receive_data(b"\x01\x02ab" + b"\x80\x10\xce")
    assert conn.next_event() is None
    conn.receive_data(b"\xff")
    assert_failed(conn, 1007)


def test_incomplete_code_point_at_final_fragment_fails() -> None:
    """A fragmented text ending inside a code point fails at the final fragment."""
    conn = open_connection()
    conn.receive_data(b"\x01\x01a\x00\x01\xe1")
    assert conn.next_event() is None
    conn.receive_data(b"\x80\x01\xbd")
    assert_failed(conn, 1007)


def test_invalid_utf8_in_binary_is_fine() -> None:
    """Binary messages are not validated."""
    conn = open_connection()
    conn.receive_data(b"\x82\x02\xff\xfe" + b"\x02\x01\xed\x80\x01\xa0")
    assert drain(conn) == [b"\xff\xfe", b"\xed\xa0"]


def test_validator_reset_between_messages() -> None:
    """A frame validated in pieces leaves no state: the next frame is validated from byte 0."""
    conn = open_connection()
    conn.receive_data(b"\x81\x03ab")
    assert conn.next_event() is None
    conn.receive_data(b"c" + b"\x01\x02\xff\xfe")
    assert conn.next_event() == "abc"
    assert_failed(conn, 1007)


def test_partially_validated_first_fragment_keeps_state() -> None:
    """A first fragment validated in pieces, cut inside a code point, continues correctly."""
    conn = open_connection()
    conn.receive_data(b"\x01\x03\xc3")
    assert conn.next_event() is None
    conn.receive_data(b"\xa9a")
    assert conn.next_event() is None
    conn.receive_data(b"\x80\x01b")
    assert conn.next_event() == "\u00e9ab"


def test_validator_reset_after_fragmented_text() -> None:
    """A new text message after a fragmented one validates from a clean state."""
    conn = open_connection()
    conn.receive_data(b"\x01\x02a\xc3" + b"\x80\x01\xa9")
    assert conn.next_event() == "aé"
    conn.receive_data(b"\x81\x04\xe2\x82")
    assert conn.next_event() is None
    conn.receive_data(b"\xacz")
    assert conn.next_event() == "€z"


# Closing handshake.


def test_close_without_payload(fixed_mask: bytes) -> None:
    """A Close without payload reports 1005 and is answered by an empty Close."""
    conn = open_connection()
    conn.receive_data(b"\x88\x00")
    assert conn.next_event() == CloseReceived(1005, "")
    assert sent(conn) == b"\x88\x80" + KEY
    assert conn.state is State.CLOSING
    assert conn.closing_handshake_complete
    assert conn.close_received == CloseReceived(1005, "")


def test_close_with_code_and_reason_echoes_both(fixed_mask: bytes) -> None:
    """A Close with 1000 and a reason is reported, and its code and reason are echoed."""
    conn = open_connection()
    conn.receive_data(b"\x88\x08\x03\xe8bye \xc3\xa9")
    assert conn.next_event() == CloseReceived(1000, "bye é")
    assert sent(conn) == b"\x88\x88" + KEY + xor(b"\x03\xe8bye \xc3\xa9", KEY)
    assert conn.close_sent == (1000, "bye é")
    assert conn.state is State.CLOSING
    assert conn.closing_handshake_complete


def test_close_with_longest_reason_echoed_whole() -> None:
    """A Close with a 123-byte reason (the most a Close can carry) goes back unchanged."""
    reason = "\u00e9" * 61 + "x"
    payload = (4001).to_bytes(2, "big") + reason.encode()
    assert len(payload) == 125
    conn = open_connection()
    conn.receive_data(b"\x88\x7d" + payload)
    assert conn.next_event() == CloseReceived(4001, reason)
    assert client_frames(sent(conn)) == [(0x88, payload)]
    assert conn.close_sent == (4001, reason)
    assert conn.failure is None


def test_close_one_byte_payload_fails() -> None:
    """A Close with a 1-byte payload fails with 1002 (RFC 6455 5.5.1)."""
    conn = open_connection()
    conn.receive_data(b"\x88\x01\x03")
    assert_failed(conn, 1002)
    assert conn.close_received is None


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_close_invalid_code_fails(code: int) -> None:
    """A Close with a reserved or undefined code fails with 1002 (RFC 6455 7.4)."""
    conn = open_connection()
    conn.receive_data(b"\x88\x02" + code.to_bytes(2, "big"))
    assert_failed(conn, 1002)


@pytest.mark.parametrize(
    "code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]
)
def test_close_valid_code_accepted(code: int) -> None:
    """A Close with a valid code is reported and echoed."""
    conn = open_connection()
    conn.receive_data(b"\x88\x02" + code.to_bytes(2, "big"))
    assert conn.next_event() == CloseReceived(code, "")
    assert client_frames(sent(conn)) == [(0x88, code.to_bytes(2, "big"))]
    assert conn.failure is None


def test_close_reason_invalid_utf8_fails() -> None:
    """A Close reason that is not UTF-8 fails with 1007 (RFC 6455 5.5.1, 8.1)."""
    conn = open_connection()
    conn.receive_data(b"\x88\x04\x03\xe8\xff\xfe")
    assert_failed(conn, 1007)


def test_data_after_close_ignored() -> None:
    """Frames after the peer's Close, even invalid ones, are ignored (RFC 6455 5.5.1)."""
    conn = open_connection()
    conn.receive_data(b"\x88\x02\x03\xe8" + b"\x81\x02hi" + b"\x83\x00")
    assert conn.next_event() == CloseReceived(1000, "")
    assert client_frames(sent(conn)) == [(0x88, b"\x03\xe8")]
    conn.receive_data(b"\x81\x02hi\x89\x00\x83\x00")
    assert conn.next_event() is None
    assert sent(conn) == b""
    assert conn.failure is None
    assert conn.state is State.CLOSING


def test_close_abandons_fragmented_message() -> None:
    """A Close in the middle of a fragmented message ends it without delivering it."""
    conn = open_connection()
    conn.receive_data(b"\x01\x02ab" + b"\x88\x00")
    assert drain(conn) == [CloseReceived(1005, "")]


def test_client_initiated_close(fixed_mask: bytes) -> None:
    """send_close sends Close(code, reason); the peer's Close completes the handshake."""
    conn = open_connection()
    assert not conn.closing_handshake_complete
    conn.send_close(1000, "done")
    assert sent(conn) == masked(0x88, b"\x03\xe8done")
    assert conn.state is State.CLOSING
    assert conn.close_sent == (1000, "done")
    assert not conn.closing_handshake_complete
    conn.receive_data(b"\x81\x04late" + b"\x88\x02\x03\xe8")
    assert drain(conn) == ["late", CloseReceived(1000, "")]
    assert sent(conn) == b""  # Our Close is not sent twice.
    assert conn.closing_handshake_complete


def test_send_close_none_sends_empty_close(fixed_mask: bytes) -> None:
    """send_close(None) sends a Close frame with no body."""
    conn = open_connection()
    conn.send_close(None)
    assert sent(conn) == b"\x88\x80" + KEY
    assert conn.close_sent == (None, "")


def test_eof_after_closing_handshake_is_clean() -> None:
    """End of stream after both Close frames moves to CLOSED without a failure."""
    conn = open_connection()
    conn.send_close(1000)
    conn.receive_data(b"\x88\x02\x03\xe8")
    assert conn.next_event() == CloseReceived(1000, "")
    conn.receive_eof()
    assert conn.state is State.CLOSED
    assert conn.next_event() is None
    assert conn.failure is None


def test_eof_after_peer_initiated_close_is_clean() -> None:
    """End of stream after the peer's Close and our echo moves to CLOSED without a failure."""
    conn = open_connection()
    conn.receive_data(b"\x88\x00")
    assert conn.next_event() == CloseReceived(1005, "")
    sent(conn)
    conn.receive_eof()
    assert conn.state is State.CLOSED
    assert conn.next_event() is None
    assert conn.failure is None


def test_eof_right_after_unparsed_close_is_clean() -> None:
    """A Close followed by end of stream before any next_event call still ends CLOSED, clean
    (RFC 6455 7.1.4: both Close frames exchanged and TCP closed)."""
    conn = open_connection()
    conn.send_close(1000)
    conn.receive_data(b"\x88\x02\x03\xe8")
    conn.receive_eof()
    assert drain(conn) == [CloseReceived(1000, "")]
    assert conn.failure is None
    assert conn.state is State.CLOSED


def test_eof_with_buffered_messages_delivers_them_first() -> None:
    """End of stream without Close delivers complete messages, then Failed with no Close."""
    conn = open_connection()
    conn.receive_data(b"\x81\x01a\x82\x01b\x01\x01c" + b"\x81\x05He")
    conn.receive_eof()
    events = drain(conn)
    assert events[:2] == ["a", b"b"]
    assert len(events) == 3
    failed = events[2]
    assert isinstance(failed, Failed)
    assert failed.close_code is None
    assert sent(conn) == b""
    assert conn.state is State.CLOSED
    assert conn.close_sent is None


def test_eof_after_our_close_without_peer_close_fails() -> None:
    """End of stream after our Close but before the peer's is a failure without a new Close."""
    conn = open_connection()
    conn.send_close(1001)
    sent(conn)
    conn.receive_eof()
    event = conn.next_event()
    assert isinstance(event, Failed)
    assert event.close_code is None
    assert sent(conn) == b""
    assert conn.state is State.CLOSED


def test_violation_after_our_close_sends_no_second_close() -> None:
    """A violation after our Close fails without sending another Close."""
    conn = open_connection()
    conn.send_close(1000)
    sent(conn)
    conn.receive_data(b"\x83\x00")
    event = conn.next_event()
    assert isinstance(event, Failed)
    assert event.close_code is None
    assert sent(conn) == b""
    assert conn.state is State.CLOSED


# Sending and local misuse.


def test_send_text_bytes(fixed_mask: bytes) -> None:
    """send_text writes one masked text frame (RFC 6455 5.7 "Hello")."""
    conn = open_connection()
    conn.send_text("Hello")
    assert sent(conn) == b"\x81\x85" + KEY + b"\x7f\x9f\x4d\x51\x58"


def test_send_binary_and_empty_messages(fixed_mask: bytes) -> None:
    """send_binary and empty messages write the exact frames."""
    conn = open_connection()
    conn.send_binary(b"\x00\x01")
    conn.send_text("")
    conn.send_binary(b"")
    assert sent(conn) == masked(0x82, b"\x00\x01") + b"\x81\x80" + KEY + b"\x82\x80" + KEY


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (125, b"\x82\xfd"),
        (126, b"\x82\xfe\x00\x7e"),
        (65535, b"\x82\xfe\xff\xff"),
        (65536, b"\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_send_binary_length_encodings(fixed_mask: bytes, size: int, header: bytes) -> None:
    """Client frames use the minimal length encoding, then the key, then masked payload."""
    conn = open_connection()
    payload = bytes(range(256)) * (size // 256 + 1)
    payload = payload[:size]
    conn.send_binary(payload)
    assert sent(conn) == header + KEY + xor(payload, KEY)


def test_send_ping_and_pong(fixed_mask: bytes) -> None:
    """send_ping and send_pong write masked control frames."""
    conn = open_connection()
    conn.send_ping(b"abc")
    conn.send_pong()
    assert sent(conn) == masked(0x89, b"abc") + b"\x8a\x80" + KEY


def test_send_text_while_connecting_raises() -> None:
    """Sending before the handshake completes raises InvalidStateError."""
    conn = ClientConnection("h", "/")
    with pytest.raises(InvalidStateError):
        conn.send_text("x")
    with pytest.raises(InvalidStateError):
        conn.send_binary(b"x")
    with pytest.raises(InvalidStateError):
        conn.send_ping()
    with pytest.raises(InvalidStateError):
        conn.send_close()


def test_send_close_twice_raises() -> None:
    """A second send_close raises InvalidStateError."""
    conn = open_connection()
    conn.send_close(1000)
    with pytest.raises(InvalidStateError):
        conn.send_close(1000)


def test_send_after_close_raises() -> None:
    """Messages and Pings cannot be sent after our Close."""
    conn = open_connection()
    conn.send_close()
    sent(conn)
    with pytest.raises(InvalidStateError):
        conn.send_text("x")
    with pytest.raises(InvalidStateError):
        conn.send_ping(b"")
    assert sent(conn) == b""


def test_send_close_after_peer_close_raises() -> None:
    """After the peer's Close was echoed, send_close raises."""
    conn = open_connection()
    conn.receive_data(b"\x88\x00")
    conn.next_event()
    with pytest.raises(InvalidStateError):
        conn.send_close(1000)


def test_send_after_failure_raises() -> None:
    """After a failure, sending raises InvalidStateError."""
    conn = open_connection()
    conn.receive_data(b"\x83\x00")
    conn.next_event()
    with pytest.raises(InvalidStateError):
        conn.send_text("x")
    with pytest.raises(InvalidStateError):
        conn.send_close()


def test_send_ping_126_bytes_raises() -> None:
    """A Ping of 126 bytes raises ValueError; 125 bytes is fine."""
    conn = open_connection()
    with pytest.raises(ValueError, match="125"):
        conn.send_ping(b"x" * 126)
    with pytest.raises(ValueError, match="125"):
        conn.send_pong(b"x" * 126)
    conn.send_ping(b"x" * 125)
    assert client_frames(sent(conn)) == [(0x89, b"x" * 125)]


def test_close_reason_too_long_raises() -> None:
    """A Close reason over 123 bytes of UTF-8 raises ValueError; 123 is fine."""
    conn = open_connection()
    with pytest.raises(ValueError, match="123"):
        conn.send_close(1000, "é" * 62)  # 124 bytes.
    assert sent(conn) == b""
    assert conn.state is State.OPEN
    conn.send_close(1000, "é" * 61 + "a")  # 123 bytes.
    assert client_frames(sent(conn)) == [(0x88, b"\x03\xe8" + ("é" * 61 + "a").encode())]


def test_close_reason_without_code_raises() -> None:
    """A reason without a code raises ValueError."""
    conn = open_connection()
    with pytest.raises(ValueError, match="status code"):
        conn.send_close(None, "why")
    assert conn.state is State.OPEN


def test_local_fail_sends_close() -> None:
    """fail() sends Close with the given code, moves to CLOSED, and reports Failed through
    next_event (kind "local")."""
    conn = open_connection()
    conn.fail(1008, "policy")
    event = conn.next_event()
    assert isinstance(event, Failed)
    assert (event.close_code, event.kind, event.reason) == (1008, "local", "policy")
    assert client_frames(sent(conn)) == [(0x88, b"\x03\xf0")]
    assert conn.state is State.CLOSED


def test_abandon_closes_without_an_event() -> None:
    """abandon() after our Close moves to CLOSED with no event and nothing sent, ignores
    later bytes, and leaves the close unclean (no Close frame was received)."""
    conn = open_connection()
    conn.send_close(1000)
    assert client_frames(sent(conn)) == [(0x88, b"\x03\xe8")]
    conn.receive_data(b"\x81\x02hi")  # A message still in the buffer is dropped too.
    conn.abandon()
    assert conn.state is State.CLOSED
    conn.receive_data(b"\x88\x02\x03\xe8")
    conn.receive_eof()
    assert conn.next_event() is None
    assert sent(conn) == b""
    assert (conn.close_received, conn.failure) == (None, None)
    assert not conn.closing_handshake_complete


# Properties.

messages = st.one_of(st.text(max_size=1500), st.binary(max_size=4096))


@settings(max_examples=150, deadline=None)
@given(message=messages, data=st.data())
def test_any_fragmentation_and_chunking_round_trips(
    message: str | bytes, data: st.DataObject
) -> None:
    """Any message, fragmented anyhow with Pings between fragments and chunked anyhow,
    arrives exactly, and every Ping is answered with the same payload."""
    conn = open_connection()
    payload = message.encode() if isinstance(message, str) else message
    opcode = 0x1 if isinstance(message, str) else 0x2
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(payload)), max_size=12))))
    bounds = [0, *cuts, len(payload)]
    pieces = [payload[a:b] for a, b in itertools.pairwise(bounds)]
    stream = b""
    expected: list[EngineEvent] = []
    pings: list[bytes] = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        stream += server_frame(opcode if i == 0 else 0x0, piece, fin=last)
        if not last and data.draw(st.booleans()):
            ping = data.draw(st.binary(max_size=125))
            stream += server_frame(0x9, ping)
            expected.append(PingReceived(ping))
            pings.append(ping)
    expected.append(message)
    stream_cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    events: list[EngineEvent] = []
    start = 0
    for cut in [*stream_cuts, len(stream)]:
        conn.receive_data(stream[start:cut])
        start = cut
        events.extend(drain(conn))
    assert events == expected
    assert type(events[-1]) is type(message)
    assert client_frames(sent(conn)) == [(0x8A, ping) for ping in pings]
    assert conn.buffered == 0
    assert conn.state is State.OPEN


@settings(max_examples=100, deadline=None)
@given(
    payload=st.one_of(
        st.binary(max_size=300),
        st.integers(65530, 65540).map(lambda n: bytes(range(256)) * (n // 256) + bytes(n % 256)),
    ),
    text=st.text(max_size=300),
)
def test_client_frames_unmask_to_payload(payload: bytes, text: str) -> None:
    """Every client frame is masked, and unmasking gives back exactly the payload sent."""
    conn = open_connection()
    conn.send_binary(payload)
    conn.send_text(text)
    conn.send_ping(payload[:125])
    data = sent(conn)
    assert client_frames(data) == [
        (0x82, payload),
        (0x81, text.encode()),
        (0x89, payload[:125]),
    ]
