"""Tests of the opening handshake: the request, the response reader and RFC 6455 4.1 checks."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import unittest.mock
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import TIMEOUT, Recorder, connect, raw_server, read_request
from wsapi.deadlines import deadlines_of
from wsapi.errors import ConnectionFailure, Headers
from wsapi.protocol import handshake
from wsapi.protocol.constants import MAX_HANDSHAKE_RESPONSE_SIZE
from wsapi.protocol.deflate import DeflateParameters
from wsapi.protocol.engine import ClientConnection
from wsapi.protocol.events import Failed, RefusalBodyExpected
from wsapi.protocol.handshake import (
    GUID,
    MAX_REFUSAL_BODY_SIZE,
    ExtensionElement,
    HandshakeError,
    HandshakeRequest,
    HandshakeResponse,
    ResponseReader,
    accept_value,
    build_request,
    parse_extension_list,
    validate_response,
)
from wsapi.pump import ConnectionPump
from wsapi.timers import REFUSAL_BODY_WAIT


def parse_request(data: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    """Split request bytes into method, target and headers (names as sent)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep
    assert rest == b""
    request_line, *lines = head.decode("ascii").split("\r\n")
    method, target, version = request_line.split(" ")
    assert version == "HTTP/1.1"
    headers = []
    for line in lines:
        name, _, value = line.partition(":")
        headers.append((name, value.strip()))
    return method, target, headers


def response_bytes(status_line: str, headers: Sequence[tuple[str, str]]) -> bytes:
    lines = [status_line, *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def good_headers(request: HandshakeRequest) -> list[tuple[str, str]]:
    return [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_value(request.key)),
    ]


def check(
    headers: Sequence[tuple[str, str]],
    *,
    protocols: Sequence[str] = (),
    status_line: str = "HTTP/1.1 101 Switching Protocols",
    request: HandshakeRequest | None = None,
) -> tuple[str, str, DeflateParameters | None] | HandshakeError:
    """Read ``headers`` as a response to a fresh request and validate it."""
    if request is None:
        request = build_request("example.com", "/chat", protocols=protocols)
    result = ResponseReader(request).receive(response_bytes(status_line, headers))
    assert result is not None
    if isinstance(result, HandshakeError):
        return result
    return validate_response(request, result)


def fresh(protocols: Sequence[str] = ()) -> HandshakeRequest:
    return build_request("example.com", "/chat", protocols=protocols)


# build_request


def test_build_request_headers() -> None:
    """The request is a GET of the resource with the RFC 6455 4.1 headers."""
    request = build_request("example.com:8080", "/chat?x=1")
    method, target, headers = parse_request(request.data)
    assert (method, target) == ("GET", "/chat?x=1")
    lower = {name.lower(): value for name, value in headers}
    assert len(lower) == len(headers)
    assert lower["host"] == "example.com:8080"
    assert lower["upgrade"].lower() == "websocket"
    assert "upgrade" in [t.strip().lower() for t in lower["connection"].split(",")]
    assert lower["sec-websocket-key"] == request.key
    assert lower["sec-websocket-version"] == "13"
    assert "sec-websocket-protocol" not in lower
    assert "sec-websocket-extensions" not in lower
    assert request.protocols == ()


def test_build_request_key_is_16_random_bytes_base64() -> None:
    """Sec-WebSocket-Key is the base64 of 16 bytes (RFC 6455 4.1 item 7)."""
    request = build_request("h", "/")
    raw = base64.b64decode(request.key, validate=True)
    assert len(raw) == 16
    assert len(request.key) == 24


def test_build_request_key_differs_per_call() -> None:
    """Each request carries a fresh nonce."""
    keys = {build_request("h", "/").key for _ in range(50)}
    assert len(keys) == 50


def test_build_request_is_what_h11_writes_with_the_key() -> None:
    """The request for the same arguments again (h11 builds it once, each connection gets a
    fresh key) is byte for byte what h11 writes for that request with that key."""
    headers = [("Origin", "http://o.test"), ("Cookie", "a=1")]
    for _ in range(3):
        request = build_request("h:81", "/r?q", protocols=["p"], headers=headers)
        expected = h11.Connection(h11.CLIENT).send(
            h11.Request(
                method="GET",
                target="/r?q",
                headers=[
                    ("Host", "h:81"),
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Key", request.key),
                    ("Sec-WebSocket-Version", "13"),
                    ("Sec-WebSocket-Protocol", "p"),
                    *headers,
                ],
            )
        )
        assert request.data == expected
        # The event h11 reads the response against (when it reads it) is this request.
        assert h11.Connection(h11.CLIENT).send(request.event) == expected.replace(
            request.key.encode(), b"A" * 22 + b"=="
        )


def test_build_request_protocols() -> None:
    """Requested subprotocols go in one Sec-WebSocket-Protocol header, in order."""
    request = build_request("h", "/", protocols=["chat", "superchat"])
    _, _, headers = parse_request(request.data)
    values = [v for n, v in headers if n.lower() == "sec-websocket-protocol"]
    assert values == ["chat, superchat"]
    assert request.protocols == ("chat", "superchat")


def test_build_request_extensions() -> None:
    """An extension offer goes in one Sec-WebSocket-Extensions header and is remembered."""
    request = build_request("h", "/", extensions="permessage-deflate; client_max_window_bits")
    _, _, headers = parse_request(request.data)
    values = [v for n, v in headers if n.lower() == "sec-websocket-extensions"]
    assert values == ["permessage-deflate; client_max_window_bits"]
    assert request.extensions == "permessage-deflate; client_max_window_bits"


def test_build_request_extra_headers() -> None:
    """Extra headers are sent as given, after the protocol's own."""
    request = build_request("h", "/", headers=[("Origin", "http://o.test"), ("X-A", "b")])
    _, _, headers = parse_request(request.data)
    assert ("Origin", "http://o.test") in headers
    assert ("X-A", "b") in headers


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "upgrade",
        "CONNECTION",
        "Sec-WebSocket-Key",
        "sec-websocket-version",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Accept",
    ],
)
def test_build_request_refuses_reserved_headers(name: str) -> None:
    """A caller may not set a header the protocol writes, in any case."""
    with pytest.raises(ValueError, match=name):
        build_request("h", "/", headers=[(name, "x")])


# accept_value


def test_accept_value_rfc_example() -> None:
    """The RFC 6455 1.3 example key gives the RFC's accept value."""
    assert accept_value("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_guid() -> None:
    """The GUID is the RFC 6455 1.3 string."""
    assert GUID == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# validate_response: success


def test_validate_response_ok() -> None:
    """A correct 101 is accepted with no subprotocol and no extensions."""
    request = fresh()
    assert check(good_headers(request), request=request) == ("", "", None)


def test_validate_response_selected_protocol() -> None:
    """A requested subprotocol selected by the server is returned."""
    request = fresh(["chat", "superchat"])
    headers = [*good_headers(request), ("Sec-WebSocket-Protocol", "superchat")]
    assert check(headers, request=request) == ("superchat", "", None)


def test_validate_response_header_names_case_insensitive() -> None:
    """Header names match in any case (RFC 6455 4.1, RFC 2616)."""
    request = fresh(["chat"])
    headers = [
        ("UPGRADE", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-ACCEPT", accept_value(request.key)),
        ("SEC-WEBSOCKET-PROTOCOL", "chat"),
    ]
    assert check(headers, request=request) == ("chat", "", None)


def test_validate_response_upgrade_value_case_insensitive() -> None:
    """The Upgrade value is an ASCII case-insensitive match for "websocket" (4.1 check 2)."""
    request = fresh()
    headers = [
        ("Upgrade", "WebSocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_value(request.key)),
    ]
    assert check(headers, request=request) == ("", "", None)


def test_validate_response_connection_token_case_insensitive() -> None:
    """Connection needs a token matching "Upgrade" case-insensitively among others (check 3)."""
    request = fresh()
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "keep-alive, UPGRADE"),
        ("Sec-WebSocket-Accept", accept_value(request.key)),
    ]
    assert check(headers, request=request) == ("", "", None)


def test_validate_response_connection_token_across_headers() -> None:
    """The upgrade token may be in a second Connection header line."""
    request = fresh()
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "keep-alive"),
        ("Connection", "upgrade"),
        ("Sec-WebSocket-Accept", accept_value(request.key)),
    ]
    assert check(headers, request=request) == ("", "", None)


def test_validate_response_accept_surrounding_whitespace() -> None:
    """Leading and trailing whitespace around the accept value is ignored (check 4)."""
    request = fresh()
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", f"  {accept_value(request.key)}\t"),
    ]
    assert check(headers, request=request) == ("", "", None)


# validate_response: failures


def test_validate_response_non_101_keeps_status_and_headers() -> None:
    """A non-101 status fails with its status code and headers kept (4.1 check 1)."""
    result = check(
        [("Content-Length", "0"), ("X-Why", "nope")], status_line="HTTP/1.1 404 Not Found"
    )
    assert isinstance(result, HandshakeError)
    assert result.status_code == 404
    assert result.headers == (("content-length", "0"), ("x-why", "nope"))
    assert "404" in result.reason


def test_validate_response_200_with_upgrade_headers_fails() -> None:
    """Even with WebSocket headers, a 200 is not an upgrade."""
    request = fresh()
    headers = [*good_headers(request), ("Content-Length", "0")]
    result = check(headers, status_line="HTTP/1.1 200 OK", request=request)
    assert isinstance(result, HandshakeError)
    assert result.status_code == 200


@pytest.mark.parametrize("upgrade", [None, "websocket2", "h2c", "web socket", ""])
def test_validate_response_bad_upgrade(upgrade: str | None) -> None:
    """A missing or wrong Upgrade value fails (4.1 check 2)."""
    request = fresh()
    headers = [h for h in good_headers(request) if h[0] != "Upgrade"]
    if upgrade is not None:
        headers.append(("Upgrade", upgrade))
    result = check(headers, request=request)
    assert isinstance(result, HandshakeError)
    assert result.status_code is None


@pytest.mark.parametrize("value", [None, "keep-alive", "close", "upgraded", ""])
def test_validate_response_connection_without_upgrade(value: str | None) -> None:
    """A Connection header without an upgrade token, or none, fails (4.1 check 3)."""
    request = fresh()
    headers = [h for h in good_headers(request) if h[0] != "Connection"]
    if value is not None:
        headers.append(("Connection", value))
    result = check(headers, request=request)
    assert isinstance(result, HandshakeError)


def test_validate_response_missing_accept() -> None:
    """A missing Sec-WebSocket-Accept fails (4.1 check 4)."""
    request = fresh()
    headers = [h for h in good_headers(request) if h[0] != "Sec-WebSocket-Accept"]
    assert isinstance(check(headers, request=request), HandshakeError)


def test_validate_response_wrong_accept() -> None:
    """An accept value for another key fails (4.1 check 4)."""
    request = fresh()
    headers = [h for h in good_headers(request) if h[0] != "Sec-WebSocket-Accept"]
    headers.append(("Sec-WebSocket-Accept", accept_value("dGhlIHNhbXBsZSBub25jZQ==")))
    assert isinstance(check(headers, request=request), HandshakeError)


def test_validate_response_accept_is_case_sensitive() -> None:
    """The accept value is base64 and compared exactly, not case-insensitively."""
    request = fresh()
    accept = accept_value(request.key)
    swapped = accept.swapcase()
    assert swapped != accept
    headers = [h for h in good_headers(request) if h[0] != "Sec-WebSocket-Accept"]
    headers.append(("Sec-WebSocket-Accept", swapped))
    assert isinstance(check(headers, request=request), HandshakeError)


def test_validate_response_accept_of_raw_key_fails() -> None:
    """The accept must hash the key string, so echoing the key fails."""
    request = fresh()
    headers = [h for h in good_headers(request) if h[0] != "Sec-WebSocket-Accept"]
    headers.append(("Sec-WebSocket-Accept", request.key))
    assert isinstance(check(headers, request=request), HandshakeError)


def test_validate_response_duplicate_accept() -> None:
    """Two Sec-WebSocket-Accept headers fail, even if both are right."""
    request = fresh()
    headers = [*good_headers(request), ("Sec-WebSocket-Accept", accept_value(request.key))]
    assert isinstance(check(headers, request=request), HandshakeError)


def test_validate_response_unrequested_extension() -> None:
    """An extension the client did not offer fails (4.1 check 5)."""
    request = fresh()
    headers = [*good_headers(request), ("Sec-WebSocket-Extensions", "permessage-deflate")]
    result = check(headers, request=request)
    assert isinstance(result, HandshakeError)
    assert "permessage-deflate" in result.reason


def test_validate_response_offered_extension_accepted() -> None:
    """permessage-deflate, offered and accepted, is returned normalized with its agreed
    parameters (RFC 7692 7.1)."""
    request = build_request("h", "/", extensions="permessage-deflate")
    headers = [
        *good_headers(request),
        ("Sec-WebSocket-Extensions", "permessage-deflate ;server_no_context_takeover"),
    ]
    result = check(headers, request=request)
    assert not isinstance(result, HandshakeError)
    protocol, extensions, deflate = result
    assert (protocol, extensions) == ("", "permessage-deflate; server_no_context_takeover")
    assert deflate is not None
    assert deflate.server_no_context_takeover
    assert deflate.client_max_window_bits == 15


def test_validate_response_client_max_window_bits_not_offered() -> None:
    """client_max_window_bits answering an offer without it fails (RFC 7692 7.1.2.2)."""
    request = build_request("h", "/", extensions="permessage-deflate")
    headers = [
        *good_headers(request),
        ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits=10"),
    ]
    result = check(headers, request=request)
    assert isinstance(result, HandshakeError)
    assert "client_max_window_bits" in result.reason


# parse_extension_list (RFC 6455 9.1)


@pytest.mark.parametrize(
    ("value", "elements"),
    [
        ("permessage-deflate", [ExtensionElement("permessage-deflate", ())]),
        (
            'a; b=1;c="2" ;d, e',
            [
                ExtensionElement("a", (("b", "1"), ("c", "2"), ("d", None))),
                ExtensionElement("e", ()),
            ],
        ),
        (" , a,, \t b ,", [ExtensionElement("a", ()), ExtensionElement("b", ())]),
        ('a; b="\\x"', [ExtensionElement("a", (("b", "x"),))]),
        ("", []),
    ],
)
def test_parse_extension_list(value: str, elements: list[ExtensionElement]) -> None:
    """Names, parameters and values (quoted values unescaped) in order; empty elements
    are skipped."""
    assert parse_extension_list(value) == elements


@pytest.mark.parametrize(
    "value",
    ["a;", "a b", ";a", "a;=1", "a;b=", 'a;b="x y"', 'a;b=""', 'a;b="1', "a;b=1=2", "a/b", "é"],
)
def test_parse_extension_list_malformed(value: str) -> None:
    """A value outside the ABNF of RFC 6455 9.1 is malformed, with a reason."""
    result = parse_extension_list(value)
    assert isinstance(result, str)
    assert "malformed" in result


def test_validate_response_unrequested_subprotocol() -> None:
    """A subprotocol the client did not request fails (4.1 check 6)."""
    request = fresh(["chat"])
    headers = [*good_headers(request), ("Sec-WebSocket-Protocol", "superchat")]
    assert isinstance(check(headers, request=request), HandshakeError)


def test_validate_response_subprotocol_when_none_requested() -> None:
    """Any subprotocol fails when none was requested (4.1 check 6)."""
    request = fresh()
    headers = [*good_headers(request), ("Sec-WebSocket-Protocol", "chat")]
    assert isinstance(check(headers, request=request), HandshakeError)


def test_validate_response_subprotocol_list_fails() -> None:
    """A server that echoes the whole requested list selected no single subprotocol."""
    request = fresh(["chat", "superchat"])
    headers = [*good_headers(request), ("Sec-WebSocket-Protocol", "chat, superchat")]
    assert isinstance(check(headers, request=request), HandshakeError)


def test_validate_response_missing_subprotocol_when_requested() -> None:
    """No subprotocol in the response fails when some were requested (WebSocket API)."""
    request = fresh(["chat"])
    assert isinstance(check(good_headers(request), request=request), HandshakeError)


def test_validate_response_two_protocol_headers() -> None:
    """Two Sec-WebSocket-Protocol headers fail, even with the same requested value."""
    request = fresh(["chat"])
    headers = [
        *good_headers(request),
        ("Sec-WebSocket-Protocol", "chat"),
        ("Sec-WebSocket-Protocol", "chat"),
    ]
    assert isinstance(check(headers, request=request), HandshakeError)


# ResponseReader


def good_response(request: HandshakeRequest) -> bytes:
    return response_bytes("HTTP/1.1 101 Switching Protocols", good_headers(request))


def test_reader_byte_by_byte() -> None:
    """A response fed one byte at a time completes on its last byte."""
    request = fresh()
    data = good_response(request)
    reader = ResponseReader(request)
    for i in range(len(data) - 1):
        assert reader.receive(data[i : i + 1]) is None
    result = reader.receive(data[-1:])
    assert not isinstance(result, HandshakeError)
    assert result is not None
    assert result.status_code == 101
    assert result.reason == "Switching Protocols"
    assert result.headers == (
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-accept", accept_value(request.key)),
    )
    assert validate_response(request, result) == ("", "", None)
    assert reader.trailing_data == b""


def test_reader_trailing_frames() -> None:
    """Frames sent in the same packet as the 101 come back as trailing data."""
    request = fresh()
    frames = b"\x81\x05Hello\x89\x00"
    reader = ResponseReader(request)
    result = reader.receive(good_response(request) + frames)
    assert result is not None
    assert not isinstance(result, HandshakeError)
    assert result.status_code == 101
    assert reader.trailing_data == frames


def test_reader_garbage_status_line() -> None:
    """A response that is not HTTP gives a HandshakeError, not an exception."""
    request = fresh()
    result = ResponseReader(request).receive(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    assert isinstance(result, HandshakeError)
    assert result.status_code is None


def test_reader_garbage_header_line() -> None:
    """A malformed header line gives a HandshakeError."""
    request = fresh()
    result = ResponseReader(request).receive(
        b"HTTP/1.1 101 Switching Protocols\r\nno colon here\r\n\r\n"
    )
    assert isinstance(result, HandshakeError)


def test_reader_oversized_head_never_ending() -> None:
    """A head that grows past MAX_HANDSHAKE_RESPONSE_SIZE without ending is a HandshakeError."""
    request = fresh()
    reader = ResponseReader(request)
    assert reader.receive(b"HTTP/1.1 101 Switching Protocols\r\n") is None
    line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    result = None
    sent = 0
    while result is None and sent < 2 * MAX_HANDSHAKE_RESPONSE_SIZE:
        result = reader.receive(line)
        sent += len(line)
    assert isinstance(result, HandshakeError)
    assert str(MAX_HANDSHAKE_RESPONSE_SIZE) in result.reason


def test_reader_oversized_complete_head_in_one_chunk() -> None:
    """A complete head larger than MAX_HANDSHAKE_RESPONSE_SIZE in one chunk is refused."""
    request = fresh()
    filler = [(f"X-Filler-{i}", "a" * 1000) for i in range(MAX_HANDSHAKE_RESPONSE_SIZE // 1000)]
    data = response_bytes("HTTP/1.1 101 Switching Protocols", [*good_headers(request), *filler])
    assert len(data) > MAX_HANDSHAKE_RESPONSE_SIZE
    result = ResponseReader(request).receive(data)
    assert isinstance(result, HandshakeError)


def test_reader_eof_before_response() -> None:
    """End of stream before any response is a HandshakeError."""
    request = fresh()
    result = ResponseReader(request).receive(b"")
    assert isinstance(result, HandshakeError)


def test_reader_eof_in_the_middle_of_the_head() -> None:
    """End of stream inside the head is a HandshakeError."""
    request = fresh()
    reader = ResponseReader(request)
    assert reader.receive(good_response(request)[:30]) is None
    assert isinstance(reader.receive(b""), HandshakeError)


def test_reader_non_101_response() -> None:
    """A final response is returned with its status, reason and lower-cased header names."""
    request = fresh()
    result = ResponseReader(request).receive(
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nX-Reason: \xe9t\xe9\r\n\r\n"
    )
    assert result is not None
    assert not isinstance(result, HandshakeError)
    assert result.status_code == 403
    assert result.reason == "Forbidden"
    assert result.headers == (("content-length", "0"), ("x-reason", "\xe9t\xe9"))


# The plain 101, read without h11: the same answers as h11's, chunk by chunk.


def test_plain_101_is_read_without_h11(monkeypatch: pytest.MonkeyPatch) -> None:
    """The common response (a 101 with plain header lines) never sets up h11."""

    def no_h11(*args: object, **kwargs: object) -> None:
        raise AssertionError("h11 was set up for a plain 101")

    request = fresh()
    monkeypatch.setattr(h11, "Connection", no_h11)
    frames = b"\x81\x02hi"
    reader = ResponseReader(request)
    data = good_response(request) + frames
    assert reader.receive(data[:40]) is None
    result = reader.receive(data[40:])
    assert isinstance(result, HandshakeResponse)
    assert result.headers == (
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-accept", accept_value(request.key)),
    )
    assert reader.trailing_data == frames


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",  # another version
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\n\r\n",  # a bare LF
        b"HTTP/1.1 101 Switching Protocols\r\nX-A: a\r\n b\r\n\r\n",  # a folded line
        b"HTTP/1.1 101 Switching Protocols\r\nX-A: caf\xe9\r\n\r\n",  # obs-text
        b"HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\n\r\n",  # framing
        b"HTTP/1.1 101 Switching Protocols\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nX A: b\r\n\r\n",  # not a token
    ],
)
def test_other_heads_go_to_h11(head: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """Anything but the plain form is h11's to read."""
    made = []
    real = h11.Connection

    def counting(*args: Any, **kwargs: Any) -> h11.Connection:
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(h11, "Connection", counting)
    assert ResponseReader(fresh()).receive(head) is not None
    assert made == [1]


def read_in_chunks(
    request: HandshakeRequest, chunks: list[bytes], eof: bool, *, plain: bool
) -> list[object]:
    """What ResponseReader answers to each chunk, then its trailing data; with ``plain``
    false, h11 reads everything (the reference)."""
    reader = ResponseReader(request)
    answers: list[object] = []
    with contextlib.ExitStack() as stack:
        if not plain:
            stack.enter_context(
                unittest.mock.patch.object(handshake, "_read_plain_head", return_value=False)
            )
        for chunk in [*chunks, b""] if eof else chunks:
            answer = reader.receive(chunk)
            answers.append(answer)
            if answer is not None:
                answers.append(reader.trailing_data)
                break
    return answers


status_lines = st.one_of(
    st.sampled_from(
        [
            b"HTTP/1.1 101 Switching Protocols",
            b"HTTP/1.1 101",
            b"HTTP/1.1 101 ",
            b"HTTP/1.1 101  two  spaces\t",
            b"HTTP/1.1 101 caf\xe9",
            b"HTTP/1.1 1010 X",
            b"HTTP/1.0 101 X",
            b"HTTP/1.1 200 OK",
            b"HTTP/1.1 101 \x00",
            b"http/1.1 101 X",
            b" HTTP/1.1 101 X",
        ]
    ),
    st.binary(max_size=20).map(lambda tail: b"HTTP/1.1 101" + tail),
)
header_names = st.one_of(
    st.sampled_from(
        [b"Upgrade", b"connection", b"Content-Length", b"TRANSFER-ENCODING", b"X-Y", b"a"]
    ),
    st.text("aZ-_.!~09 @:\x80\t", max_size=6).map(lambda name: name.encode("latin-1")),
)
header_values = st.text('ab \t\x00\x0b\x7f\xe9,;="\\:', max_size=10).map(
    lambda value: value.encode("latin-1")
)
line_ends = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r"])


plain_names = st.one_of(
    st.text("abcXYZ-_.!~09", min_size=1, max_size=6).map(str.encode),
    st.sampled_from([b"Content-Length", b"transfer-encoding"]),  # h11 checks their values
)
plain_values = st.text('ab \t~,;="\\:', max_size=10).map(str.encode)


@st.composite
def response_heads(draw: st.DrawFn) -> bytes:
    """A head in the plain form half of the time, else with any of the ways out of it."""
    plain = draw(st.booleans())
    head = b"HTTP/1.1 101 Switching Protocols" if plain else draw(status_lines)
    head += b"\r\n" if plain else draw(line_ends)
    for _ in range(draw(st.integers(0, 4))):
        if plain:
            head += draw(plain_names) + b":" + draw(plain_values) + b"\r\n"
        elif draw(st.integers(0, 9)) == 0:
            head += b" folded" + draw(line_ends)  # obs-fold
        else:
            separator = draw(st.sampled_from([b":", b": ", b":\t", b" :", b""]))
            head += draw(header_names) + separator + draw(header_values) + draw(line_ends)
    return head + (b"\r\n" if plain else draw(line_ends)) + draw(st.binary(max_size=6))


@given(
    head=response_heads(),
    cuts=st.lists(st.integers(0, 120), max_size=3),
    eof=st.booleans(),
)
@settings(max_examples=400, deadline=None)
def test_plain_head_reads_as_h11_does(head: bytes, cuts: list[int], eof: bool) -> None:
    """Any response head, cut anywhere: every answer (need more, the response, the error)
    and the trailing data are h11's."""
    request = fresh()
    points = sorted({0, len(head), *(cut for cut in cuts if cut < len(head))})
    chunks = [head[a:b] for a, b in itertools.pairwise(points)]
    assert read_in_chunks(request, chunks, eof, plain=True) == read_in_chunks(
        request, chunks, eof, plain=False
    )


@pytest.mark.skipif(
    handshake._compiled_read_plain_head is None, reason="the compiled extensions are not in use"
)
@given(head=response_heads(), cut=st.integers(0, 200))
@settings(max_examples=400, deadline=None)
def test_compiled_plain_head_is_its_python_twin(head: bytes, cut: int) -> None:
    """_speedups.read_plain_head answers as handshake._read_plain_head_py does, on any head
    and on any of its beginnings."""
    for data in (head, head[:cut]):
        assert handshake._read_plain_head(data) == handshake._read_plain_head_py(data)


# The body of a refusal (a response other than 101)


def refusal(body: bytes, *headers: tuple[str, str]) -> bytes:
    return response_bytes("HTTP/1.1 403 Forbidden", headers) + body


def test_refusal_body_with_length() -> None:
    """A 403's body, as long as its Content-Length says, comes with the response."""
    request = fresh()
    result = ResponseReader(request).receive(
        refusal(b'{"error": "no"}', ("Content-Length", "15")) + b"more"
    )
    assert isinstance(result, HandshakeResponse)
    assert (result.status_code, result.body) == (403, b'{"error": "no"}')
    failure = validate_response(request, result)
    assert isinstance(failure, HandshakeError)
    assert (failure.status_code, failure.body) == (403, b'{"error": "no"}')


def test_refusal_body_in_pieces() -> None:
    """The response waits for its body; its head is known meanwhile (``refusal``)."""
    request = fresh()
    reader = ResponseReader(request)
    assert reader.receive(refusal(b"ab", ("Content-Length", "5"))) is None
    assert reader.refusal is not None
    assert reader.refusal.status_code == 403
    assert reader.receive(b"c") is None
    result = reader.receive(b"de")
    assert isinstance(result, HandshakeResponse)
    assert result.body == b"abcde"
    assert reader.refusal is None


def test_refusal_body_chunked() -> None:
    """A chunked body is read to its last chunk, without the chunk framing."""
    request = fresh()
    result = ResponseReader(request).receive(
        refusal(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", ("Transfer-Encoding", "chunked"))
    )
    assert isinstance(result, HandshakeResponse)
    assert result.body == b"abcde"


def test_refusal_body_until_close() -> None:
    """A body without a length ends with the stream."""
    request = fresh()
    reader = ResponseReader(request)
    assert reader.receive(refusal(b"partial ")) is None
    assert reader.receive(b"page") is None
    result = reader.receive(b"")
    assert isinstance(result, HandshakeResponse)
    assert result.body == b"partial page"


def test_refusal_body_cut_short() -> None:
    """A stream that ends inside a body with a length gives what arrived."""
    request = fresh()
    reader = ResponseReader(request)
    assert reader.receive(refusal(b"abc", ("Content-Length", "100"))) is None
    result = reader.receive(b"")
    assert isinstance(result, HandshakeResponse)
    assert result.body == b"abc"


@pytest.mark.parametrize("framing", ["length", "close"])
def test_refusal_body_is_bounded(framing: str) -> None:
    """Only the first MAX_REFUSAL_BODY_SIZE bytes of a body are kept, and the response is
    complete once they have arrived, whatever the body's announced length."""
    request = fresh()
    size = 10 * handshake.MAX_REFUSAL_BODY_SIZE
    headers = [("Content-Length", str(size))] if framing == "length" else []
    reader = ResponseReader(request)
    head = refusal(b"", *headers)
    assert reader.receive(head) is None
    chunk = bytes(range(256)) * 64
    result = None
    received = 0
    while result is None:
        result = reader.receive(chunk)
        received += len(chunk)
        assert received < size
    assert isinstance(result, HandshakeResponse)
    assert received == handshake.MAX_REFUSAL_BODY_SIZE
    assert result.body == (chunk * 4)[: handshake.MAX_REFUSAL_BODY_SIZE]


def test_refusal_without_body() -> None:
    """A 204 (no body by definition) and a Content-Length of 0 complete with the head."""
    request = fresh()
    for head in (
        response_bytes("HTTP/1.1 204 No Content", []),
        refusal(b"", ("Content-Length", "0")),
    ):
        result = ResponseReader(request).receive(head)
        assert isinstance(result, HandshakeResponse)
        assert result.body == b""


def test_engine_reports_refusal_body_then_failure() -> None:
    """The engine says once that a refusal's body is coming, then fails with the body;
    receive_eof() (the transport's time bound) ends the wait with what arrived."""
    engine = ClientConnection("example.com", "/")
    engine.receive_data(refusal(b"ab", ("Content-Length", "9")))
    assert engine.next_event() == RefusalBodyExpected(403)
    assert engine.next_event() is None
    engine.receive_data(b"cd")
    assert engine.next_event() is None
    engine.receive_eof()
    failed = engine.next_event()
    assert isinstance(failed, Failed)
    assert (failed.kind, failed.status_code, failed.body) == ("handshake", 403, b"abcd")


# Headers


def test_headers_mapping() -> None:
    """Headers: names in any case, repeated fields joined by ", " and kept apart by
    get_all, each name once in iteration (lower-cased, first appearance first)."""
    headers = Headers([("x-a", "1"), ("content-type", "text/plain"), ("X-A", "2")])
    assert headers["X-A"] == "1, 2"
    assert headers.get_all("x-a") == ["1", "2"]
    assert headers["Content-Type"] == "text/plain"
    assert "CONTENT-TYPE" in headers
    assert "x-b" not in headers
    assert headers.get("x-b") is None
    assert list(headers) == ["x-a", "content-type"]
    assert len(headers) == 2
    assert headers.get_all("x-b") == []
    with pytest.raises(KeyError):
        headers["x-b"]
    assert dict(headers) == {"x-a": "1, 2", "content-type": "text/plain"}
    assert repr(headers) == (
        "Headers([('x-a', '1'), ('x-a', '2'), ('content-type', 'text/plain')])"
    )


# A refusal's body over the network: bounded in bytes and in time


async def refusing_server_failure(
    answer: bytes, *, stall: bool = False
) -> tuple[ConnectionFailure, float]:
    """Connect to a raw server that answers ``answer`` (then stalls, with ``stall``, or
    closes); the failure and the seconds from the connection to the failure."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        # The client drops the connection once it has what it keeps (mid-body, for a huge
        # one); stalling means sending nothing more until then.
        with contextlib.suppress(ConnectionError):
            await writer.drain()
            if stall:
                await reader.read()

    loop = asyncio.get_running_loop()
    async with raw_server(handler) as url:
        started = loop.time()
        _, recorder = await connect(url)
        assert await asyncio.wait_for(recorder.closed, 10 * TIMEOUT) == (False, 1006, "")
        elapsed = loop.time() - started
    assert recorder.kinds() == ["failure", "closed"]
    return recorder.failure(), elapsed


async def test_refusal_body_reaches_the_failure() -> None:
    """A 403 with a body: the failure has the status, the headers as a case-insensitive
    mapping and as raw pairs, and the body; at once, without waiting for the server."""
    body = b'{"error": "token expired"}'
    answer = refusal(body, ("Content-Type", "application/json"), ("Content-Length", "26"))
    failure, elapsed = await refusing_server_failure(answer, stall=True)
    assert (failure.kind, failure.status_code, failure.body) == ("http_status", 403, body)
    assert failure.headers["content-type"] == "application/json"
    assert failure.raw_headers == (("content-type", "application/json"), ("content-length", "26"))
    assert elapsed < REFUSAL_BODY_WAIT


async def test_refusal_huge_body_is_cut() -> None:
    """A body of megabytes: the failure keeps its first MAX_REFUSAL_BODY_SIZE bytes."""
    size = 8 * 1024 * 1024
    body = bytes(range(256)) * (size // 256)
    answer = refusal(body, ("Content-Length", str(size)))
    failure, _ = await refusing_server_failure(answer, stall=True)
    assert failure.status_code == 403
    assert failure.body == body[:MAX_REFUSAL_BODY_SIZE]


async def test_refusal_body_that_stalls() -> None:
    """A server that sends the head and part of the body, then nothing: the failure comes
    REFUSAL_BODY_WAIT after the head, with the part that arrived."""
    answer = refusal(b"partial", ("Content-Length", "1000"))
    failure, elapsed = await refusing_server_failure(answer, stall=True)
    assert (failure.status_code, failure.body) == (403, b"partial")
    assert REFUSAL_BODY_WAIT <= elapsed < REFUSAL_BODY_WAIT + 2 * TIMEOUT


async def test_refusal_head_alone_then_stall() -> None:
    """Headers without any body byte, a body announced, then a stall: the failure comes
    after REFUSAL_BODY_WAIT with an empty body."""
    answer = refusal(b"", ("Content-Type", "text/html"))
    failure, elapsed = await refusing_server_failure(answer, stall=True)
    assert (failure.status_code, failure.body) == (403, b"")
    assert failure.headers["Content-Type"] == "text/html"
    assert REFUSAL_BODY_WAIT <= elapsed < REFUSAL_BODY_WAIT + 2 * TIMEOUT


async def test_refusal_body_until_close_over_network() -> None:
    """A body without a length that the server ends by closing: the failure has all of it,
    without waiting for REFUSAL_BODY_WAIT."""
    failure, elapsed = await refusing_server_failure(refusal(b"<h1>Forbidden</h1>"))
    assert failure.body == b"<h1>Forbidden</h1>"
    assert elapsed < REFUSAL_BODY_WAIT


def test_readme_names_the_refusal_bounds() -> None:
    """The README's ConnectionFailure paragraph gives the two bounds with their values."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    text = " ".join(readme.split())
    assert MAX_REFUSAL_BODY_SIZE == 64 * 1024
    assert "`MAX_REFUSAL_BODY_SIZE` (64 KiB)" in text
    assert f"`REFUSAL_BODY_WAIT` ({REFUSAL_BODY_WAIT} s)" in text


async def test_open_timer_adopted_after_refusal_keeps_the_body_wait() -> None:
    """A refusal read before the connecting task hands its open timer over: the shorter
    wait for the body stays, and the open timer is dropped."""
    engine = ClientConnection("example.com", "/")
    transport = ConnectionPump(engine, Recorder(), close_timeout=10 * TIMEOUT)
    transport._wait_for_refusal_body()
    body_wait = transport._timer
    assert body_wait is not None
    deadlines = deadlines_of(asyncio.get_running_loop())
    open_timer = deadlines.call_later(10 * TIMEOUT, lambda: None)
    transport.adopt_open_timer(open_timer)
    assert transport._timer is body_wait
    assert open_timer.callback is None
    deadlines.cancel(body_wait)
