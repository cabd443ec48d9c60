"""The peers a scenario talks to, as data, and their logs of what they received.

``WsPeer`` is the ``websockets`` library's server (a real, independent implementation) for
well-behaved peers. ``RawPeer`` is an asyncio server that runs a script of byte-level actions
on each connection, for the misbehaving ones: a handshake that lies, frames a server must not
send, a TCP connection cut at the wrong time.

Both log what they received, in the "server" half of a parity log:
``{"conn": n, "request": path, "protocols": ..., "offer": ...}`` for the handshake request
(``Sec-WebSocket-Protocol`` and ``Sec-WebSocket-Extensions``, ``None`` when absent),
``{"conn": n, "message": data}`` for each message, ``{"conn": n, "close": code, "reason":
reason}`` for a Close frame (``"close": None`` for one without a body), and ``ping`` /
``pong`` with their payload in hex.
The other request headers (User-Agent, Origin, Accept-Language, ...) are a browser's own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from .data import Data, describe_bytes, describe_text, message_data

Entry = dict[str, Any]

HOST = "127.0.0.1"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
RECORD_TIMEOUT = 5.0
"""How long a raw peer keeps reading after its script, waiting for the client to close."""


# --- The websockets server --------------------------------------------------------------------


@dataclass(frozen=True)
class Echo:
    """Send every message back, until the connection closes."""


@dataclass(frozen=True)
class Send:
    """Send one message."""

    data: Data


@dataclass(frozen=True)
class Receive:
    """Wait for ``count`` messages (logged)."""

    count: int = 1


@dataclass(frozen=True)
class CloseWith:
    """Start the closing handshake (``websockets`` refuses codes a server may not send)."""

    code: int = 1000
    reason: str = ""


@dataclass(frozen=True)
class Pause:
    seconds: float


WsAction = Echo | Send | Receive | CloseWith | Pause


@dataclass(frozen=True)
class WsPeer:
    """The ``websockets`` server running ``script``, then logging messages until the
    connection closes."""

    script: tuple[WsAction, ...] = (Echo(),)
    subprotocols: tuple[str, ...] | None = None
    compression: str | None = "deflate"
    """``"deflate"`` (the library's default) negotiates permessage-deflate when offered."""


# --- The raw server ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Accept:
    """A 101 response to the request read: correct unless told otherwise."""

    extra: bytes = b""
    """More header lines, each ending in CRLF."""
    key: bytes | None = None
    """A Sec-WebSocket-Accept value instead of the right one."""
    omit: tuple[str, ...] = ()
    """Header names left out (``"Upgrade"``, ``"Connection"``, ``"Sec-WebSocket-Accept"``)."""
    status: bytes = b"HTTP/1.1 101 Switching Protocols"


@dataclass(frozen=True)
class Frame:
    """An unmasked frame, as a server sends it."""

    opcode: int
    payload: bytes = b""
    fin: bool = True
    rsv: int = 0
    """The RSV bits, 0-7."""


@dataclass(frozen=True)
class ReadRequest:
    """Read the handshake request (logged)."""


@dataclass(frozen=True)
class Write:
    """Write these pieces in one call (so, on loopback, in one TCP segment)."""

    pieces: tuple[bytes | Accept | Frame, ...]

    def __init__(self, *pieces: bytes | Accept | Frame) -> None:
        object.__setattr__(self, "pieces", pieces)


@dataclass(frozen=True)
class AwaitClose:
    """Read (and log) frames until a Close arrives; with ``reply``, send it back."""

    reply: bool = True


@dataclass(frozen=True)
class EchoFrames:
    """Echo data frames as they come, answer Pings, reply to a Close and shut TCP."""


@dataclass(frozen=True)
class Record:
    """Read (and log) frames for ``seconds``, or until the client closes TCP."""

    seconds: float


@dataclass(frozen=True)
class Shut:
    """Close TCP (FIN) and end the script."""


@dataclass(frozen=True)
class Reset:
    """Reset TCP (RST: SO_LINGER 0) and end the script."""


RawAction = ReadRequest | Write | AwaitClose | EchoFrames | Record | Pause | Shut | Reset


@dataclass(frozen=True)
class RawPeer:
    """A raw TCP server running ``script`` on every connection; after the script it logs
    frames until the client closes TCP (at most ``RECORD_TIMEOUT``), then closes."""

    script: tuple[RawAction, ...]


@dataclass(frozen=True)
class NoPeer:
    """A port of 127.0.0.1 where nothing listens: the connection is refused."""


Peer = WsPeer | RawPeer | NoPeer


# --- Running peers ----------------------------------------------------------------------------


@dataclass
class RunningPeer:
    """A peer listening on 127.0.0.1; ``log`` is what it received since ``take_log()``."""

    host: str = ""
    """``127.0.0.1:PORT``."""
    log: list[Entry] = field(default_factory=list)
    connections: int = 0
    active: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def begin(self) -> int:
        self.active += 1
        self.idle.clear()
        self.connections += 1
        return self.connections - 1

    def end(self) -> None:
        self.active -= 1
        if not self.active:
            self.idle.set()

    def record(self, conn: int, **entry: Any) -> None:
        self.log.append({"conn": conn, **entry})

    async def quiet(self, timeout: float) -> bool:
        """Wait until no connection is being handled; False after ``timeout``."""
        if not self.active:
            return True
        try:
            await asyncio.wait_for(self.idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def take_log(self) -> list[Entry]:
        """The log so far; the next one starts empty, with connections counted from 0."""
        log, self.log = self.log, []
        self.connections = 0
        return log


@asynccontextmanager
async def running(peer: Peer) -> AsyncIterator[RunningPeer]:
    """Start ``peer`` on a free port of 127.0.0.1."""
    if isinstance(peer, WsPeer):
        async with _run_ws_peer(peer) as state:
            yield state
    elif isinstance(peer, NoPeer):
        state = RunningPeer()
        state.idle.set()
        # A port the system just gave out and nobody took again: refused.
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            state.host = f"{HOST}:{probe.getsockname()[1]}"
        yield state
    else:
        async with _run_raw_peer(peer) as state:
            yield state


@asynccontextmanager
async def _run_ws_peer(peer: WsPeer) -> AsyncIterator[RunningPeer]:
    state = RunningPeer()
    state.idle.set()

    async def handle(connection: ServerConnection) -> None:
        conn = state.begin()
        try:
            headers = connection.request.headers if connection.request else None
            state.record(
                conn,
                request=connection.request.path if connection.request else None,
                protocols=_header(headers, "Sec-WebSocket-Protocol"),
                offer=_header(headers, "Sec-WebSocket-Extensions"),
            )
            with contextlib.suppress(ConnectionClosed):
                for action in peer.script:
                    if isinstance(action, Echo):
                        async for message in connection:
                            state.record(conn, message=_describe(message))
                            await connection.send(message)
                    elif isinstance(action, Send):
                        await connection.send(message_data(action.data))
                    elif isinstance(action, Receive):
                        for _ in range(action.count):
                            state.record(conn, message=_describe(await connection.recv()))
                    elif isinstance(action, CloseWith):
                        await connection.close(action.code, action.reason)
                    else:
                        await asyncio.sleep(action.seconds)
                async for message in connection:
                    state.record(conn, message=_describe(message))
            await connection.wait_closed()
            received = connection.protocol.close_rcvd
            if received is not None and received.code == 1005:
                state.record(conn, close=None)  # websockets' code for a Close without a body
            elif received is not None:
                state.record(conn, close=received.code, reason=received.reason)
        finally:
            state.end()

    subprotocols = None
    if peer.subprotocols is not None:
        subprotocols = [Subprotocol(name) for name in peer.subprotocols]
    async with serve(
        handle,
        HOST,
        0,
        subprotocols=subprotocols,
        compression=peer.compression,
        max_size=None,
        ping_interval=None,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        state.host = f"{HOST}:{port}"
        yield state


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    values = headers.get_all(name)
    return ", ".join(values) if values else None


def _describe(message: str | bytes) -> dict[str, Any]:
    if isinstance(message, str):
        return describe_text(message)
    return describe_bytes({"kind": "binary"}, message)


@asynccontextmanager
async def _run_raw_peer(peer: RawPeer) -> AsyncIterator[RunningPeer]:
    state = RunningPeer()
    state.idle.set()
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = state.begin()
        session = _RawSession(state, conn, reader, writer)
        try:
            await session.run(peer.script)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            state.end()

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(handle(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(on_connect, HOST, 0)
    state.host = f"{HOST}:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


class _RawSession:
    """One connection to a RawPeer."""

    def __init__(
        self,
        state: RunningPeer,
        conn: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.state = state
        self.conn = conn
        self.reader = reader
        self.writer = writer
        self.request = b""
        self.fragments: list[bytes] = []
        self.fragment_opcode = 0

    async def run(self, script: tuple[RawAction, ...]) -> None:
        for action in script:
            if isinstance(action, ReadRequest):
                self.request = await self.reader.readuntil(b"\r\n\r\n")
                self._record_request()
            elif isinstance(action, Write):
                self.writer.write(b"".join(self._render(piece) for piece in action.pieces))
                await self.writer.drain()
            elif isinstance(action, AwaitClose):
                while True:
                    opcode, _, payload = await self._read_frame()
                    if opcode == 0x8:
                        if action.reply:
                            await self._send(Frame(0x8, payload))
                        break
            elif isinstance(action, EchoFrames):
                while True:
                    opcode, fin, payload = await self._read_frame()
                    if opcode == 0x9:
                        await self._send(Frame(0xA, payload))
                    elif opcode == 0x8:
                        await self._send(Frame(0x8, payload))
                        return
                    elif opcode != 0xA:
                        await self._send(Frame(opcode, payload, fin=fin))
            elif isinstance(action, Record):
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._read_until_eof(), action.seconds)
            elif isinstance(action, Pause):
                await asyncio.sleep(action.seconds)
            elif isinstance(action, Shut):
                return
            else:
                sock = self.writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.writer.transport.abort()
                return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._read_until_eof(), RECORD_TIMEOUT)

    def _record_request(self) -> None:
        head = self.request.decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                headers.setdefault(name.strip().lower(), []).append(value.strip())

        def header(name: str) -> str | None:
            values = headers.get(name.lower())
            return ", ".join(values) if values else None

        self.state.record(
            self.conn,
            request=parts[1] if len(parts) > 1 else None,
            protocols=header("Sec-WebSocket-Protocol"),
            offer=header("Sec-WebSocket-Extensions"),
        )

    def _render(self, piece: bytes | Accept | Frame) -> bytes:
        if isinstance(piece, bytes):
            return piece
        if isinstance(piece, Frame):
            return _frame_bytes(piece)
        match = re.search(rb"(?i)sec-websocket-key:\s*(\S+)", self.request)
        key = match.group(1) if match else b""
        accept = piece.key or base64.b64encode(hashlib.sha1(key + GUID).digest())
        headers = [
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Accept", accept),
        ]
        lines = [piece.status]
        lines += [
            name + b": " + value for name, value in headers if name.decode() not in piece.omit
        ]
        return b"\r\n".join(lines) + b"\r\n" + piece.extra + b"\r\n"

    async def _send(self, frame: Frame) -> None:
        self.writer.write(_frame_bytes(frame))
        await self.writer.drain()

    async def _read_until_eof(self) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                await self._read_frame()

    async def _read_frame(self) -> tuple[int, bool, bytes]:
        """One client frame, unmasked; messages and control frames are logged."""
        first, second = await self.reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(await self.reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await self.reader.readexactly(8), "big")
        mask = await self.reader.readexactly(4) if second & 0x80 else b"\0\0\0\0"
        masked = await self.reader.readexactly(length)
        payload = _unmask(masked, mask)
        fin, opcode = bool(first & 0x80), first & 0x0F
        self._log_frame(opcode, fin, payload)
        return opcode, fin, payload

    def _log_frame(self, opcode: int, fin: bool, payload: bytes) -> None:
        record = self.state.record
        if opcode in (0x1, 0x2):
            self.fragment_opcode, self.fragments = opcode, []
        if opcode in (0x0, 0x1, 0x2):
            self.fragments.append(payload)
            if fin:
                data = b"".join(self.fragments)
                if self.fragment_opcode == 0x1:
                    message = describe_text(data.decode("utf-8", "surrogateescape"))
                else:
                    message = describe_bytes({"kind": "binary"}, data)
                record(self.conn, message=message)
        elif opcode == 0x8:
            if len(payload) >= 2:
                code = int.from_bytes(payload[:2], "big")
                record(self.conn, close=code, reason=payload[2:].decode("utf-8", "replace"))
            else:
                record(self.conn, close=None if not payload else {"hex": payload.hex()})
        elif opcode == 0x9:
            record(self.conn, ping=payload.hex())
        elif opcode == 0xA:
            record(self.conn, pong=payload.hex())
        else:
            record(self.conn, frame=opcode, hex=payload.hex())


def _unmask(data: bytes, mask: bytes) -> bytes:
    if not data:
        return data
    key = int.from_bytes(mask * (len(data) // 4 + 1), "little")
    value = int.from_bytes(data, "little") ^ (key & ((1 << (8 * len(data))) - 1))
    return value.to_bytes(len(data), "little")


def _frame_bytes(frame: Frame) -> bytes:
    first = (0x80 if frame.fin else 0) | (frame.rsv << 4) | frame.opcode
    n = len(frame.payload)
    if n < 126:
        header = bytes([first, n])
    elif n < 65536:
        header = bytes([first, 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([first, 127]) + n.to_bytes(8, "big")
    return header + frame.payload
