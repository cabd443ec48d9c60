"""The embedded echo server: a real WebSocket server on 127.0.0.1 for the command line's
no-URL mode, examples and tests.

It runs on the ``websockets`` library rather than on wsapi's own engine on purpose: the
engine is a client, and an independent server implementation means the default demo (and
every test that uses it) exercises two implementations of RFC 6455 talking to each other,
not one implementation agreeing with itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from .protocol.constants import MAX_MESSAGE_SIZE

__all__ = ["EchoServer", "start_echo_server"]


class EchoServer:
    """A running echo server; ``url`` is where to connect."""

    def __init__(self, server: Server) -> None:
        self._server = server
        socket = next(iter(server.sockets))
        self.host, self.port = socket.getsockname()[:2]

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    async def close(self) -> None:
        """Stop accepting, close open connections (1001) and wait until all is done."""
        self._server.close()
        await self._server.wait_closed()

    async def __aenter__(self) -> EchoServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def _echo(connection: ServerConnection) -> None:
    try:
        async for message in connection:
            await connection.send(message)
    except ConnectionClosed:
        pass


def _select_subprotocol(
    connection: ServerConnection, subprotocols: Sequence[Subprotocol]
) -> Subprotocol | None:
    # Accept the client's first choice, so that any requested subprotocol works.
    return subprotocols[0] if subprotocols else None


async def start_echo_server(host: str = "127.0.0.1", port: int = 0) -> EchoServer:
    """Start an echo server (port 0: a free port) that answers every message with itself."""
    server = await serve(
        _echo,
        host,
        port,
        select_subprotocol=_select_subprotocol,
        compression=None,
        max_size=MAX_MESSAGE_SIZE,
    )
    return EchoServer(server)
