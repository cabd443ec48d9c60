"""The system calls of the socket transport (``socket_transport.py``) on a non-blocking TCP
socket's descriptor: ``recv_into``, ``send`` and ``stream_ended``, the peek at a socket for
its end of stream; and the timer descriptor (Linux ``timerfd``) on which the connections'
timers of the default loop wait (``deadlines.py``): ``timer_fd_open``, ``timer_fd_arm``,
``timer_fd_expired``.

The compiled build: ``_socket.pyx`` is their twin (same names and behaviour, one system call
from C with the GIL held, which cannot block), cimported by ``socket_transport.pxd``, so the
compiled transport calls it at C level; ``WSAPI_PURE_PYTHON=1`` runs these.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

__all__ = [
    "recv_into",
    "send",
    "stream_ended",
    "timer_fd_arm",
    "timer_fd_expired",
    "timer_fd_open",
]


def recv_into(fd: int, buffer: Any) -> int:
    """One read of the non-blocking TCP socket ``fd`` into ``buffer``: the bytes read (0:
    the peer's end of stream), or -1 when nothing is there yet; an error raises
    ``OSError``. (``readv(2)`` on a socket is ``recv(2)`` without flags.)"""
    try:
        return os.readv(fd, [buffer])
    except (BlockingIOError, InterruptedError):
        return -1


def stream_ended(fd: int) -> bool:
    """Whether the peer's end of stream is the next thing in the TCP socket ``fd``: one
    non-blocking ``recv(2)`` with ``MSG_PEEK``, which reads nothing (False on data, on
    nothing yet, on an error, and for -1: no plain socket)."""
    if fd < 0:
        return False
    try:
        # A socket object over the descriptor for this one call; detach() leaves it open.
        sock = socket.socket(fileno=fd)
    except OSError:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except OSError:
        return False
    finally:
        sock.detach()


def send(fd: int, data: bytes | bytearray | memoryview) -> int:
    """One write to the non-blocking TCP socket ``fd``: the bytes the socket took; an error
    raises ``OSError`` (``BlockingIOError`` when it takes nothing now). (``write(2)`` on a
    socket is ``send(2)`` without flags.)"""
    return os.write(fd, data)


def timer_fd_open() -> int:
    """A new non-blocking timer descriptor on the monotonic clock (``time.monotonic()``'s,
    the default loop's), disarmed; -1 where there is none (before Python 3.13, which added
    ``os.timerfd_create``; not Linux)."""
    create = getattr(os, "timerfd_create", None)
    if create is None:
        return -1
    flags = getattr(os, "TFD_NONBLOCK", 0) | getattr(os, "TFD_CLOEXEC", 0)
    try:
        fd: int = create(time.CLOCK_MONOTONIC, flags=flags)
    except OSError:
        return -1
    return fd


def timer_fd_arm(fd: int, when: float) -> None:
    """Arm the timer descriptor ``fd`` to expire at ``when`` (the monotonic clock's
    seconds); a time already past expires at once."""
    # (Python 3.13 and later: timer_fd_open gives no descriptor before.)
    settime = getattr(os, "timerfd_settime")  # noqa: B009 (not in older typeshed stubs)
    settime(fd, flags=getattr(os, "TFD_TIMER_ABSTIME"), initial=max(when, 1e-9))  # noqa: B009


def timer_fd_expired(fd: int) -> bool:
    """Whether the timer descriptor ``fd`` has expired since it was last asked (one read,
    which resets it; False when it has not)."""
    try:
        os.read(fd, 8)
    except (BlockingIOError, InterruptedError):
        return False
    return True
