# The C-level interface of _socket.pyx, the compiled twin of socket_calls.py: the compiled
# socket transport cimports these (socket_transport.pxd).

cpdef Py_ssize_t recv_into(int fd, buffer) except -2
cpdef Py_ssize_t send(int fd, data) except -1
cpdef bint stream_ended(int fd) except -1
