# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twins of the hot functions of ``codec.py`` (same names and behaviour), and of
the engine's parser for the common case (``deliver_messages``).

``codec`` and the transport use them when this extension is built (``pip install`` compiles it with the
machine's C compiler when Cython is available) and ``WSAPI_PURE_PYTHON`` is not set.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy


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
    cdef const uint8_t* src = &view[0]
    cdef const uint8_t* k = <const uint8_t*> PyBytes_AS_STRING(key)
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
    return result


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
    cdef bytearray buffer = engine._buffer
    cdef const uint8_t[::1] view
    if data is not None:
        if buffer or engine._reader is not None or engine._eof or not _plain_state(engine):
            engine.receive_data(data)
            return deliver_messages(engine, on_message, report_error, limit)
        view = data
    elif not _plain_state(engine):
        return 0
    cdef unsigned long long max_size = engine.max_message_size
    cdef unsigned long long length
    cdef Py_ssize_t pos = 0, delivered = 0, available, header
    cdef const uint8_t* frame
    cdef uint8_t first, opcode
    cdef int i
    try:
        while delivered < limit:
            # Read afresh at each frame: the source is the engine's buffer or ``data``,
            # neither of which a handler can reach, but nothing is assumed.
            if data is None:
                available = PyByteArray_GET_SIZE(buffer) - pos
                if available < 2:
                    break
                frame = <const uint8_t*> PyByteArray_AS_STRING(buffer) + pos
            else:
                available = view.shape[0] - pos
                if available < 2:
                    break
                frame = &view[pos]
            first = frame[0]
            opcode = first & 0x0F
            # FIN set, RSV1-3 clear (0x80 in the high nibble), a data opcode, MASK clear.
            if (first & 0xF0) != 0x80 or (opcode != 1 and opcode != 2) or frame[1] & 0x80:
                break
            length = frame[1]
            header = 2
            if length == 126:
                if available < 4:
                    break
                length = (<unsigned long long> frame[2] << 8) | frame[3]
                header = 4
            elif length == 127:
                if available < 10:
                    break
                length = 0
                for i in range(2, 10):
                    length = (length << 8) | frame[i]
                if length >> 63:
                    break  # RFC 6455 5.2 forbids it; next_event fails the connection.
                header = 10
            if length > max_size or <unsigned long long> (available - header) < length:
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
                on_message(message)
            except Exception as exc:  # A handler bug must not stop the pump.
                report_error(exc)
            if engine._pending:
                break  # The handler failed the connection: next_event reports it first.
    finally:
        if data is None:
            if pos:
                del buffer[:pos]
        elif pos < view.shape[0]:
            engine.receive_data(data[pos:])
    return delivered


cdef bint _plain_state(engine) except -1:
    """Whether the engine is between messages, with nothing queued, and still reading."""
    if engine._pending or engine.close_received is not None:
        return False
    if engine._message_opcode is not None or engine._frame_validated:
        return False
    state = engine.state
    return state == 1 or state == 2  # State.OPEN, State.CLOSING
