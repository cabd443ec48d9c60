"""The RFC 6455 client engine: bytes in, events and bytes out.

Theory of operation
-------------------
``ClientConnection`` is a sans-I/O state machine. The transport feeds it what the socket
reads (``receive_data``, ``receive_eof``), takes what it must write (``data_to_send``) and
asks for events one at a time (``next_event``). Every rule about state lives in this file.

Rule 1: the engine never raises on what the peer sends. A violation becomes "_Fail the
WebSocket Connection_" (RFC 6455 7.1.7): the engine queues a Close frame with the RFC's status
code when it may still send one, moves to CLOSED, forgets its buffers and reports ``Failed``.
Only local misuse (sending in the wrong state, an oversized Ping) raises, as ``ValueError``
or ``InvalidStateError``.

Rule 2: parsing is lazy and in order. ``receive_data`` only buffers; ``next_event`` parses
just far enough to produce the next event. A layer that dispatches each message before asking
for the next event therefore has its reply to message N written before the engine even looks
at frame N+1, which may fail the connection: a browser delivers the earlier messages too, and
Autobahn|Testsuite checks it (3.2-5.15).

Rule 3: memory is bounded by the largest frame the limits allow. A data frame is refused
(1009) as soon as its header shows that the message would exceed ``max_message_size``; a
fragmented message accumulates in one ``bytearray``, so a million empty fragments cost
nothing; control frames are at most 125 bytes. What the transport buffers before it asks
for events is its own business (it stops reading when the backlog grows).

Rule 4: UTF-8 fails fast. A text message is validated as its bytes arrive, even inside a
frame that has not fully arrived yet, so invalid text fails the connection at the first bad
byte (RFC 6455 8.1; Autobahn 6.4.*).

States and transitions (RFC 6455 4.1, 5.5.1, 7.1):

    CONNECTING --101 and valid response--> OPEN
    CONNECTING --anything else--> CLOSED (Failed, no Close frame: there is no connection)
    OPEN --send_close()--> CLOSING (our Close sent, waiting for the peer's)
    OPEN --peer's Close--> CLOSING (our Close echoed at once: the handshake is complete)
    CLOSING --peer's Close--> CLOSING (handshake complete, the peer closes TCP)
    any --end of stream or a violation--> CLOSED
    CLOSING --end of stream after the closing handshake--> CLOSED (clean)

After the peer's Close frame, the engine ignores all further bytes (RFC 6455 5.5.1: the
peer "MUST NOT send any more data frames"); after its own Close, it sends nothing more.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from enum import IntEnum

from .codec import (
    LENGTH_HIGH_BIT,
    NEED_MORE,
    Utf8Validator,
    apply_mask,
    encode_frame_header,
    mask_key,
    parse_frame_header,
)
from .constants import MAX_MESSAGE_SIZE, CloseCode, Opcode, is_valid_received_close_code
from .events import CloseReceived, EngineEvent, Failed, Opened, PingReceived, PongReceived
from .handshake import (
    HandshakeError,
    HandshakeResponse,
    ResponseReader,
    build_request,
    validate_response,
)

__all__ = ["ClientConnection", "InvalidStateError", "State"]

MAX_CONTROL_PAYLOAD = 125
"""RFC 6455 5.5: "All control frames MUST have a payload length of 125 bytes or less"."""

MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2
"""A Close payload is a 2-byte code and the reason: 123 bytes of UTF-8 at most."""


class State(IntEnum):
    """The connection's state, named as the API's readyState names them."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


class InvalidStateError(Exception):
    """A local call that the engine's state does not allow (never caused by the peer)."""


_TEXT = Opcode.TEXT.value
_BINARY = Opcode.BINARY.value
_CONTINUATION = Opcode.CONTINUATION.value
_CLOSE = Opcode.CLOSE.value
_PING = Opcode.PING.value
_PONG = Opcode.PONG.value


class ClientConnection:
    """One client WebSocket connection's protocol state (RFC 6455), without I/O."""

    def __init__(
        self,
        host: str,
        resource: str,
        *,
        protocols: Sequence[str] = (),
        headers: Sequence[tuple[str, str]] = (),
        max_message_size: int | None = MAX_MESSAGE_SIZE,
    ) -> None:
        """``host`` is the ``Host`` header value, ``resource`` the /resource name/ of RFC
        6455 3; ``headers`` are extra request headers; ``max_message_size`` None means no
        limit (memory then grows with what the peer sends: use it only with trusted peers)."""
        self.request, http = build_request(host, resource, protocols=protocols, headers=headers)
        self._reader: ResponseReader | None = ResponseReader(http)
        self.max_message_size = max_message_size if max_message_size is not None else 2**63
        self.state = State.CONNECTING
        self.protocol = ""
        self.extensions = ""
        self.close_sent: tuple[int | None, str] | None = None
        """The code and reason of the Close frame we sent, once sent."""
        self.close_received: CloseReceived | None = None
        """The peer's Close frame, once received."""
        self.failure: Failed | None = None
        """Why the connection failed, if it did."""
        self._output: list[bytes] = [self.request.data]
        self._pending: deque[EngineEvent] = deque()
        self._buffer = bytearray()
        self._eof = False
        # The data message being reassembled: its opcode (None when between messages), the
        # payload so far, and how many bytes of the current frame's payload are validated.
        self._message_opcode: int | None = None
        self._message = bytearray()
        self._frame_validated = 0
        self._validator = Utf8Validator()

    # Input.

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Take bytes read from the network."""
        if self._eof or self.state is State.CLOSED or self.close_received is not None:
            return  # Nothing more is read after a failure or after the peer's Close.
        if self._reader is not None:
            self._receive_handshake(bytes(data))
        else:
            self._buffer += data

    def receive_eof(self) -> None:
        """The peer closed its side of the TCP connection (or the connection was lost)."""
        if self._eof:
            return
        self._eof = True
        if self._reader is not None and self.state is State.CONNECTING:
            self._receive_handshake(b"")
        elif self.close_received is not None:
            self.state = State.CLOSED

    @property
    def buffered(self) -> int:
        """Bytes received and not yet parsed (what flow control watches)."""
        return len(self._buffer)

    @property
    def closing_handshake_complete(self) -> bool:
        """Both Close frames have been exchanged: the TCP connection may now close, and its
        close is clean (RFC 6455 7.1.4 and 7.1.5)."""
        return self.close_sent is not None and self.close_received is not None

    # Output.

    def data_to_send(self) -> list[bytes]:
        """The bytes to write, in order; the engine forgets them."""
        output, self._output = self._output, []
        return output

    def next_event(self) -> EngineEvent | None:
        """The next event, parsing only as far as needed; None when more bytes are needed
        (or nothing more will ever come)."""
        if self._pending:
            return self._pending.popleft()
        if self.state is State.CONNECTING or self.state is State.CLOSED:
            return None
        if self.close_received is not None:
            return None
        event = self._parse()
        if event is None and self._eof:
            # RFC 6455 7.1.5/7.2.1: the connection closed without a Close frame, after every
            # complete frame before the end was delivered.
            return self._fail(
                None, "the connection closed without a Close frame", "connection_lost"
            )
        return event

    # Sending (local calls: these may raise on misuse, never because of the peer).

    def send_text(self, data: str) -> None:
        """Send a text message (``str``; lone surrogates raise ``UnicodeEncodeError``: the
        API layer decides what they become)."""
        self._send_data(_TEXT, data.encode("utf-8"))

    def send_binary(self, data: bytes | bytearray | memoryview) -> None:
        """Send a binary message."""
        self._send_data(_BINARY, data)

    def send_message(self, payload: bytes | bytearray | memoryview, *, text: bool) -> None:
        """Send a message whose payload is ready: for ``text``, bytes of valid UTF-8 (the
        API layer has encoded the string already)."""
        self._send_data(_TEXT if text else _BINARY, payload)

    def send_ping(self, data: bytes = b"") -> None:
        """Send a Ping (at most 125 bytes)."""
        self._send_control(_PING, data)

    def send_pong(self, data: bytes = b"") -> None:
        """Send an unsolicited Pong (RFC 6455 5.5.3 allows it as a heartbeat)."""
        self._send_control(_PONG, data)

    def send_close(self, code: int | None = None, reason: str = "") -> None:
        """Start the closing handshake (RFC 6455 5.5.1, 7.1.2). ``code`` None sends a Close
        frame with no body; a reason needs a code and is at most 123 bytes of UTF-8."""
        if self.state is not State.OPEN and self.state is not State.CLOSING:
            raise InvalidStateError(f"cannot send a Close frame in state {self.state.name}")
        if self.close_sent is not None:
            raise InvalidStateError("a Close frame was already sent")
        payload = _close_payload(code, reason)
        self._write_frame(_CLOSE, payload)
        self.close_sent = (code, reason)
        self.state = State.CLOSING

    def fail(self, code: int | None, reason: str) -> None:
        """_Fail the WebSocket Connection_ for a local reason (a timeout, a limit the layer
        above enforces): send a Close with ``code`` when still possible, then CLOSED. The
        ``Failed`` event comes out of ``next_event`` like any other, so that the layer above
        reports it from its own callback."""
        if self.state is not State.CLOSED:
            self._pending.append(self._fail(code, reason, "local"))

    # Internals: the handshake.

    def _receive_handshake(self, data: bytes) -> None:
        assert self._reader is not None
        result = self._reader.receive(data)
        if result is None:
            return
        if isinstance(result, HandshakeResponse):
            checked = validate_response(self.request, result)
            if isinstance(checked, HandshakeError):
                result = checked
            else:
                self.protocol, self.extensions = checked
                trailing = self._reader.trailing_data
                self._reader = None
                self.state = State.OPEN
                self._pending.append(Opened(self.protocol, self.extensions, result.headers))
                if trailing:
                    self._buffer += trailing
                return
        self._reader = None
        self.state = State.CLOSED
        self.failure = Failed(result.reason, "handshake", None, result.status_code, result.headers)
        self._pending.append(self.failure)

    # Internals: frames.

    def _parse(self) -> EngineEvent | None:
        """Parse frames until one yields an event, or more bytes are needed."""
        buffer = self._buffer
        while True:
            first, length, header_length, key, status = parse_frame_header(buffer, 0)
            if status == NEED_MORE:
                return None
            if status == LENGTH_HIGH_BIT:
                return self._fail_protocol("a frame length has its most significant bit set")
            opcode = first & 0x0F
            fin = first & 0x80
            # RFC 6455 5.2: "RSV1, RSV2, RSV3: MUST be 0 unless an extension is negotiated
            # that defines meanings for non-zero values."
            if first & 0x70:
                return self._fail_protocol("a frame has RSV bits set; no extension defines them")
            # 5.1: "A client MUST close a connection if it detects a masked frame."
            if key is not None:
                return self._fail_protocol("the server sent a masked frame")
            if opcode >= 0x8:
                if opcode > _PONG:
                    return self._fail_protocol(f"the server used the reserved opcode {opcode}")
                # 5.5: "All control frames MUST have a payload length of 125 bytes or less
                # and MUST NOT be fragmented."
                if length > MAX_CONTROL_PAYLOAD:
                    return self._fail_protocol(
                        f"a control frame carries {length} bytes, more than 125"
                    )
                if not fin:
                    return self._fail_protocol("a control frame is fragmented")
                end = header_length + length
                if len(buffer) < end:
                    return None
                payload = bytes(buffer[header_length:end])
                del buffer[:end]
                event = self._control_frame(opcode, payload)
                if event is not None:
                    return event
                continue
            # A data frame (5.4 on fragmentation).
            if opcode == _CONTINUATION:
                if self._message_opcode is None:
                    return self._fail_protocol("a continuation frame starts no message")
                message_opcode = self._message_opcode
            elif opcode in (_TEXT, _BINARY):
                if self._message_opcode is not None:
                    return self._fail_protocol(
                        "a new message started before the fragmented one ended"
                    )
                message_opcode = opcode
            else:
                return self._fail_protocol(f"the server used the reserved opcode {opcode}")
            if len(self._message) + length > self.max_message_size:
                return self._fail(
                    CloseCode.MESSAGE_TOO_BIG,
                    f"a message exceeds the limit of {self.max_message_size} bytes",
                )
            end = header_length + length
            if len(buffer) < end:
                if message_opcode == _TEXT and len(buffer) > header_length:
                    # Rule 4: validate the part of the payload that has arrived.
                    start = header_length + self._frame_validated
                    if len(buffer) > start:
                        if opcode == _TEXT and self._frame_validated == 0:
                            self._validator.reset()
                        if not self._validator.feed(buffer[start:], False):
                            return self._fail_utf8()
                        self._frame_validated = len(buffer) - header_length
                return None
            validated = self._frame_validated
            self._frame_validated = 0
            if fin and opcode != _CONTINUATION:
                # The common case: a whole message in one frame.
                if opcode == _BINARY:
                    data = bytes(buffer[header_length:end])
                    del buffer[:end]
                    return data
                if validated:
                    ok = self._validator.feed(buffer[header_length + validated : end], True)
                    if not ok:
                        return self._fail_utf8()
                try:
                    text = buffer[header_length:end].decode("utf-8")
                except UnicodeDecodeError:
                    return self._fail_utf8()
                del buffer[:end]
                return text
            if opcode != _CONTINUATION:
                self._message_opcode = opcode
                if opcode == _TEXT and not validated:
                    self._validator.reset()
            if message_opcode == _TEXT:
                chunk = buffer[header_length + validated : end]
                if not self._validator.feed(chunk, bool(fin)):
                    return self._fail_utf8()
            self._message += buffer[header_length:end]
            del buffer[:end]
            if not fin:
                continue
            message = self._message
            self._message = bytearray()
            self._message_opcode = None
            if message_opcode == _TEXT:
                return message.decode("utf-8")  # Already validated.
            return bytes(message)

    def _control_frame(self, opcode: int, payload: bytes) -> EngineEvent | None:
        if opcode == _PING:
            # 5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
            # response ... The Pong frame sent in response to a Ping frame must have the
            # identical Application data" -- unless our Close went out already (5.5.1).
            if self.close_sent is None:
                self._write_frame(_PONG, payload)
            return PingReceived(payload)
        if opcode == _PONG:
            return PongReceived(payload)
        # 5.5.1 Close.
        if len(payload) == 1:
            return self._fail_protocol("a Close frame has a 1-byte payload")
        if payload:
            code = int.from_bytes(payload[:2], "big")
            # 7.4: a code that is reserved or unassigned is a protocol error.
            if not is_valid_received_close_code(code):
                return self._fail_protocol(f"a Close frame has the invalid code {code}")
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                return self._fail(
                    CloseCode.INVALID_FRAME_PAYLOAD_DATA, "a Close reason is not valid UTF-8"
                )
        else:
            # 7.1.5: "If this Close control frame contains no status code, _The WebSocket
            # Connection Close Code_ is considered to be 1005."
            code, reason = CloseCode.NO_STATUS_RECEIVED, ""
        event = CloseReceived(code, reason)
        self.close_received = event
        # A message in progress is abandoned; bytes after the Close are ignored.
        self._message = bytearray()
        self._message_opcode = None
        self._buffer.clear()
        if self.close_sent is None:
            # 5.5.1: "If an endpoint receives a Close frame and did not previously send a
            # Close frame, the endpoint MUST send a Close frame in response. (When sending a
            # Close frame in response, the endpoint typically echos the status code it
            # received.)"
            echoed = None if code == CloseCode.NO_STATUS_RECEIVED else code
            self._write_frame(_CLOSE, _close_payload(echoed, ""))
            self.close_sent = (echoed, "")
        # The stream may already have ended behind the Close (a server closes TCP right
        # after its Close): the connection is then closed, and cleanly if ours went out.
        self.state = State.CLOSED if self._eof else State.CLOSING
        return event

    def _fail_protocol(self, reason: str) -> Failed:
        return self._fail(CloseCode.PROTOCOL_ERROR, reason)

    def _fail_utf8(self) -> Failed:
        return self._fail(CloseCode.INVALID_FRAME_PAYLOAD_DATA, "a text message is not UTF-8")

    def _fail(self, code: int | None, reason: str, kind: str = "protocol") -> Failed:
        # RFC 6455 7.1.7: "If _The WebSocket Connection is Established_ prior to the point
        # where the endpoint is required to _Fail the WebSocket Connection_, the endpoint
        # SHOULD send a Close frame with an appropriate status code (Section 7.4) before
        # proceeding to _Close the WebSocket Connection_."
        sent = None
        if (
            code is not None
            and self.close_sent is None
            and not self._eof
            and self.state is not State.CONNECTING
            and self.state is not State.CLOSED
        ):
            self._write_frame(_CLOSE, _close_payload(code, ""))
            self.close_sent = (code, "")
            sent = code
        self.state = State.CLOSED
        self._reader = None
        self._buffer = bytearray()
        self._message = bytearray()
        self._message_opcode = None
        self.failure = Failed(reason, kind, sent)
        return self.failure

    def _send_data(self, opcode: int, payload: bytes | bytearray | memoryview) -> None:
        if self.state is not State.OPEN or self.close_sent is not None:
            raise InvalidStateError(f"cannot send a message in state {self.state.name}")
        self._write_frame(opcode, payload)

    def _send_control(self, opcode: int, payload: bytes) -> None:
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError(f"a control frame payload is at most 125 bytes, not {len(payload)}")
        if self.state is not State.OPEN or self.close_sent is not None:
            raise InvalidStateError(f"cannot send a control frame in state {self.state.name}")
        self._write_frame(opcode, payload)

    def _write_frame(self, opcode: int, payload: bytes | bytearray | memoryview) -> None:
        # 5.3: the client masks every frame, with a fresh key for each.
        key = mask_key()
        self._output.append(encode_frame_header(0x80 | opcode, len(payload), key))
        if payload:
            self._output.append(apply_mask(payload, key))


def _close_payload(code: int | None, reason: str) -> bytes:
    if code is None:
        if reason:
            raise ValueError("a Close reason needs a status code")
        return b""
    if not 0 <= code <= 0xFFFF:
        raise ValueError(f"a close code is 0-65535, not {code}")
    encoded = reason.encode("utf-8")
    if len(encoded) > MAX_CLOSE_REASON:
        raise ValueError(f"a Close reason is at most 123 bytes of UTF-8, not {len(encoded)}")
    return code.to_bytes(2, "big") + encoded
