"""wsapi's own plain-TCP transport for the default loop (socket_transport.py), against raw
asyncio servers and sockets on 127.0.0.1: what a buffered protocol sees, in what order,
under backpressure, half-close, reset and cancellation. On a loop it does not carry
(uvloop), only the choice itself is checked."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import importlib
import importlib.util
import logging
import os
import select
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator, Iterator
from types import ModuleType

import pytest

from support import TIMEOUT, RawHandler, connect, raw_server, read_request, switching_protocols
from wsapi import WebSocket, socket_calls
from wsapi.echo import start_echo_server
from wsapi.protocol import _build
from wsapi.socket_transport import SocketTransport, open_connection, socket_transport_used_on


def on_carried_loop() -> None:
    if not socket_transport_used_on(asyncio.get_running_loop()):
        pytest.skip("this loop keeps its own transports (see the test of the default loop)")


class Probe(asyncio.BufferedProtocol):
    """A buffered protocol that records every call made to it."""

    def __init__(self, *, keep_open_on_eof: bool = True, buffer_size: int = 4096) -> None:
        self.buffer = bytearray(buffer_size)
        self.received = bytearray()
        self.log: list[object] = []
        self.keep_open_on_eof = keep_open_on_eof
        self.transport: SocketTransport | None = None
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self.data_arrived = asyncio.Event()
        self.resumed = asyncio.Event()
        self.inside_a_call = False
        self.raise_on_data = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, SocketTransport)
        self.transport = transport
        self.log.append("made")

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self.raise_on_data:
            raise RuntimeError("a protocol bug")
        self.received += self.buffer[:nbytes]
        if self.log[-1] != "data":
            self.log.append("data")
        self.data_arrived.set()

    def eof_received(self) -> bool:
        self.log.append("eof")
        return self.keep_open_on_eof

    def pause_writing(self) -> None:
        self.log.append("pause_writing")

    def resume_writing(self) -> None:
        self.log.append("resume_writing")
        self.resumed.set()

    def connection_lost(self, exc: Exception | None) -> None:
        assert not self.inside_a_call, "connection_lost came inside a call to the transport"
        self.log.append(("lost", type(exc).__name__ if exc else None))
        self.lost.set_result(exc)

    def started(self) -> SocketTransport:
        assert self.transport is not None
        return self.transport


@contextlib.asynccontextmanager
async def tcp_server(handler: RawHandler) -> AsyncIterator[int]:
    """A server on 127.0.0.1 running ``handler`` per connection, which must end without
    raising; yields its port."""
    async with raw_server(handler) as url:
        yield int(url.rsplit(":", 1)[1].strip("/"))


async def start(port: int, probe: Probe) -> SocketTransport:
    transport, protocol = await open_connection(
        asyncio.get_running_loop(), lambda: probe, "127.0.0.1", port
    )
    assert protocol is probe
    assert transport is probe.transport
    return transport


async def test_default_loop_is_carried_and_websockets_use_it() -> None:
    """The default loop on POSIX is carried by SocketTransport, and a ws: connection on it
    goes through one; any other loop keeps its own transports."""
    loop = asyncio.get_running_loop()
    expected = isinstance(loop, asyncio.SelectorEventLoop)
    assert socket_transport_used_on(loop) is expected
    async with await start_echo_server() as server:
        transport, recorder = await connect(server.url)
        assert transport is not None
        await recorder.opened
        assert isinstance(transport.transport, SocketTransport) is expected
        transport.start_the_closing_handshake(1000)
        assert (await recorder.closed)[0]


async def test_websocket_reset_by_the_server_ends_in_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A WebSocket whose server resets the TCP connection (the read path of its transport,
    compiled when built, meets ECONNRESET): error, then close 1006, not clean, with the
    reason "connection_lost", and the reset logged; nothing raises."""
    on_carried_loop()
    caplog.set_level(logging.DEBUG, logger="wsapi")

    async def resets_after_open(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await handshake(reader, writer)
        await reader.readexactly(2)  # The start of the client's first frame.
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async with tcp_server(resets_after_open) as port:
        ws = WebSocket(f"ws://127.0.0.1:{port}/")
        events: list[str] = []
        ws.onerror = lambda event: events.append(event.type)
        ws.onclose = lambda event: events.append(f"close {event.code} {event.wasClean}")
        await asyncio.wait_for(ws.opened, 5 * TIMEOUT)
        assert ws._pump is not None
        assert isinstance(ws._pump.transport, SocketTransport)
        ws.send("x")
        await asyncio.wait_for(ws.closed, 5 * TIMEOUT)
    assert events == ["error", "close 1006 False"]
    assert ws.failure is not None
    assert ws.failure.kind == "connection_lost"
    reset = f"[Errno {errno.ECONNRESET}] {os.strerror(errno.ECONNRESET)}"
    assert f"connection lost: {reset}" in caplog.messages


async def handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer a WebSocket opening handshake with 101."""
    writer.write(switching_protocols(await read_request(reader)))


async def test_echo_then_close_in_order() -> None:
    """connection_made, the data, then connection_lost(None) in a callback of its own after
    close(); the server reads everything, then the end of the stream; the socket is closed."""
    on_carried_loop()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readexactly(5))
        assert await reader.read() == b""

    async with tcp_server(echo) as port:
        probe = Probe()
        transport = await start(port, probe)
        assert transport.is_reading()
        assert transport.get_extra_info("peername") == ("127.0.0.1", port)
        assert transport.get_extra_info("sockname")[0] == "127.0.0.1"
        assert transport.get_extra_info("nothing", 7) == 7
        transport.write(b"hel")
        transport.write(b"lo")
        await probe.data_arrived.wait()
        assert bytes(probe.received) == b"hello"
        probe.inside_a_call = True
        transport.close()
        transport.close()  # (Twice is once.)
        probe.inside_a_call = False
        assert transport.is_closing()
        assert not transport.is_reading()
        assert await probe.lost is None
    assert probe.log[:2] == ["made", "data"]
    assert probe.log[-1] == ("lost", None)
    sock = transport.get_extra_info("socket")
    assert sock.fileno() == -1
    transport.write(b"after the end")  # Goes nowhere, raises nothing.


async def test_refused_connect_raises_and_leaves_nothing() -> None:
    """A refused connect raises ConnectionRefusedError; no protocol was made, and the loop
    watches no socket for it."""
    on_carried_loop()
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]  # Closed below: nothing listens there.
    made: list[Probe] = []

    def factory() -> Probe:
        made.append(Probe())
        return made[-1]

    loop = asyncio.get_running_loop()
    with pytest.raises(ConnectionRefusedError) as caught:
        await open_connection(loop, factory, "127.0.0.1", port)
    assert caught.value.strerror == "Connection refused"
    assert made == []


@contextlib.contextmanager
def full_listener() -> Iterator[tuple[socket.socket, int]]:
    """A listener on 127.0.0.1 whose accept queue is full (``listen(0)``, and one connection
    not accepted): the next connect's SYN is dropped, and that connect stays pending.
    Yields the listener and its port."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            yield listener, port


async def test_cancelled_pending_connect_closes_its_socket() -> None:
    """Cancelled while the TCP handshake is pending (the server's accept queue is full), the
    connect closes its socket and stops watching it; no protocol is made."""
    on_carried_loop()
    loop = asyncio.get_running_loop()
    with full_listener() as (_, port):
        made: list[Probe] = []

        def factory() -> Probe:
            made.append(Probe())
            return made[-1]

        task = asyncio.ensure_future(open_connection(loop, factory, "127.0.0.1", port))
        await asyncio.sleep(0.2 * TIMEOUT)
        assert not task.done(), "the connect did not stay pending"
        open_fds = _socket_fds()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(_socket_fds()) == len(open_fds) - 1
        assert made == []


async def test_loopback_connect_starts_the_protocol_without_a_turn_of_the_loop() -> None:
    """On loopback Linux does the TCP handshake inside connect() (which still answers
    EINPROGRESS): open_connection starts the protocol at once, its coroutine ends at its
    first step, and the transport reads as usual."""
    on_carried_loop()
    if sys.platform != "linux":
        pytest.skip("whether loopback connects are done inside connect() is up to the kernel")

    async def greets(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        assert await reader.read() == b""
        writer.close()

    async with tcp_server(greets) as port:
        probe = Probe()
        steps = open_connection(asyncio.get_running_loop(), lambda: probe, "127.0.0.1", port)
        with pytest.raises(StopIteration) as ended:
            steps.send(None)
        transport, protocol = ended.value.value
        assert protocol is probe
        assert probe.log == ["made"]
        await asyncio.wait_for(probe.data_arrived.wait(), TIMEOUT)
        assert bytes(probe.received) == b"hello"
        transport.close()
        assert await asyncio.wait_for(probe.lost, TIMEOUT) is None


async def test_connect_not_done_at_once_is_waited_for() -> None:
    """A connect still pending when connect() returns (the listener's accept queue is full,
    so the SYN is dropped; the kernel sends it again about a second later, once the queue
    has room) starts the protocol when the TCP handshake completes; the transport then reads
    as usual."""
    on_carried_loop()
    loop = asyncio.get_running_loop()
    with full_listener() as (listener, port):
        probe = Probe()
        task = asyncio.ensure_future(open_connection(loop, lambda: probe, "127.0.0.1", port))
        await asyncio.sleep(0.2 * TIMEOUT)
        assert not task.done(), "the connect did not stay pending"
        assert probe.log == []
        listener.accept()[0].close()  # The filler's place in the queue frees.
        transport, _ = await asyncio.wait_for(task, 5 * TIMEOUT)
        assert probe.log == ["made"]
        listener.setblocking(False)
        accepted, _ = await loop.sock_accept(listener)
        with accepted:
            accepted.sendall(b"hello")
            await asyncio.wait_for(probe.data_arrived.wait(), TIMEOUT)
            assert bytes(probe.received) == b"hello"
            transport.close()
            assert await asyncio.wait_for(probe.lost, TIMEOUT) is None


async def test_protocol_that_fails_to_start_leaves_nothing() -> None:
    """A protocol whose connection_made raises: open_connection raises that, the socket is
    closed (the server sees the end of the stream) and no descriptor is left open."""
    on_carried_loop()
    ended = asyncio.Event()

    async def waits_for_the_end(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        assert await reader.read() == b""
        ended.set()

    class Refuses(Probe):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            raise RuntimeError("refuses to start")

    async with tcp_server(waits_for_the_end) as port:
        before = _socket_fds()
        with pytest.raises(RuntimeError, match="refuses to start"):
            await open_connection(asyncio.get_running_loop(), Refuses, "127.0.0.1", port)
        await asyncio.wait_for(ended.wait(), 5 * TIMEOUT)
        await asyncio.sleep(0)
        assert _socket_fds() <= before
        # The loop watches nothing left behind: the next socket (with the same descriptor,
        # as a rule) connects and reads as usual.
        probe = Probe()
        transport = await start(port, probe)
        transport.close()
        assert await probe.lost is None


def _socket_fds() -> set[int]:
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                fds.add(int(name))
    return fds


async def test_backpressure_pauses_then_resumes_and_keeps_every_byte() -> None:
    """Writes the socket cannot take are buffered, never dropped: pause_writing once above
    the high-water mark, resume_writing once drained to the low one, and the server gets
    every byte in order (also after a mutable buffer was reused by the caller)."""
    on_carried_loop()
    release = asyncio.Event()
    digest: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()

    async def slow_reader(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        data = await reader.read()
        digest.set_result((len(data), hashlib.sha256(data).digest()))

    async with tcp_server(slow_reader) as port:
        probe = Probe()
        transport = await start(port, probe)
        transport.set_write_buffer_limits(high=1024 * 1024)
        assert transport.get_write_buffer_limits() == (256 * 1024, 1024 * 1024)
        expected = hashlib.sha256()
        reused = bytearray(64 * 1024)
        total = 0
        for i in range(400):  # 25 MiB: more than the socket buffers take.
            struct.pack_into(">I", reused, 0, i)
            reused[-1] = i % 251
            chunk = bytes(reused) if i % 2 else memoryview(reused)
            expected.update(reused)
            transport.write(chunk)  # (A bytearray's view, reused next time round.)
            total += len(reused)
        assert "pause_writing" in probe.log
        assert transport.get_write_buffer_size() > 1024 * 1024
        release.set()
        await asyncio.wait_for(probe.resumed.wait(), 10 * TIMEOUT)
        assert transport.get_write_buffer_size() <= 256 * 1024
        transport.close()  # Writes the rest first.
        assert await probe.lost is None
        assert await digest == (total, expected.digest())
    assert probe.log.count("pause_writing") >= 1
    assert probe.log.index("pause_writing") < probe.log.index("resume_writing")
    assert transport.get_write_buffer_size() == 0


async def test_abort_drops_the_buffer_at_once() -> None:
    """abort() with data waiting: connection_lost(None) comes next, without waiting for the
    peer to read, and the buffer is empty."""
    on_carried_loop()
    done = asyncio.Event()

    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await done.wait()

    async with tcp_server(never_reads) as port:
        probe = Probe()
        transport = await start(port, probe)
        for _ in range(200):
            transport.write(bytes(64 * 1024))
        assert transport.get_write_buffer_size() > 0
        probe.inside_a_call = True
        transport.abort()
        probe.inside_a_call = False
        assert transport.get_write_buffer_size() == 0
        assert await asyncio.wait_for(probe.lost, 5 * TIMEOUT) is None
        done.set()
    transport.abort()  # (Again: nothing more happens.)
    await asyncio.sleep(0)
    assert probe.log.count(("lost", None)) == 1


@pytest.mark.parametrize("keep_open", [True, False])
async def test_end_of_stream(keep_open: bool) -> None:
    """The peer's end of stream calls eof_received; if it returns true the transport stays
    open for writing (the peer still reads), else it closes."""
    on_carried_loop()
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def half_closes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"last words")
        writer.write_eof()
        got.set_result(await reader.read())

    async with tcp_server(half_closes) as port:
        probe = Probe(keep_open_on_eof=keep_open)
        transport = await start(port, probe)
        while "eof" not in probe.log:
            await asyncio.sleep(0.01)
        assert bytes(probe.received) == b"last words"
        assert not transport.is_reading()
        transport.resume_reading()  # (No effect after the end of the stream.)
        assert not transport.is_reading()
        if keep_open:
            assert not transport.is_closing()
            transport.write(b"still here")
            transport.close()
        assert await probe.lost is None
        assert await got == (b"still here" if keep_open else b"")
    assert probe.log == ["made", "data", "eof", ("lost", None)]


async def test_reset_by_peer_is_connection_lost_with_the_error() -> None:
    """A reset (the peer closes with unread data and SO_LINGER 0) reaches the protocol as
    connection_lost(ConnectionResetError), and writes after it go nowhere."""
    on_carried_loop()

    async def resets(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(1)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async with tcp_server(resets) as port:
        probe = Probe()
        transport = await start(port, probe)
        transport.write(b"x")
        exc = await asyncio.wait_for(probe.lost, 5 * TIMEOUT)
        assert isinstance(exc, ConnectionResetError)
        transport.write(b"nowhere")
        assert transport.get_write_buffer_size() == 0


async def test_write_error_is_connection_lost_with_the_error() -> None:
    """A write that the socket refuses (the peer reset the connection while we were not
    reading) ends in connection_lost with the socket's error."""
    on_carried_loop()
    reset = asyncio.Event()

    async def resets(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(1)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        await asyncio.sleep(0)
        reset.set()

    async with tcp_server(resets) as port:
        probe = Probe()
        transport = await start(port, probe)
        transport.pause_reading()  # (The reset is then found by the write, not a read.)
        transport.write(b"x")
        await reset.wait()
        await asyncio.sleep(0.05 * TIMEOUT)
        assert not probe.lost.done()
        transport.write(b"y")
        exc = await asyncio.wait_for(probe.lost, 5 * TIMEOUT)
        assert isinstance(exc, (ConnectionResetError, BrokenPipeError))
        assert transport.is_closing()


async def test_paused_reading_holds_data_back() -> None:
    """While reading is paused the protocol gets no data; it all comes after resuming."""
    on_carried_loop()
    sent = asyncio.Event()

    async def talks(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(1)
        writer.write(b"a" * 10_000)
        await writer.drain()
        sent.set()
        await reader.read()

    async with tcp_server(talks) as port:
        probe = Probe()
        transport = await start(port, probe)
        transport.pause_reading()
        assert not transport.is_reading()
        transport.write(b"!")
        await sent.wait()
        await asyncio.sleep(0.05 * TIMEOUT)
        assert probe.received == b""
        transport.resume_reading()
        while len(probe.received) < 10_000:
            await probe.data_arrived.wait()
            probe.data_arrived.clear()
        transport.close()
        await probe.lost


async def test_protocol_error_is_reported_and_closes() -> None:
    """What the protocol raises from buffer_updated goes to the loop's exception handler,
    and the transport is closed with that exception."""
    on_carried_loop()
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))

    async def greets(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hi")
        await reader.read()

    try:
        async with tcp_server(greets) as port:
            probe = Probe()
            probe.raise_on_data = True
            transport = await start(port, probe)
            exc = await asyncio.wait_for(probe.lost, 5 * TIMEOUT)
    finally:
        loop.set_exception_handler(None)
    assert isinstance(exc, RuntimeError)
    assert [context["message"] for context in reported] == ["protocol.buffer_updated() failed"]
    assert reported[0]["transport"] is transport


async def test_write_buffer_limits_are_checked() -> None:
    """Bad limits raise ValueError; the defaults are asyncio's (64 KiB, a quarter of it)."""
    on_carried_loop()

    async def idle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with tcp_server(idle) as port:
        probe = Probe()
        transport = await start(port, probe)
        assert transport.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        with pytest.raises(ValueError, match="must be >="):
            transport.set_write_buffer_limits(high=1, low=2)
        transport.set_write_buffer_limits(low=100)
        assert transport.get_write_buffer_limits() == (100, 400)
        with pytest.raises(TypeError):
            transport.set_protocol(asyncio.Protocol())  # type: ignore[arg-type]
        transport.close()
        await probe.lost


def socket_call_modules() -> list[ModuleType]:
    """The socket transport's system calls: socket_calls, and its compiled twin _socket
    where it is built and not refused (WSAPI_PURE_PYTHON)."""
    found = [socket_calls]
    if importlib.util.find_spec("wsapi._socket") is not None and not _build.PURE_PYTHON:
        found.append(importlib.import_module("wsapi._socket"))
    return found


@pytest.mark.parametrize("calls", socket_call_modules(), ids=lambda module: module.__name__)
def test_socket_calls_send_and_read_a_non_blocking_socket(calls: ModuleType) -> None:
    """send and recv_into (Python and compiled): the bytes taken and read; -1 from a read of
    nothing yet; BlockingIOError from a send to a full socket; 0 at the end of the stream;
    the peer's reset as the matching OSError."""
    send, recv_into = calls.send, calls.recv_into
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        buffer = bytearray(16)
        assert recv_into(ours.fileno(), buffer) == -1
        assert send(ours.fileno(), b"hello") == 5
        assert theirs.recv(16) == b"hello"
        theirs.send(b"world")
        assert recv_into(ours.fileno(), memoryview(buffer)) == 5
        assert buffer[:5] == b"world"
        chunk = memoryview(b"x" * 65536)
        for _ in range(1000):  # (A socket buffer holds a few MB at most.)
            try:
                send(ours.fileno(), chunk)
            except BlockingIOError:
                break
        else:
            pytest.fail("the socket took 64 MB without blocking")
        theirs.shutdown(socket.SHUT_WR)
        assert recv_into(ours.fileno(), buffer) == 0
    ours, theirs = socket.socketpair()
    with ours:
        ours.setblocking(False)
        theirs.close()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            send(ours.fileno(), b"late")


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX peek")
@pytest.mark.parametrize("calls", socket_call_modules(), ids=lambda module: module.__name__)
def test_stream_ended_peeks_for_the_end_of_stream(calls: ModuleType) -> None:
    """stream_ended (Python and compiled): true only when the peer's end of stream is next
    in the socket; it reads nothing (the data stays for the transport)."""
    stream_ended = calls.stream_ended
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        assert not stream_ended(ours.fileno())  # Nothing yet.
        theirs.sendall(b"close frame")
        theirs.shutdown(socket.SHUT_WR)
        assert not stream_ended(ours.fileno())  # Data first, then the end.
        assert ours.recv(100) == b"close frame"  # The peek took nothing.
        assert stream_ended(ours.fileno())
        assert stream_ended(ours.fileno())  # Still there: a peek.
        assert ours.fileno() >= 0  # The socket is still open.
        closed = theirs.detach()
        os.close(closed)
        assert not stream_ended(closed)  # (A closed descriptor: no end of stream seen.)
    assert not stream_ended(-1)


@pytest.mark.parametrize("calls", socket_call_modules(), ids=lambda module: module.__name__)
def test_timer_fd_expires_at_its_time_once(calls: ModuleType) -> None:
    """timer_fd_open, timer_fd_arm, timer_fd_expired (Python and compiled): a disarmed
    descriptor has not expired; armed for a time, it expires then, once (each expiry is
    read once); armed for a time past, at once. -1 where there is no timer descriptor."""
    fd = calls.timer_fd_open()
    if fd < 0:
        assert calls is socket_calls
        assert not hasattr(os, "timerfd_create")
        pytest.skip("no timer descriptor here (Python before 3.13, pure Python)")
    try:
        assert not calls.timer_fd_expired(fd)
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        start = time.monotonic()
        calls.timer_fd_arm(fd, start + 0.03)
        assert poller.poll(0) == []
        assert poller.poll(5000) != []
        assert time.monotonic() - start >= 0.03 - 1e-3
        assert calls.timer_fd_expired(fd)
        assert not calls.timer_fd_expired(fd)  # Read: it waits for the next arming.
        calls.timer_fd_arm(fd, start - 1.0)  # A time past.
        assert poller.poll(1000) != []
        assert calls.timer_fd_expired(fd)
    finally:
        os.close(fd)
    with pytest.raises(OSError, match="Bad file descriptor") as closed:
        calls.timer_fd_arm(fd, time.monotonic() + 1.0)  # A closed descriptor.
    assert closed.value.errno == errno.EBADF
