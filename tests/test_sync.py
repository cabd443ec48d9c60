"""wsapi.sync: blocking connections on the one background loop, against real servers (the
websockets library's server in a thread, raw blocking servers): echo, timeouts, the close
in every form, several threads at once, Ctrl-C, interpreter exit, backpressure both ways."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed as ServerSideClosed
from websockets.sync.server import ServerConnection, serve

import wsapi.sync
from support import SHORT, TIMEOUT, WAIT, agent, blocking_server, server_frame
from wsapi import DOMException, WebSocketError
from wsapi.sync import ConnectionClosed, connect

WHATWG = agent("whatwg")


@contextmanager
def server(handler: Callable[[ServerConnection], None], **options: Any) -> Iterator[str]:
    """A websockets server in a thread of its own; yields its ws:// URL."""
    with serve(handler, "127.0.0.1", 0, **options) as running:
        thread = threading.Thread(target=running.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{running.socket.getsockname()[1]}/"
        finally:
            running.shutdown()
            thread.join(WAIT)


def echo(connection: ServerConnection) -> None:
    """Echo every message until the connection closes (an echo the client's close
    overtook ends it too)."""
    with contextlib.suppress(ServerSideClosed):
        for message in connection:
            connection.send(message)


def test_echo_protocol_and_extensions() -> None:
    """send() and recv() round-trip text as str and binary as bytes; protocol and
    extensions are the server's choice; leaving the block closes with 1000."""
    codes: list[int | None] = []
    handled = threading.Event()

    def handler(connection: ServerConnection) -> None:
        echo(connection)
        codes.append(connection.close_code)
        handled.set()

    with server(handler, subprotocols=["chat"]) as url:
        with connect(url, ["chat"], agent=WHATWG) as conn:
            assert conn.protocol == "chat"
            assert conn.extensions.startswith("permessage-deflate")
            conn.send("hello")
            assert conn.recv(timeout=WAIT) == "hello"
            conn.send(b"\x00\x01")
            assert conn.recv(timeout=WAIT) == b"\x00\x01"
            conn.send(memoryview(bytearray(b"view")))
            assert conn.recv(timeout=WAIT) == b"view"
        with pytest.raises(ConnectionClosed) as closed:
            conn.recv()
        assert (closed.value.code, closed.value.wasClean) == (1000, True)
        with pytest.raises(ConnectionClosed):
            conn.send("late")
        # (The server's handler sees the close in its own thread, maybe after this one.)
        assert handled.wait(WAIT)
    assert codes == [1000]


def test_recv_timeout_leaves_the_connection_open() -> None:
    """recv(timeout=...) raises TimeoutError after about that long and the connection goes
    on working."""
    with server(echo) as url, connect(url, agent=WHATWG) as conn:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            conn.recv(timeout=0.3)
        assert 0.3 <= time.monotonic() - started <= 0.3 + SHORT
        conn.send("still")
        assert conn.recv(timeout=WAIT) == "still"


def test_iteration_ends_at_a_clean_close() -> None:
    """Iteration yields each message and ends at the server's clean close; recv() then
    raises ConnectionClosed with the server's code and reason."""

    def handler(connection: ServerConnection) -> None:
        connection.send("a")
        connection.send(b"b")
        connection.close(4000, "bye")

    with server(handler) as url, connect(url, agent=WHATWG) as conn:
        assert list(conn) == ["a", b"b"]
        with pytest.raises(ConnectionClosed) as closed:
            conn.recv()
        assert (closed.value.code, closed.value.reason, closed.value.wasClean) == (
            4000,
            "bye",
            True,
        )


def test_connection_closed_after_an_unclean_close() -> None:
    """A lost connection: the message before it is read, then iteration raises
    ConnectionClosed (1006, not clean, failure connection_lost)."""

    def answer(connection: socket.socket) -> None:
        connection.sendall(server_frame(0x1, b"only"))
        connection.shutdown(socket.SHUT_WR)

    with blocking_server(answer) as url:
        conn = connect(url, agent=WHATWG)
        received: list[str | bytes] = []
        with pytest.raises(ConnectionClosed) as closed:
            received.extend(conn)
        assert received == ["only"]
        assert (closed.value.code, closed.value.wasClean) == (1006, False)
        assert closed.value.failure is not None
        assert closed.value.failure.kind == "connection_lost"


def test_opening_failure_raises_websocket_error() -> None:
    """A refused connection raises WebSocketError with the failure."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    with pytest.raises(WebSocketError) as info:
        connect(f"ws://127.0.0.1:{port}/", agent=WHATWG)
    assert info.value.failure.kind == "refused"


def test_close_returns_the_close_and_checks_its_arguments() -> None:
    """close(code, reason) waits and returns the close; a bad code raises the DOMException
    in the calling thread and the connection goes on."""
    with server(echo) as url:
        conn = connect(url, agent=WHATWG)
        with pytest.raises(DOMException) as info:
            conn.close(1001)
        assert info.value.name == "InvalidAccessError"
        conn.send("on")
        assert conn.recv(timeout=WAIT) == "on"
        closed = conn.close(4321, "done")
        assert (closed.code, closed.reason, closed.wasClean) == (4321, "done", True)


def test_several_threads_send_while_one_receives() -> None:
    """Four threads send 200 messages each while one thread receives: every message comes
    back, each thread's in its order."""
    with server(echo) as url, connect(url, agent=WHATWG) as conn:
        received: list[str | bytes] = []

        def receive() -> None:
            for _ in range(800):
                received.append(conn.recv(timeout=WAIT))

        def send(name: int) -> None:
            for n in range(200):
                conn.send(f"{name}:{n}")

        threads = [threading.Thread(target=send, args=(name,)) for name in range(4)]
        receiver = threading.Thread(target=receive)
        for thread in [receiver, *threads]:
            thread.start()
        for thread in [*threads, receiver]:
            thread.join(WAIT)
        assert len(received) == 800
        for name in range(4):
            mine = [m for m in received if isinstance(m, str) and m.startswith(f"{name}:")]
            assert mine == [f"{name}:{n}" for n in range(200)]


def test_two_threads_receive_while_two_send() -> None:
    """Two threads in recv() at once (one waits on the socket, the other for what it
    reads) while two threads send 1,000 messages each: every message comes back once."""
    with server(echo, compression=None) as url, connect(url, agent=WHATWG) as conn:
        received: list[str | bytes] = []
        failures: list[BaseException] = []

        def receive() -> None:
            try:
                for _ in range(1000):
                    received.append(conn.recv(timeout=WAIT))
            except BaseException as exc:  # (Reported below, in the test's thread.)
                failures.append(exc)

        def send(name: int) -> None:
            for n in range(1000):
                conn.send(f"{name}:{n}")
                if n % 100 == 99:
                    time.sleep(0.01)  # (The receivers catch up and wait on the socket.)

        threads = [threading.Thread(target=receive) for _ in range(2)]
        threads += [threading.Thread(target=send, args=(name,)) for name in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert failures == []
        assert sorted(received) == sorted(f"{name}:{n}" for name in range(2) for n in range(1000))


def test_close_from_another_thread_wakes_recv() -> None:
    """close() from another thread wakes a recv() blocked in its own thread, which raises
    ConnectionClosed (the clean close)."""
    with server(echo) as url:
        conn = connect(url, agent=WHATWG)
        outcome: list[BaseException] = []
        woke = threading.Event()

        def receive() -> None:
            try:
                conn.recv()
            except ConnectionClosed as closed:
                outcome.append(closed)
            woke.set()

        thread = threading.Thread(target=receive)
        thread.start()
        time.sleep(0.2)
        assert not woke.is_set()
        started = time.monotonic()
        conn.close(1000)
        assert woke.wait(SHORT)
        assert time.monotonic() - started < SHORT
        thread.join(WAIT)
        assert isinstance(outcome[0], ConnectionClosed)
        assert (outcome[0].code, outcome[0].wasClean) == (1000, True)


def test_send_while_another_thread_reads_the_socket() -> None:
    """While one thread waits on the socket in recv() (reading it in its own thread), sends
    from another thread go out at once: 50 round trips take far less than 50 polls."""
    with server(echo) as url, connect(url, agent=WHATWG) as conn:
        conn.send("first")
        assert conn.recv(timeout=WAIT) == "first"  # (Reading is the program's now.)
        received: list[str | bytes] = []

        def receive() -> None:
            for _ in range(50):
                received.append(conn.recv(timeout=WAIT))

        thread = threading.Thread(target=receive)
        thread.start()
        started = time.monotonic()
        for n in range(50):
            deadline = time.monotonic() + WAIT
            while len(received) < n and time.monotonic() < deadline:
                time.sleep(0.001)  # The receiving thread is back in recv(), on the socket.
            conn.send(f"m{n}")
        thread.join(WAIT)
        took = time.monotonic() - started
        assert received == [f"m{n}" for n in range(50)]
        assert took < 50 * wsapi.sync.WAIT_SLICE / 4, took


def test_text_with_a_lone_surrogate_goes_out_with_a_replacement() -> None:
    """send() of a str with a lone surrogate sends U+FFFD in its place (a USVString), as
    the browser API's send() does."""
    with server(echo) as url, connect(url, agent=WHATWG) as conn:
        conn.send("a\ud800b")
        assert conn.recv(timeout=WAIT) == "a\ufffdb"
        conn.send("\U0001f600")  # (A pair, not lone: kept.)
        assert conn.recv(timeout=WAIT) == "\U0001f600"


def switches(thread: threading.Thread) -> int:
    """The context switches ``thread`` has made so far, from Linux's /proc."""
    with open(f"/proc/self/task/{thread.native_id}/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return int(fields["voluntary_ctxt_switches"]) + int(fields["nonvoluntary_ctxt_switches"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts from Linux's /proc")
def test_round_trips_leave_the_loop_thread_asleep() -> None:
    """On plain TCP a round trip runs in the calling thread alone: 1,000 of them wake the
    loop's thread only for its reclaim timer (each RECLAIM_AFTER), not per message."""
    with server(echo, compression=None) as url, connect(url, agent=WHATWG) as conn:
        conn.send("warm-up")
        assert conn.recv(timeout=WAIT) == "warm-up"
        (loop_thread,) = [t for t in threading.enumerate() if t.name == "wsapi.sync"]
        before = switches(loop_thread)
        started = time.monotonic()
        for n in range(1000):
            conn.send(str(n))
            assert conn.recv(timeout=WAIT) == str(n)
        ticks = (time.monotonic() - started) / wsapi.sync.RECLAIM_AFTER
        woke = switches(loop_thread) - before
    # Each reclaim look may switch a few times (its poll, the GIL, the loop lock).
    assert woke <= 10 + 6 * ticks, (woke, ticks)


def test_an_answer_that_comes_late_costs_one_read() -> None:
    """Once a read found nothing yet, recv() polls the socket before it reads: against a
    server that answers each message after 5 ms, a round trip reads the socket once
    (and once per POLL_FIRST_RUN again first, to see whether answers come sooner)."""

    def late_echo(connection: ServerConnection) -> None:
        with contextlib.suppress(ServerSideClosed):
            for message in connection:
                time.sleep(0.005)
                connection.send(message)

    with server(late_echo, compression=None) as url, connect(url, agent=WHATWG) as conn:
        conn.send("warm-up")
        assert conn.recv(timeout=WAIT) == "warm-up"
        reads = 0
        read_ready = conn._read_ready
        assert read_ready is not None

        def counted() -> None:
            nonlocal reads
            reads += 1
            read_ready()

        conn._read_ready = counted
        for n in range(64):
            conn.send(str(n))
            assert conn.recv(timeout=WAIT) == str(n)
    assert 64 <= reads <= 64 + 64 // wsapi.sync.POLL_FIRST_RUN + 2, reads


def test_ctrl_c_as_a_read_delivers_loses_no_message() -> None:
    """Ctrl-C that lands as recv()'s own read of the socket hands it a message: recv()
    raises KeyboardInterrupt, and the next recv() returns that message, then the next."""
    with server(echo, compression=None) as url, connect(url, agent=WHATWG) as conn:
        conn.send("warm-up")
        assert conn.recv(timeout=WAIT) == "warm-up"
        read_ready = conn._read_ready
        transport = conn._transport
        assert read_ready is not None
        assert transport is not None

        def interrupted() -> None:
            read_ready()
            if conn._inbox or conn._caught is not None:
                raise KeyboardInterrupt

        interruptions = 0
        for n in range(5):  # (Should the loop take the socket back meanwhile: again.)
            conn.send(f"m{n}")
            select.select([transport._fd], [], [], WAIT)  # The echo waits in the socket.
            conn._read_ready = interrupted
            try:
                received = conn.recv(timeout=WAIT)
            except KeyboardInterrupt:
                interruptions += 1
                conn._read_ready = read_ready
                conn.send(f"after m{n}")
                select.select([transport._fd], [], [], WAIT)
                received = conn.recv(timeout=WAIT)
                assert conn.recv(timeout=WAIT) == f"after m{n}"
            conn._read_ready = read_ready
            assert received == f"m{n}"
    assert interruptions > 0


def test_a_ping_is_answered_while_no_thread_reads() -> None:
    """Once no thread is in recv(), the loop reads the socket again: a Ping the server
    sends then is answered within a few RECLAIM_AFTER, with nobody calling recv()."""
    read_once = threading.Event()
    answered: list[bool] = []

    def handler(connection: ServerConnection) -> None:
        connection.send(connection.recv())
        read_once.wait(WAIT)
        time.sleep(0.1)  # The client is not in recv() any more.
        pong = connection.ping()
        started = time.monotonic()
        answered.append(pong.wait(SHORT))
        answered.append(time.monotonic() - started < 4 * wsapi.sync.RECLAIM_AFTER + SHORT / 3)
        with contextlib.suppress(ServerSideClosed):
            connection.recv()

    with server(handler) as url, connect(url, agent=WHATWG) as conn:
        conn.send("hello")
        assert conn.recv(timeout=WAIT) == "hello"  # Read in this thread.
        read_once.set()
        deadline = time.monotonic() + WAIT
        while len(answered) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert answered == [True, True]


FALLBACK = """
import sys, threading
import wsapi.sync
from wsapi import UserAgent

wsapi.sync._unlocking_selector = lambda lock: None  # As where there is no poll (Windows).
conn = wsapi.sync.connect(sys.argv[1], agent=UserAgent(proxy=None))
assert conn._loop_lock is None
for n in range(3):
    conn.send(f"m{n}")
    print(conn.recv(timeout=5), flush=True)
woke = []

def receive():
    try:
        conn.recv(timeout=5)
    except wsapi.sync.ConnectionClosed as closed:
        woke.append(closed.code)

thread = threading.Thread(target=receive)
thread.start()
conn.close(4000)
thread.join(5)
print(woke, flush=True)
"""


def test_the_loop_does_the_io_where_threads_cannot() -> None:
    """Where the loop's selector cannot let go of the loop lock, the loop's thread does all
    the I/O: send and recv through it, and close() from one thread wakes a recv()."""
    with server(echo) as url:
        result = run_program(FALLBACK, url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["m0", "m1", "m2", "[4000]"]
    assert result.stderr == ""


def test_send_blocks_above_the_high_water_mark() -> None:
    """A server that stops reading: a sending thread ends up blocked in send(), having
    handed over a bounded amount (the mark, the stream's, the kernel's buffers)."""
    release = threading.Event()

    def answer(connection: socket.socket) -> None:
        release.wait(WAIT)  # Reads nothing until the test is done.

    with blocking_server(answer) as url:
        # The server never answers the Close: the close ends at close_timeout.
        conn = connect(url, agent=agent("whatwg", close_timeout=0.2))
        sent = 0
        message = b"x" * 65536

        def flood() -> None:
            nonlocal sent
            try:
                while sent < 256 * 1024 * 1024:
                    conn.send(message)
                    sent += len(message)
            except ConnectionClosed:
                pass

        thread = threading.Thread(target=flood, daemon=True)
        thread.start()
        time.sleep(1.0 * TIMEOUT)
        first = sent
        time.sleep(0.5)
        assert thread.is_alive()
        assert sent == first  # Blocked.
        assert sent < 64 * 1024 * 1024, sent
        release.set()
        conn.close()
        thread.join(WAIT)


def test_unread_messages_are_bounded() -> None:
    """A program that does not read holds the server back: the server's sends block, so it
    has sent far less than it would unthrottled."""
    sent = 0
    message = b"m" * 65536

    def flood(connection: ServerConnection) -> None:
        nonlocal sent
        try:
            while True:
                connection.send(message)
                sent += 1
        except ServerSideClosed:
            pass  # The client closed: done.

    with (
        server(flood, max_size=None, compression=None) as url,
        connect(url, agent=WHATWG) as conn,
    ):
        time.sleep(1.5 * TIMEOUT)
        assert sent * len(message) < 24 * 1024 * 1024, sent
        assert conn.recv(timeout=WAIT) == message


def test_one_background_thread_for_many_connections() -> None:
    """100 blocking connections open at once run on the one wsapi.sync thread."""
    with server(echo) as url:
        conns = [connect(url, agent=WHATWG) for _ in range(100)]
        names = [thread.name for thread in threading.enumerate()]
        assert names.count("wsapi.sync") == 1
        for n, conn in enumerate(conns):
            conn.send(str(n))
        assert [conn.recv(timeout=WAIT) for conn in conns] == [str(n) for n in range(100)]
        for conn in conns:
            conn.close()


async def test_connect_inside_a_running_loop_raises() -> None:
    """connect() from a thread running an event loop raises RuntimeError naming
    wsapi.connect."""
    with pytest.raises(RuntimeError, match=r"wsapi\.connect"):
        connect("ws://127.0.0.1:1/")
    await asyncio.sleep(0)


def test_send_refuses_other_types() -> None:
    """send() of anything but str or bytes-like raises TypeError."""
    with (
        server(echo) as url,
        connect(url, agent=WHATWG) as conn,
        pytest.raises(TypeError, match="send"),
    ):
        conn.send(42)  # type: ignore[arg-type]


def run_program(program: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``program`` with this interpreter (and this environment: the same build)."""
    return subprocess.run(
        [sys.executable, "-c", program, *args],
        capture_output=True,
        text=True,
        timeout=WAIT,
        env=dict(os.environ),
        check=False,
    )


CTRL_C = """
import os, signal, sys, threading, time
from wsapi import UserAgent
from wsapi.sync import connect

conn = connect(sys.argv[1], agent=UserAgent(proxy=None))
threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
started = time.monotonic()
try:
    conn.recv()
except KeyboardInterrupt:
    print("interrupted after", time.monotonic() - started, flush=True)
conn.send("still open")
print(conn.recv(timeout=5), flush=True)
conn.close()
"""


def test_ctrl_c_interrupts_recv() -> None:
    """SIGINT while the main thread is blocked in recv() raises KeyboardInterrupt there
    promptly; the connection stays usable."""
    with server(echo) as url:
        result = run_program(CTRL_C, url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("interrupted after"), result.stdout
    assert 0.5 <= float(lines[0].split()[-1]) <= 0.5 + SHORT
    assert lines[1] == "still open"
    assert result.stderr == ""


EXIT_OPEN = """
import sys
from wsapi import UserAgent
from wsapi.sync import connect

conns = [connect(sys.argv[1], agent=UserAgent(proxy=None)) for _ in range(3)]
for conn in conns:
    conn.send("hi")
print(conns[0].recv(timeout=5), flush=True)
"""


def test_interpreter_exit_closes_open_connections_with_1001() -> None:
    """A program that ends with blocking connections open exits at once, without a
    traceback, and the server sees each close with 1001."""
    codes: list[int | None] = []

    def handler(connection: ServerConnection) -> None:
        echo(connection)
        codes.append(connection.close_code)

    with server(handler) as url:
        started = time.monotonic()
        result = run_program(EXIT_OPEN, url)
        took = time.monotonic() - started
        deadline = time.monotonic() + WAIT
        while len(codes) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi\n"
    assert result.stderr == ""
    assert codes == [1001, 1001, 1001]
    assert took < wsapi.sync.EXIT_CLOSE_TIMEOUT + SHORT
