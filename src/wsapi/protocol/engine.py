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

Rule 5: compression stays off the uncompressed path. With permessage-deflate (RFC 7692)
negotiated, RSV1 marks the first frame of a compressed message, and only that: RSV1 on a
control frame or a continuation frame, and RSV2 or RSV3 anywhere, fail the connection (1002).
A compressed message takes its own path, entered from the branch that checks the RSV bits,
so a connection without compression pays one integer comparison per continuation frame and
one attribute test per message sent. That path
inflates each part of a frame as it arrives and removes it from the buffer (the frame's
header stays until its last byte, with ``_frame_consumed`` counting what is gone), so the
compressed bytes never pile up; ``max_message_size`` applies to the inflated size and is
checked while inflating, in bounded chunks (1009 the moment it is passed: a decompression
bomb costs no more memory than the limit); inflated text is validated as it comes (1007); a
payload that is not DEFLATE data fails with 1007 (it is "data within a message that was not
consistent with the type of the message", RFC 6455 7.4.1, as ws does; websockets and
Chromium say 1002). Sending compresses a whole message into one frame with RSV1, unless it
is shorter than ``deflate.COMPRESSION_THRESHOLD``.

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

The compiled build: Cython compiles this file itself, with the field types of
``engine.pxd``, into the extension ``wsapi.protocol.engine`` (which Python then imports
instead of this file); ``WSAPI_PURE_PYTHON=1`` runs this file as Python. One source, two
builds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from enum import Enum, IntEnum

from .codec import (
    LENGTH_HIGH_BIT,
    NEED_MORE,
    Utf8Validator,
    apply_mask,
    encode_frame_header,
    encode_masked_frame,
    mask_key,
    parse_frame_header,
)
from .constants import MAX_MESSAGE_SIZE, CloseCode, Opcode, is_valid_received_close_code
from .deflate import (
    COMPRESSION_THRESHOLD,
    INFLATE_CORRUPT,
    INFLATE_OK,
    INFLATE_TOO_BIG,
    OFFER,
    TAIL,
    PerMessageDeflate,
)
from .events import (
    CloseReceived,
    EngineEvent,
    Failed,
    Opened,
    PingReceived,
    PongReceived,
    RefusalBodyExpected,
)
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

_RSV1 = 0x40
"""RFC 7692 6: the "Per-Message Compressed" bit. ``_message_opcode`` carries it too while a
compressed message is being received (0x41 or 0x42), which sends that message's
continuation frames to the compressed path with one comparison."""

COMPRESSIONS = (None, "deflate")
"""The values of ``ClientConnection``'s ``compression``: nothing, or permessage-deflate."""


class _Step(Enum):
    """A frame was consumed without producing an event: parse the next one."""

    NEXT = 0


class ClientConnection:
    """One client WebSocket connection's protocol state (RFC 6455), without I/O."""

    # (In the compiled build, engine.pxd declares these fields, typed.)
    __slots__ = (
        "_buffer",
        "_eof",
        "_frame_consumed",
        "_frame_validated",
        "_message",
        "_message_opcode",
        "_output",
        "_pending",
        "_reader",
        "_validator",
        "close_received",
        "close_sent",
        "deflate",
        "extensions",
        "failure",
        "max_message_size",
        "protocol",
        "request",
        "state",
    )

    def __init__(
        self,
        host: str,
        resource: str,
        *,
        protocols: Sequence[str] = (),
        headers: Sequence[tuple[str, str]] = (),
        max_message_size: int | None = MAX_MESSAGE_SIZE,
        compression: str | None = None,
    ) -> None:
        """``host`` is the ``Host`` header value, ``resource`` the /resource name/ of RFC
        6455 3; ``headers`` are extra request headers; ``max_message_size`` None means no
        limit (memory then grows with what the peer sends: use it only with trusted peers),
        and applies to a compressed message's inflated size; ``compression`` "deflate"
        offers permessage-deflate (RFC 7692), None offers no extension."""
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression is None or 'deflate', not {compression!r}")
        self.request = build_request(
            host,
            resource,
            protocols=protocols,
            headers=headers,
            extensions=OFFER if compression == "deflate" else "",
        )
        self._reader: ResponseReader | None = ResponseReader(self.request)
        self.max_message_size = max_message_size if max_message_size is not None else 2**63
        self.state = State.CONNECTING
        self.protocol = ""
        self.extensions = ""
        """The extensions in use, as the normalized ``Sec-WebSocket-Extensions`` element the
        server accepted, or ``""``."""
        self.deflate: PerMessageDeflate | None = None
        """permessage-deflate's state, when the server accepted it."""
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
        # Payload bytes of the compressed frame at the head of the buffer already inflated
        # and removed from the buffer (Rule 5).
        self._frame_consumed = 0

    # Input.

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Take bytes read from the network."""
        if self._eof or self.state is _CLOSED or self.close_received is not None:
            return  # Nothing more is read after a failure or after the peer's Close.
        if self._reader is not None:
            if data:  # (An empty read is no end of stream: the reader takes b"" as one.)
                self._receive_handshake(bytes(data))
        else:
            self._buffer += data

    def receive_eof(self) -> None:
        """The peer closed its side of the TCP connection (or the connection was lost)."""
        if self._eof:
            return
        self._eof = True
        if self._reader is not None and self.state is _CONNECTING:
            self._receive_handshake(b"")
        elif self.close_received is not None:
            self.state = State.CLOSED

    @property
    def buffered(self) -> int:
        """Bytes received and not yet parsed (what flow control watches)."""
        return len(self._buffer)

    def may_have_events(self) -> bool:
        """False when ``next_event()`` is sure to return None until more input arrives
        (nothing queued, nothing unparsed, no end of stream to report)."""
        return bool(self._pending or self._buffer or self._eof)

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
        if self.state is _CONNECTING or self.state is _CLOSED:
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

    def send_message(self, payload: bytes | bytearray | memoryview, text: bool) -> None:
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
        if self.state is not _OPEN and self.state is not _CLOSING:
            raise InvalidStateError(f"cannot send a Close frame in state {self.state.name}")
        if self.close_sent is not None:
            raise InvalidStateError("a Close frame was already sent")
        payload = _close_payload(code, reason)
        self._write_frame(_CLOSE, payload)
        self.close_sent = (code, reason)
        self.state = State.CLOSING

    def abandon(self) -> None:
        """The layer above drops the TCP connection on purpose, and it is no failure (our
        Close went unanswered for longer than it waits: RFC 6455 7.1.1 lets a client close
        TCP then). CLOSED, buffers forgotten, no event; the close that follows is unclean,
        with 1006 when no Close frame was received (7.1.5)."""
        self.state = State.CLOSED
        self._reader = None
        self._pending.clear()
        self._buffer = bytearray()
        self._message = bytearray()
        self._message_opcode = None
        self._frame_consumed = 0

    def fail(self, code: int | None, reason: str) -> None:
        """_Fail the WebSocket Connection_ for a local reason (a timeout, a limit the layer
        above enforces): send a Close with ``code`` when still possible, then CLOSED. The
        ``Failed`` event comes out of ``next_event`` like any other, so that the layer above
        reports it from its own callback."""
        if self.state is not _CLOSED:
            self._pending.append(self._fail(code, reason, "local"))

    # Internals: the handshake.

    def _receive_handshake(self, data: bytes) -> None:
        reader = self._reader
        assert reader is not None
        waiting = reader.refusal is not None
        result = reader.receive(data)
        if result is None:
            if not waiting and reader.refusal is not None:
                self._pending.append(RefusalBodyExpected(reader.refusal.status_code))
            return
        if isinstance(result, HandshakeResponse):
            checked = validate_response(self.request, result)
            if isinstance(checked, HandshakeError):
                result = checked
            else:
                self.protocol, self.extensions, agreed = checked
                if agreed is not None:
                    self.deflate = PerMessageDeflate(agreed)
                trailing = reader.trailing_data
                self._reader = None
                self.state = State.OPEN
                self._pending.append(Opened(self.protocol, self.extensions, result.headers))
                if trailing:
                    self._buffer += trailing
                return
        self._reader = None
        self.state = State.CLOSED
        kind = "connection_lost" if result.closed else "handshake"
        self.failure = Failed(
            result.reason, kind, None, result.status_code, result.headers, result.body
        )
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
                if self.deflate is None:
                    return self._fail_protocol(
                        "a frame has RSV bits set; no extension defines them"
                    )
                # Rule 5: the compressed path, for the first frame of a compressed message.
                step = self._compressed_first_frame(first, length, header_length, key)
                if step is _Step.NEXT:
                    continue
                return step
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
                if message_opcode > _BINARY:
                    # A continuation frame of a compressed message (Rule 5).
                    step = self._compressed_frame(first, length, header_length)
                    if step is _Step.NEXT:
                        continue
                    return step
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

    def _compressed_first_frame(
        self, first: int, length: int, header_length: int, key: bytes | None
    ) -> EngineEvent | _Step | None:
        """A frame with RSV bits set while permessage-deflate is in use: the first frame of a
        compressed message, or a violation."""
        opcode = first & 0x0F
        # RFC 7692 defines RSV1 only; RFC 6455 5.2 still forbids RSV2 and RSV3.
        if first & 0x30:
            return self._fail_protocol("a frame has RSV2 or RSV3 set; no extension defines them")
        if key is not None:
            return self._fail_protocol("the server sent a masked frame")
        # RFC 7692 6: "An endpoint MUST NOT set the "Per-Message Compressed" bit of control
        # frames and non-first fragments of a data message. An endpoint receiving such a
        # frame MUST _Fail the WebSocket Connection_."
        if opcode >= 0x8:
            if opcode > _PONG:
                return self._fail_protocol(f"the server used the reserved opcode {opcode}")
            return self._fail_protocol("a control frame has RSV1 (compressed) set")
        if opcode == _CONTINUATION:
            if self._message_opcode is None:
                return self._fail_protocol("a continuation frame starts no message")
            return self._fail_protocol("a continuation frame has RSV1 (compressed) set")
        if opcode > _BINARY:
            return self._fail_protocol(f"the server used the reserved opcode {opcode}")
        if self._frame_consumed == 0:
            # The header is seen for the first time: the message starts here. Nothing is
            # committed before a byte of the payload is there to inflate (an empty frame
            # excepted), so that seeing this header again is seeing it for the first time.
            if length and len(self._buffer) <= header_length:
                return None
            if self._message_opcode is not None:
                return self._fail_protocol("a new message started before the fragmented one ended")
            self._message_opcode = opcode | _RSV1
            if opcode == _TEXT:
                self._validator.reset()
            assert self.deflate is not None
            self.deflate.start_message()
        return self._compressed_frame(first, length, header_length)

    def _compressed_frame(
        self, first: int, length: int, header_length: int
    ) -> EngineEvent | _Step | None:
        """Inflate what has arrived of a frame of a compressed message (Rule 5); at the end
        of the message, return it."""
        deflate = self.deflate
        assert deflate is not None
        buffer = self._buffer
        consumed = self._frame_consumed
        remaining = length - consumed
        available = len(buffer) - header_length
        text = self._message_opcode == _TEXT | _RSV1
        validator = self._validator if text else None
        if available < remaining:
            if available <= 0:
                return None
            # Part of the frame: inflate it now and forget it, keeping the header.
            data = buffer[header_length:]
            del buffer[header_length:]
            self._frame_consumed = consumed + available
            status = deflate.inflate(data, self._message, self.max_message_size, validator)
            if status != INFLATE_OK:
                return self._fail_inflate(status)
            return None
        end = header_length + remaining
        data = buffer[header_length:end]
        del buffer[:end]
        self._frame_consumed = 0
        final = first & 0x80
        if final:
            # RFC 7692 7.2.2: "1. Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of
            # the payload of the message. 2. Decompress the resulting data using DEFLATE."
            data += TAIL
        status = deflate.inflate(data, self._message, self.max_message_size, validator)
        if status != INFLATE_OK:
            return self._fail_inflate(status)
        if not final:
            return _Step.NEXT
        deflate.end_message()
        message = self._message
        self._message = bytearray()
        self._message_opcode = None
        if text:
            if not self._validator.feed(b"", True):
                return self._fail_utf8()
            return message.decode("utf-8")  # Already validated.
        return bytes(message)

    def _fail_inflate(self, status: int) -> Failed:
        if status == INFLATE_TOO_BIG:
            return self._fail(
                CloseCode.MESSAGE_TOO_BIG,
                f"a compressed message inflates past the limit of {self.max_message_size} bytes",
            )
        if status == INFLATE_CORRUPT:
            return self._fail(
                CloseCode.INVALID_FRAME_PAYLOAD_DATA,
                "a compressed message is not valid DEFLATE data (RFC 7692 7.2.2)",
            )
        return self._fail_utf8()

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
            # received.)" The reason goes back too, as Chromium sends it: the payload is
            # echoed as it came, already checked (a valid code, at most 123 bytes of UTF-8).
            self._write_frame(_CLOSE, payload)
            self.close_sent = (None if code == CloseCode.NO_STATUS_RECEIVED else code, reason)
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
            and self.state is not _CONNECTING
            and self.state is not _CLOSED
        ):
            self._write_frame(_CLOSE, _close_payload(code, ""))
            self.close_sent = (code, "")
            sent = code
        self.state = State.CLOSED
        self._reader = None
        self._buffer = bytearray()
        self._message = bytearray()
        self._message_opcode = None
        self._frame_consumed = 0
        self.failure = Failed(reason, kind, sent)
        return self.failure

    def _send_data(self, opcode: int, payload: bytes | bytearray | memoryview) -> None:
        if self.state is not _OPEN or self.close_sent is not None:
            raise InvalidStateError(f"cannot send a message in state {self.state.name}")
        deflate = self.deflate
        if deflate is not None and len(payload) >= COMPRESSION_THRESHOLD:
            # RFC 7692 6.1: the first (here the only) frame of a compressed message has the
            # "Per-Message Compressed" bit, RSV1.
            self._write_frame(opcode | _RSV1, deflate.compress(payload))
            return
        self._write_frame(opcode, payload)

    def _send_control(self, opcode: int, payload: bytes) -> None:
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError(f"a control frame payload is at most 125 bytes, not {len(payload)}")
        if self.state is not _OPEN or self.close_sent is not None:
            raise InvalidStateError(f"cannot send a control frame in state {self.state.name}")
        self._write_frame(opcode, payload)

    def _write_frame(self, opcode: int, payload: bytes | bytearray | memoryview) -> None:
        # 5.3: the client masks every frame, with a fresh key for each.
        if encode_masked_frame is not None:
            self._output.append(encode_masked_frame(0x80 | opcode, payload))
            return
        key = mask_key()
        self._output.append(encode_frame_header(0x80 | opcode, len(payload), key))
        if payload:
            self._output.append(apply_mask(payload, key))


def deliver_messages(  # noqa: PLR0917  (positional: the pump calls it per read)
    engine: ClientConnection,
    on_message: Callable[[str | bytes], object],
    report_error: Callable[[Exception], object],
    limit: int,
    data: bytes | bytearray | memoryview | None = None,
    size: int = -1,
) -> int:
    """Hand up to ``limit`` whole messages from ``engine``'s receive buffer to
    ``on_message``, one call each, and return how many were handed over; ``report_error``
    gets what a call raises, and the next message follows. ``data``, bytes just read (its
    first ``size`` bytes; all of it when ``size`` is -1), are received first.

    The fast path of ``next_event`` for the common case only: a whole message in one
    complete frame (FIN set, no RSV bit, unmasked, text or binary, within the size limit,
    valid UTF-8 for text), while no fragmented message is being reassembled and nothing
    else is queued. It stops at the first frame that is anything else and leaves it in the
    buffer for ``next_event``, which gives it its full treatment. (The compiled pump calls
    its twin, ``_reading.deliver_messages``, held to it by tests.)"""
    if data is not None:
        engine.receive_data(data if size < 0 else memoryview(data)[:size])
    state = engine.state
    if (
        engine._pending
        or engine.close_received is not None
        or engine._message_opcode is not None
        or engine._frame_validated
        or (state is not _OPEN and state is not _CLOSING)
    ):
        return 0
    buffer = engine._buffer
    available = len(buffer)
    limit_size = engine.max_message_size
    max_size = limit_size if limit_size < _LARGEST_LENGTH else _LARGEST_LENGTH
    pos = delivered = 0
    try:
        while delivered < limit and available - pos >= 2:
            first = buffer[pos]
            length = buffer[pos + 1]
            opcode = first & 0x0F
            # FIN set and RSV1-3 clear, a data opcode, MASK clear (so length < 128).
            if first & 0xF0 != 0x80 or opcode not in (_TEXT, _BINARY) or length > 127:
                break
            start = pos + 2
            if length == 126:
                start += 2
                if start > available:
                    break
                length = (buffer[pos + 2] << 8) | buffer[pos + 3]
            elif length == 127:
                start += 8
                if start > available:
                    break
                if buffer[pos + 2] & 0x80:
                    break  # RFC 6455 5.2 forbids it; next_event fails the connection.
                length = int.from_bytes(buffer[pos + 2 : start], "big")
            end = start + length
            if length > max_size or end > available:
                break
            if opcode == _TEXT:
                try:
                    message: str | bytes = buffer[start:end].decode("utf-8")
                except UnicodeDecodeError:
                    break  # next_event fails the connection with 1007.
            else:
                message = bytes(buffer[start:end])
            pos = end
            delivered += 1
            try:
                on_message(message)
            except Exception as exc:  # A handler bug must not stop the pump.
                report_error(exc)
            if engine._pending:
                break  # The handler failed the connection: next_event reports it first.
    finally:
        if pos:
            del buffer[:pos]
    return delivered


# The states as module globals: comparisons read them, not attributes of the enum class (an
# enum's class attribute goes through its metaclass, slowly).
_CONNECTING = State.CONNECTING
_OPEN = State.OPEN
_CLOSING = State.CLOSING
_CLOSED = State.CLOSED
_LARGEST_LENGTH = 2**63 - 1
"""The largest frame length RFC 6455 5.2 allows (the most significant bit is 0)."""


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
