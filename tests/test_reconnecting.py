"""ReconnectingWebSocket against real servers: a server killed and restarted on the same
port, refusals (503, 403, 429 with Retry-After), close codes that reconnect and ones that do
not, the program's own close(), reconnect(), sends queued between connections, and the
WebSocket interface between connections; in both standards."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.sync.server import ServerConnection as SyncServerConnection
from websockets.sync.server import serve as sync_serve
from websockets.typing import Subprotocol

from servers import echo
from support import (
    TIMEOUT,
    WAIT,
    Reader,
    Standard,
    Writer,
    accept,
    agent,
    answer_close,
    both_standards,
    capture_reports,
    lookup_done_at_once,
    raw_server,
    read_client_frame,
    read_request,
    refused_url,
    server_frame,
    wait_until,
)
from wsapi import (
    CloseEvent,
    ConnectionFailure,
    Event,
    MessageEvent,
    ReconnectingWebSocket,
    UserAgent,
    WebSocket,
    WebSocketError,
)
from wsapi.websocket import MAKE_DISAPPEAR_TIMEOUT

FAST: dict[str, Any] = {"min_delay": 0.05, "jitter": 0.0}
"""Options for tests that do not look at the delays: reconnect at once, without jitter."""

SLACK = 0.5 * TIMEOUT
"""How much later than asked a reconnection may come (a loaded machine's scheduling)."""


class Recorder:
    """Each event of a ReconnectingWebSocket with the loop time, readyState and details."""

    def __init__(self, ws: ReconnectingWebSocket) -> None:
        self.ws = ws
        self.entries: list[tuple[str, int, object]] = []
        self.times: list[tuple[str, float]] = []
        self.targets: list[object] = []
        self.failures: list[ConnectionFailure | None] = []
        self.changed = asyncio.Event()
        for type_ in ("open", "message", "error", "close"):
            ws.addEventListener(type_, self.record)

    def record(self, event: Event) -> None:
        detail: object = None
        if isinstance(event, MessageEvent):
            detail = event.data
        elif isinstance(event, CloseEvent):
            detail = (event.wasClean, event.code)
            self.failures.append(self.ws.failure)
        self.entries.append((event.type, self.ws.readyState, detail))
        self.times.append((event.type, asyncio.get_running_loop().time()))
        self.targets.append(event.target)
        self.changed.set()

    def types(self) -> list[str]:
        return [type_ for type_, _, _ in self.entries]

    def count(self, type_: str) -> int:
        return self.types().count(type_)

    def at(self, type_: str) -> list[float]:
        return [when for name, when in self.times if name == type_]

    async def wait_for(self, type_: str, count: int, within: float = WAIT) -> None:
        await wait_until(lambda: self.count(type_) >= count, within)


async def ended(ws: ReconnectingWebSocket) -> CloseEvent:
    """The last close event, waited for with a bound."""
    return await asyncio.wait_for(asyncio.shield(ws.closed), WAIT)


async def opened(ws: ReconnectingWebSocket) -> None:
    await asyncio.wait_for(asyncio.shield(ws.opened), WAIT)


async def stop(ws: ReconnectingWebSocket) -> CloseEvent:
    ws.close()
    return await ended(ws)


@asynccontextmanager
async def echo_on(port: int = 0, handler: Any = echo) -> AsyncIterator[int]:
    """A websockets echo server on 127.0.0.1:port (0: a free one); yields the port."""
    async with serve(handler, "127.0.0.1", port) as server:
        yield next(iter(server.sockets)).getsockname()[1]


def answering(statuses: list[str], headers: str = "") -> Callable[[Reader, Writer], Any]:
    """A raw handler that refuses with each of ``statuses`` in turn (with ``headers``), then
    accepts, echoes text messages and answers the Close."""

    async def handler(reader: Reader, writer: Writer) -> None:
        if statuses:
            await read_request(reader)
            status = statuses.pop(0)
            writer.write(f"HTTP/1.1 {status}\r\n{headers}Content-Length: 0\r\n\r\n".encode())
            await writer.drain()
            return
        await accept(reader, writer)
        while True:
            opcode, payload = await read_client_frame(reader)
            if opcode == 0x8:
                writer.write(server_frame(0x8, payload))
                await writer.drain()
                return
            writer.write(server_frame(opcode, payload))

    return handler


# --- the server goes away and comes back -------------------------------------------------------


SERVER_PROGRAM = """
import asyncio, sys
from websockets.asyncio.server import serve

async def echo(connection):
    async for message in connection:
        await connection.send(message)

async def main():
    async with serve(echo, "127.0.0.1", int(sys.argv[1])) as server:
        print(next(iter(server.sockets)).getsockname()[1], flush=True)
        await asyncio.Future()

asyncio.run(main())
"""
"""An echo server in a process of its own, which a test kills; prints its port."""


@asynccontextmanager
async def process_server(port: int = 0) -> AsyncIterator[int]:
    """The echo server of SERVER_PROGRAM on ``port`` (0: a free one), killed (SIGKILL) on
    exit; yields its port."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER_PROGRAM, str(port), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), WAIT)
        assert line.strip(), "the server process did not start"
        yield int(line)
    finally:
        process.kill()
        await process.wait()


@both_standards
async def test_server_killed_and_restarted_on_the_same_port(standard: Standard) -> None:
    """A server process killed and restarted on the same port: the client sees error and
    close 1006, the waits between refused attempts grow by grow_factor up to max_delay,
    and it opens again once the server is back; messages flow on the new connection."""
    async with process_server() as port:
        url = f"ws://127.0.0.1:{port}/"
        ws = ReconnectingWebSocket(
            url, agent=agent(standard), min_delay=0.2, grow_factor=2.0, max_delay=0.8, jitter=0
        )
        log = Recorder(ws)
        await opened(ws)
        negotiated = (ws.protocol, ws.extensions)
    # Killed: attempts are refused, the waits growing.
    await log.wait_for("close", 5)
    closes = log.at("close")
    gaps = [later - earlier for earlier, later in itertools.pairwise(closes)]
    for gap, expected in zip(gaps, [0.2, 0.4, 0.8, 0.8], strict=True):
        assert expected * 0.9 <= gap <= expected + SLACK, gaps
    assert ws.readyState == WebSocket.CONNECTING
    assert ws.failure is not None
    assert ws.failure.kind == "refused"
    async with process_server(port):
        await log.wait_for("open", 2)
        assert ws.retryCount >= 4
        ws.send("back")
        await log.wait_for("message", 1)
        assert (ws.protocol, ws.extensions) == negotiated
        await stop(ws)
    assert log.entries[:5] == [
        ("open", 1, None),
        ("error", 3, None),
        ("close", 3, (False, 1006)),
        ("error", 3, None),
        ("close", 3, (False, 1006)),
    ]
    assert log.entries[-3:] == [
        ("open", 1, None),
        ("message", 1, "back"),
        ("close", 3, (True, 1005)),
    ]
    assert all(target is ws for target in log.targets)


async def test_min_uptime_resets_the_backoff() -> None:
    """A connection that stayed open min_uptime resets the backoff: after it drops, the
    first wait is min_delay again and retryCount starts from 1."""
    async with echo_on() as port:
        url = f"ws://127.0.0.1:{port}/"
        ws = ReconnectingWebSocket(
            url, agent=agent(), min_delay=0.1, grow_factor=3.0, jitter=0, min_uptime=0.3
        )
        log = Recorder(ws)
        await opened(ws)
    await log.wait_for("close", 3)  # 1001, then two refusals: waits 0.1 and 0.3.
    async with echo_on(port):
        await log.wait_for("open", 2)
        assert ws.retryCount >= 2
        await asyncio.sleep(0.3 + SLACK)  # Up min_uptime: the backoff starts over.
        assert ws.retryCount == 0
        dropped = len(log.at("close"))
    await log.wait_for("close", dropped + 2)
    closes = log.at("close")
    assert 0.09 <= closes[dropped + 1] - closes[dropped] <= 0.1 + SLACK
    assert ws.retryCount == 2  # The drop's attempt, then the refusal's (without the reset: 4).
    await stop(ws)


async def test_short_connections_do_not_reset_the_backoff() -> None:
    """A server that accepts then closes at once (1012) sees the waits grow: a connection
    that lived less than min_uptime does not reset the backoff."""

    async def restart_at_once(connection: ServerConnection) -> None:
        await connection.close(1012, "restart")

    async with echo_on(handler=restart_at_once) as port:
        ws = ReconnectingWebSocket(
            f"ws://127.0.0.1:{port}/", agent=agent(), min_delay=0.1, grow_factor=2.0, jitter=0
        )
        log = Recorder(ws)
        await log.wait_for("close", 4)
        await stop(ws)
    opens, closes = log.at("open"), log.at("close")
    waits = [opens[n + 1] - closes[n] for n in range(3)]
    for wait, expected in zip(waits, [0.1, 0.2, 0.4], strict=True):
        assert expected * 0.9 <= wait <= expected + SLACK, waits
    assert [detail for type_, _, detail in log.entries if type_ == "close"][:4] == [
        (True, 1012)
    ] * 4


async def test_connection_lost_reconnects() -> None:
    """TCP dropped without a Close (error, close 1006): the next connection comes."""
    connections: list[int] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        connections.append(1)
        await accept(reader, writer)
        if len(connections) == 1:
            return  # Dropped.
        await answer_close(reader, writer)

    async with raw_server(handler) as url:
        ws = ReconnectingWebSocket(url, agent=agent(), **FAST)
        log = Recorder(ws)
        await log.wait_for("open", 2)
        assert ws.retryCount == 1
        await stop(ws)
    assert log.types() == ["open", "error", "close", "open", "close"]
    assert log.entries[2] == ("close", 3, (False, 1006))


# --- refusals -------------------------------------------------------------------------------


@both_standards
async def test_503_then_101(standard: Standard) -> None:
    """A 503 fails the attempt (error, close 1006) and the next attempt opens."""
    async with raw_server(answering(["503 Service Unavailable"])) as url:
        ws = ReconnectingWebSocket(url, agent=agent(standard), **FAST)
        log = Recorder(ws)
        await opened(ws)
        assert ws.retryCount == 1
        ws.send("hello")
        await log.wait_for("message", 1)
        await stop(ws)
    assert log.entries == [
        ("error", 3, None),
        ("close", 3, (False, 1006)),
        ("open", 1, None),
        ("message", 1, "hello"),
        ("close", 3, (True, 1005)),
    ]


@both_standards
async def test_403_does_not_retry(standard: Standard) -> None:
    """A 403 ends it: one attempt, error and close, closed resolves, opened raises with the
    failure; nothing is left waiting."""
    async with raw_server(answering(["403 Forbidden"])) as url:
        ws = ReconnectingWebSocket(url, agent=agent(standard), **FAST)
        log = Recorder(ws)
        event = await ended(ws)
        await asyncio.sleep(0.2)  # No second attempt comes.
    assert log.entries == [("error", 3, None), ("close", 3, (False, 1006))]
    assert event.code == 1006
    assert ws.readyState == WebSocket.CLOSED
    assert ws.failure is not None
    assert ws.failure.status_code == 403
    with pytest.raises(WebSocketError) as info:
        await opened(ws)
    assert info.value.failure.status_code == 403
    assert ws._timer is None


async def test_429_waits_for_retry_after() -> None:
    """A 429 with Retry-After: 1 waits at least a second before the next attempt, though
    min_delay is much shorter."""
    async with raw_server(answering(["429 Too Many Requests"], "Retry-After: 1\r\n")) as url:
        ws = ReconnectingWebSocket(url, agent=agent(), **FAST)
        log = Recorder(ws)
        await opened(ws)
        waited = log.at("open")[0] - log.at("close")[0]
        assert 1.0 <= waited <= 1.0 + SLACK
        await stop(ws)


async def test_connection_timeout_fails_the_attempt_and_retries() -> None:
    """An attempt whose handshake is never answered fails after connection_timeout
    ("timeout") and the next attempt starts."""
    attempts: list[float] = []

    async def silent(reader: Reader, writer: Writer) -> None:
        attempts.append(asyncio.get_running_loop().time())
        await read_request(reader)
        await reader.read()  # Until the client gives up.

    async with raw_server(silent, cut_off=True) as url:
        ws = ReconnectingWebSocket(url, agent=agent(), connection_timeout=0.2, **FAST)
        log = Recorder(ws)
        await wait_until(lambda: len(attempts) >= 2)
        failure = log.failures[0]
        assert failure is not None
        assert failure.kind == "timeout"
        assert 0.18 <= log.at("close")[0] - attempts[0] <= 0.2 + SLACK
        await stop(ws)


async def test_max_retries_gives_up() -> None:
    """With max_retries=2 against a refusing address: three attempts, then it ends."""
    ws = ReconnectingWebSocket(await refused_url(), agent=agent(), max_retries=2, **FAST)
    log = Recorder(ws)
    await ended(ws)
    assert log.types() == ["error", "close"] * 3
    assert ws.retryCount == 2
    assert ws.readyState == WebSocket.CLOSED
    with pytest.raises(WebSocketError):
        await opened(ws)


# --- close codes ------------------------------------------------------------------------------


def closing_first_with(code: int) -> Callable[[ServerConnection], Any]:
    """A websockets handler: the first connection is closed with ``code``, the next echo."""
    served: list[int] = []

    async def handler(connection: ServerConnection) -> None:
        served.append(code)
        if len(served) == 1:
            await connection.close(code, "bye")
        else:
            await echo(connection)

    return handler


@pytest.mark.parametrize("code", [1001, 1011, 1012, 1013, 1014])
async def test_close_codes_that_reconnect(code: int) -> None:
    """The server's close with 1001, 1011, 1012, 1013 or 1014 reconnects."""
    async with echo_on(handler=closing_first_with(code)) as port:
        ws = ReconnectingWebSocket(f"ws://127.0.0.1:{port}/", agent=agent(), **FAST)
        log = Recorder(ws)
        await log.wait_for("open", 2)
        await stop(ws)
    assert log.entries[:3] == [("open", 1, None), ("close", 3, (True, code)), ("open", 1, None)]


@pytest.mark.parametrize("code", [1000, 1003, 1008, 4000])
async def test_close_codes_that_do_not_reconnect(code: int) -> None:
    """The server's close with 1000, 1003, 1008 or an application code ends it."""
    async with echo_on(handler=closing_first_with(code)) as port:
        ws = ReconnectingWebSocket(f"ws://127.0.0.1:{port}/", agent=agent(), **FAST)
        log = Recorder(ws)
        event = await ended(ws)
        await asyncio.sleep(0.2)
    assert (event.code, event.reason) == (code, "bye")
    assert log.entries == [("open", 1, None), ("close", 3, (True, code))]


async def test_should_reconnect_overrides() -> None:
    """should_reconnect decides instead of the default rule: it gets the close event (or
    the failure) and its False ends the object."""
    seen: list[object] = []

    def decide(ending: object) -> bool:
        seen.append(ending)
        return len(seen) < 2  # Reconnect after 1000 once, then stop.

    async with echo_on(handler=closing_first_with(1000)) as port:
        ws = ReconnectingWebSocket(
            f"ws://127.0.0.1:{port}/", agent=agent(), should_reconnect=decide, **FAST
        )
        log = Recorder(ws)
        await log.wait_for("open", 2)
    await ended(ws)
    assert isinstance(seen[0], CloseEvent)
    assert seen[0].code == 1000
    assert len(seen) == 2


async def test_should_reconnect_that_raises_is_reported_and_stops() -> None:
    """A should_reconnect that raises is reported to the loop's exception handler and the
    object stops."""

    def broken(ending: object) -> bool:
        raise RuntimeError("bug")

    reports = capture_reports()
    ws = ReconnectingWebSocket(await refused_url(), agent=agent(), should_reconnect=broken)
    await ended(ws)
    assert len(reports) == 1
    assert isinstance(reports[0]["exception"], RuntimeError)


# --- the program's own close() and reconnect() ------------------------------------------------


@both_standards
async def test_close_while_open_stops(standard: Standard) -> None:
    """The program's close() on an open connection ends it: no reconnection."""
    async with echo_on() as port:
        ws = ReconnectingWebSocket(f"ws://127.0.0.1:{port}/", agent=agent(standard), **FAST)
        log = Recorder(ws)
        await opened(ws)
        ws.close(1000, "done")
        event = await ended(ws)
        await asyncio.sleep(0.2)
    assert (event.code, event.wasClean) == (1000, True)
    assert log.types() == ["open", "close"]


async def test_close_while_waiting_stops() -> None:
    """close() while waiting between connections: CLOSING at once, then close 1006 with no
    error, and no further attempt."""
    ws = ReconnectingWebSocket(await refused_url(), agent=agent(), min_delay=5.0, jitter=0)
    log = Recorder(ws)
    await log.wait_for("close", 1)
    assert ws.readyState == WebSocket.CONNECTING
    ws.close()
    assert ws.readyState == WebSocket.CLOSING
    event = await ended(ws)
    assert log.entries == [
        ("error", 3, None),
        ("close", 3, (False, 1006)),
        ("close", 3, (False, 1006)),
    ]
    assert event is not None
    assert ws.failure is not None
    assert ws.failure.kind == "aborted"
    assert ws._timer is None


async def test_close_while_connecting_stops() -> None:
    """close() during an attempt fails it (as a WebSocket's) and stops."""
    ws = ReconnectingWebSocket(await refused_url(), agent=agent())
    ws.close()
    await ended(ws)
    assert ws.readyState == WebSocket.CLOSED
    assert ws.failure is not None
    assert ws.failure.kind == "aborted"


async def test_close_in_a_close_listener_stops() -> None:
    """close() from a close listener of a connection that would reconnect stops it."""
    ws = ReconnectingWebSocket(await refused_url(), agent=agent(), **FAST)
    ws.onclose = lambda event: ws.close()
    await ended(ws)
    assert ws._timer is None
    assert ws.readyState == WebSocket.CLOSED


async def test_reconnect_closes_and_opens_at_once() -> None:
    """reconnect(code, reason) closes the connection with them and opens a new one at
    once, the backoff started over; opened waits for the new one."""
    received: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        await accept(reader, writer)
        received.append(await answer_close(reader, writer))

    async with raw_server(handler) as url:
        ws = ReconnectingWebSocket(url, agent=agent(), min_delay=5.0)
        log = Recorder(ws)
        await opened(ws)
        ws.reconnect(4000, "again")
        assert ws.readyState == WebSocket.CLOSING
        await opened(ws)  # The new connection's open.
        assert log.count("open") == 2
        assert ws.retryCount == 0
        await stop(ws)
    assert received[0] == b"\x0f\xa0again"
    assert log.types() == ["open", "close", "open", "close"]


@pytest.mark.server_errors  # (The first connection is cut during its handshake.)
async def test_reconnect_as_the_lookup_completes_opens_the_next_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """reconnect() in the turn in which the name's lookup is done (the connecting task is
    cancelled, and asyncio.wait_for() before Python 3.12 returns the lookup all the same):
    the connection made anyway is failed at once, and the next one opens."""
    loop = asyncio.get_running_loop()
    async with echo_on() as port:
        monkeypatch.setattr(loop, "getaddrinfo", lookup_done_at_once(loop))
        ws = ReconnectingWebSocket(f"ws://localhost:{port}/", agent=agent(), **FAST)
        log = Recorder(ws)
        await asyncio.sleep(0)  # The task's first step: it waits on the lookup's result.
        ws.reconnect()
        await opened(ws)
        await stop(ws)
    assert log.types() == ["error", "close", "open", "close"]


async def test_reconnect_while_waiting_and_after_the_end() -> None:
    """reconnect() while waiting attempts at once; on an ended object it starts again."""
    async with echo_on() as port:
        url = f"ws://127.0.0.1:{port}/"
    ws = ReconnectingWebSocket(url, agent=agent(), min_delay=30.0, max_delay=30.0, jitter=0)
    log = Recorder(ws)
    await log.wait_for("close", 1)
    async with echo_on(port):
        ws.reconnect()
        await opened(ws)
        await stop(ws)
        ws.reconnect()
        assert ws.readyState == WebSocket.CONNECTING
        await opened(ws)
        await stop(ws)
    assert log.types() == ["error", "close", "open", "close", "open", "close"]


async def test_reconnect_checks_its_arguments() -> None:
    """reconnect() takes close()'s code and reason, with close()'s exceptions."""
    ws = ReconnectingWebSocket(await refused_url(), agent=agent(), max_retries=0)
    with pytest.raises(Exception, match="1001") as info:
        ws.reconnect(1001)
    assert getattr(info.value, "name", None) == "InvalidAccessError"
    await ended(ws)


# --- sends between connections ----------------------------------------------------------------


@both_standards
async def test_sends_between_connections_are_queued_in_order(standard: Standard) -> None:
    """Sends while connecting and while reconnecting go out in order on the next connection,
    before what the open listeners send; bufferedAmount counts them meanwhile."""
    async with raw_server(answering(["503 Service Unavailable"])) as url:
        ws = ReconnectingWebSocket(url, agent=agent(standard), min_delay=0.3, jitter=0)
        log = Recorder(ws)
        ws.send("one")
        ws.send(b"two")
        assert ws.bufferedAmount == 6
        await log.wait_for("close", 1)
        ws.send(bytearray(b"three"))
        assert ws.bufferedAmount == 11
        ws.onopen = lambda event: ws.send("four")
        await log.wait_for("message", 4)
        await stop(ws)
    messages = [detail for type_, _, detail in log.entries if type_ == "message"]
    assert [m if isinstance(m, str) else "blob" for m in messages] == [
        "one",
        "blob",
        "blob",
        "four",
    ]


async def test_queue_overflow_drops_new_messages(caplog: pytest.LogCaptureFixture) -> None:
    """Past max_enqueued_messages, new sends are dropped (counted in bufferedAmount until
    the next attempt) and one warning says so."""
    async with raw_server(answering(["503 Service Unavailable"])) as url:
        ws = ReconnectingWebSocket(
            url, agent=agent(), max_enqueued_messages=2, min_delay=0.3, jitter=0
        )
        ws.binaryType = "arraybuffer"
        log = Recorder(ws)
        with caplog.at_level(logging.WARNING, "wsapi"):
            for text in ("a", "b", "c", "d"):
                ws.send(text)
        assert ws.bufferedAmount == 4
        assert len([r for r in caplog.records if "queue" in r.getMessage()]) == 1
        await log.wait_for("message", 2)
        await asyncio.sleep(0.1)
        await stop(ws)
    assert [d for t, _, d in log.entries if t == "message"] == ["a", "b"]


async def test_the_queue_is_dropped_when_it_ends() -> None:
    """When the object stops, the queued messages are dropped; bufferedAmount keeps them
    counted, as sends after close."""
    ws = ReconnectingWebSocket(await refused_url(), agent=agent(), max_retries=0)
    ws.send("lost")
    await ended(ws)
    assert ws.bufferedAmount == 4
    assert not ws._queue


async def test_send_checks_its_argument_between_connections() -> None:
    """send() between connections raises as WebSocket.send() does for a wrong type, and for
    lone surrogates in "cr-2011"."""
    ws = ReconnectingWebSocket(await refused_url(), agent=agent(), max_retries=0)
    with pytest.raises(TypeError, match="send"):
        ws.send(3)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="surrogate"):
        ws.send("\ud800")
    await ended(ws)


# --- the interface between connections ---------------------------------------------------------


async def test_attributes_between_connections() -> None:
    """Between connections: readyState CONNECTING, protocol and extensions "", the same url,
    and opened waits for the next connection (failing if it is closed instead)."""
    async with echo_on() as port:
        url = f"ws://127.0.0.1:{port}/"
    ws = ReconnectingWebSocket(
        url, ["chat"], agent=agent("whatwg"), min_delay=0.1, max_delay=0.1, jitter=0
    )
    log = Recorder(ws)
    async with serve(echo, "127.0.0.1", port, subprotocols=[Subprotocol("chat")]):
        await opened(ws)
        assert ws.protocol == "chat"
        assert ws.extensions.startswith("permessage-deflate")
    await log.wait_for("close", 2)
    assert ws.readyState == WebSocket.CONNECTING
    assert (ws.protocol, ws.extensions, ws.url) == ("", "", url)
    waiting = asyncio.ensure_future(opened(ws))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    ws.close()
    with pytest.raises(WebSocketError):
        await waiting
    await ended(ws)


def test_loop_end_while_waiting_and_while_open() -> None:
    """At the end of asyncio.run(), a ReconnectingWebSocket waiting between connections and
    an open one both end without reconnecting (the open one with a closing handshake,
    1001), well within the loop's wait for closing handshakes."""
    closes: list[tuple[str, int]] = []
    served: list[int] = []

    def handler(connection: SyncServerConnection) -> None:
        served.append(1)
        for message in connection:
            connection.send(message)

    async def main(url: str) -> None:
        ws = ReconnectingWebSocket(url, agent=agent(), **FAST)
        ws.onclose = lambda event: closes.append(("open", event.code))
        await opened(ws)
        waiting = ReconnectingWebSocket(
            await refused_url(), agent=agent(), min_delay=30.0, max_delay=30.0
        )
        waiting.onclose = lambda event: closes.append(("waiting", event.code))
        await wait_until(lambda: waiting.failure is not None)

    # A server on a thread of its own, which outlives the loop.
    with sync_serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            started = time.monotonic()
            asyncio.run(main(f"ws://127.0.0.1:{server.socket.getsockname()[1]}/"))
            elapsed = time.monotonic() - started
        finally:
            server.shutdown()
            thread.join(WAIT)
    assert sorted(closes) == [("open", 1001), ("waiting", 1006), ("waiting", 1006)]
    assert len(served) == 1
    assert elapsed < MAKE_DISAPPEAR_TIMEOUT


def test_the_slots_it_resets_are_the_websockets() -> None:
    """A new WebSocket field fails this test until ReconnectingWebSocket decides whether a
    new connection resets it (_attempt, _begin_waiting) or keeps it."""
    assert set(WebSocket.__slots__) == {
        "__dict__",
        # Reset for each connection.
        "_abort_reason", "_close_event", "_connect_task", "_extensions", "_fail_required",
        "_failure", "_full", "_never_sent", "_protocol", "_pump", "_ready_state",
        "_was_opened", "_buffered_stale",
        # Kept across connections.
        "_agent", "_binary_type", "_buffered_amount", "_closed", "_drain_waiters", "_loop",
        "_mark_stale", "_message_origin", "_opened", "_outbox", "_outbox_size",
        "_protocols", "_registry", "_thread", "_url", "_whatwg",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_enqueued_messages": -1}, ValueError),
        ({"max_enqueued_messages": 1.5}, TypeError),
        ({"connection_timeout": 0}, ValueError),
        ({"min_delay": -1}, ValueError),
        ({"agent": "x"}, TypeError),
    ],
)
async def test_options_are_checked(options: dict[str, Any], error: type[Exception]) -> None:
    """An option out of range (ValueError) or of the wrong type (TypeError) raises, naming
    it, before anything connects (no task is left pending)."""
    with pytest.raises(error, match=next(iter(options))):
        ReconnectingWebSocket("ws://127.0.0.1:1/", **options)


async def test_send_after_close_is_not_queued() -> None:
    """After the program's close(), send() is a closing WebSocket's: counted in
    bufferedAmount, never queued for a connection that will not come."""
    async with echo_on() as port:
        ws = ReconnectingWebSocket(f"ws://127.0.0.1:{port}/", agent=agent(), **FAST)
        await opened(ws)
        ws.close()
        ws.send("late")
        assert not ws._queue
        assert ws.bufferedAmount == 4
        await ended(ws)


async def test_messages_and_sends_take_the_websockets_path() -> None:
    """Reconnecting adds no layer per message: the pump calls the WebSocket's own message
    task."""
    async with echo_on() as port:
        ws = ReconnectingWebSocket(f"ws://127.0.0.1:{port}/", agent=agent(), **FAST)
        await opened(ws)
        assert ws._pump is not None
        receiver: Any = ws._pump._on_message
        assert receiver.__func__ is WebSocket._on_message
        await stop(ws)


def test_loop_end_during_an_attempt_does_not_reconnect() -> None:
    """At the end of asyncio.run(), an attempt still connecting (its task cancelled, here
    waiting for a proxy) is aborted and not retried, even with a should_reconnect that
    always says yes."""
    closes: list[tuple[int, str | None]] = []

    async def main(proxy: str) -> None:
        ws = ReconnectingWebSocket(
            "ws://127.0.0.1:8765/",
            agent=UserAgent(proxy=proxy),
            should_reconnect=lambda ending: True,
        )
        ws.onclose = lambda event: closes.append(
            (event.code, ws.failure.kind if ws.failure else None)
        )
        await asyncio.sleep(0.1)  # Connected to the proxy, which never answers CONNECT.
        assert ws._connect_task is not None

    # A proxy that never accepts: the TCP connection waits in its backlog.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        started = time.monotonic()
        asyncio.run(main(f"http://127.0.0.1:{listener.getsockname()[1]}"))
        elapsed = time.monotonic() - started
    assert closes == [(1006, "aborted")]
    assert elapsed < MAKE_DISAPPEAR_TIMEOUT


async def test_keepalive_timeout_reconnects() -> None:
    """A peer that stops answering keepalive Pings fails the connection
    ("keepalive_timeout", close 1006) and the next connection comes."""
    connections: list[int] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        connections.append(1)
        await accept(reader, writer)
        if len(connections) == 1:
            await reader.read()  # Silent: no Pong, until the client drops the connection.
            return
        await answer_close(reader, writer)

    async with raw_server(handler) as url:
        ws = ReconnectingWebSocket(url, agent=agent(ping_interval=0.1, ping_timeout=0.1), **FAST)
        log = Recorder(ws)
        await log.wait_for("open", 2)
        await stop(ws)
    failure = log.failures[0]
    assert failure is not None
    assert failure.kind == "keepalive_timeout"
    assert log.types() == ["open", "error", "close", "open", "close"]


async def test_async_with() -> None:
    """async with waits for the first open and, at the end of the block, closes it for
    good (1000) and waits for the last close event."""
    async with echo_on() as port:
        async with ReconnectingWebSocket(f"ws://127.0.0.1:{port}/", agent=agent()) as ws:
            assert ws.readyState == WebSocket.OPEN
            log = Recorder(ws)
        assert ws.readyState == WebSocket.CLOSED
        assert log.entries == [("close", 3, (True, 1000))]
        await asyncio.sleep(0.1)
    assert log.types() == ["close"]
