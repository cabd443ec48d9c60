# The compiled build of pump.py (see protocol/engine.pxd): ConnectionPump as an extension type
# with these fields, on PumpTimers (timers.pxd, which holds the engine, typed).

# The engine's fast path for whole messages, in its compiled twin (in place, C receivers);
# pump.py imports the engine's, which the pure-Python build runs.
cimport cython

from wsapi._reading cimport deliver_messages
from wsapi.socket_transport cimport SocketTransport, peek_end_of_stream, write_to_socket
from wsapi.timers cimport PumpTimers


cdef class ConnectionPump(PumpTimers):
    cdef public object _after_pump
    cdef public object _read_view
    cdef public bint _closed_reported
    cdef public bint _delivery_paused
    cdef public object _failure_kind
    cdef public int _fd
    cdef public object _in_flight
    cdef public Py_ssize_t _in_flight_total
    cdef public bint _log_payload
    cdef public object _on_message
    cdef public SocketTransport _own_transport
    cdef public Py_ssize_t _pong_backlog
    cdef public bint _pump_scheduled
    cdef public bint _pumping
    cdef public bint _reading_paused
    cdef public object _release_connecting_slot
    cdef public object _report_error
    cdef public Py_ssize_t _wire_written
    cdef public bint _written_to_transport
    cdef public object transport

    # The methods of the read path, called at C level from one another (and from the
    # socket transport: BufferedReceiver, socket_transport.pxd).
    cpdef get_buffer(self, Py_ssize_t sizehint)
    cpdef buffer_updated(self, Py_ssize_t nbytes)
    cpdef _received(self, data, Py_ssize_t size)
    cpdef _pump(self, data=*, Py_ssize_t size=*)
    cpdef _pump_events(self, data, Py_ssize_t size, Py_ssize_t budget=*)
    @cython.locals(start=Py_ssize_t)
    cpdef _flush(self, Py_ssize_t message_size=*)
    cpdef bint _transport_holds_data(self, transport) except -1
    cpdef _pause_reading_if_behind(self)
    cpdef _schedule_pump(self)
    # The methods of WebSocket.send() (websocket.pxd), called at C level.
    cpdef bint can_send(self) except -1
    cpdef send_message(self, payload, bint text)
    cpdef Py_ssize_t untransmitted(self) except -1
    cpdef bint pumping(self) except -1
    cpdef call_after_pump(self, callback)


cdef dict _PAYLOAD_LOG_CACHE
cdef int _DEBUG
cdef bint _payloads_logged() except -1
cpdef Py_ssize_t _try_send(int fd, frame) except -1


cdef object _OPEN, _CLOSED
