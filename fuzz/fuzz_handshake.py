"""Fuzz target: the opening handshake's response reader (``protocol/handshake.py``): the
plain-101 fast reader, h11's path, and the RFC 6455 checks, on both builds.

Input: byte 0 chooses the request (bit 0: offer permessage-deflate; bit 1: ask for the
subprotocols ``chat`` and ``superchat``; bit 2: end of stream after the bytes); byte 1 the
number N of chunk sizes that follow (0-31); then the server's response, in which
``{ACCEPT}`` stands for the right ``Sec-WebSocket-Accept`` value (each run uses one fixed key).

Invariants:

- the engine never raises on the response, and ends in the same events on both builds,
  whether the response comes in one piece or in chunks;
- the compiled ``read_plain_head`` and its Python twin agree on every prefix;
- a head the fast reader takes is one h11 reads the same (status, reason, headers, the
  bytes after it), and a head it waits on is one h11 waits on too;
- the reader holds bounded memory: a connection still waiting has been sent no more than
  the head's and the refusal body's bounds allow, and a refusal keeps at most
  ``MAX_REFUSAL_BODY_SIZE`` bytes of its body.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import chunks, instrumented, pure_copy, run

with instrumented(__name__ == "__main__"):
    # (The pure_ modules: the pure-Python build, beside the compiled one.)
    import h11

    import wsapi.protocol.engine as compiled_engine
    import wsapi.protocol.handshake as compiled_handshake
    from wsapi.protocol.constants import MAX_HANDSHAKE_RESPONSE_SIZE
    from wsapi.protocol.handshake import (
        MAX_REFUSAL_BODY_SIZE,
        accept_value,
        build_request,
    )

    pure_engine = pure_copy("wsapi.protocol.engine")
    pure_handshake = pure_copy("wsapi.protocol.handshake")


__all__ = ["check"]

PLACEHOLDER = b"{ACCEPT}"

_H11_DETAIL = re.compile(r"(?<=not valid HTTP/1\.1: ).*", re.DOTALL)


def _outcome(module: ModuleType, options: int, response: bytes, cuts: bytes | None) -> Any:
    """Feed the response to an engine of ``module``, in chunks (``cuts``, or one piece for
    None): its events but the ``RefusalBodyExpected`` ones (when they come depends on the
    chunks)."""
    # One key for every run, so that every run reads the same bytes: the accept value may
    # land anywhere in a mutated input (a header's value, a frame after the head). (Each
    # build has its own handshake module: the one whose build_request this engine calls.)
    with mock.patch.dict(module.build_request.__globals__, {"random_bytes": bytes}):
        engine = module.ClientConnection(
            "example.test",
            "/chat",
            protocols=("chat", "superchat") if options & 2 else (),
            compression="deflate" if options & 1 else None,
        )
    response = response.replace(PLACEHOLDER, accept_value(engine.request.key).encode())
    pieces = [response] if cuts is None else list(chunks(response, cuts))
    received = 0
    events: list[tuple[object, ...]] = []
    for piece in pieces:
        engine.receive_data(piece)
        received += len(piece)
        _drain(engine, events)
    if options & 4:
        engine.receive_eof()
        _drain(engine, events)
    if engine.state == module.State.CONNECTING:
        # Still waiting: only a head within its bound and a body within its own.
        bound = 2 * MAX_HANDSHAKE_RESPONSE_SIZE + MAX_REFUSAL_BODY_SIZE
        assert received <= bound + len(pieces[-1] if pieces else b""), received
        assert not events, events
    return events


def _loose(events: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """The events without the detail of h11's message (what it names as the bad line
    depends on what had arrived)."""
    return [
        (event[0], _H11_DETAIL.sub("", event[1]), *event[2:])
        if event[0] == "Failed" and isinstance(event[1], str)
        else event
        for event in events
    ]


def _drain(engine: Any, events: list[tuple[object, ...]]) -> None:
    while (event := engine.next_event()) is not None:
        name = type(event).__name__
        if name == "Opened":
            events.append((name, event.protocol, event.extensions, event.headers))
        elif name == "Failed":
            assert len(event.body) <= MAX_REFUSAL_BODY_SIZE
            events.append((name, event.reason, event.kind, event.status_code, event.headers))
            events.append(("body", event.body))
        elif name != "RefusalBodyExpected":
            # Frames after the 101 in the same read: messages or control events.
            events.append((name, repr(event)))


def _h11_reads(data: bytes) -> Any:
    """What h11 makes of ``data`` as the answer to a WebSocket request: the response and
    the bytes after its head, ``h11.NEED_DATA``, or None for an error."""
    connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HANDSHAKE_RESPONSE_SIZE)
    connection.send(build_request("example.test", "/").event)
    try:
        connection.receive_data(data)
        event = connection.next_event()
    except h11.RemoteProtocolError:
        return None
    if event is h11.NEED_DATA:
        return event
    if isinstance(event, (h11.InformationalResponse, h11.Response)):
        headers = tuple(
            (name.decode("ascii").lower(), value.decode("latin-1"))
            for name, value in event.headers
        )
        response = (event.status_code, event.reason.decode("latin-1"), headers)
        return response, bytes(connection.trailing_data[0])
    return None


def _check_plain(pure: ModuleType, data: bytes) -> None:
    """The fast reader's twins agree, and agree with h11."""
    plain = pure._read_plain_head_py(data)
    fast = compiled_handshake._read_plain_head(data)
    if isinstance(plain, bool):
        assert fast is plain, (fast, plain)
    else:
        assert not isinstance(fast, bool), (fast, plain)
        assert (fast[0].reason, fast[0].headers, fast[1]) == (
            plain[0].reason,
            plain[0].headers,
            plain[1],
        )
    if plain is False:
        return  # h11 reads it: nothing to compare.
    h11_result = _h11_reads(data)
    if plain is True:
        assert h11_result is h11.NEED_DATA, ("the fast reader waits, h11 does not", h11_result)
        return
    response, size = plain
    assert h11_result not in (None, h11.NEED_DATA), ("h11 refuses a plain 101", data[:size])
    (status, reason, headers), trailing = h11_result
    assert (status, reason, headers) == (101, response.reason, response.headers), (
        h11_result,
        response,
    )
    assert trailing == data[size:]


def check(data: bytes) -> None:
    """Run ``data`` through the readers; assert the invariants above."""
    if len(data) < 2:
        return
    options, count = data[0], data[1] & 31
    response, cuts = data[2 + count :], data[2 : 2 + count]
    seen = b""
    for piece in chunks(response, cuts):
        seen += piece
        _check_plain(pure_handshake, seen)
    whole = _outcome(pure_engine, options, response, None)
    pure = _outcome(pure_engine, options, response, cuts)
    fast = _outcome(compiled_engine, options, response, cuts)
    assert fast == pure, (fast, pure)
    # In one piece or in chunks: the same outcome.
    assert _loose(pure) == _loose(whole), (pure, whole)


def main() -> None:
    run(check)


if __name__ == "__main__":
    main()
