"""Fuzz target: the frame parser and message assembly of ``ClientConnection``, fed a server's
bytes after a completed opening handshake, on both builds.

Input: byte 0 chooses the options (bit 0: permessage-deflate; bits 1-2: its parameters;
bits 3-5: ``max_message_size``; bit 6: end of stream after the bytes; bit 7: send a
message, a Ping and a Close afterwards); byte 1 the number N of chunk sizes that follow
(0-31, see ``common.chunks``); then the server's bytes.

Each input runs three times, as the pump drives the engine: the compiled build with its
fast path (``deliver_messages``, the compiled twin, then ``next_event``), the pure-Python
build with the same fast path in Python, and the pure-Python build with ``next_event``
alone (the reference: the pump takes that path while payloads are logged). Invariants:

- nothing raises on the peer's bytes;
- the three runs give the same events, the same frames written (unmasked), the same state;
- after each chunk is drained, the engine holds at most one incomplete frame within the
  limits (``max_message_size`` plus a header, or a control frame) and the message being
  reassembled is within ``max_message_size``;
- every byte the engine writes parses as client frames: masked, final, a known opcode, a
  control payload of at most 125 bytes, a Close payload with a valid code and UTF-8
  reason; and a compressed message inflates back to what was sent.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import chunks, instrumented, pure_copy, run

with instrumented(__name__ == "__main__"):
    # (The pure_ modules: the pure-Python build, beside the compiled one.)
    import wsapi.protocol.engine as compiled_engine
    from wsapi.protocol.handshake import accept_value

    pure_engine = pure_copy("wsapi.protocol.engine")
    pure_codec = pure_copy("wsapi.protocol.codec")


__all__ = ["check", "parse_client_frames"]

LIMITS = (0, 1, 125, 126, 1000, 65536, 1 << 20, 1 << 24)
"""``max_message_size`` values, chosen by bits 3-5 of the first byte."""

DEFLATE_ANSWERS = (
    "permessage-deflate",
    "permessage-deflate; server_no_context_takeover",
    "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9",
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
)
"""The server's ``Sec-WebSocket-Extensions`` answers, chosen by bits 1-2."""

HEADER_MAX = 14
"""The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask key."""

MAX_CONTROL = 125

_VALID_CLOSE = {1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)}
"""Close codes a Close frame may carry (RFC 6455 7.4; what we echo is what we accepted)."""


def _open(module: ModuleType, options: int) -> Any:
    """A ``ClientConnection`` of ``module`` in state OPEN, its request written."""
    compression = "deflate" if options & 1 else None
    limit = LIMITS[(options >> 3) & 7]
    engine = module.ClientConnection(
        "example.test", "/", max_message_size=limit, compression=compression
    )
    engine.data_to_send()
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_value(engine.request.key)}",
    ]
    if compression:
        lines.append(f"Sec-WebSocket-Extensions: {DEFLATE_ANSWERS[(options >> 1) & 3]}")
    engine.receive_data(("\r\n".join(lines) + "\r\n\r\n").encode())
    event = engine.next_event()
    assert type(event).__name__ == "Opened", event
    return engine


def _event(event: object) -> tuple[object, ...]:
    """An event as a comparable value (the builds' event classes are distinct objects)."""
    if isinstance(event, (str, bytes)):
        return ("message", event)
    name = type(event).__name__
    if name == "Failed":
        return (name, event.reason, event.kind, event.close_code)  # type: ignore[attr-defined]
    if name == "CloseReceived":
        return (name, event.code, event.reason)  # type: ignore[attr-defined]
    return (name, event.data)  # type: ignore[attr-defined]


def _drive(module: ModuleType, options: int, pieces: list[bytes], fast: bool) -> dict[str, Any]:
    """One run: the events, the frames written and the final state."""
    engine = _open(module, options)
    limit = engine.max_message_size
    events: list[tuple[object, ...]] = []
    errors: list[Exception] = []

    def on_message(message: str | bytes) -> None:
        events.append(_event(message))

    def drain(data: bytes | None) -> None:
        if fast:
            module.deliver_messages(engine, on_message, errors.append, 512, data)
        elif data is not None:
            engine.receive_data(data)
        while True:
            if fast:
                module.deliver_messages(engine, on_message, errors.append, 512)
            event = engine.next_event()
            if event is None:
                break
            events.append(_event(event))
        # Memory: at most one incomplete frame, within the limits, is held.
        assert len(engine._buffer) <= HEADER_MAX + max(MAX_CONTROL, limit), len(engine._buffer)
        assert len(engine._message) <= limit, (len(engine._message), limit)

    for piece in pieces:
        drain(piece)
    if options & 0x40:
        engine.receive_eof()
        drain(None)
    sent: list[bytes] = []
    if options & 0x80 and engine.state == module.State.OPEN and engine.close_sent is None:
        payload = b"".join(pieces)[:300]
        engine.send_binary(payload)
        engine.send_ping(payload[:MAX_CONTROL])
        engine.send_close(1000, "bye")
        sent = [payload]
    assert not errors, errors
    frames = parse_client_frames(b"".join(engine.data_to_send()))
    _check_sent(frames, sent, engine.deflate)
    return {
        "events": events,
        "frames": frames,
        "state": int(engine.state),
        "close_sent": engine.close_sent,
    }


def parse_client_frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """Parse what a client wrote as frames (FIN and RSV bits, opcode, unmasked payload),
    asserting each is a valid client frame and that nothing is left over. (The pure
    build's header parser and mask read them: the compiled writer is checked against it.)"""
    codec = pure_codec
    frames = []
    pos = 0
    while pos < len(data):
        first, length, header_length, key, status = codec.parse_frame_header(data, pos)
        assert status == 0, ("a cut or invalid frame header", status)
        assert key is not None, "an unmasked client frame"
        assert first & 0x80, "a fragmented frame"
        assert not first & 0x30, "RSV2 or RSV3 set"
        opcode = first & 0x0F
        assert opcode in (0x1, 0x2, 0x8, 0x9, 0xA), f"opcode {opcode}"
        # The shortest length encoding: 7 bits below 126, 16 bits below 65536.
        assert header_length == 6 + (2 if length >= 126 else 0) + (6 if length >= 65536 else 0)
        pos += header_length
        payload = codec._pure_apply_mask(data[pos : pos + length], key)
        assert len(payload) == length, "a cut frame payload"
        pos += length
        if opcode >= 0x8:
            assert length <= MAX_CONTROL, "a control frame over 125 bytes"
            assert not first & 0x40, "a compressed control frame"
        if opcode == 0x8 and payload:
            assert length >= 2, "a 1-byte Close payload"
            assert int.from_bytes(payload[:2], "big") in _VALID_CLOSE, payload
            payload[2:].decode("utf-8")
        frames.append((first & 0xF0, opcode, payload))
    return frames


def _check_sent(frames: list[tuple[int, int, bytes]], sent: list[bytes], deflate: Any) -> None:
    """The data frames we sent carry the messages, inflated if compressed."""
    data_frames = [frame for frame in frames if frame[1] in (0x1, 0x2)]
    assert len(data_frames) == len(sent), (data_frames, sent)
    inflater = None
    if deflate is not None:
        inflater = zlib.decompressobj(wbits=-max(deflate.params.client_max_window_bits, 9))
    for (bits, _, payload), message in zip(data_frames, sent, strict=True):
        data = payload
        if bits & 0x40:
            assert inflater is not None, "RSV1 without permessage-deflate"
            data = inflater.decompress(payload + b"\x00\x00\xff\xff")
        assert data == message


def check(data: bytes) -> None:
    """Run ``data`` on both builds; assert the invariants above."""
    if len(data) < 2:
        return
    options, count = data[0], data[1] & 31
    pieces = list(chunks(data[2 + count :], data[2 : 2 + count]))
    pure = pure_engine
    reference = _drive(pure, options, pieces, fast=False)
    for module in (pure, compiled_engine):
        result = _drive(module, options, pieces, fast=True)
        # The frames we write after a failure or a Close carry random keys only: compare
        # the unmasked frames.
        assert result == reference, (module.__name__, result, reference)


def main() -> None:
    run(check)


if __name__ == "__main__":
    main()
