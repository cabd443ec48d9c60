# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twins of the hot functions of ``codec.py`` (same names and behaviour), and of
the engine's parser for the common case (``deliver_messages``).

``codec`` and the transport use them when this extension is built (``pip install`` compiles it with the
machine's C compiler when Cython is available) and ``WSAPI_PURE_PYTHON`` is not set.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

import os
import types

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset

    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member

cdef enum:
    T_OBJECT_EX = 16  # Py_T_OBJECT_EX: the member type CPython gives every __slots__ entry.


cdef Py_ssize_t slot_offset(type cls, str name) except -1:
    """The offset of the ``__slots__`` field ``name`` in instances of ``cls`` (ImportError
    if it is not one: the importing module then refuses to load)."""
    for klass in cls.__mro__:
        descriptor = klass.__dict__.get(name)
        if descriptor is not None:
            break
    else:
        raise ImportError(f"{cls.__name__} has no slot {name!r}")
    if type(descriptor) is not types.MemberDescriptorType:
        raise ImportError(f"{cls.__name__}.{name} is not a slot")
    member = (<PyMemberDescrObject*> descriptor).d_member
    if member.type != T_OBJECT_EX:
        raise ImportError(f"{cls.__name__}.{name} is not an object slot")
    return member.offset


def apply_mask(data, bytes key):
    """Mask or unmask ``data`` with the 4-byte ``key`` (RFC 6455 5.3)."""
    if len(key) != 4:
        raise ValueError("a masking key is 4 bytes")
    if isinstance(data, memoryview) and (data.format != "B" or not data.c_contiguous):
        data = data.tobytes()
    cdef const uint8_t[::1] view = data
    cdef Py_ssize_t n = view.shape[0]
    cdef bytes result = PyBytes_FromStringAndSize(NULL, n)
    if n == 0:
        return result
    cdef uint8_t* out = <uint8_t*> PyBytes_AS_STRING(result)
    _mask(&view[0], out, n, <const uint8_t*> PyBytes_AS_STRING(key))
    return result


cdef inline void _mask(const uint8_t* src, uint8_t* out, Py_ssize_t n, const uint8_t* k):
    """``out[i] = src[i] ^ k[i % 4]`` for ``i < n`` (RFC 6455 5.3)."""
    cdef uint32_t key32
    memcpy(&key32, k, 4)
    cdef uint64_t key64 = (<uint64_t> key32 << 32) | key32
    cdef Py_ssize_t i = 0
    cdef uint64_t word
    # Eight bytes at a time; the key repeats every 4 bytes, so an 8-byte word takes it twice.
    while i + 8 <= n:
        memcpy(&word, src + i, 8)
        word ^= key64
        memcpy(out + i, &word, 8)
        i += 8
    while i < n:
        out[i] = src[i] ^ k[i & 3]
        i += 1


cdef class LoggerCheck:
    """``logger.isEnabledFor(level)`` for the hot paths, without the Python call: answered
    from the logger's own cache of that answer (CPython's ``logging`` keeps one per level in
    ``Logger._cache``, and empties it whenever a level changes) when it holds one, else by
    calling the method (which fills it)."""

    def __init__(self, logger, int level):
        self.logger = logger
        self.level = level

    cdef bint enabled(self) except -1:
        logger = self.logger
        if logger.disabled:
            return False
        cache = getattr(logger, "_cache", None)
        cdef PyObject* answer
        if type(cache) is dict:
            answer = PyDict_GetItem(cache, self.level)
            if answer is not NULL:
                return (<object> answer) is True
        return bool(logger.isEnabledFor(self.level))


cdef class MessageReceiver:
    """Base of the compiled receivers of messages (``_delivery.MessageDelivery``): calling
    one from Python, or from ``deliver_messages`` at C level, runs ``receive()``."""

    cdef int receive(self, object message) except -1:
        raise NotImplementedError

    def __call__(self, message):
        self.receive(message)


# RFC 6455 5.3: a fresh key from a strong source of entropy for every frame. Keys are drawn
# in order from a pool of os.urandom() bytes, each 4 bytes used once (as codec.mask_key).
cdef enum:
    KEY_POOL_SIZE = 4096
cdef bytes _key_pool = b""
cdef Py_ssize_t _key_pos = KEY_POOL_SIZE


def encode_masked_frame(int first_byte, data):
    """One masked frame as a single ``bytes``: the header (``first_byte`` holds FIN, RSV1-3
    and the opcode), a fresh masking key, and ``data`` masked with it -- what
    ``encode_frame_header(first_byte, len(data), key) + apply_mask(data, key)`` gives with
    ``key = mask_key()``, in one allocation and one pass over the payload."""
    cdef const uint8_t[::1] view
    if type(data) is bytes:
        return masked_frame(first_byte, <const uint8_t*> PyBytes_AS_STRING(data),
                            PyBytes_GET_SIZE(data))
    if isinstance(data, memoryview) and (data.format != "B" or not data.c_contiguous):
        data = data.tobytes()
    view = data
    return masked_frame(first_byte, &view[0] if view.shape[0] else NULL, view.shape[0])


cdef bytes masked_frame(int first_byte, const uint8_t* src, Py_ssize_t n):
    """``encode_masked_frame`` of the ``n`` bytes at ``src``."""
    global _key_pool, _key_pos
    cdef Py_ssize_t header = 2 if n < 126 else (4 if n < 65536 else 10)
    cdef bytes frame = PyBytes_FromStringAndSize(NULL, header + 4 + n)
    cdef uint8_t* out = <uint8_t*> PyBytes_AS_STRING(frame)
    cdef int i
    out[0] = <uint8_t> first_byte
    if n < 126:
        out[1] = 0x80 | <uint8_t> n
    elif n < 65536:
        out[1] = 0x80 | 126
        out[2] = <uint8_t> (n >> 8)
        out[3] = <uint8_t> n
    else:
        out[1] = 0x80 | 127
        for i in range(8):
            out[2 + i] = <uint8_t> ((<uint64_t> n) >> (56 - 8 * i))
    if _key_pos + 4 > KEY_POOL_SIZE:
        _key_pool = os.urandom(KEY_POOL_SIZE)
        _key_pos = 0
    cdef const uint8_t* k = <const uint8_t*> PyBytes_AS_STRING(_key_pool) + _key_pos
    _key_pos += 4
    memcpy(out + header, k, 4)
    _mask(src, out + header + 4, n, k)
    return frame

# --- The receive hot path: whole single-frame messages -------------------------------------


def deliver_messages(engine, on_message, report_error, Py_ssize_t limit, data=None):
    """Hand up to ``limit`` messages from ``engine``'s receive buffer to ``on_message``, one
    call each, and return how many were handed over (``report_error`` gets what a call
    raises; the next message follows, as in the transport's pump). With ``data`` (bytes
    just read): the same as ``engine.receive_data(data)`` first, but the frames handed over
    are read from ``data`` in place; only the rest is copied into the engine's buffer.

    The compiled twin of ``ClientConnection.next_event`` for the common case only: a whole
    message in one complete frame (FIN set, no RSV bit, unmasked, text or binary, within the
    size limit, valid UTF-8 for text), while no fragmented message is being reassembled and
    nothing else is queued. It stops at the first frame that is anything else, and leaves it
    in the buffer for ``next_event``, which gives it its full treatment (a control frame, a
    fragment, a compressed message, an incomplete frame, every violation)."""
    cdef const uint8_t[::1] view
    check_engine(engine)
    if data is None:
        return _deliver(engine, on_message, report_error, limit, NULL, 0) if _plain_state(engine) else 0
    view = data
    return deliver_read(
        engine, on_message, report_error, limit, &view[0] if view.shape[0] else NULL, view.shape[0]
    )


cdef Py_ssize_t deliver_read(
    engine, on_message, report_error, Py_ssize_t limit, const uint8_t* data, Py_ssize_t size
) except -1:
    """``deliver_messages`` of the ``size`` bytes just read at ``data`` (``engine`` checked
    by ``check_engine``)."""
    cdef bint begun = PyByteArray_GET_SIZE(<bytearray> slot_get(engine, E_BUFFER)) != 0
    if (
        slot_get(engine, E_READER) is not None
        or slot_get(engine, E_EOF)
        or not _plain_state(engine, begun)
    ):
        engine.receive_data(PyBytes_FromStringAndSize(<const char*> data, size))
        return deliver_messages(engine, on_message, report_error, limit)
    cdef Py_ssize_t rest, delivered = 0
    if begun:
        # A frame begun in an earlier read: copy only the rest of it, hand it over from the
        # buffer, then go on in place.
        rest = _rest_of_head_frame(slot_get(engine, E_BUFFER), data, size)
        if rest <= 0 or rest > size:
            # It does not end in this read (or is not plain).
            engine.receive_data(PyBytes_FromStringAndSize(<const char*> data, size))
            return deliver_messages(engine, on_message, report_error, limit)
        engine.receive_data(PyBytes_FromStringAndSize(<const char*> data, rest))
        # The frame is whole now. next_event may have validated the UTF-8 of its start
        # (to fail early); whoever parses it now checks all of it (next_event does too,
        # from the start, when told nothing is validated).
        slot_put(engine, E_FRAME_VALIDATED, 0)
        delivered = deliver_messages(engine, on_message, report_error, limit)
        data += rest
        size -= rest
        if (
            PyByteArray_GET_SIZE(<bytearray> slot_get(engine, E_BUFFER))
            or delivered >= limit
            or not _plain_state(engine)
        ):
            engine.receive_data(PyBytes_FromStringAndSize(<const char*> data, size))
            return delivered
    return delivered + _deliver(engine, on_message, report_error, limit - delivered, data, size)


cdef Py_ssize_t _rest_of_head_frame(bytearray buffer, const uint8_t* more, Py_ssize_t size) except -2:
    """How many of the ``size`` bytes at ``more`` complete the frame that starts ``buffer``
    (its header may continue there): 0 if ``buffer`` holds it all, -1 if they do not hold
    its whole header."""
    cdef uint8_t header[14]
    cdef Py_ssize_t held = PyByteArray_GET_SIZE(buffer), n = 0, frame_size
    cdef const uint8_t* start = <const uint8_t*> PyByteArray_AS_STRING(buffer)
    while n < 14 and n < held:
        header[n] = start[n]
        n += 1
    while n < 14 and n - held < size:
        header[n] = more[n - held]
        n += 1
    frame_size = _frame_size(header, n)
    if frame_size < 0:
        return -1
    return frame_size - held if frame_size > held else 0  # 0: the buffer holds it all already.


cdef Py_ssize_t _frame_size(const uint8_t* frame, Py_ssize_t available):
    """The size of the frame at ``frame`` (header and payload), or -1 if its header is not
    all within ``available`` bytes or its length is out of range."""
    if available < 2:
        return -1
    cdef unsigned long long length = frame[1] & 0x7F
    cdef Py_ssize_t header = 2 + (4 if frame[1] & 0x80 else 0)
    cdef int i
    if length == 126:
        header += 2
        if available < header:
            return -1
        length = (<unsigned long long> frame[2] << 8) | frame[3]
    elif length == 127:
        header += 8
        if available < header:
            return -1
        length = 0
        for i in range(2, 10):
            length = (length << 8) | frame[i]
        if length >> 62:
            return -1
    return header + <Py_ssize_t> length


cdef Py_ssize_t _deliver(
    engine, on_message, report_error, Py_ssize_t limit, const uint8_t* data, Py_ssize_t size
) except -1:
    """The loop of ``deliver_messages``: from the engine's buffer (``data`` NULL), or in
    place from the ``size`` bytes at ``data`` with the buffer empty (what is not handed
    over is then copied into it)."""
    cdef bytearray buffer = slot_get(engine, E_BUFFER)
    cdef MessageReceiver receiver = (
        on_message if isinstance(on_message, MessageReceiver) else None
    )
    cdef unsigned long long max_size = slot_get(engine, E_MAX_MESSAGE_SIZE)
    cdef unsigned long long length
    cdef Py_ssize_t pos = 0, delivered = 0, available, header
    cdef const uint8_t* frame
    cdef int opcode
    try:
        while delivered < limit:
            # Read afresh at each frame: the source is the engine's buffer or ``data``,
            # neither of which a handler can reach, but nothing is assumed.
            if data is NULL:
                available = PyByteArray_GET_SIZE(buffer) - pos
                if available < 2:
                    break
                frame = <const uint8_t*> PyByteArray_AS_STRING(buffer) + pos
            else:
                available = size - pos
                if available < 2:
                    break
                frame = data + pos
            opcode = _plain_header(frame, available, &header, &length)
            if opcode <= 0 or length > max_size:
                break
            if <unsigned long long> (available - header) < length:
                break
            if opcode == 1:
                try:
                    message = PyUnicode_DecodeUTF8(<const char*> frame + header, length, NULL)
                except UnicodeDecodeError:
                    break  # next_event fails the connection with 1007.
            else:
                message = PyBytes_FromStringAndSize(<const char*> frame + header, length)
            pos += header + <Py_ssize_t> length
            delivered += 1
            try:
                if receiver is not None:
                    receiver.receive(message)
                else:
                    on_message(message)
            except Exception as exc:  # A handler bug must not stop the pump.
                report_error(exc)
            if slot_get(engine, E_PENDING):
                break  # The handler failed the connection: next_event reports it first.
    finally:
        if data is NULL:
            if pos:
                del buffer[:pos]
        elif pos < size:
            engine.receive_data(PyBytes_FromStringAndSize(<const char*> data + pos, size - pos))
    return delivered


def waits_for_more(engine):
    """``frame_waits_for_more(engine)``, for the tests."""
    check_engine(engine)
    return frame_waits_for_more(engine)


cdef enum:
    # The most payload bytes of a frame cut by a read that are checked here (beyond it,
    # next_event checks them): a bound on the work per read while a long frame arrives.
    EARLY_CHECK_LIMIT = 4096


cdef bint frame_waits_for_more(engine) except -1:
    """Whether ``next_event`` would find only the start of a frame in the buffer, and do
    nothing but wait for the rest: its header is not all there, or it is a plain frame
    (``deliver_messages``'s kind, within the size limit) whose payload so far is binary, or
    is text of at most ``EARLY_CHECK_LIMIT`` ASCII bytes. (Of a text frame's start,
    ``next_event`` validates what has arrived, to fail early on bad UTF-8; ASCII cannot
    fail, so that check would find nothing. Anything else is left to it.)"""
    if not _plain_state(engine):
        return False
    cdef bytearray buffer = slot_get(engine, E_BUFFER)
    cdef Py_ssize_t available = PyByteArray_GET_SIZE(buffer), header, partial, i
    cdef const uint8_t* frame = <const uint8_t*> PyByteArray_AS_STRING(buffer)
    cdef unsigned long long length
    cdef int opcode = _plain_header(frame, available, &header, &length)
    if opcode == NO_HEADER_YET:
        return True
    if opcode == NOT_PLAIN:
        return False
    partial = available - header
    if length > <unsigned long long> slot_get(engine, E_MAX_MESSAGE_SIZE):
        return False
    if <unsigned long long> partial >= length:
        return False  # The frame is whole: not waiting.
    if opcode == 2:
        return True
    if partial > EARLY_CHECK_LIMIT:
        return False
    for i in range(partial):
        if frame[header + i] & 0x80:
            return False
    return True


cdef enum:
    NO_HEADER_YET = 0  # _plain_header: the frame's header is not all there
    NOT_PLAIN = -1  # _plain_header: anything but a plain frame


cdef inline int _plain_header(
    const uint8_t* frame, Py_ssize_t available, Py_ssize_t* header, unsigned long long* length
) noexcept:
    """Read the header of the frame at ``frame`` (``available`` bytes there) if it is a
    plain one -- FIN set, RSV1-3 clear, text or binary, unmasked, a length within RFC 6455
    5.2's range -- and return its opcode (1 or 2), with its header size and payload length;
    else ``NO_HEADER_YET`` or ``NOT_PLAIN``."""
    if available < 2:
        return NO_HEADER_YET
    cdef uint8_t first = frame[0], opcode = first & 0x0F
    # FIN set, RSV1-3 clear (0x80 in the high nibble), a data opcode, MASK clear.
    if (first & 0xF0) != 0x80 or (opcode != 1 and opcode != 2) or frame[1] & 0x80:
        return NOT_PLAIN
    cdef unsigned long long n = frame[1]
    cdef int i
    header[0] = 2
    if n == 126:
        header[0] = 4
        if available < 4:
            return NO_HEADER_YET
        n = (<unsigned long long> frame[2] << 8) | frame[3]
    elif n == 127:
        header[0] = 10
        if available < 10:
            return NO_HEADER_YET
        n = 0
        for i in range(2, 10):
            n = (n << 8) | frame[i]
        if n >> 63:
            return NOT_PLAIN  # RFC 6455 5.2 forbids it; next_event fails the connection.
    length[0] = n
    return opcode


cdef bint _plain_state(engine, bint partly_validated_ok=False) except -1:
    """Whether the engine is between messages, with nothing queued, and still reading (and
    the frame at the head of its buffer not partly validated, unless that is ok)."""
    if slot_get(engine, E_PENDING) or slot_get(engine, E_CLOSE_RECEIVED) is not None:
        return False
    if slot_get(engine, E_MESSAGE_OPCODE) is not None:
        return False
    if slot_get(engine, E_FRAME_VALIDATED) and not partly_validated_ok:
        return False
    state = slot_get(engine, E_STATE)
    return state is STATE_OPEN or state is STATE_CLOSING


# ClientConnection's fields (engine.py declares them as slots), found at the first call:
# engine.py imports this module before it defines the class.
cdef type Engine = None
cdef object STATE_OPEN, STATE_CLOSING
cdef Py_ssize_t E_BUFFER, E_READER, E_EOF, E_PENDING, E_CLOSE_RECEIVED, E_MESSAGE_OPCODE
cdef Py_ssize_t E_FRAME_VALIDATED, E_STATE, E_MAX_MESSAGE_SIZE


cdef int check_engine(engine) except -1:
    """Raise TypeError unless ``engine`` is a ``ClientConnection`` (whose fields the
    functions here read at their offsets)."""
    global Engine, STATE_OPEN, STATE_CLOSING, E_BUFFER, E_READER, E_EOF, E_PENDING
    global E_CLOSE_RECEIVED, E_MESSAGE_OPCODE, E_FRAME_VALIDATED, E_STATE, E_MAX_MESSAGE_SIZE
    if Engine is None:
        from .engine import ClientConnection, State

        E_BUFFER = slot_offset(ClientConnection, "_buffer")
        E_READER = slot_offset(ClientConnection, "_reader")
        E_EOF = slot_offset(ClientConnection, "_eof")
        E_PENDING = slot_offset(ClientConnection, "_pending")
        E_CLOSE_RECEIVED = slot_offset(ClientConnection, "close_received")
        E_MESSAGE_OPCODE = slot_offset(ClientConnection, "_message_opcode")
        E_FRAME_VALIDATED = slot_offset(ClientConnection, "_frame_validated")
        E_STATE = slot_offset(ClientConnection, "state")
        E_MAX_MESSAGE_SIZE = slot_offset(ClientConnection, "max_message_size")
        STATE_OPEN = State.OPEN
        STATE_CLOSING = State.CLOSING
        Engine = ClientConnection
    if not isinstance(engine, Engine):
        raise TypeError(f"expected a ClientConnection, not {type(engine).__name__}")
    return 0


# The opening handshake: the plain 101 (handshake._read_plain_head, the Python twin, says
# what it is and why; the two give the same answer for any bytes).

from .constants import MAX_HANDSHAKE_RESPONSE_SIZE as _MAX_HEAD

cdef bytes _PLAIN_STATUS = b"HTTP/1.1 101"
cdef Py_ssize_t MAX_HANDSHAKE_RESPONSE_SIZE = _MAX_HEAD

# RFC 9110 5.6.2 tchar: the bytes of a token (a header name).
cdef bint _TCHAR[256]
for _byte in range(256):
    _TCHAR[_byte] = (
        48 <= _byte <= 57 or 65 <= _byte <= 90 or 97 <= _byte <= 122
        or chr(_byte) in "!#$%&'*+-.^_`|~"
    )

cdef inline bint _is_field_byte(uint8_t c):
    """A byte of a plain header value or reason phrase: a tab or printable ASCII."""
    return c == 9 or 32 <= c <= 126


cdef inline bint _has_bare_blank_line(const uint8_t* p, Py_ssize_t n):
    """Whether ``\\n\\n`` or ``\\n\\r\\n`` occurs (h11 would end a head there)."""
    cdef Py_ssize_t i
    for i in range(n - 1):
        if p[i] == 10 and (p[i + 1] == 10 or (p[i + 1] == 13 and i + 2 < n and p[i + 2] == 10)):
            return True
    return False


def read_plain_head(bytes data):
    """``handshake._read_plain_head`` without building the ``HandshakeResponse``: the
    reason phrase, the headers and the head's size for a plain 101; True when more bytes
    may still make one; False when h11 must read it."""
    cdef const uint8_t* p = <const uint8_t*> PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t end = -1, i, start, colon, value_start, value_end
    cdef bint upper
    for i in range(n - 3):
        if p[i] == 13 and p[i + 1] == 10 and p[i + 2] == 13 and p[i + 3] == 10:
            end = i
            break
    if end < 0:
        if n > MAX_HANDSHAKE_RESPONSE_SIZE:
            return False
        for i in range(min(n, 12)):
            if p[i] != (<const uint8_t*> PyBytes_AS_STRING(_PLAIN_STATUS))[i]:
                return False
        return not _has_bare_blank_line(p, n)
    if end + 4 > MAX_HANDSHAKE_RESPONSE_SIZE or end < 12:
        return False
    for i in range(12):
        if p[i] != (<const uint8_t*> PyBytes_AS_STRING(_PLAIN_STATUS))[i]:
            return False
    # The status line: "HTTP/1.1 101", then CRLF or a space and the reason phrase.
    i = 12
    reason = ""
    if p[i] == 32:
        i += 1
        start = i
        while _is_field_byte(p[i]):
            i += 1
        reason = data[start:i].decode("ascii")
    if not (p[i] == 13 and p[i + 1] == 10):
        return False
    i += 2
    # The header lines: a token, ":", a value of tabs and printable ASCII, CRLF; the head
    # ends at the first blank line (end + 2), which no line before it can contain.
    headers = []
    while i < end + 2:
        start = i
        upper = False
        while _TCHAR[p[i]]:
            upper = upper or 65 <= p[i] <= 90
            i += 1
        if i == start or p[i] != 58:  # ":"
            return False
        colon = i
        i += 1
        while _is_field_byte(p[i]):
            i += 1
        if not (p[i] == 13 and p[i + 1] == 10):
            return False
        value_start, value_end = colon + 1, i
        while value_start < value_end and (p[value_start] == 32 or p[value_start] == 9):
            value_start += 1
        while value_end > value_start and (p[value_end - 1] == 32 or p[value_end - 1] == 9):
            value_end -= 1
        name = data[start:colon].decode("ascii")
        if upper:
            name = name.lower()
        if name == "content-length" or name == "transfer-encoding":
            return False  # h11 checks their values.
        headers.append((name, data[value_start:value_end].decode("ascii")))
        i += 2
    if i != end + 2:
        return False
    return reason, tuple(headers), end + 4
