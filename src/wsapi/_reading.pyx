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
from libc.errno cimport EAGAIN
from libc.stdint cimport uint8_t

import logging
import os

from .protocol._speedups cimport (
    LoggerCheck,
    check_engine,
    deliver_read,
    frame_waits_for_more,
    slot_get,
    slot_offset,
    slot_put,
)
from .protocol.engine import ClientConnection, State
from .socket_transport import SocketTransport
from .pump import MESSAGES_PER_CALLBACK, ConnectionPump, _read_buffer, payload_logger

cdef extern from "Python.h":
    unsigned long PyThread_get_thread_ident()

cdef object STATE_CLOSED = State.CLOSED
cdef Py_ssize_t BUDGET = MESSAGES_PER_CALLBACK
cdef LoggerCheck payloads_logged = LoggerCheck(payload_logger, logging.DEBUG)

# The fields read and written, at their slots' offsets (pump.py imports this module after
# it defines ConnectionPump).
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
cdef Py_ssize_t E_PENDING = slot_offset(ClientConnection, "_pending")
cdef Py_ssize_t E_BUFFER = slot_offset(ClientConnection, "_buffer")
cdef Py_ssize_t E_EOF = slot_offset(ClientConnection, "_eof")
cdef Py_ssize_t E_OUTPUT = slot_offset(ClientConnection, "_output")
cdef Py_ssize_t E_STATE = slot_offset(ClientConnection, "state")


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
    engine = slot_get(self, C_ENGINE)
    check_engine(engine)
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
            or slot_get(engine, E_PENDING)
            or (
                PyByteArray_GET_SIZE(<bytearray> slot_get(engine, E_BUFFER))
                and not frame_waits_for_more(engine)
            )
            or slot_get(engine, E_EOF)
            or slot_get(engine, E_OUTPUT)
            or slot_get(self, C_READING_PAUSED)
            or slot_get(self, C_LOST)
            or slot_get(engine, E_STATE) is STATE_CLOSED
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
