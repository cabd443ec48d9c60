"""The benchmark's WebSocket server: a plain asyncio protocol, on uvloop when available.

Only as much of RFC 6455 as the benchmark needs, written so that the server stays cheaper
than every client it serves:

* ``/echo``  echoes every data frame (same opcode and FIN bit, unmasked);
* ``/push``  on a text message ``"N SIZE"`` writes N text frames of SIZE bytes, framed once
  and written in chunks of about 256 KiB under the transport's flow control;
* ``/ack``   answers each complete data message with the text ``"ok"``; payloads are read
  into one shared buffer and skipped, never unmasked or copied (C measures the client);
* a Close is answered with a Close carrying the same body, then the TCP connection is
  closed (the server closes first, as RFC 6455 section 7.1.1 asks); a Ping gets a Pong.

Listens on 127.0.0.1 on a port the OS picks and prints ``PORT <n>`` on stdout.

    python bench/server.py [--cpu N] [--loop auto|asyncio|uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import resource
import signal
import sys
from collections import deque
from typing import cast

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEADER = 16 * 1024
PUSH_CHUNK = 256 * 1024
CLOSE_PROTOCOL_ERROR = (1002).to_bytes(2, "big")

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

OK_FRAME = b"\x81\x02ok"


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """An unmasked server-to-client frame."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = bytes((b0, n))
    elif n < 1 << 16:
        head = bytes((b0, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, 127)) + n.to_bytes(8, "big")
    return head + payload


def unmask(data: bytes | bytearray, mask: bytes | bytearray) -> bytes:
    """XOR with the 4-byte mask as one big-integer operation: no Python loop per byte."""
    n = len(data)
    if not n:
        return b""
    key = (bytes(mask) * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


# Pre-framed push bursts: (size, frames per chunk) -> (one frame, one chunk of frames).
_PUSH_CACHE: dict[int, tuple[bytes, bytes, int]] = {}


def push_frames(size: int) -> tuple[bytes, bytes, int]:
    cached = _PUSH_CACHE.get(size)
    if cached is None:
        # Printable ASCII is valid UTF-8, so every client can decode it as text.
        payload = (b"abcdefghijklmnopqrstuvwxyz0123456789" * (size // 36 + 1))[:size]
        one = frame(OP_TEXT, payload)
        per_chunk = max(1, PUSH_CHUNK // len(one))
        cached = (one, one * per_chunk, per_chunk)
        _PUSH_CACHE[size] = cached
    return cached


# One receive buffer for every connection: the loop calls get_buffer(), reads into it, then
# buffer_updated() at once, and buffer_updated() keeps nothing that points into it. Reading
# into it costs no allocation and no copy per read, which matters for C's 1 MiB messages.
READ_BUFFER = memoryview(bytearray(1 << 20))


class Connection(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.path = ""
        self.closing = False
        # /ack: bytes of the current frame's payload still to skip, and whether the
        # frame that is being skipped ends a message.
        self.skip = 0
        self.skip_ends_message = False
        # /push: queued bursts as [frames left, size], and the writer's pause flag.
        self.bursts: deque[list[int]] = deque()
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only look like one.
        self.transport = cast(asyncio.Transport, transport)
        # Large pushes are written chunk by chunk; 1 MiB keeps a few chunks queued so the
        # socket never waits for Python.
        self.transport.set_write_buffer_limits(high=1 << 20)

    def connection_lost(self, exc: Exception | None) -> None:
        self.bursts.clear()
        self.transport = None

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.pump()

    def get_buffer(self, sizehint: int) -> memoryview:
        return READ_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        if self.closing:
            return
        skip = self.skip
        if skip:
            # Fast path of /ack: the whole read is payload to throw away.
            if skip >= nbytes:
                self.skip = skip - nbytes
                if not self.skip:
                    self.payload_skipped()
                return
            self.skip = 0
            self.payload_skipped()
        self.buf += READ_BUFFER[skip:nbytes]
        if not self.upgraded and not self.handshake():
            return
        self.parse()

    # Opening handshake.

    def handshake(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEADER:
                self.http_error(b"431 Request Header Fields Too Large")
            return False
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[: end + 4]
        parts = head[0].split(" ")
        key = None
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-key":
                key = value.strip()
        if len(parts) != 3 or parts[0] != "GET" or key is None:
            self.http_error(b"400 Bad Request")
            return False
        self.path = parts[1].partition("?")[0]
        if self.path not in ("/echo", "/push", "/ack"):
            self.http_error(b"404 Not Found")
            return False
        accept = base64.b64encode(hashlib.sha1(key.encode("latin-1") + GUID).digest())
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.upgraded = True
        return True

    def http_error(self, status: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")
        self.transport.close()
        self.closing = True

    # Frames.

    def parse(self) -> None:
        buf = self.buf
        end = len(buf)
        pos = 0
        out: list[bytes] = []
        ack = self.path == "/ack"
        while end - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if end - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif n == 127:
                if end - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if not b1 & 0x80:
                self.fail()  # RFC 6455 5.1: a client frame must be masked
                return
            if end - pos < head + 4:
                break
            opcode = b0 & 0x0F
            fin = bool(b0 & 0x80)
            start = pos + head + 4
            if ack and opcode < OP_CLOSE:
                # Skip the payload without looking at it; the rest may come later.
                have = min(n, end - start)
                pos = start + have
                if have < n:
                    self.skip = n - have
                    self.skip_ends_message = fin
                    break
                if fin:
                    out.append(OK_FRAME)
                continue
            if end - start < n:
                break
            mask = buf[pos + head : start]
            payload = unmask(buf[start : start + n], mask)
            pos = start + n
            if opcode < OP_CLOSE:
                self.on_data(opcode, fin, payload, out)
            elif opcode == OP_CLOSE:
                out.append(frame(OP_CLOSE, payload))
                self.flush(out)
                self.closing = True
                assert self.transport is not None
                self.transport.close()  # after the buffered writes, so the Close goes out
                return
            elif opcode == OP_PING:
                out.append(frame(OP_PONG, payload))
            # A Pong needs no answer.
        del buf[:pos]
        self.flush(out)

    def on_data(self, opcode: int, fin: bool, payload: bytes, out: list[bytes]) -> None:
        if self.path == "/echo":
            out.append(frame(opcode, payload, fin))
        elif self.path == "/push" and opcode == OP_TEXT:
            count, _, size = payload.decode("ascii").partition(" ")
            self.bursts.append([int(count), int(size)])
            if len(self.bursts) == 1:
                self.flush(out)
                out.clear()
                self.pump()

    def payload_skipped(self) -> None:
        if self.skip_ends_message and self.transport is not None:
            self.transport.write(OK_FRAME)

    def flush(self, out: list[bytes]) -> None:
        if out and self.transport is not None:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])

    def pump(self) -> None:
        """Write queued bursts until the transport asks us to pause."""
        while self.bursts and not self.paused and self.transport is not None:
            burst = self.bursts[0]
            one, chunk, per_chunk = push_frames(burst[1])
            if burst[0] >= per_chunk:
                self.transport.write(chunk)
                burst[0] -= per_chunk
            else:
                self.transport.write(one * burst[0])
                burst[0] = 0
            if not burst[0]:
                self.bursts.popleft()

    def fail(self) -> None:
        assert self.transport is not None
        self.transport.write(frame(OP_CLOSE, CLOSE_PROTOCOL_ERROR))
        self.transport.close()
        self.closing = True


async def serve() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Connection, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    await stop
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this core")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    # Scenario E holds a thousand connections open at once.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.loop != "asyncio":
        try:
            import uvloop  # noqa: PLC0415 (optional)
        except ImportError:
            if args.loop == "uvloop":
                raise
        else:
            uvloop.run(serve())
            return
    asyncio.run(serve())


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
