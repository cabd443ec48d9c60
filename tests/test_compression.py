"""permessage-deflate against a real, independent implementation: the websockets library's
server, over TCP on 127.0.0.1, compression in both directions, for messages of 0 bytes to
16 MiB, with the server's default parameters and with the ones it can be made to ask for.

The engine is driven through ``ConnectionPump`` directly (``ClientConnection(...,
compression="deflate")``), so these tests do not depend on how the agent is wired."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import cast

import pytest
from websockets.asyncio.server import serve
from websockets.extensions.base import ServerExtensionFactory
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

from servers import echo
from support import TIMEOUT, Recorder, send
from wsapi.protocol.engine import ClientConnection
from wsapi.pump import ConnectionPump

MiB = 1024 * 1024
SIZES = [0, 1, 127, 128, 129, 1000, 65535, 65536, 1 * MiB, 16 * MiB]


class CountingConnection(ClientConnection):
    """The engine, counting the bytes it reads and writes (to see compression on the wire)."""

    received_bytes = 0
    sent_bytes = 0

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        self.received_bytes += len(data)
        super().receive_data(data)

    def data_to_send(self) -> list[bytes]:
        output = super().data_to_send()
        self.sent_bytes += sum(len(chunk) for chunk in output)
        return output


@asynccontextmanager
async def deflate_server(
    extensions: Sequence[ServerExtensionFactory] | None = None,
) -> AsyncIterator[int]:
    """A websockets echo server with permessage-deflate; yields its port."""
    options: dict[str, object] = {"max_size": 32 * MiB}
    if extensions is not None:
        options["extensions"] = extensions
        options["compression"] = None
    async with serve(echo, "127.0.0.1", 0, **options) as server:  # type: ignore[arg-type]
        yield next(iter(server.sockets)).getsockname()[1]


async def open_client(
    port: int, *, max_message_size: int = 64 * MiB
) -> tuple[ConnectionPump, Recorder, CountingConnection]:
    """Connect an engine offering permessage-deflate; wait for the open."""
    engine = CountingConnection(
        f"127.0.0.1:{port}", "/", compression="deflate", max_message_size=max_message_size
    )
    recorder = Recorder()
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(
        # (A buffered protocol without subclassing asyncio's.)
        lambda: cast(
            asyncio.BaseProtocol, ConnectionPump(engine, recorder, close_timeout=10 * TIMEOUT)
        ),
        "127.0.0.1",
        port,
    )
    transport = cast(ConnectionPump, protocol)
    recorder.transport = transport
    await asyncio.wait_for(recorder.opened, 10 * TIMEOUT)
    return transport, recorder, engine


async def wait_messages(recorder: Recorder, count: int) -> list[str | bytes]:
    """The first ``count`` messages received, waiting for them."""

    async def wait() -> None:
        while len([kind for kind in recorder.kinds() if kind == "message"]) < count:
            assert "failure" not in recorder.kinds(), recorder.log
            await asyncio.sleep(0.005)

    await asyncio.wait_for(wait(), 30 * TIMEOUT)
    return [
        value
        for kind, value in recorder.log
        if kind == "message" and isinstance(value, (str, bytes))
    ][:count]


def compressible_text(size: int) -> str:
    """Text of ``size`` characters (ASCII, so as many bytes) that deflate shrinks well."""
    rng = random.Random(size)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"]
    text = " ".join(rng.choice(words) for _ in range(size // 4 + 1))
    return text[:size]


def mixed_binary(size: int) -> bytes:
    """Binary data of ``size`` bytes: random halves and repeated halves."""
    rng = random.Random(size + 1)
    half = rng.randbytes(size // 2)
    return (half + half[: size // 4] * 2 + b"\x00" * 4)[:size]


async def test_default_server_round_trips_all_sizes_both_ways() -> None:
    """With the websockets server's defaults (12-bit windows), text and binary messages of 0
    bytes to 16 MiB come back intact, compressed on the wire in both directions."""
    async with deflate_server() as port:
        transport, recorder, engine = await open_client(port)
        assert engine.extensions.startswith("permessage-deflate")
        assert engine.deflate is not None
        messages: list[str | bytes] = []
        for size in SIZES:
            messages.append(compressible_text(size))
            messages.append(mixed_binary(size))
        for message in messages:
            send(transport, message)
        received = await wait_messages(recorder, len(messages))
        assert [type(m) for m in received] == [type(m) for m in messages]
        assert received == messages
        total = sum(len(m) for m in messages)
        # Both directions were compressed: far fewer bytes on the wire than the payloads.
        assert engine.sent_bytes < total * 0.6
        assert engine.received_bytes < total * 0.6
        transport.start_the_closing_handshake(1000, "done")
        assert await recorder.closed == (True, 1000, "done")


@pytest.mark.parametrize(
    "factory",
    [
        pytest.param(
            ServerPerMessageDeflateFactory(
                server_no_context_takeover=True, client_no_context_takeover=True
            ),
            id="no-context-takeover",
        ),
        pytest.param(
            ServerPerMessageDeflateFactory(server_max_window_bits=9, client_max_window_bits=9),
            id="9-bit-windows",
        ),
        pytest.param(
            ServerPerMessageDeflateFactory(server_max_window_bits=15, client_max_window_bits=15),
            id="15-bit-windows",
        ),
        pytest.param(
            ServerPerMessageDeflateFactory(
                server_max_window_bits=10,
                client_max_window_bits=11,
                server_no_context_takeover=True,
                compress_settings={"memLevel": 1},
            ),
            id="mixed",
        ),
    ],
)
async def test_negotiated_parameters_round_trip(factory: ServerPerMessageDeflateFactory) -> None:
    """Whatever parameters the server asks for, repeated and varied messages up to 1 MiB
    come back intact, and ``extensions`` says what was agreed."""
    async with deflate_server([factory]) as port:
        transport, recorder, engine = await open_client(port)
        assert engine.deflate is not None
        params = engine.deflate.params
        assert engine.extensions == params.extension
        messages: list[str | bytes] = []
        for size in (0, 200, 5000, 70_000, 1 * MiB):
            messages += [compressible_text(size), mixed_binary(size), compressible_text(size)]
        for message in messages:
            send(transport, message)
        assert await wait_messages(recorder, len(messages)) == messages
        transport.start_the_closing_handshake(1000)
        assert await recorder.closed == (True, 1000, "")


async def test_server_without_compression_leaves_it_off() -> None:
    """A server that does not do permessage-deflate gets uncompressed messages."""
    async with serve(echo, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        transport, recorder, engine = await open_client(port)
        assert (engine.extensions, engine.deflate) == ("", None)
        message = compressible_text(10_000)
        send(transport, message)
        assert await wait_messages(recorder, 1) == [message]
        assert engine.sent_bytes > 10_000
        transport.start_the_closing_handshake(1000)
        assert await recorder.closed == (True, 1000, "")


async def test_inflated_size_over_limit_fails_with_1009() -> None:
    """A compressed message that inflates past max_message_size fails the connection with
    1009 although its compressed size is far below the limit."""
    async with deflate_server() as port:
        transport, recorder, engine = await open_client(port, max_message_size=100_000)
        small = compressible_text(100_000)
        send(transport, small)
        assert await wait_messages(recorder, 1) == [small]
        engine_limit = engine.max_message_size
        big = compressible_text(engine_limit + 1)
        send(transport, big)
        closed = await asyncio.wait_for(recorder.closed, 10 * TIMEOUT)
        assert closed == (False, 1006, "")
        failure = recorder.failure()
        assert failure.kind == "protocol"
        assert engine.failure is not None
        assert engine.failure.close_code == 1009
