"""Blobs through a WebSocket: large received binary messages spooled to a temporary file in
"blob" mode, and send(Blob) keeping its place among later sends even when its bytes live in
a file."""

from __future__ import annotations

import asyncio
import gc

from websockets.asyncio.server import ServerConnection, serve

from wsapi import Blob, MessageEvent, UserAgent, WebSocket
from wsapi.blob import SPOOL_THRESHOLD
from wsapi.echo import start_echo_server

AGENT = UserAgent(proxy=None)


async def test_large_binary_message_arrives_as_a_spooled_blob() -> None:
    """A binary message above the spool threshold becomes a file-backed Blob with the same
    bytes; a small one stays in memory."""
    big = bytes(range(256)) * (SPOOL_THRESHOLD // 256 + 1)
    async with await start_echo_server() as server, WebSocket(server.url, agent=AGENT) as ws:
        received: list[Blob] = []
        done = asyncio.get_running_loop().create_future()

        def on_message(event: MessageEvent) -> None:
            assert isinstance(event.data, Blob)
            received.append(event.data)
            if len(received) == 2:
                done.set_result(None)

        ws.onmessage = on_message
        ws.send(b"small")
        ws.send(big)
        await done
    small_blob, big_blob = received
    assert not small_blob._file_backed
    assert big_blob._file_backed
    assert big_blob.size == len(big)
    assert await big_blob.arrayBuffer() == big
    assert await small_blob.text() == "small"


async def test_send_blob_keeps_its_place_among_later_sends() -> None:
    """A file-backed Blob sent between two strings arrives between them, and bufferedAmount
    counted it at once."""
    content = b"b" * (SPOOL_THRESHOLD + 10)
    blob = Blob._spooled(content)
    assert blob._file_backed
    async with await start_echo_server() as server, WebSocket(server.url, agent=AGENT) as ws:
        ws.binaryType = "arraybuffer"
        received: list[object] = []
        done = asyncio.get_running_loop().create_future()

        def on_message(event: MessageEvent) -> None:
            received.append(event.data)
            if len(received) == 3:
                done.set_result(None)

        ws.onmessage = on_message
        ws.send("first")
        ws.send(blob)
        ws.send("third")
        assert ws.bufferedAmount == len("first") + len(content) + len("third")
        await done
    assert received == ["first", content, "third"]
    del blob
    gc.collect()


async def test_close_after_a_pending_blob_sends_the_blob_first() -> None:
    """close() right after send(file-backed Blob): the server gets the Blob, then the Close."""
    content = b"c" * (SPOOL_THRESHOLD + 1)
    server_got: list[object] = []

    async def handler(connection: ServerConnection) -> None:
        async for message in connection:
            server_got.append(len(message))
        server_got.append(("close", connection.close_code, connection.close_reason))

    async with serve(handler, "127.0.0.1", 0, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        ws = WebSocket(f"ws://127.0.0.1:{port}/", agent=AGENT)
        await ws.opened
        ws.send(Blob._spooled(content))
        ws.close(1000, "after the blob")
        assert ws.readyState == WebSocket.CLOSING
        event = await ws.closed
        while len(server_got) < 2:
            await asyncio.sleep(0.01)
    assert (event.code, event.reason, event.wasClean) == (1000, "after the blob", True)
    assert server_got == [len(content), ("close", 1000, "after the blob")]
