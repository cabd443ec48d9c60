"""WebSocketStream scenarios: the same steps in Chromium's WebSocketStream (runner.js's
``runStreamScenario``) and in wsapi's (stream_runner.py), against the same peer.

Steps: ``construct`` (url, protocols), ``opened``, ``write`` (data), ``read`` (count),
``close`` (closeCode, reason), ``cancel`` and ``abort`` (reason: None, a WebSocketError's
fields, or ``plain`` for an object with the same fields), ``writerClose``, ``sleep``; the
runner then awaits ``closed``. Every step logs its outcome.
"""

from __future__ import annotations

from typing import Any

from .compare import Change, Difference
from .data import Data, binary, text
from .peers import (
    AwaitClose,
    CloseWith,
    Pause,
    RawPeer,
    ReadRequest,
    Receive,
    Reset,
    Send,
    Shut,
    WsPeer,
)
from .scenario import Scenario, Step
from .scenarios import TIMING_REQUEST_BEFORE_CLOSE, close_frame, raw_after_open, refuse


def construct(url: str = "ws://{host}/", protocols: list[str] | None = None) -> Step:
    step: Step = {"op": "construct", "url": url}
    if protocols is not None:
        step["protocols"] = protocols
    return step


OPENED: Step = {"op": "opened"}


def write(data: Data) -> Step:
    return {"op": "write", "data": data}


def read(count: int = 1) -> Step:
    return {"op": "read", "count": count}


def close(**info: object) -> Step:
    return {"op": "close", **info}


def cancel(reason: dict[str, Any] | None = None) -> Step:
    return {"op": "cancel", "reason": reason}


def abort(reason: dict[str, Any] | None = None) -> Step:
    return {"op": "abort", "reason": reason}


WRITER_CLOSE: Step = {"op": "writerClose"}


def stream(
    name: str,
    doc: str,
    peer: WsPeer | RawPeer,
    *steps: Step,
    differences: tuple[Difference, ...] = (),
) -> Scenario:
    return Scenario(f"stream-{name}", doc, peer, tuple(steps), differences)


def chromium_arraybuffer(*hexes: str) -> Difference:
    """Chromium 156 reads a binary message as an ArrayBuffer, the proposal's earlier text;
    the current one (and WPT's read-type test) says Uint8Array, which wsapi's bytes are."""
    return Difference(
        "chromium-stream-arraybuffer",
        "Chromium reads binary messages as ArrayBuffer; the proposal says Uint8Array",
        tuple(
            Change(
                "client",
                {"step": "read", "value": {"kind": "Uint8Array", "hex": value}},
                {"value": {"kind": "ArrayBuffer", "hex": value}},
            )
            for value in hexes
        ),
    )


ECHO = WsPeer()

STREAM_SCENARIOS: list[Scenario] = [
    stream(
        "echo",
        "text is read as a string and binary as bytes, in order; close() with a code",
        ECHO,
        construct(),
        OPENED,
        write(text("hello")),
        write(binary(b"\x00\x01\xff")),
        read(2),
        close(closeCode=4000, reason="done"),
        differences=(chromium_arraybuffer("0001ff"),),
    ),
    stream(
        "protocol",
        "the subprotocol the server selects is in the open info",
        WsPeer(subprotocols=("chat",)),
        construct(protocols=["other", "chat"]),
        OPENED,
        close(),
    ),
    stream(
        "close-reason-only",
        "close() with a reason and no code sends 1000",
        ECHO,
        construct(),
        OPENED,
        close(reason="bye"),
    ),
    stream(
        "close-invalid",
        "close() with 1001 or an overlong reason throws, then an empty close works",
        ECHO,
        construct(),
        OPENED,
        close(closeCode=1001),
        close(reason="." * 124),
        close(),
    ),
    stream(
        "cancel-websocketerror",
        "cancelling the readable with a WebSocketError sends its code and reason",
        ECHO,
        construct(),
        OPENED,
        cancel({"closeCode": 3333, "reason": "set"}),
    ),
    stream(
        "abort-plain-object",
        "aborting the writable with a plain object sends no code",
        ECHO,
        construct(),
        OPENED,
        abort({"plain": True, "closeCode": 3333, "reason": "obsolete"}),
    ),
    stream(
        "writer-close",
        "writer.close() closes with an empty Close frame and resolves at the end",
        ECHO,
        construct(),
        OPENED,
        write(text("last")),
        WRITER_CLOSE,
    ),
    stream(
        "server-close",
        "the server's messages, then its close code and reason; then the readable is done",
        WsPeer(script=(Send(text("one")), Send(binary(b"\x02")), CloseWith(4000, "robot"))),
        construct(),
        OPENED,
        read(3),
        write(text("late")),
        differences=(chromium_arraybuffer("02"),),
    ),
    stream(
        "server-close-no-body",
        "a Close frame without a body closes with 1005",
        raw_after_open(close_frame(), then=(AwaitClose(reply=False), Shut())),
        construct(),
        OPENED,
    ),
    stream(
        "abrupt",
        "a reset connection rejects closed with a WebSocketError 1006 and errors the readable",
        raw_after_open(then=(Pause(0.1), Reset())),
        construct(),
        OPENED,
        read(),
    ),
    stream(
        "refused",
        "a 404 rejects opened and closed",
        refuse(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        construct(),
        OPENED,
    ),
    stream(
        "close-while-connecting",
        "close() during the handshake rejects opened and closed",
        RawPeer((ReadRequest(), Pause(0.5), Shut())),
        construct(),
        close(closeCode=4000),
        OPENED,
        differences=(TIMING_REQUEST_BEFORE_CLOSE,),
    ),
    stream(
        "receive-count",
        "the server's messages are read one by one, in order",
        WsPeer(script=(Receive(1), *(Send(text(f"m{i}")) for i in range(5)), CloseWith())),
        construct(),
        OPENED,
        write(text("go")),
        read(6),
    ),
]
