# The C-level interface of _socket.pyx, the compiled twin of socket_calls.py: the compiled
# socket transport cimports these (socket_transport.pxd).

cpdef Py_ssize_t recv_into(int fd, buffer) except -2
cpdef Py_ssize_t send(int fd, data) except -1
cpdef bint stream_ended(int fd) except -1
cpdef int timer_fd_open() except -2
cpdef timer_fd_arm(int fd, double when)
cpdef bint timer_fd_expired(int fd) except -1
