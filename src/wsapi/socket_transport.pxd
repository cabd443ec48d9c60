# The compiled build of socket_transport.py (see protocol/engine.pxd): SocketTransport as an
# extension type with these fields.

# The system calls: the compiled twin of socket_calls.py, which socket_transport.py imports.
from wsapi._socket cimport (
    recv_into,
    send,
    stream_ended,
    timer_fd_arm,
    timer_fd_expired,
    timer_fd_open,
)

cdef class BufferedReceiver:
    cpdef get_buffer(self, Py_ssize_t sizehint)
    cpdef buffer_updated(self, Py_ssize_t nbytes)


cdef class SocketTransport:
    cdef public object _buffer
    cdef public Py_ssize_t _buffer_size
    cdef public bint _closing
    cdef public bint _eof
    cdef public int _fd
    cdef public Py_ssize_t _high_water
    cdef public object _loop
    cdef public bint _lost
    cdef public Py_ssize_t _low_water
    cdef public bint _paused
    cdef public object _protocol
    cdef public bint _protocol_paused
    cdef public bint _reading
    cdef public BufferedReceiver _receiver
    cdef public object _sock

    cpdef _received(self, Py_ssize_t nbytes)
    # The write path, called at C level by the compiled pump.
    cpdef write(self, data)
    cpdef Py_ssize_t get_write_buffer_size(self) except -1
    cpdef bint is_closing(self) except -1


# The pump's calls (pump.pxd cimports them).
cpdef Py_ssize_t write_to_socket(int fd, data) except -1
cpdef bint peek_end_of_stream(int fd) except -1

# The timer descriptor of the connections' timers (deadlines.py calls them).
cpdef int open_timer_fd() except -2
cpdef arm_timer_fd(int fd, double when)
cpdef bint timer_fd_has_expired(int fd) except -1
