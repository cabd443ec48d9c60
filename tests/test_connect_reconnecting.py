"""`async for conn in wsapi.connect(url, policy=...)`: a new Connection after each drop,
with the reconnect policy's backoff and rules, against real servers (a server process
killed and restarted on the same port, 503 then 101, 403, 429 with Retry-After, close
codes, the program's own close)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection

import wsapi
from support import SHORT, TIMEOUT, WAIT, agent, raw_server
from test_reconnecting import answering, closing_first_with, echo_on, process_server
from wsapi import Connection, ConnectionClosed, WebSocketError
from wsapi.reconnect import ReconnectPolicy
from wsapi.reconnect import should_reconnect as default_rule

SLACK = 0.5 * TIMEOUT
"""How much later than asked a reconnection may come (a loaded machine's scheduling)."""


class Endings:
    """A should_reconnect that records each ending and its loop time, then applies the
    default rule."""

    def __init__(self) -> None:
        self.endings: list[Any] = []
        self.times: list[float] = []

    def __call__(self, ending: Any) -> bool:
        self.endings.append(ending)
        self.times.append(asyncio.get_running_loop().time())
        return default_rule(ending)


def policy(endings: Endings | None = None, **options: Any) -> ReconnectPolicy:
    options.setdefault("min_delay", 0.05)
    options.setdefault("jitter", 0.0)
    if endings is not None:
        options["should_reconnect"] = endings
    return ReconnectPolicy(**options)


async def drain(conn: Connection) -> ConnectionClosed:
    """Read until the connection ends; the ConnectionClosed that ended it."""
    while True:
        try:
            await asyncio.wait_for(conn.recv(), WAIT)
        except ConnectionClosed as closed:
            return closed


async def test_server_killed_and_restarted_on_the_same_port() -> None:
    """A server process killed and restarted on the same port: the connection ends with
    1006, the refused attempts' waits grow by grow_factor up to max_delay, and the next
    connection comes once the server is back."""
    endings = Endings()
    options = policy(endings, min_delay=0.2, grow_factor=2.0, max_delay=0.8)
    connections = 0
    async with process_server() as port:
        url = f"ws://127.0.0.1:{port}/"
        iterator = wsapi.connect(url, agent=agent("whatwg"), policy=options).__aiter__()
        conn = await asyncio.wait_for(iterator.__anext__(), WAIT)
        connections += 1
        await conn.send("first")
        assert await conn.recv() == "first"
    closed = await drain(conn)  # Killed.
    assert (closed.code, closed.wasClean) == (1006, False)
    next_connection = asyncio.ensure_future(iterator.__anext__())
    while len(endings.times) < 5:
        await asyncio.sleep(0.01)
    gaps = [later - earlier for earlier, later in itertools.pairwise(endings.times)]
    for gap, expected in zip(gaps, [0.2, 0.4, 0.8, 0.8], strict=True):
        assert expected * 0.9 <= gap <= expected + SLACK, gaps
    assert all(ending.kind == "refused" for ending in endings.endings[1:])
    assert iterator.retryCount >= 4
    async with process_server(port):
        conn = await asyncio.wait_for(next_connection, WAIT)
        connections += 1
        await conn.send("back")
        assert await conn.recv() == "back"
        await conn.close()
    assert connections == 2


async def test_503_then_101() -> None:
    """A 503 fails the first attempt and the next one opens: the iteration yields it."""
    endings = Endings()
    async with raw_server(answering(["503 Service Unavailable"])) as url:
        async for conn in wsapi.connect(url, agent=agent(), policy=policy(endings)):
            await conn.send("hello")
            assert await conn.recv() == "hello"
            await conn.close()
            break
    assert [ending.status_code for ending in endings.endings] == [503]


async def test_403_raises_and_does_not_retry() -> None:
    """A 403 stops the iteration at once: it raises the attempt's WebSocketError (with the
    failure), and no second attempt is made."""
    requests: list[int] = []
    refuse = answering(["403 Forbidden"] * 3)

    async def handler(reader: Any, writer: Any) -> None:
        requests.append(1)
        await refuse(reader, writer)

    async with raw_server(handler) as url:
        connections = wsapi.connect(url, agent=agent(), policy=policy()).__aiter__()
        with pytest.raises(WebSocketError) as info:
            await connections.__anext__()
        with pytest.raises(StopAsyncIteration):
            await connections.__anext__()
        await asyncio.sleep(0.2)  # No second attempt comes.
    assert info.value.failure.status_code == 403
    assert requests == [1]


async def test_429_waits_for_retry_after() -> None:
    """A 429 with Retry-After: 1 waits at least a second before the next attempt, though
    min_delay is much shorter."""
    endings = Endings()
    async with raw_server(answering(["429 Too Many Requests"], "Retry-After: 1\r\n")) as url:
        async for conn in wsapi.connect(url, agent=agent(), policy=policy(endings)):
            waited = asyncio.get_running_loop().time() - endings.times[0]
            assert 1.0 <= waited <= 1.0 + SLACK
            await conn.close()
            break


@pytest.mark.parametrize(("code", "reconnects"), [(1012, True), (1000, False), (1008, False)])
async def test_close_codes(code: int, reconnects: bool) -> None:
    """The server's close 1012 yields a new connection; 1000 or 1008 ends the iteration
    quietly after the program saw the ConnectionClosed."""
    seen: list[int] = []
    connections = 0
    async with echo_on(handler=closing_first_with(code)) as port:
        url = f"ws://127.0.0.1:{port}/"
        async for conn in wsapi.connect(url, agent=agent(), policy=policy()):
            connections += 1
            if seen:
                await conn.close()
                break
            seen.append((await drain(conn)).code)
    assert seen == [code]
    assert connections == (2 if reconnects else 1)


async def test_the_programs_close_reconnects_at_once_with_the_backoff_reset() -> None:
    """conn.close() then the next iteration: a new connection at once (no wait, backoff
    started over); asking for the next one while open closes the previous with 1000."""
    codes: list[int | None] = []

    async def handler(connection: ServerConnection) -> None:
        await connection.wait_closed()
        codes.append(connection.close_code)

    async with echo_on(handler=handler) as port:
        url = f"ws://127.0.0.1:{port}/"
        loop = asyncio.get_running_loop()
        opened: list[Connection] = []
        started = loop.time()
        slow = ReconnectPolicy(min_delay=5.0, jitter=0.0)
        async for conn in wsapi.connect(url, agent=agent(), policy=slow):
            opened.append(conn)
            if len(opened) == 1:
                await conn.close(4000)
            elif len(opened) == 3:
                await conn.close(1000)
                break
        assert loop.time() - started < SHORT
        await asyncio.sleep(0.1)
    assert codes == [4000, 1000, 1000]


async def test_policy_must_be_a_reconnect_policy() -> None:
    """policy= takes a ReconnectPolicy (TypeError otherwise)."""
    with pytest.raises(TypeError, match="ReconnectPolicy"):
        wsapi.connect("ws://127.0.0.1:1/", policy={"min_delay": 1})  # type: ignore[arg-type]
