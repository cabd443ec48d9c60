# cython: language_level=3, boundscheck=False, wraparound=False
"""The compiled twin of ``WebSocket.send`` for the common case (and of
``_mark_buffered_stale``, ``StaleMarker``).

``websocket.py`` makes ``send`` this function when the extension is built and
``WSAPI_PURE_PYTHON`` is not set; the Python method stays as ``WebSocket._send_any``, the
reference, which this function calls for every case it does not take itself.

The common case: called on the loop's thread, readyState OPEN, the data an ASCII or UTF-8
encodable ``str`` or a ``bytes``, the connection established and no Close frame sent or
received, no Blob waiting in the outbox, nothing else queued to write, no compression for
this message, payloads not logged, and bufferedAmount within its limit. Then the steps are
those of ``send`` -> ``ConnectionPump.send_message`` -> ``ClientConnection._send_data``
-> ``ConnectionPump._flush``, in the same order, on the same attributes: bufferedAmount
refreshed and increased, one masked frame with a fresh key, written, the message recorded
as in flight if the transport kept part of it. (On plain TCP, while the transport holds
nothing, the frame goes to the socket with send(2) first: the write the transport's own
``write()`` would start with.)
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8String
from libc.stdint cimport uint8_t

import logging

from .protocol._speedups cimport LoggerCheck, masked_frame, slot_get, slot_offset, slot_put
from .protocol.engine cimport ClientConnection
from .pump cimport ConnectionPump
from .socket_transport cimport SocketTransport

from .agent import UserAgent
from .protocol.deflate import COMPRESSION_THRESHOLD
from .protocol.engine import State
from .pump import payload_logger
from .websocket import WebSocket

cdef extern from *:
    """
    #if defined(_WIN32)
    static Py_ssize_t wsapi_send(int fd, const char *data, Py_ssize_t size) {
        (void) fd; (void) data; (void) size;
        return -1;
    }
    #else
    #include <sys/types.h>
    #include <sys/socket.h>
    #ifndef MSG_NOSIGNAL
    #define MSG_NOSIGNAL 0
    #endif
    /* One non-blocking send(2): the bytes the socket took, or -1 (EAGAIN or an error). */
    static Py_ssize_t wsapi_send(int fd, const char *data, Py_ssize_t size) {
        return (Py_ssize_t) send(fd, data, (size_t) size, MSG_NOSIGNAL);
    }
    #endif
    """
    Py_ssize_t wsapi_send(int fd, const char* data, Py_ssize_t size)

cdef extern from "Python.h":
    unsigned long PyThread_get_thread_ident()
    bint PyUnicode_IS_COMPACT_ASCII(object)
    void* PyUnicode_DATA(object)
    Py_ssize_t PyUnicode_GET_LENGTH(object)

cdef object STATE_OPEN = State.OPEN
cdef Py_ssize_t COMPRESS_FROM = COMPRESSION_THRESHOLD
cdef LoggerCheck payloads_logged = LoggerCheck(payload_logger, logging.DEBUG)
cdef enum:
    OPEN = 1  # readyState OPEN (websocket.py)

# WebSocket's fields read and written, at their slots' offsets (websocket.py imports this
# module after it defines WebSocket). WebSocket's constructor makes its _agent a UserAgent,
# and its _pump is a ConnectionPump or None. The pump, its engine and the socket transport
# are extension types (compiled from their sources), whose fields are read directly.
cdef type WebSocketType = WebSocket
cdef Py_ssize_t W_THREAD = slot_offset(WebSocket, "_thread")
cdef Py_ssize_t W_READY_STATE = slot_offset(WebSocket, "_ready_state")
cdef Py_ssize_t W_PUMP = slot_offset(WebSocket, "_pump")
cdef Py_ssize_t W_OUTBOX = slot_offset(WebSocket, "_outbox")
cdef Py_ssize_t W_OUTBOX_SIZE = slot_offset(WebSocket, "_outbox_size")
cdef Py_ssize_t W_NEVER_SENT = slot_offset(WebSocket, "_never_sent")
cdef Py_ssize_t W_BUFFERED_STALE = slot_offset(WebSocket, "_buffered_stale")
cdef Py_ssize_t W_BUFFERED_AMOUNT = slot_offset(WebSocket, "_buffered_amount")
cdef Py_ssize_t W_AGENT = slot_offset(WebSocket, "_agent")
cdef Py_ssize_t W_MARK_STALE = slot_offset(WebSocket, "_mark_stale")
cdef Py_ssize_t A_MAX_BUFFERED_AMOUNT = slot_offset(UserAgent, "max_buffered_amount")


def send(self, data):
    """Transmit ``data``: ``str`` as a text message; ``bytes``, ``bytearray``,
    ``memoryview`` (only the view's bytes) or ``Blob`` as a binary message."""
    cdef const uint8_t* payload
    cdef Py_ssize_t size
    cdef int first_byte
    cdef object encoded = None
    if not isinstance(self, WebSocketType):
        raise TypeError(f"send() of a WebSocket, not of a {type(self).__name__}")
    # _check_thread(), and "If the readyState attribute is CONNECTING, it must throw an
    # InvalidStateError" (CLOSING and CLOSED only count the bytes): the Python code's cases.
    if (
        PyThread_get_thread_ident() != <unsigned long> slot_get(self, W_THREAD)
        or slot_get(self, W_READY_STATE) != OPEN
    ):
        return self._send_any(data)
    if type(data) is str:
        if PyUnicode_IS_COMPACT_ASCII(data):
            # An ASCII str holds its own UTF-8.
            payload = <const uint8_t*> PyUnicode_DATA(data)
            size = PyUnicode_GET_LENGTH(data)
        else:
            try:
                encoded = PyUnicode_AsUTF8String(data)
            except UnicodeEncodeError:
                # Surrogates: CR throws a SyntaxError, WHATWG converts (the Python code).
                return self._send_any(data)
            payload = <const uint8_t*> PyBytes_AS_STRING(encoded)
            size = PyBytes_GET_SIZE(encoded)
        first_byte = 0x81  # FIN, text
    elif type(data) is bytes:
        # (bytes(data) of a bytes is the same object: immutable, nothing to copy.)
        payload = <const uint8_t*> PyBytes_AS_STRING(data)
        size = PyBytes_GET_SIZE(data)
        first_byte = 0x82  # FIN, binary
    else:
        return self._send_any(data)
    pump_object = slot_get(self, W_PUMP)
    if not isinstance(pump_object, ConnectionPump) or slot_get(self, W_OUTBOX):
        return self._send_any(data)  # (Not yet connected, or a Blob is being read.)
    cdef ConnectionPump pump = pump_object
    cdef ClientConnection engine = pump.engine
    # ConnectionPump.can_send(), and what _send_data and _flush would otherwise take another
    # way.
    if (
        engine.state is not STATE_OPEN
        or engine.close_sent is not None
        or engine.close_received is not None
        or (size >= COMPRESS_FROM and engine.deflate is not None)
        or engine._output
        or pump._lost
    ):
        return self._send_any(data)
    transport = pump.transport
    if transport is None:
        return self._send_any(data)
    # Payloads logged (send_message's check: the pump's callback has read it already).
    if pump._pumping:
        if pump._log_payload:
            return self._send_any(data)
    elif payloads_logged.enabled():
        return self._send_any(data)
    # _refresh_buffered_amount(): inside the pump's callback with nothing in flight (the
    # transport's untransmitted() is 0), it is done here; else by the Python method.
    if slot_get(self, W_BUFFERED_STALE):
        if pump._pumping and not pump._in_flight:
            slot_put(self, W_BUFFERED_STALE, False)
            slot_put(
                self, W_BUFFERED_AMOUNT, slot_get(self, W_OUTBOX_SIZE) + slot_get(self, W_NEVER_SENT)
            )
            pump._after_pump = slot_get(self, W_MARK_STALE)
        else:
            self._refresh_buffered_amount()
    amount = slot_get(self, W_BUFFERED_AMOUNT) + size
    if amount > slot_get(slot_get(self, W_AGENT), A_MAX_BUFFERED_AMOUNT):
        return self._send_any(data)  # Maybe full: the Python code decides.
    # "Any invocation of this method ... that does not throw an exception must increase the
    # bufferedAmount attribute by the number of bytes" (of UTF-8, of the data).
    slot_put(self, W_BUFFERED_AMOUNT, amount)
    # RFC 6455 5.3: masked, with a fresh key.
    frame = masked_frame(first_byte, payload, size)
    cdef Py_ssize_t length = PyBytes_GET_SIZE(frame), sent = -1
    start = pump._wire_written
    end = start + length
    pump._wire_written = end
    # _flush's transport.write(frame), which for a transport holding nothing starts with a
    # send(2) of it to the socket: done here directly on a plain TCP socket (the transport
    # not closing, so its socket is still its own), and only what the socket did not take
    # goes to the transport.
    cdef int fd = pump._fd
    if fd >= 0 and _holds_nothing(transport):
        sent = wsapi_send(fd, PyBytes_AS_STRING(frame), length)
        if sent == length:
            return  # All of it is with the OS: nothing in flight.
    if sent > 0:
        transport.write(frame[sent:])
    else:
        transport.write(frame)  # (An error is the transport's to meet, as it would.)
    if not _holds_nothing(transport):
        pump._in_flight.append((start, end, size))
        pump._in_flight_total = pump._in_flight_total + size


cdef bint _holds_nothing(transport) except -1:
    """``not transport.get_write_buffer_size() and not transport.is_closing()``: for wsapi's
    own socket transport, read from its fields."""
    cdef SocketTransport own
    if type(transport) is SocketTransport:
        own = transport
        return not own._buffer_size and not own._closing
    return not transport.get_write_buffer_size() and not transport.is_closing()


cdef class StaleMarker:
    """``WebSocket._mark_buffered_stale`` of one WebSocket, compiled (no Python frame): the
    call after each callback that took a bufferedAmount snapshot."""

    cdef object target

    def __init__(self, target):
        if not isinstance(target, WebSocketType):
            raise TypeError(f"expected a WebSocket, not {type(target).__name__}")
        self.target = target

    def __call__(self):
        slot_put(self.target, W_BUFFERED_STALE, True)
