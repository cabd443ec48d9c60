# cython: language_level=3, boundscheck=False, wraparound=False
"""The compiled twin of ``ConnectionPump``'s read path for the common case.

``pump.py`` makes ``get_buffer`` and ``buffer_updated`` these functions when the
extension is built and ``WSAPI_PURE_PYTHON`` is not set. The Python methods are the
reference: ``buffer_updated`` is ``data_received(view[:nbytes])``, which hands the read to
the pump (``_pump``, ``_pump_events``) in its own callback.

The common case: no Pong awaited, no pump scheduled or running, delivery not paused
(``pause_delivery``), payloads not logged. Then the read is handed to ``deliver_messages``
in place, under the same ``_pumping`` flag and the same after-pump call as ``_pump``; and
if anything is left for the pump's loop (events, unparsed bytes other than a frame the read
cut in two that ``next_event`` would only wait on, output, a paused read, an end of stream,
the message budget used up), that loop, ``_pump_events``, goes on from there with what is
left of the budget.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.errno cimport EAGAIN
from libc.stdint cimport uint8_t

import logging
import os

from .protocol._speedups cimport LoggerCheck, MessageReceiver, slot_get, slot_offset, slot_put
from .protocol.engine cimport ClientConnection

from .protocol.engine import State
from .socket_transport import SocketTransport
from .pump import MESSAGES_PER_CALLBACK, ConnectionPump, _read_buffer, payload_logger

cdef extern from "Python.h":
    unsigned long PyThread_get_thread_ident()

cdef object STATE_OPEN = State.OPEN
cdef object STATE_CLOSING = State.CLOSING
cdef object STATE_CLOSED = State.CLOSED
cdef Py_ssize_t BUDGET = MESSAGES_PER_CALLBACK
cdef LoggerCheck payloads_logged = LoggerCheck(payload_logger, logging.DEBUG)

# The pump's fields read and written, at their slots' offsets (pump.py imports this module
# after it defines ConnectionPump).
cdef type PumpType = ConnectionPump
cdef Py_ssize_t C_ENGINE = slot_offset(ConnectionPump, "engine")
cdef Py_ssize_t C_ON_MESSAGE = slot_offset(ConnectionPump, "_on_message")
cdef Py_ssize_t C_PING_DEADLINE = slot_offset(ConnectionPump, "_ping_deadline")
cdef Py_ssize_t C_PUMP_SCHEDULED = slot_offset(ConnectionPump, "_pump_scheduled")
cdef Py_ssize_t C_PUMPING = slot_offset(ConnectionPump, "_pumping")
cdef Py_ssize_t C_LOG_PAYLOAD = slot_offset(ConnectionPump, "_log_payload")
cdef Py_ssize_t C_REPORT_ERROR = slot_offset(ConnectionPump, "_report_error")
cdef Py_ssize_t C_AFTER_PUMP = slot_offset(ConnectionPump, "_after_pump")
cdef Py_ssize_t C_READING_PAUSED = slot_offset(ConnectionPump, "_reading_paused")
cdef Py_ssize_t C_DELIVERY_PAUSED = slot_offset(ConnectionPump, "_delivery_paused")
cdef Py_ssize_t C_LOST = slot_offset(ConnectionPump, "_lost")


# The read buffer is per thread (pump._read_buffer, a threading.local); the last
# thread's is kept here too, which spares the thread-local lookup while one thread reads.
# (Checked and used with no Python code in between: under the GIL, no other thread runs.)
cdef unsigned long cached_thread = 0
cdef bint cached = False
cdef bytearray cached_array = None
cdef object cached_view = None


cdef bytearray _buffer_array():
    """This thread's read buffer (the bytearray under ``_read_buffer.view``)."""
    global cached_thread, cached, cached_array, cached_view
    cdef unsigned long thread = PyThread_get_thread_ident()
    if not cached or cached_thread != thread:
        cached_array = _read_buffer.array
        cached_view = _read_buffer.view
        cached_thread = thread
        cached = True
    return cached_array


def get_buffer(self, Py_ssize_t sizehint):
    """The per-thread read buffer (asyncio.BufferedProtocol)."""
    _buffer_array()
    return cached_view


def buffer_updated(self, Py_ssize_t nbytes):
    """``nbytes`` were read into the buffer (asyncio.BufferedProtocol)."""
    cdef bytearray array = _buffer_array()
    if not isinstance(self, PumpType):
        raise TypeError(f"buffer_updated() of a ConnectionPump, not of a {type(self).__name__}")
    if nbytes < 0 or nbytes > PyByteArray_GET_SIZE(array):
        raise ValueError(f"{nbytes} bytes cannot have been read into the read buffer")
    if (
        slot_get(self, C_PING_DEADLINE) is not None
        or slot_get(self, C_PUMP_SCHEDULED)
        or slot_get(self, C_PUMPING)
        or slot_get(self, C_DELIVERY_PAUSED)
        or payloads_logged.enabled()
    ):
        return self.data_received(memoryview(array)[:nbytes])
    # _pump(data): the read's messages are handed over in this callback.
    cdef ClientConnection engine = slot_get(self, C_ENGINE)
    cdef Py_ssize_t delivered
    slot_put(self, C_PUMPING, True)
    slot_put(self, C_LOG_PAYLOAD, False)
    try:
        delivered = deliver_read(
            engine,
            slot_get(self, C_ON_MESSAGE),
            slot_get(self, C_REPORT_ERROR),
            BUDGET,
            <const uint8_t*> PyByteArray_AS_STRING(array),
            nbytes,
        )
        # What _pump_events would do next, unless it would only find nothing to do (a
        # frame the read cut in two, of which next_event would check nothing that can fail).
        if (
            delivered >= BUDGET
            or engine._pending
            or (
                PyByteArray_GET_SIZE(engine._buffer)
                and not frame_waits_for_more(engine)
            )
            or engine._eof
            or engine._output
            or slot_get(self, C_READING_PAUSED)
            or slot_get(self, C_LOST)
            or engine.state is STATE_CLOSED
        ):
            self._pump_events(None, BUDGET - delivered)
    finally:
        slot_put(self, C_PUMPING, False)
        after_pump = slot_get(self, C_AFTER_PUMP)
        if after_pump is not None:
            slot_put(self, C_AFTER_PUMP, None)
            after_pump()
    if slot_get(self, C_PUMP_SCHEDULED):
        self._pause_reading_if_behind()


# --- Whole single-frame messages, from the engine's buffer or in place from a read ---------

def deliver_messages(ClientConnection engine not None, on_message, report_error, Py_ssize_t limit, data=None):
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
    if data is None:
        return _deliver(engine, on_message, report_error, limit, NULL, 0) if _plain_state(engine) else 0
    view = data
    return deliver_read(
        engine, on_message, report_error, limit, &view[0] if view.shape[0] else NULL, view.shape[0]
    )


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
    cdef MessageReceiver receiver = (
        on_message if isinstance(on_message, MessageReceiver) else None
    )
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
                if receiver is not None:
                    receiver.receive(message)
                else:
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


def waits_for_more(ClientConnection engine not None):
    """``frame_waits_for_more(engine)``, for the tests."""
    return frame_waits_for_more(engine)


cdef enum:
    # The most payload bytes of a frame cut by a read that are checked here (beyond it,
    # next_event checks them): a bound on the work per read while a long frame arrives.
    EARLY_CHECK_LIMIT = 4096


cdef bint frame_waits_for_more(ClientConnection engine) except -1:
    """Whether ``next_event`` would find only the start of a frame in the buffer, and do
    nothing but wait for the rest: its header is not all there, or it is a plain frame
    (``deliver_messages``'s kind, within the size limit) whose payload so far is binary, or
    is text of at most ``EARLY_CHECK_LIMIT`` ASCII bytes. (Of a text frame's start,
    ``next_event`` validates what has arrived, to fail early on bad UTF-8; ASCII cannot
    fail, so that check would find nothing. Anything else is left to it.)"""
    if not _plain_state(engine):
        return False
    cdef bytearray buffer = engine._buffer
    cdef Py_ssize_t available = PyByteArray_GET_SIZE(buffer), header, partial, i
    cdef const uint8_t* frame = <const uint8_t*> PyByteArray_AS_STRING(buffer)
    cdef unsigned long long length
    cdef int opcode = _plain_header(frame, available, &header, &length)
    if opcode == NO_HEADER_YET:
        return True
    if opcode == NOT_PLAIN:
        return False
    partial = available - header
    if length > <unsigned long long> engine.max_message_size:
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


# SocketTransport (socket_transport.py), the plain-TCP transport of the default loop.
cdef type SocketTransportType = SocketTransport
cdef Py_ssize_t S_PROTOCOL = slot_offset(SocketTransport, "_protocol")
cdef Py_ssize_t S_FD = slot_offset(SocketTransport, "_fd")
cdef object python_read_ready = SocketTransport._read_ready


def read_ready(self):
    """``SocketTransport._read_ready`` (the socket is readable) for a ``ConnectionPump``:
    one ``recv(2)`` into the read buffer, then ``buffer_updated`` above without a Python
    call. The same steps as the Python method, which any other protocol gets."""
    if not isinstance(self, SocketTransportType):
        raise TypeError(f"read_ready() of a SocketTransport, not of a {type(self).__name__}")
    pump = slot_get(self, S_PROTOCOL)
    if type(pump) is not PumpType:
        return python_read_ready(self)
    cdef bytearray array = _buffer_array()
    cdef Py_ssize_t nbytes = wsapi_recv(
        slot_get(self, S_FD), PyByteArray_AS_STRING(array), PyByteArray_GET_SIZE(array)
    )
    cdef int code
    if nbytes < 0:
        code = <int> -nbytes
        if code != EAGAIN:
            # (OSError picks the subclass of the code: ConnectionResetError, ...)
            self._fatal_error(OSError(code, os.strerror(code)))
        return
    if nbytes == 0:
        return self._received(0)
    try:
        buffer_updated(pump, nbytes)
    except Exception as exc:
        self._protocol_error(exc, "buffer_updated")


cdef extern from *:
    """
    #if defined(_WIN32)
    static Py_ssize_t wsapi_recv(int fd, char* buffer, Py_ssize_t size) { return -1; }
    #else
    #include <errno.h>
    #include <sys/types.h>
    #include <sys/socket.h>
    /* recv(2); -errno on failure, -EAGAIN for nothing to read yet (EWOULDBLOCK, EINTR). */
    static Py_ssize_t wsapi_recv(int fd, char* buffer, Py_ssize_t size) {
        Py_ssize_t n = recv(fd, buffer, (size_t) size, 0);
        if (n >= 0) return n;
        if (errno == EWOULDBLOCK || errno == EINTR) return -EAGAIN;
        return -(Py_ssize_t) errno;
    }
    #endif
    """
    Py_ssize_t wsapi_recv(int fd, char* buffer, Py_ssize_t size)


cdef extern from *:
    """
    #if defined(_WIN32)
    static int wsapi_stream_ended(int fd) { (void) fd; return 0; }
    #else
    #include <sys/types.h>
    #include <sys/socket.h>
    /* A peek (nothing is read): 1 if the peer's end of stream is next in the socket. */
    static int wsapi_stream_ended(int fd) {
        char byte;
        return recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
    }
    #endif
    """
    int wsapi_stream_ended(int fd)


def stream_ended(int fd):
    """Whether the peer's end of stream is the next thing in the TCP socket ``fd``: one
    non-blocking ``recv(2)`` with ``MSG_PEEK``, which reads nothing (False on data, on
    nothing yet, on an error)."""
    return fd >= 0 and wsapi_stream_ended(fd) == 1
