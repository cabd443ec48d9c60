"""One measurement: one client library on one event loop, one scenario, in this process.

Prints one JSON line on stdout and exits at once with ``os._exit`` (no teardown, so a burst
still streaming when the cap was hit costs nothing). ``run.py`` starts one of these per
measurement; by hand, against ``server.py``:

    python bench/client.py --client wsapi@uvloop --scenario A --port 8765 --n 20000 --warm 1000

Clients are ``LIB@LOOP`` with LIB in wsapi, wsapi-pure (run.py sets WSAPI_PURE_PYTHON=1 for
it), wsapi-stream, wsapi-connect, wsapi-sync, websockets, websockets-sync, websocket-client,
picows and LOOP in asyncio, uvloop (the blocking clients, ``*-sync`` and websocket-client,
run in a thread of their own: LOOP is only their label). Each
library is used in its own idiom: wsapi through the browser API (``on*`` handlers,
``send()``, ``bufferedAmount``, ``close()``), or its pull APIs (wsapi-stream:
``WebSocketStream``'s reader and writer; wsapi-connect: ``wsapi.connect``'s ``send()`` and
``recv()``; scenarios A and B), websockets with ``await send()/recv()``, picows with a
listener's callbacks.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

pc = time.perf_counter
pc_ns = time.perf_counter_ns

A_MESSAGE = "0123456789abcdef0123456789abcdef"  # 32 bytes of text
# Scenario C: how much a wsapi sender lets queue up (ws.bufferedAmount) before it waits
# for the next ack; the other libraries rely on their transport's flow control.
C_BUFFERED_LIMIT = 4 << 20
NO_CAP = float("inf")  # warm-ups run to the end (the overall --timeout still applies)

Result = dict[str, Any]
Sender = Callable[[Any], Awaitable[Any]]
Receiver = Callable[[], Awaitable[Any]]


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def rate(count: int, elapsed: float, capped: bool, **extra: Any) -> Result:
    return {"count": count, "elapsed_s": elapsed, "capped": capped, **extra}


class RoundTrips:
    """Scenario A bookkeeping: skips the warm-up, stops at n round trips or at the cap, keeps
    each measured round trip's latency. ``reply()`` returns whether to send the next one."""

    def __init__(self, n: int, warm: int, cap: float) -> None:
        self.n = n
        self.cap_ns = int(cap * 1e9)
        self.i = -max(1, warm)
        self.lats = [0] * n
        self.sent_at = self.t0 = self.t_end = 0
        self.deadline = 0

    def reply(self) -> bool:
        now = pc_ns()
        i = self.i
        if i >= 0:
            self.lats[i] = now - self.sent_at
        elif i == -1:  # end of warm-up: the clock starts now
            self.t0 = now
            self.deadline = now + self.cap_ns
        i += 1
        self.i = i
        if i >= self.n or (i > 0 and now > self.deadline):
            self.t_end = now
            return False
        self.sent_at = now
        return True

    def result(self) -> Result:
        count = self.i
        lats = sorted(self.lats[:count])
        return rate(
            count,
            (self.t_end - self.t0) / 1e9,
            count < self.n,
            p50_us=lats[count // 2] / 1000,
            p99_us=lats[min(count - 1, count * 99 // 100)] / 1000,
        )


async def connect_loop(
    one: Callable[[], Awaitable[None]], n: int, warm: int, cap: float
) -> Result:
    """Scenario D: ``one()`` opens and closes a connection; warm-up, then n or until the cap."""
    for _ in range(warm):
        await one()
    t0 = pc()
    deadline = t0 + cap
    count = 0
    while count < n:
        await one()
        count += 1
        if pc() > deadline:
            break
    return rate(count, pc() - t0, count < n)


async def memory(
    open_one: Callable[[], Awaitable[Any]], close_one: Callable[[Any], Awaitable[None]], n: int
) -> Result:
    """Scenario E: RSS growth for n idle open connections (after one to load the code)."""
    await close_one(await open_one())
    gc.collect()
    before = rss_kib()
    conns = [await open_one() for _ in range(n)]
    gc.collect()
    after = rss_kib()
    assert len(conns) == n
    return {"count": n, "rss_before_kib": before, "rss_after_kib": after}


# wsapi: the browser API only.


async def run_wsapi(a: argparse.Namespace, url: str) -> Result:
    from wsapi import WebSocket  # noqa: PLC0415 (imported in the measuring process only)

    loop = asyncio.get_running_loop()

    async def connect(path: str) -> WebSocket:
        ws = WebSocket(url + path)
        ws.binaryType = "arraybuffer"
        await ws.opened
        return ws

    async def close(ws: WebSocket) -> None:
        ws.close()
        event = await ws.closed
        if not event.wasClean:
            raise RuntimeError(f"unclean close {event.code} {ws.failure}")

    def watch(ws: WebSocket, done: asyncio.Future[Any]) -> None:
        # An error or close event during a measurement fails it at once instead of hanging.
        def failed(event: Any) -> None:
            if not done.done():
                done.set_exception(RuntimeError(f"{event.type} event: {ws.failure}"))

        ws.onerror = failed
        ws.onclose = failed

    if a.scenario == "A":
        ws = await connect("/echo")
        rt = RoundTrips(a.n, a.warm, a.cap)
        done: asyncio.Future[Any] = loop.create_future()
        watch(ws, done)

        def on_echo(event: Any) -> None:
            data = event.data
            if rt.reply():
                ws.send(A_MESSAGE)
            else:
                done.set_result(data)

        ws.onmessage = on_echo
        ws.send(A_MESSAGE)
        assert await done == A_MESSAGE
        return rt.result()

    if a.scenario == "B":
        ws = await connect("/push")
        count = target = 0
        deadline = 0.0
        last = ""
        done = loop.create_future()

        def on_push(event: Any) -> None:
            nonlocal count, last
            last = event.data  # the str a handler gets
            count += 1
            if (count == target or (not count & 1023 and pc() > deadline)) and not done.done():
                done.set_result(None)  # (more messages may arrive before the await resumes)

        async def burst(k: int, cap: float) -> float:
            nonlocal count, target, deadline, done
            count, target = 0, k
            done = loop.create_future()
            watch(ws, done)
            t0 = pc()
            deadline = t0 + cap
            ws.send(f"{k} {a.size}")
            await done
            return pc() - t0

        ws.onmessage = on_push
        await burst(max(1, a.warm), NO_CAP)  # uncapped: no stragglers in the next burst
        elapsed = await burst(a.n, a.cap)
        assert len(last) == a.size
        return rate(count, elapsed, count < a.n)

    if a.scenario == "C":
        ws = await connect("/ack")
        payload = os.urandom(a.size)
        sent = acks = target = 0
        deadline = 0.0
        done = loop.create_future()

        def pump() -> None:
            nonlocal sent, target
            while sent < target and ws.bufferedAmount < C_BUFFERED_LIMIT:
                ws.send(payload)
                sent += 1
                if pc() > deadline:
                    target = sent  # capped: wait for the acks of what was sent
            if sent == acks < target and not done.done():
                # Would wait forever: no ack is coming to call pump() again.
                done.set_exception(RuntimeError("bufferedAmount stays high, nothing in flight"))

        def on_ack(event: Any) -> None:
            nonlocal acks
            _ = event.data
            acks += 1
            if acks == target:
                done.set_result(None)
            else:
                pump()

        async def send_all(k: int, cap: float) -> float:
            nonlocal sent, acks, target, deadline, done
            sent = acks = 0
            target = k
            done = loop.create_future()
            watch(ws, done)
            t0 = pc()
            deadline = t0 + cap
            pump()
            await done
            return pc() - t0

        ws.onmessage = on_ack
        await send_all(a.warm, NO_CAP)
        elapsed = await send_all(a.n, a.cap)
        return rate(sent, elapsed, sent < a.n, bytes=sent * a.size)

    if a.scenario == "D":

        async def one() -> None:
            await close(await connect("/echo"))

        return await connect_loop(one, a.n, a.warm, a.cap)

    if a.scenario == "E":
        return await memory(lambda: connect("/echo"), close, a.n)

    raise ValueError(a.scenario)


# websockets: the asyncio client (websockets.asyncio.client), await send() / recv().


async def pull_round_trips(
    a: argparse.Namespace,
    send: Callable[[Any], Awaitable[Any]],
    recv: Callable[[], Awaitable[Any]],
) -> Result:
    """Scenario A for a client that awaits each send and receive."""
    rt = RoundTrips(a.n, a.warm, a.cap)
    data: Any = None
    while True:
        await send(A_MESSAGE)
        data = await recv()
        if not rt.reply():
            break
    assert data == A_MESSAGE
    return rt.result()


async def pull_bursts(
    a: argparse.Namespace,
    send: Callable[[Any], Awaitable[Any]],
    recv: Callable[[], Awaitable[Any]],
) -> Result:
    """Scenario B for a client that awaits each message."""

    async def burst(k: int, cap: float) -> tuple[int, float, Any]:
        t0 = pc()
        deadline = t0 + cap
        await send(f"{k} {a.size}")
        count = 0
        last = None
        while count < k:
            last = await recv()
            count += 1
            if not count & 1023 and pc() > deadline:
                break
        return count, pc() - t0, last

    await burst(max(1, a.warm), NO_CAP)  # uncapped: no stragglers in the next burst
    count, elapsed, last = await burst(a.n, a.cap)
    assert isinstance(last, str)
    assert len(last) == a.size
    return rate(count, elapsed, count < a.n)


async def run_wsapi_stream(a: argparse.Namespace, url: str) -> Result:
    """wsapi's pull APIs: ``WebSocketStream`` through its reader and writer (wsapi-stream),
    or ``wsapi.connect``'s ``send()`` / ``recv()`` (wsapi-connect). Scenarios A and B."""
    import wsapi  # noqa: PLC0415 (imported in the measuring process only)

    lib = a.client.partition("@")[0]
    streams: list[wsapi.WebSocketStream] = []

    async def open_(path: str) -> tuple[Callable[[Any], Awaitable[None]], Callable[[], Any]]:
        """The connection's send and receive, each an awaitable call."""
        if lib == "wsapi-connect":
            conn = await wsapi.connect(url + path)
            streams.append(conn.stream)
            return conn.send, conn.recv
        wss = wsapi.WebSocketStream(url + path)
        streams.append(wss)
        info = await wss.opened
        reader, writer = info.readable.getReader(), info.writable.getWriter()

        async def recv() -> Any:
            value, done = await reader.read()
            if done:
                raise RuntimeError("the connection closed")
            return value

        return writer.write, recv

    if a.scenario == "A":
        return await pull_round_trips(a, *await open_("/echo"))

    if a.scenario == "B":
        return await pull_bursts(a, *await open_("/push"))

    raise ValueError(f"{lib} measures scenarios A and B only, not {a.scenario}")


def blocking_round_trips(
    a: argparse.Namespace, send: Callable[[Any], Any], recv: Callable[[], Any]
) -> Result:
    """Scenario A for a blocking client: send, then block in recv."""
    rt = RoundTrips(a.n, a.warm, a.cap)
    data: Any = None
    while True:
        send(A_MESSAGE)
        data = recv()
        if not rt.reply():
            break
    assert data == A_MESSAGE
    return rt.result()


def blocking_bursts(
    a: argparse.Namespace, send: Callable[[Any], Any], recv: Callable[[], Any]
) -> Result:
    """Scenario B for a blocking client: recv each message in turn."""

    def burst(k: int, cap: float) -> tuple[int, float, Any]:
        t0 = pc()
        deadline = t0 + cap
        send(f"{k} {a.size}")
        count = 0
        last = None
        while count < k:
            last = recv()
            count += 1
            if not count & 1023 and pc() > deadline:
                break
        return count, pc() - t0, last

    burst(max(1, a.warm), NO_CAP)  # uncapped: no stragglers in the next burst
    count, elapsed, last = burst(a.n, a.cap)
    assert isinstance(last, str)
    assert len(last) == a.size
    return rate(count, elapsed, count < a.n)


def run_blocking(a: argparse.Namespace, url: str) -> Result:
    """The blocking clients, in a thread without an event loop: ``wsapi.sync.connect``
    (wsapi-sync), ``websockets.sync.client.connect`` (websockets-sync), websocket-client's
    ``create_connection`` (websocket-client); ``send()`` and ``recv()``. Scenarios A and B."""
    lib = a.client.partition("@")[0]
    path = {"A": "/echo", "B": "/push"}.get(a.scenario)
    if path is None:
        raise ValueError(f"{lib} measures scenarios A and B only, not {a.scenario}")
    conn: Any
    if lib == "wsapi-sync":
        from wsapi.sync import connect  # noqa: PLC0415 (imported in the measuring process only)

        conn = connect(url + path)
    elif lib == "websockets-sync":
        from websockets.sync.client import connect as ws_connect  # noqa: PLC0415

        conn = ws_connect(url + path, compression=None)
    else:
        import websocket  # noqa: PLC0415

        conn = websocket.create_connection(url + path)
    if a.scenario == "A":
        return blocking_round_trips(a, conn.send, conn.recv)
    return blocking_bursts(a, conn.send, conn.recv)


async def run_blocking_in_a_thread(a: argparse.Namespace, url: str) -> Result:
    # A blocking client does not run inside an event loop (wsapi.sync refuses to).
    return await asyncio.to_thread(run_blocking, a, url)


async def run_websockets(a: argparse.Namespace, url: str) -> Result:
    from websockets.asyncio.client import ClientConnection, connect  # noqa: PLC0415

    async def open_(path: str) -> ClientConnection:
        # The server does not negotiate deflate; compression=None skips the offer.
        return await connect(url + path, compression=None)

    async def close(ws: ClientConnection) -> None:
        await ws.close()

    if a.scenario == "A":
        ws = await open_("/echo")
        return await pull_round_trips(a, ws.send, ws.recv)

    if a.scenario == "B":
        ws = await open_("/push")
        return await pull_bursts(a, ws.send, ws.recv)

    if a.scenario == "C":
        ws = await open_("/ack")
        payload = os.urandom(a.size)

        async def send_all(k: int, cap: float) -> tuple[int, float]:
            sent = acks = 0
            finished = False
            all_acked = asyncio.get_running_loop().create_future()

            async def read_acks() -> None:
                nonlocal acks
                while True:
                    await ws.recv()
                    acks += 1
                    if finished and acks == sent:
                        all_acked.set_result(None)
                        return

            reader = asyncio.create_task(read_acks())
            t0 = pc()
            deadline = t0 + cap
            while sent < k:
                await ws.send(payload)
                sent += 1
                if pc() > deadline:
                    break
            finished = True
            if acks < sent:
                await asyncio.wait([all_acked, reader], return_when=asyncio.FIRST_COMPLETED)
                if not all_acked.done():
                    reader.result()  # the reader failed: raise its exception
            elapsed = pc() - t0
            reader.cancel()
            return sent, elapsed

        await send_all(a.warm, NO_CAP)
        sent, elapsed = await send_all(a.n, a.cap)
        return rate(sent, elapsed, sent < a.n, bytes=sent * a.size)

    if a.scenario == "D":

        async def one() -> None:
            await close(await open_("/echo"))

        return await connect_loop(one, a.n, a.warm, a.cap)

    if a.scenario == "E":
        return await memory(lambda: open_("/echo"), close, a.n)

    raise ValueError(a.scenario)


# picows: listener callbacks (its defaults, including its choice of transport).


async def run_picows(a: argparse.Namespace, url: str) -> Result:
    from picows import (  # noqa: PLC0415
        WSCloseCode,
        WSFrame,
        WSListener,
        WSMsgType,
        WSTransport,
        ws_connect,
    )

    loop = asyncio.get_running_loop()
    TEXT, BINARY, CLOSE = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CLOSE

    class Listener(WSListener):
        """Base: ends the connection when the server's Close arrives."""

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type is CLOSE:
                transport.disconnect()

    async def close(conn: tuple[WSTransport, Any]) -> None:
        transport = conn[0]
        transport.send_close(WSCloseCode.OK)
        await transport.wait_disconnected()

    if a.scenario == "A":
        rt = RoundTrips(a.n, a.warm, a.cap)
        done: asyncio.Future[Any] = loop.create_future()
        message = A_MESSAGE.encode()

        class Echo(Listener):
            def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
                if frame.msg_type is TEXT:
                    data = frame.get_payload_as_utf8_text()
                    if rt.reply():
                        transport.send(TEXT, message)
                    else:
                        done.set_result(data)
                else:
                    super().on_ws_frame(transport, frame)

            def on_ws_disconnected(self, transport: WSTransport) -> None:
                if not done.done():
                    done.set_exception(RuntimeError("disconnected"))

        transport, _ = await ws_connect(Echo, url + "/echo")
        transport.send(TEXT, message)
        assert await done == A_MESSAGE
        return rt.result()

    if a.scenario == "B":

        class Push(Listener):
            def __init__(self) -> None:
                self.count = self.target = 0
                self.deadline = 0.0
                self.last = ""
                self.done: asyncio.Future[None] = loop.create_future()

            def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
                if frame.msg_type is TEXT:
                    self.last = frame.get_payload_as_utf8_text()
                    count = self.count + 1
                    self.count = count
                    capped = not count & 1023 and pc() > self.deadline
                    if (count == self.target or capped) and not self.done.done():
                        self.done.set_result(None)
                else:
                    super().on_ws_frame(transport, frame)

            def on_ws_disconnected(self, transport: WSTransport) -> None:
                if not self.done.done():
                    self.done.set_exception(RuntimeError("disconnected"))

        transport, listener = await ws_connect(Push, url + "/push")
        assert isinstance(listener, Push)

        async def burst(k: int, cap: float) -> float:
            listener.count, listener.target = 0, k
            listener.done = loop.create_future()
            t0 = pc()
            listener.deadline = t0 + cap
            transport.send(TEXT, f"{k} {a.size}".encode())
            await listener.done
            return pc() - t0

        await burst(max(1, a.warm), NO_CAP)  # uncapped: no stragglers in the next burst
        elapsed = await burst(a.n, a.cap)
        assert len(listener.last) == a.size
        return rate(listener.count, elapsed, listener.count < a.n)

    if a.scenario == "C":
        payload = os.urandom(a.size)

        class Sender(Listener):
            """Sends while the transport has not asked to pause; acks end the burst."""

            def __init__(self) -> None:
                self.transport: WSTransport | None = None
                self.paused = False
                self.sent = self.acks = self.target = 0
                self.deadline = 0.0
                self.done: asyncio.Future[None] = loop.create_future()

            def on_ws_connected(self, transport: WSTransport) -> None:
                self.transport = transport

            def go(self, k: int, cap: float) -> None:
                self.sent = self.acks = 0
                self.target = k
                self.done = loop.create_future()
                self.deadline = pc() + cap
                self.pump()

            def pump(self) -> None:
                assert self.transport is not None
                send = self.transport.send
                while not self.paused and self.sent < self.target:
                    send(BINARY, payload)
                    self.sent += 1
                    if pc() > self.deadline:
                        self.target = self.sent

            def pause_writing(self) -> None:
                self.paused = True

            def resume_writing(self) -> None:
                self.paused = False
                self.pump()

            def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
                if frame.msg_type is TEXT:
                    frame.get_payload_as_utf8_text()
                    self.acks += 1
                    if self.acks == self.target:
                        self.done.set_result(None)
                else:
                    super().on_ws_frame(transport, frame)

            def on_ws_disconnected(self, transport: WSTransport) -> None:
                if not self.done.done():
                    self.done.set_exception(RuntimeError("disconnected"))

        _, sender = await ws_connect(Sender, url + "/ack")
        assert isinstance(sender, Sender)
        sender.go(a.warm, NO_CAP)
        await sender.done
        t0 = pc()
        sender.go(a.n, a.cap)
        await sender.done
        elapsed = pc() - t0
        return rate(sender.sent, elapsed, sender.sent < a.n, bytes=sender.sent * a.size)

    async def open_() -> tuple[WSTransport, Any]:
        return await ws_connect(Listener, url + "/echo")

    if a.scenario == "D":

        async def one() -> None:
            await close(await open_())

        return await connect_loop(one, a.n, a.warm, a.cap)

    if a.scenario == "E":
        return await memory(open_, close, a.n)

    raise ValueError(a.scenario)


RUNNERS: dict[str, Callable[[argparse.Namespace, str], Coroutine[Any, Any, Result]]] = {
    "wsapi": run_wsapi,
    "wsapi-pure": run_wsapi,
    "wsapi-stream": run_wsapi_stream,
    "wsapi-connect": run_wsapi_stream,
    "websockets": run_websockets,
    "picows": run_picows,
    "wsapi-sync": run_blocking_in_a_thread,
    "websockets-sync": run_blocking_in_a_thread,
    "websocket-client": run_blocking_in_a_thread,
}
UNITS = {"A": "rt/s", "B": "msg/s", "C": "GB/s", "D": "conn/s", "E": "KiB/conn"}


def value_of(scenario: str, r: Result) -> float:
    """The one number a measurement is summarised by."""
    if scenario == "E":
        return float(r["rss_after_kib"] - r["rss_before_kib"]) / float(r["count"])
    if scenario == "C":
        return float(r["bytes"]) / float(r["elapsed_s"]) / 1e9
    return float(r["count"]) / float(r["elapsed_s"])


def wsapi_facts() -> dict[str, Any]:
    import wsapi  # noqa: PLC0415
    from wsapi.protocol import codec  # noqa: PLC0415

    return {"wsapi_speedups": getattr(codec, "SPEEDUPS", None), "wsapi_file": wsapi.__file__}


async def measure(a: argparse.Namespace) -> None:
    lib = a.client.partition("@")[0]
    record: dict[str, Any] = {"client": a.client, "scenario": a.scenario, "n": a.n}
    record["size"] = a.size
    loop = asyncio.get_running_loop()
    record["loop_class"] = f"{type(loop).__module__}.{type(loop).__qualname__}"
    try:
        if lib.startswith("wsapi"):
            record.update(wsapi_facts())
            if lib == "wsapi-pure" and record["wsapi_speedups"]:
                raise RuntimeError("WSAPI_PURE_PYTHON=1 was not honoured: speedups in use")
        r = await asyncio.wait_for(RUNNERS[lib](a, f"ws://127.0.0.1:{a.port}"), timeout=a.timeout)
        record.update(r)
        record["value"] = value_of(a.scenario, r)
        record["unit"] = UNITS[a.scenario]
        code = 0
    except (TimeoutError, asyncio.TimeoutError):
        record["error"] = f"timed out after {a.timeout:g} s"
        code = 1
    except BaseException as exc:  # report anything, the parent decides
        record["error"] = f"{type(exc).__name__}: {exc}"
        code = 1
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
    os._exit(code)


def main() -> None:
    p = argparse.ArgumentParser(description="One benchmark measurement (see bench/README.md).")
    p.add_argument("--client", required=True, help="LIB@LOOP, e.g. wsapi@asyncio")
    p.add_argument("--scenario", required=True, choices=("A", "B", "C", "D", "E"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--n", type=int, required=True, help="messages / round trips / connections")
    p.add_argument("--size", type=int, default=0, help="message size (B, C)")
    p.add_argument("--warm", type=int, default=1, help="warm-up round trips / messages / conns")
    p.add_argument("--cap", type=float, default=2.0, help="seconds; stop measuring there")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--cpu", type=int, default=None, help="pin this process to one core")
    a = p.parse_args()
    if a.cpu is not None:
        os.sched_setaffinity(0, {a.cpu})
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # E opens many connections
    lib, _, loop_name = a.client.partition("@")
    if lib not in RUNNERS or loop_name not in ("asyncio", "uvloop"):
        p.error(f"unknown client {a.client!r}")
    if loop_name == "uvloop":
        import uvloop  # noqa: PLC0415

        uvloop.run(measure(a))
    else:
        asyncio.run(measure(a))


if __name__ == "__main__":
    main()
