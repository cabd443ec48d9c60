"""The interface's constants and attributes: their initial values, which are read-only, and
event handler attributes."""

from __future__ import annotations

import pytest

from support import agent, close_and_wait, echo_server, open_socket, wait_opened
from wsapi import Event, WebSocket

# --- attributes ------------------------------------------------------------------------------


async def test_constants_on_class_and_instance() -> None:
    """CONNECTING, OPEN, CLOSING and CLOSED are 0-3 on the class and on instances."""
    assert (WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED) == (
        0,
        1,
        2,
        3,
    )
    async with echo_server() as server:
        ws = WebSocket(server.url, agent=agent())
        assert (ws.CONNECTING, ws.OPEN, ws.CLOSING, ws.CLOSED) == (0, 1, 2, 3)
        assert ws.readyState == ws.CONNECTING
        await wait_opened(ws)
        await close_and_wait(ws)


async def test_initial_attributes() -> None:
    """Before open: CONNECTING, empty protocol/extensions, bufferedAmount 0, binaryType blob."""
    async with echo_server() as server:
        ws = WebSocket(server.url, "chat", agent=agent())
        assert ws.readyState == WebSocket.CONNECTING
        assert ws.protocol == ""
        assert ws.extensions == ""
        assert ws.bufferedAmount == 0
        assert ws.binaryType == "blob"
        assert (ws.onopen, ws.onmessage, ws.onerror, ws.onclose) == (None, None, None, None)
        await wait_opened(ws)
        await close_and_wait(ws)


@pytest.mark.parametrize("name", ["url", "readyState", "bufferedAmount", "extensions", "protocol"])
async def test_read_only_attributes(name: str) -> None:
    """Assigning a read-only attribute raises AttributeError and changes nothing."""
    async with echo_server() as server:
        ws, _ = await open_socket(server.url, agent=agent())
        before = getattr(ws, name)
        with pytest.raises(AttributeError):
            setattr(ws, name, before)
        with pytest.raises(AttributeError):
            setattr(ws, name, 3)
        assert getattr(ws, name) == before
        await close_and_wait(ws)


async def test_non_callable_handler_is_stored_as_none() -> None:
    """An on* attribute set to a non-callable value reads back as None."""
    async with echo_server() as server:
        ws, _ = await open_socket(server.url, agent=agent())
        setattr(ws, "onmessage", "not callable")  # noqa: B010
        assert ws.onmessage is None

        def handler(_event: Event) -> None:
            pass

        ws.onerror = handler
        assert ws.onerror is handler
        setattr(ws, "onerror", 5)  # noqa: B010
        assert ws.onerror is None
        await close_and_wait(ws)
