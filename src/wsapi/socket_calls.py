"""The system calls of the socket transport (``socket_transport.py``) on a non-blocking TCP
socket's descriptor: ``recv_into``, ``send`` and ``stream_ended``, the peek at a socket for
its end of stream.

The compiled build: ``_socket.pyx`` is their twin (same names and behaviour, one system call
from C with the GIL held, which cannot block), cimported by ``socket_transport.pxd``, so the
compiled transport calls it at C level; ``WSAPI_PURE_PYTHON=1`` runs these.
"""

from __future__ import annotations

import os
import socket
from typing import Any

__all__ = ["recv_into", "send", "stream_ended"]


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
