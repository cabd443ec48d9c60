# cython: language_level=3, boundscheck=False, wraparound=False
"""The compiled twin of the socket transport's system calls (``socket_calls.py``, same names
and behaviour): ``recv_into``, one ``recv(2)`` from C with the GIL held, ``send``, one
``send(2)``, and ``stream_ended``, the peek at a socket for its end of stream; the timer
descriptor's ``timer_fd_open``, ``timer_fd_arm`` and ``timer_fd_expired`` (Linux
``timerfd``, on every Python version).

Wired in at one place: ``socket_transport.pxd`` cimports them (``_socket.pxd``), so the
compiled socket transport calls them at C level.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from libc.errno cimport EAGAIN

import os


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


cpdef bint stream_ended(int fd) except -1:
    """Whether the peer's end of stream is the next thing in the TCP socket ``fd``: one
    non-blocking ``recv(2)`` with ``MSG_PEEK``, which reads nothing (False on data, on
    nothing yet, on an error)."""
    return fd >= 0 and wsapi_stream_ended(fd) == 1


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


cpdef Py_ssize_t recv_into(int fd, buffer) except -2:
    """The compiled twin of ``socket_calls.recv_into``: one ``recv(2)`` from the
    non-blocking socket ``fd`` into ``buffer``, the GIL held (it cannot block)."""
    cdef Py_buffer view
    cdef Py_ssize_t n
    PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE)
    try:
        n = wsapi_recv(fd, <char*> view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
    if n >= 0:
        return n
    if n == -EAGAIN:
        return -1
    # (OSError picks the subclass of the code: ConnectionResetError, ...)
    raise OSError(<int> -n, os.strerror(<int> -n))


cdef extern from *:
    """
    #if defined(_WIN32)
    static Py_ssize_t wsapi_send(int fd, const char* data, Py_ssize_t size) { return -1; }
    #else
    #include <errno.h>
    #include <sys/types.h>
    #include <sys/socket.h>
    #ifndef MSG_NOSIGNAL
    #define MSG_NOSIGNAL 0
    #endif
    /* send(2); -errno on failure, -EAGAIN when the socket takes nothing now. */
    static Py_ssize_t wsapi_send(int fd, const char* data, Py_ssize_t size) {
        Py_ssize_t n = send(fd, data, (size_t) size, MSG_NOSIGNAL);
        if (n >= 0) return n;
        if (errno == EWOULDBLOCK || errno == EINTR) return -EAGAIN;
        return -(Py_ssize_t) errno;
    }
    #endif
    """
    Py_ssize_t wsapi_send(int fd, const char* data, Py_ssize_t size)


cpdef Py_ssize_t send(int fd, data) except -1:
    """The compiled twin of ``socket_calls.send``: one ``send(2)`` of ``data`` to the
    non-blocking socket ``fd``, the GIL held (it cannot block)."""
    cdef Py_buffer view
    cdef Py_ssize_t n
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        n = wsapi_send(fd, <const char*> view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
    if n >= 0:
        return n
    # (OSError picks the subclass of the code: BlockingIOError, BrokenPipeError, ...)
    code = EAGAIN if n == -EAGAIN else <int> -n
    raise OSError(code, os.strerror(code))


cdef extern from *:
    """
    #if defined(__linux__)
    #include <errno.h>
    #include <stdint.h>
    #include <time.h>
    #include <unistd.h>
    #include <sys/timerfd.h>
    static int wsapi_timer_fd_open(void) {
        return timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    }
    /* 0, or -errno. */
    static int wsapi_timer_fd_arm(int fd, double when) {
        struct itimerspec spec = {{0, 0}, {0, 0}};
        if (when < 1e-9) when = 1e-9;  /* (An all-zero time disarms.) */
        spec.it_value.tv_sec = (time_t) when;
        spec.it_value.tv_nsec = (long) ((when - (double) spec.it_value.tv_sec) * 1e9);
        if (spec.it_value.tv_nsec >= 1000000000L) spec.it_value.tv_nsec = 999999999L;
        if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
        return timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, NULL) == 0 ? 0 : -errno;
    }
    /* 1: expired (read, which resets it); 0: not; -errno on an error. */
    static int wsapi_timer_fd_expired(int fd) {
        uint64_t count;
        if (read(fd, &count, sizeof count) == (ssize_t) sizeof count) return 1;
        return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
    }
    #else
    static int wsapi_timer_fd_open(void) { return -1; }
    static int wsapi_timer_fd_arm(int fd, double when) { (void) fd; (void) when; return -38; }
    static int wsapi_timer_fd_expired(int fd) { (void) fd; return -38; }
    #endif
    """
    int wsapi_timer_fd_open()
    int wsapi_timer_fd_arm(int fd, double when)
    int wsapi_timer_fd_expired(int fd)


cpdef int timer_fd_open() except -2:
    """The compiled twin of ``socket_calls.timer_fd_open``: a non-blocking timer descriptor
    on the monotonic clock, disarmed; -1 where there is none (not Linux)."""
    return wsapi_timer_fd_open()


cpdef timer_fd_arm(int fd, double when):
    """The compiled twin of ``socket_calls.timer_fd_arm``: arm ``fd`` to expire at
    ``when``."""
    cdef int result = wsapi_timer_fd_arm(fd, when)
    if result < 0:
        raise OSError(-result, os.strerror(-result))


cpdef bint timer_fd_expired(int fd) except -1:
    """The compiled twin of ``socket_calls.timer_fd_expired``: whether ``fd`` has expired
    since it was last asked (one read)."""
    cdef int result = wsapi_timer_fd_expired(fd)
    if result < 0:
        raise OSError(-result, os.strerror(-result))
    return result == 1
