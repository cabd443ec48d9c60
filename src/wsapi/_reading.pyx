# cython: language_level=3, boundscheck=False, wraparound=False
"""The compiled twin of ``engine.deliver_messages``: whole single-frame messages handed
over from the engine's buffer, or read in place from the bytes just read, uncopied, each
handed to the handler.

Wired in at one place: the compiled pump cimports ``deliver_messages`` (``pump.pxd``) and so
calls it at C level. ``tests/test_engine_delivery.py`` holds the parser twins to each other
and to ``next_event``, bytes in, bytes out. It imports nothing from the pump (it cimports
only the engine).
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint8_t

import os

from .protocol.engine cimport ClientConnection

from .protocol.engine import State

cdef object STATE_OPEN = State.OPEN
cdef object STATE_CLOSING = State.CLOSING


# --- Whole single-frame messages, from the engine's buffer or in place from a read ---------

cpdef Py_ssize_t deliver_messages(
    ClientConnection engine,
    object on_message,
    object report_error,
    Py_ssize_t limit,
    object data=None,
    Py_ssize_t size=-1,
) except -1:
    """Hand up to ``limit`` messages from ``engine``'s receive buffer to ``on_message``, one
    call each, and return how many were handed over (``report_error`` gets what a call
    raises; the next message follows, as in the transport's pump). With ``data`` (bytes
    just read: its first ``size`` bytes, or all of it when ``size`` is -1): the same as
    ``engine.receive_data(data)`` first, but the frames handed over
    are read from ``data`` in place; only the rest is copied into the engine's buffer.

    The compiled twin of ``ClientConnection.next_event`` for the common case only: a whole
    message in one complete frame (FIN set, no RSV bit, unmasked, text or binary, within the
    size limit, valid UTF-8 for text), while no fragmented message is being reassembled and
    nothing else is queued. It stops at the first frame that is anything else, and leaves it
    in the buffer for ``next_event``, which gives it its full treatment (a control frame, a
    fragment, a compressed message, an incomplete frame, every violation)."""
    cdef Py_buffer view
    if engine is None:
        raise TypeError("deliver_messages() of a ClientConnection, not of None")
    if data is None:
        return _deliver(engine, on_message, report_error, limit, NULL, 0) if _plain_state(engine) else 0
    # (A plain buffer request, as bytearray's += makes in receive_data.)
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        if not 0 <= size <= view.len:
            if size != -1:
                raise ValueError(f"size is -1 or 0 to {view.len}, not {size}")
            size = view.len
        return deliver_read(engine, on_message, report_error, limit, <const uint8_t*> view.buf, size)
    finally:
        PyBuffer_Release(&view)


cdef Py_ssize_t deliver_read(
    ClientConnection engine, on_message, report_error, Py_ssize_t limit, const uint8_t* data, Py_ssize_t size
) except -1:
    """``deliver_messages`` of the ``size`` bytes just read at ``data``."""
    cdef bint begun = PyByteArray_GET_SIZE(engine._buffer) != 0
    if (
        engine._reader is not None
        or engine._eof
        or not _plain_state(engine, begun)
    ):
        engine.receive_data(PyBytes_FromStringAndSize(<const char*> data, size))
        return deliver_messages(engine, on_message, report_error, limit)
    cdef Py_ssize_t rest, delivered = 0
    if begun:
        # A frame begun in an earlier read: copy only the rest of it, hand it over from the
        # buffer, then go on in place.
        rest = _rest_of_head_frame(engine._buffer, data, size)
        if rest <= 0 or rest > size:
            # It does not end in this read (or is not plain).
            engine.receive_data(PyBytes_FromStringAndSize(<const char*> data, size))
            return deliver_messages(engine, on_message, report_error, limit)
        engine.receive_data(PyBytes_FromStringAndSize(<const char*> data, rest))
        # The frame is whole now. next_event may have validated the UTF-8 of its start
        # (to fail early); whoever parses it now checks all of it (next_event does too,
        # from the start, when told nothing is validated).
        engine._frame_validated = 0
        delivered = deliver_messages(engine, on_message, report_error, limit)
        data += rest
        size -= rest
        if (
            PyByteArray_GET_SIZE(engine._buffer)
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
    ClientConnection engine, on_message, report_error, Py_ssize_t limit, const uint8_t* data, Py_ssize_t size
) except -1:
    """The loop of ``deliver_messages``: from the engine's buffer (``data`` NULL), or in
    place from the ``size`` bytes at ``data`` with the buffer empty (what is not handed
    over is then copied into it)."""
    cdef bytearray buffer = engine._buffer
    cdef unsigned long long max_size = engine.max_message_size
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
                on_message(message)
            except Exception as exc:  # A handler bug must not stop the pump.
                report_error(exc)
            if engine._pending:
                break  # The handler failed the connection: next_event reports it first.
    finally:
        if data is NULL:
            if pos:
                del buffer[:pos]
        elif pos < size:
            engine.receive_data(PyBytes_FromStringAndSize(<const char*> data + pos, size - pos))
    return delivered


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


cdef bint _plain_state(ClientConnection engine, bint partly_validated_ok=False) except -1:
    """Whether the engine is between messages, with nothing queued, and still reading (and
    the frame at the head of its buffer not partly validated, unless that is ok)."""
    if engine._pending or engine.close_received is not None:
        return False
    if engine._message_opcode is not None:
        return False
    if engine._frame_validated and not partly_validated_ok:
        return False
    state = engine.state
    return state is STATE_OPEN or state is STATE_CLOSING
