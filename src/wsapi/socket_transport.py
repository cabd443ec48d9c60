"""A plain-TCP asyncio transport for the default (selector) event loop, and its connect.

On the default loop, ``loop.create_connection()`` and asyncio's socket transport cost about
as much Python per connection as everything else a ws: connection does (the measurement is
in docs/performance.md). So for
``ws:`` without a proxy, on a ``SelectorEventLoop`` on POSIX, the connection is opened by
``open_connection`` and carried by ``SocketTransport``: the subset of asyncio's socket
transport that a WebSocket uses, written for the one buffered protocol it carries. TLS,
proxies and every other loop (uvloop, which is compiled already; Windows' proactor) keep
asyncio's own transports.

It behaves as asyncio's does, with the loop's public ``add_reader``/``add_writer``:

- ``connection_made`` is called once the socket is connected, then reading starts; reads
  land in the protocol's buffer (``get_buffer``, ``buffer_updated``), and an end of stream
  calls ``eof_received``, which keeps the transport open for writing if it returns true;
- ``write`` sends at once what the socket takes and buffers the rest (never dropping any),
  with ``pause_writing``/``resume_writing`` at the write-buffer limits;
- ``close`` stops reading, writes what is buffered, then calls ``connection_lost(None)``;
  ``abort`` drops the buffer and does so at once; a socket error calls
  ``connection_lost(exc)``. ``connection_lost`` always comes in a callback of its own, and
  the socket is closed after it.

The compiled build: Cython compiles this file itself, with ``socket_transport.pxd``, as it does the
engine (see ``protocol/engine.py``); ``WSAPI_PURE_PYTHON=1`` runs this file as Python.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import sys
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from .socket_calls import (
    recv_into,
    send,
    stream_ended,
    timer_fd_arm,
    timer_fd_expired,
    timer_fd_open,
)

__all__ = [
    "BufferedProtocolLike",
    "BufferedReceiver",
    "SocketTransport",
    "arm_timer_fd",
    "open_connection",
    "open_timer_fd",
    "socket_transport_used_on",
    "timer_fd_has_expired",
]

logger = logging.getLogger("wsapi")

DEFAULT_HIGH_WATER = 64 * 1024
"""The write buffer's default high-water mark (asyncio's): above it, ``pause_writing``."""


class BufferedProtocolLike(Protocol):
    """What a ``SocketTransport`` calls on the protocol it carries: the methods of
    ``asyncio.BufferedProtocol`` (``pump.ConnectionPump`` has them without subclassing it)."""

    def connection_made(self, transport: Any) -> None: ...
    def get_buffer(self, sizehint: int) -> Any: ...
    def buffer_updated(self, nbytes: int) -> None: ...
    def eof_received(self) -> bool | None: ...
    def connection_lost(self, exc: Exception | None) -> None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...


class BufferedReceiver:
    """A base class for a protocol whose reads a ``SocketTransport`` hands over: the read
    methods of ``asyncio.BufferedProtocol``. The compiled transport calls them at C level
    (``socket_transport.pxd``) on a protocol of this class, the pump; any other buffered
    protocol is called through Python."""

    __slots__ = ()

    def get_buffer(self, sizehint: int) -> Any:
        raise NotImplementedError

    def buffer_updated(self, nbytes: int) -> None:
        raise NotImplementedError


_P = TypeVar("_P", bound=BufferedProtocolLike)

_DETACHED = asyncio.BufferedProtocol()
"""The protocol of a transport after ``connection_lost``."""


def socket_transport_used_on(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether connections on ``loop`` go through ``SocketTransport``: the default loop (a
    ``SelectorEventLoop``) on POSIX, where asyncio's own transport is written in Python."""
    return sys.platform != "win32" and isinstance(loop, asyncio.SelectorEventLoop)


async def open_connection(
    loop: asyncio.AbstractEventLoop,
    protocol_factory: Callable[[], _P],
    host: str,
    port: int,
) -> tuple[SocketTransport, _P]:
    """Connect a TCP socket to ``host`` (an IP address) and ``port``, and start
    ``protocol_factory()`` on it, as ``loop.create_connection()`` does. Raises the
    ``OSError`` of a failed connect. Cancelled, it closes the socket (unless the protocol
    was started already: then its transport is the protocol's to close)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex((host, port))
        if code == 0 or (code == errno.EINPROGRESS and _connected(sock)):
            # Connected at once: on loopback, the TCP handshake is done inside connect(),
            # which still answers EINPROGRESS. No turn of the loop waits for it then.
            return _start(loop, sock, protocol_factory, connecting=False)
        if code not in (errno.EINPROGRESS, errno.EINTR):
            raise OSError(code, os.strerror(code))
        # The connect goes on in the background; the socket turns writable when it is done.
        waiter = _watch_connect(loop, sock, protocol_factory)
    except BaseException:
        sock.close()
        raise
    try:
        return await waiter
    except BaseException:
        if waiter.cancelled():  # (Else the socket is closed, or the protocol's now.)
            loop.remove_writer(sock.fileno())
            sock.close()
        raise


def _connected(sock: socket.socket) -> bool:
    """Whether ``sock``'s connect is done and succeeded: it has a peer."""
    try:
        sock.getpeername()
    except OSError:  # ENOTCONN: still connecting, or failed (the writable socket tells).
        return False
    return True


def _watch_connect(
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    protocol_factory: Callable[[], _P],
) -> asyncio.Future[tuple[SocketTransport, _P]]:
    """A future for the end of ``sock``'s connect, and the protocol started on it. The
    protocol starts in the loop's callback, not a turn of the loop later in the awaiting
    task. (A function of its own: a callback made inside the coroutine would be kept in the
    coroutine's compiled scope, which it refers to, a cycle only the garbage collector
    frees, with the connection's objects in it.)"""
    fd = sock.fileno()
    waiter: asyncio.Future[tuple[SocketTransport, _P]] = loop.create_future()

    def writable() -> None:
        if waiter.done():  # (Cancelled.)
            loop.remove_writer(fd)
            return
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        try:
            if code != 0:
                raise OSError(code, os.strerror(code))
            started = _start(loop, sock, protocol_factory, connecting=True)
        except Exception as exc:  # The connect failed, or the protocol did.
            loop.remove_writer(fd)
            sock.close()
            waiter.set_exception(exc)
        else:
            waiter.set_result(started)

    loop.add_writer(fd, writable)
    return waiter


def _start(
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    protocol_factory: Callable[[], _P],
    *,
    connecting: bool,
) -> tuple[SocketTransport, _P]:
    """Make the protocol and its transport, and start them. ``connecting``: the loop still
    watches the socket for the end of the connect, which is stopped here."""
    protocol = protocol_factory()
    transport = SocketTransport(loop, sock, protocol)
    # Reading is registered before the connect's watch ends (the selector then modifies
    # the socket's registration twice, instead of dropping and adding it, which asyncio's
    # selector loop answers with two KeyErrors), and before connection_made, which may
    # pause it or write (a write the socket does not take all of watches it again).
    transport.start_reading()
    if connecting:
        loop.remove_writer(transport._fd)
    try:
        protocol.connection_made(transport)
    except BaseException:
        transport._stop_reading()  # (The caller closes the socket.)
        raise
    return transport, protocol


def write_to_socket(fd: int, data: bytes | bytearray | memoryview) -> int:
    """One ``send(2)`` to the plain TCP socket of another loop's transport (the pump's first
    write there): ``socket_calls.send``, compiled as the transport's own writes are."""
    return send(fd, data)


def peek_end_of_stream(fd: int) -> bool:
    """The pump's peek at a socket for its end of stream after the closing handshake:
    ``socket_calls.stream_ended``, compiled as the transport's own calls are."""
    return stream_ended(fd)


def open_timer_fd() -> int:
    """A timer descriptor for the connections' timers of the default loop (``deadlines.py``),
    or -1 where there is none: ``socket_calls.timer_fd_open``, compiled as the transport's
    own calls are (the compiled build has one on every Python version, on Linux)."""
    return timer_fd_open()


def arm_timer_fd(fd: int, when: float) -> None:
    """Arm the timer descriptor ``fd`` for ``when`` (the loop's clock)."""
    timer_fd_arm(fd, when)


def timer_fd_has_expired(fd: int) -> bool:
    """Whether the timer descriptor ``fd`` has expired since it was last asked."""
    return timer_fd_expired(fd)


class SocketTransport:
    """asyncio's socket transport, for a connected non-blocking TCP socket and a buffered
    protocol (see the module's notes). It has the methods of ``asyncio.Transport`` without
    subclassing it (the compiled build makes it an extension type, which cannot), as
    uvloop's transports do."""

    # (In the compiled build, socket_transport.pxd declares these fields, typed.)
    __slots__ = (
        "_buffer",
        "_buffer_size",
        "_closing",
        "_eof",
        "_fd",
        "_high_water",
        "_loop",
        "_lost",
        "_low_water",
        "_paused",
        "_protocol",
        "_protocol_paused",
        "_reading",
        "_receiver",
        "_sock",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: BufferedProtocolLike,
    ) -> None:
        # (No BaseTransport.__init__: its extra-info dict is unused, get_extra_info is ours.)
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._set_protocol(protocol)
        # Chunks not yet sent, and their total size. A chunk is bytes, or a memoryview of
        # what is left of a bytes object.
        # What the socket has not taken yet, in order; made at the first partial write (an
        # empty deque is 0.6 KiB, and most connections never need one).
        self._buffer: deque[bytes | memoryview] | None = None
        self._buffer_size = 0
        self._high_water = DEFAULT_HIGH_WATER
        self._low_water = DEFAULT_HIGH_WATER // 4
        self._protocol_paused = False  # pause_writing() was called, resume_writing() not yet.
        self._closing = False  # close() or abort() was called, or the socket failed.
        self._lost = False  # connection_lost() is scheduled: writes go nowhere.
        self._eof = False  # The peer's end of stream came.
        self._paused = False  # pause_reading() was called.
        self._reading = False  # The socket is registered for reading.

    def __repr__(self) -> str:
        state = "closed" if self._lost else "closing" if self._closing else "open"
        return f"<SocketTransport fd={self._fd} {state} buffered={self._buffer_size}>"

    # Reading.

    def start_reading(self) -> None:
        """Register for reading (done as the transport starts; its callbacks come from the
        loop's next turn on) unless reading is paused, the peer's stream ended or the
        transport is closing."""
        if not (self._reading or self._paused or self._eof or self._closing):
            self._reading = True
            self._loop.add_reader(self._fd, self._read_ready)

    def _read_ready(self) -> None:
        try:
            receiver = self._receiver
            if receiver is not None:
                buffer = receiver.get_buffer(-1)
            else:
                buffer = self._protocol.get_buffer(-1)
            nbytes = recv_into(self._fd, buffer)
        except OSError as exc:
            self._fatal_error(exc)
            return
        if nbytes >= 0:
            self._received(nbytes)

    def _received(self, nbytes: int) -> None:
        """``nbytes`` were read into the protocol's buffer; none: the end of the stream."""
        protocol = self._protocol
        try:
            if nbytes:
                receiver = self._receiver
                if receiver is not None:
                    receiver.buffer_updated(nbytes)
                else:
                    protocol.buffer_updated(nbytes)
                return
            self._eof = True
            self._stop_reading()
            if not protocol.eof_received():
                self.close()
        except Exception as exc:
            self._protocol_error(exc, "buffer_updated" if nbytes else "eof_received")

    def is_reading(self) -> bool:
        return self._reading

    def pause_reading(self) -> None:
        self._paused = True
        self._stop_reading()

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            self.start_reading()

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)

    # Writing.

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._lost or not data:
            return  # (Once connection_lost is on its way, as asyncio's: data goes nowhere.)
        sent = 0
        if not self._buffer:
            try:
                sent = send(self._fd, data)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self._fatal_error(exc)
                return
            if sent == len(data):
                return
            self._loop.add_writer(self._fd, self._write_ready)
        # What is left is kept: a bytes object as it is (it cannot change), anything else
        # copied (the caller may reuse a bytearray, or what a memoryview shows).
        chunk: bytes | memoryview
        if type(data) is bytes:
            chunk = memoryview(data)[sent:] if sent else data
        else:
            chunk = bytes(memoryview(data)[sent:])
        if self._buffer is None:
            self._buffer = deque()
        self._buffer.append(chunk)
        self._buffer_size += len(chunk)
        self._maybe_pause_protocol()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _write_ready(self) -> None:
        buffer = self._buffer
        if buffer is None:
            return  # (Not watched then.)
        try:
            while buffer:
                chunk = buffer[0]
                sent = send(self._fd, chunk)
                self._buffer_size -= sent
                if sent < len(chunk):
                    buffer[0] = memoryview(chunk)[sent:]
                    self._maybe_resume_protocol()  # A low-water mark above 0 may be reached.
                    return
                buffer.popleft()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc)
            return
        self._loop.remove_writer(self._fd)
        self._maybe_resume_protocol()
        if self._closing and not self._lost:
            self._schedule_connection_lost(None)

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self._buffer_size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low_water, self._high_water

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = DEFAULT_HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water, self._low_water = high, low
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        if self._buffer_size > self._high_water and not self._protocol_paused:
            self._protocol_paused = True
            try:
                self._protocol.pause_writing()
            except Exception as exc:
                self._report(exc, "protocol.pause_writing() failed")

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and self._buffer_size <= self._low_water:
            self._protocol_paused = False
            try:
                self._protocol.resume_writing()
            except Exception as exc:
                self._report(exc, "protocol.resume_writing() failed")

    # Closing.

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._stop_reading()
        if not self._buffer:
            self._schedule_connection_lost(None)
        # Else _write_ready schedules it once the buffer is written.

    def abort(self) -> None:
        self._force_close(None)

    def _fatal_error(self, exc: OSError) -> None:
        logger.debug("%r: %s", self, exc)
        self._force_close(exc)

    def _protocol_error(self, exc: Exception, method: str) -> None:
        self._report(exc, f"protocol.{method}() failed")
        self._force_close(exc)

    def _report(self, exc: Exception, message: str) -> None:
        self._loop.call_exception_handler(
            {"message": message, "exception": exc, "transport": self, "protocol": self._protocol}
        )

    def _force_close(self, exc: Exception | None) -> None:
        if self._lost:
            return
        if self._buffer:
            self._buffer.clear()
            self._buffer_size = 0
            self._loop.remove_writer(self._fd)
        self._closing = True
        self._stop_reading()
        self._schedule_connection_lost(exc)

    def _schedule_connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._loop.call_soon(self._connection_lost, exc)

    def _connection_lost(self, exc: Exception | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._sock.close()
            # The protocol holds this transport: let go of it, so that neither waits for
            # the cycle collector.
            self._set_protocol(_DETACHED)

    # The rest of asyncio.Transport.

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self._sock
        if name in ("peername", "sockname"):
            try:
                if name == "peername":
                    return self._sock.getpeername()
                return self._sock.getsockname()
            except OSError:
                return default
        return default

    def set_protocol(self, protocol: BufferedProtocolLike) -> None:
        if not (hasattr(protocol, "get_buffer") and hasattr(protocol, "buffer_updated")):
            raise TypeError("a SocketTransport carries a buffered protocol (get_buffer)")
        self._set_protocol(protocol)

    def _set_protocol(self, protocol: BufferedProtocolLike) -> None:
        self._protocol = protocol
        # The same protocol, as the class whose reads are handed over at C level, or None.
        self._receiver = protocol if isinstance(protocol, BufferedReceiver) else None

    def get_protocol(self) -> BufferedProtocolLike:
        return self._protocol
