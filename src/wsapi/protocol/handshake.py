"""The client's opening handshake (RFC 6455 4.1), with h11 doing the HTTP/1.1.

``build_request`` writes the upgrade request; ``ResponseReader`` reads the server's answer
and ``validate_response`` applies the RFC's checks to it, with RFC 7692 for the one extension
a client may offer (permessage-deflate, see ``deflate``). Nothing here raises on what the
server sends: every problem becomes a ``HandshakeError`` value with a readable reason.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import h11

from ._build import compiled
from .codec import random_bytes
from .constants import MAX_HANDSHAKE_RESPONSE_SIZE
from .deflate import EXTENSION_NAME, DeflateParameters, parse_response

__all__ = [
    "GUID",
    "MAX_REFUSAL_BODY_SIZE",
    "ExtensionElement",
    "HandshakeError",
    "HandshakeRequest",
    "ResponseReader",
    "accept_value",
    "build_request",
    "check_header",
    "is_protocol_owned_header",
    "parse_extension_list",
    "validate_response",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""RFC 6455 1.3: the globally unique identifier appended to the key."""

MAX_REFUSAL_BODY_SIZE = 64 * 1024
"""Bytes kept of the body of a response other than 101 (an error page, a JSON reason): its
start says why the server refused; more is not read."""

# Headers the protocol itself writes; a caller may not set them (RFC 6455 4.1).
RESERVED_REQUEST_HEADERS = frozenset(
    {"host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
     "sec-websocket-protocol", "sec-websocket-extensions", "sec-websocket-accept"}
)  # fmt: skip


def is_protocol_owned_header(name: str) -> bool:
    """Whether a request header belongs to the WebSocket protocol: the ones the handshake
    writes, and every ``Sec-WebSocket-*`` name (the prefix is reserved for the protocol)."""
    lowered = name.lower()
    return lowered in RESERVED_REQUEST_HEADERS or lowered.startswith("sec-websocket-")


# RFC 9110 5.1 and 5.5: a field name is a token; a field value is visible characters,
# spaces, tabs and obs-text (bytes 0x80-0xFF), never CR, LF, NUL or another control.
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def check_header(name: str, value: str) -> None:
    """Raise ``ValueError`` unless (``name``, ``value``) can be written as a request header
    field as it is: CR, LF or NUL would end the field (or the head) and start another,
    which a caller's value must never do. Values are sent as ISO-8859-1, what HTTP's
    historical charset allows (and the response headers are read as)."""
    if not _FIELD_NAME.fullmatch(name):
        raise ValueError(f"the header name {name!r} is not an HTTP token")
    if not _FIELD_VALUE.fullmatch(value):
        # (The value itself is not shown: it may be a secret, a cookie or a token.)
        at = next(i for i, char in enumerate(value) if not _FIELD_VALUE.fullmatch(char))
        what = "a control character" if value[at] < "\x80" else "not ISO-8859-1"
        raise ValueError(f"the {name} header value has {value[at]!r} at offset {at} ({what})")


def accept_value(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value a server must send for ``key`` (RFC 6455 4.2.2)."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return binascii.b2a_base64(digest, newline=False).decode("ascii")


# (HandshakeRequest and HandshakeResponse are made for every connection and read only: not
# frozen, as a frozen dataclass takes three times as long to make.)


@dataclass(slots=True)
class HandshakeRequest:
    """What the client asked for: the checks on the response depend on it."""

    data: bytes
    """The request bytes to write."""
    key: str
    """The ``Sec-WebSocket-Key`` that was sent."""
    protocols: tuple[str, ...]
    """The subprotocols that were requested, in order."""
    event: h11.Request
    """The request as h11 knows it (the key aside): what h11 reads the response against."""
    extensions: str = ""
    """The ``Sec-WebSocket-Extensions`` offer that was sent, or ``""`` for none."""


def build_request(
    host: str,
    resource: str,
    *,
    protocols: Sequence[str] = (),
    headers: Sequence[tuple[str, str]] = (),
    extensions: str = "",
) -> HandshakeRequest:
    """Write the opening handshake request of RFC 6455 4.1.

    ``host`` is the ``Host`` header value (with the port when it is not the default);
    ``resource`` the /resource name/ (path and query); ``headers`` are extra headers
    (``Origin``, ``Cookie``, ``User-Agent``, ...), which may not be the protocol's own;
    ``extensions`` is the ``Sec-WebSocket-Extensions`` offer (``deflate.OFFER`` or ``""``).
    """
    protocols = tuple(protocols)
    template = _request_template(
        host, resource, protocols, tuple((name, value) for name, value in headers), extensions
    )
    # 4.1: "The request MUST include a header field with the name |Sec-WebSocket-Key|. The
    # value of this header field MUST be a nonce consisting of a randomly selected 16-byte
    # value that has been base64-encoded" -- chosen randomly for each connection.
    key = binascii.b2a_base64(random_bytes(16), newline=False)
    start = template.key_at
    data = b"".join((template.data[:start], key, template.data[start + len(key) :]))
    return HandshakeRequest(data, key.decode("ascii"), protocols, template.event, extensions)


@dataclass(frozen=True, slots=True)
class _RequestTemplate:
    """A request as h11 wrote it, with a placeholder key (every key has its length)."""

    event: h11.Request
    data: bytes
    key_at: int
    """Where the key starts in ``data``."""


_PLACEHOLDER_KEY = base64.b64encode(bytes(16)).decode("ascii")  # 24 characters, as every key


@functools.lru_cache(maxsize=64)
def _request_template(
    host: str,
    resource: str,
    protocols: tuple[str, ...],
    headers: tuple[tuple[str, str], ...],
    extensions: str,
) -> _RequestTemplate:
    """The request for these arguments, built and checked by h11 once (its validation is
    most of the cost of a request), then reused with a fresh key for each connection."""
    for name, value in headers:
        if is_protocol_owned_header(name):
            raise ValueError(f"the {name} header belongs to the WebSocket protocol")
        check_header(name, value)
    request_headers = [
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", _PLACEHOLDER_KEY),
        ("Sec-WebSocket-Version", "13"),
    ]
    if protocols:
        request_headers.append(("Sec-WebSocket-Protocol", ", ".join(protocols)))
    # 4.1: "The request MAY include a header field with the name |Sec-WebSocket-Extensions|."
    if extensions:
        request_headers.append(("Sec-WebSocket-Extensions", extensions))
    request_headers.extend(headers)
    # As bytes, values in ISO-8859-1: a cookie value the server set with obs-text goes back
    # as it came (h11 would encode a str as ASCII, and fail).
    encoded = [(name.encode("ascii"), value.encode("latin-1")) for name, value in request_headers]
    event = h11.Request(method="GET", target=resource, headers=encoded)
    data = h11.Connection(h11.CLIENT).send(event)
    assert data is not None
    # The header line is unique: the caller's headers may not be the protocol's own.
    line = f"\r\nSec-WebSocket-Key: {_PLACEHOLDER_KEY}\r\n".encode("ascii")
    key_at = data.index(line) + len(b"\r\nSec-WebSocket-Key: ")
    return _RequestTemplate(event, data, key_at)


@dataclass(slots=True)
class HandshakeResponse:
    """The server's response head (and, for a status other than 101, the start of its
    body)."""

    status_code: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    """Names lower-cased, values decoded as ISO-8859-1 (HTTP's historical charset)."""
    body: bytes = b""
    """At most ``MAX_REFUSAL_BODY_SIZE`` bytes of the body (never any for a 101)."""


@dataclass(frozen=True, slots=True)
class HandshakeError:
    """Why the handshake failed, for the failure event."""

    reason: str
    status_code: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    closed: bool = False
    """The stream ended (a close, a reset) before the response head was complete: the
    connection was lost, rather than a rule broken."""


class ResponseReader:
    """Reads the response head; hands back the bytes that follow it (frames the server sent
    in the same packet as its 101).

    h11 reads it, unless it is a plain 101 (``_read_plain_head``): that one is read without
    h11, to the same result, and h11 is not even set up (it costs a tenth of a connection's
    set-up). Anything else, an error included, goes to h11 with every byte so far.

    A response other than 101 is complete with its body, of which at most
    ``MAX_REFUSAL_BODY_SIZE`` bytes are kept: once that much has arrived, or the body has
    ended (its length, its last chunk, or the end of the stream for a body without a length),
    or the stream has ended, cutting it short. ``refusal`` is its head meanwhile: bounding
    that wait in time is the caller's part (it ends the stream)."""

    __slots__ = (
        "_body",
        "_buffer",
        "_connection",
        "_received",
        "_request",
        "_trailing",
        "refusal",
    )

    def __init__(self, request: HandshakeRequest) -> None:
        self._request = request
        self._buffer = b""
        self._trailing = b""
        self._connection: h11.Connection | None = None
        self._received = 0
        self.refusal: HandshakeResponse | None = None
        """The head of a response other than 101 while its body is being read."""
        self._body = bytearray()

    def receive(self, data: bytes) -> HandshakeResponse | HandshakeError | None:
        """Feed bytes (``b""`` for end of stream); returns the response once it is complete
        (the head of a 101; the head and the start of the body of anything else), an error,
        or None when more bytes are needed."""
        if self.refusal is not None:
            assert self._connection is not None
            self._connection.receive_data(data)
            return self._read_body(self.refusal)
        if not data:
            # (A complete head came back already: the end of stream is in the head.)
            arrived = self._received + len(self._buffer)
            # (Nothing was read of it: it is all left over, as h11 leaves it.)
            self._trailing, self._buffer = self._buffer, b""
            return HandshakeError(
                "the connection closed before the handshake response was complete "
                f"({arrived} bytes of it arrived)",
                closed=True,
            )
        if self._connection is not None:
            return self._receive_with_h11(data)
        buffer = self._buffer + data if self._buffer else data
        plain = _read_plain_head(buffer)
        if plain is True:
            self._buffer = buffer
            return None
        if plain is not False:
            response, size = plain
            self._buffer = b""
            self._trailing = buffer[size:]
            return response
        # h11 reads it from the start: the request goes through h11 (the bytes it would write
        # are the request's, the key aside), then all that was received.
        self._buffer = b""
        connection = self._connection = h11.Connection(
            h11.CLIENT, max_incomplete_event_size=MAX_HANDSHAKE_RESPONSE_SIZE
        )
        connection.send(self._request.event)
        return self._receive_with_h11(buffer)

    def _receive_with_h11(self, data: bytes) -> HandshakeResponse | HandshakeError | None:
        connection = self._connection
        assert connection is not None
        self._received += len(data)
        try:
            connection.receive_data(data)
            event = connection.next_event()
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint == 431:
                return _too_large()
            return HandshakeError(f"the handshake response is not valid HTTP/1.1: {exc}")
        if event is h11.NEED_DATA:
            return None
        if isinstance(event, (h11.InformationalResponse, h11.Response)):
            # h11 enforces its size limit only on a head still incomplete; a complete head
            # that arrived in one read is measured here.
            head_size = self._received - len(connection.trailing_data[0])
            if head_size > MAX_HANDSHAKE_RESPONSE_SIZE:
                return _too_large()
            headers = tuple(
                (name.decode("ascii", "replace").lower(), value.decode("latin-1"))
                for name, value in event.headers
            )
            response = HandshakeResponse(
                event.status_code, event.reason.decode("latin-1", "replace"), headers
            )
            if isinstance(event, h11.InformationalResponse):
                return response  # 1xx: no body (a 101 switches protocols).
            return self._read_body(response)
        if isinstance(event, h11.ConnectionClosed):
            return HandshakeError("the server closed the connection before responding")
        return HandshakeError(f"unexpected HTTP event {type(event).__name__}")

    def _read_body(self, response: HandshakeResponse) -> HandshakeResponse | None:
        """Take the body's bytes h11 has; the response once the body is complete."""
        connection = self._connection
        assert connection is not None
        body = self._body
        while len(body) < MAX_REFUSAL_BODY_SIZE:
            try:
                event = connection.next_event()
            except h11.RemoteProtocolError:
                break  # The stream ended inside the body: what arrived is what there is.
            if event is h11.NEED_DATA:
                self.refusal = response
                return None
            if not isinstance(event, h11.Data):
                break  # EndOfMessage (or anything after it): the body is complete.
            body += event.data[: MAX_REFUSAL_BODY_SIZE - len(body)]
        self.refusal = None
        response.body = bytes(body)
        body.clear()
        return response

    @property
    def trailing_data(self) -> bytes:
        """Bytes received after the response head."""
        if self._connection is None:
            return self._trailing
        return bytes(self._connection.trailing_data[0])


# The plain 101: "HTTP/1.1 101", an optional reason, header fields each on one line with
# a token for a name and printable ASCII (or tabs) for a value, CRLF line ends. Every head
# of this form is one that h11 reads (its status line and header-field rules, RFC 9112 4
# and 5, are wider), and h11 reads it as _read_plain_head does: names lower-cased, values
# without the whitespace around them.
_PLAIN_STATUS = b"HTTP/1.1 101"
_PLAIN_HEAD = re.compile(
    rb"HTTP/1\.1 101(?: ([\t\x20-\x7e]*))?\r\n"
    rb"((?:[-!#$%&'*+.^_`|~0-9A-Za-z]+:[\t\x20-\x7e]*\r\n)*)\r\n"
)
_Headers = tuple[tuple[str, str], ...]
# h11 checks these two headers' values (the message framing): it reads them.
_FRAMING_HEADERS = (b"content-length", b"transfer-encoding")

_compiled_read_plain_head: Callable[[bytes], tuple[str, _Headers, int] | bool] | None = None
if compiled("wsapi.protocol._plain_head"):
    from ._plain_head import read_plain_head as _compiled_read_plain_head


def _read_plain_head(data: bytes) -> tuple[HandshakeResponse, int] | bool:
    """The response and its head's size in ``data`` (bytes received so far) when it is a
    plain 101, as h11 would read it; True when the head is not complete yet and may still
    be plain (h11 too would be waiting for more); False when h11 must read it."""
    if _compiled_read_plain_head is None:
        return _read_plain_head_py(data)
    plain = _compiled_read_plain_head(data)
    if type(plain) is bool:
        return plain
    reason, headers, size = plain
    return HandshakeResponse(101, reason, headers), size


def _read_plain_head_py(data: bytes) -> tuple[HandshakeResponse, int] | bool:
    """``_read_plain_head`` in Python (the compiled twin, ``_plain_head.read_plain_head``,
    does the same)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        # h11 ends a head at its first blank line, bare LF or not: while there is none, and
        # the head is within the size limit and starts as a plain one, h11 waits too.
        return (
            len(data) <= MAX_HANDSHAKE_RESPONSE_SIZE
            and data.startswith(_PLAIN_STATUS[: len(data)])
            and b"\n\n" not in data
            and b"\n\r\n" not in data
        )
    size = end + 4
    if size > MAX_HANDSHAKE_RESPONSE_SIZE:
        return False
    match = _PLAIN_HEAD.fullmatch(data, 0, size)
    if match is None:
        return False
    reason, fields = match.groups()
    headers = []
    for line in fields.split(b"\r\n")[:-1]:
        name, _, value = line.partition(b":")
        name = name.lower()
        if name in _FRAMING_HEADERS:
            return False
        headers.append((name.decode("ascii"), value.strip(b" \t").decode("ascii")))
    return HandshakeResponse(101, reason.decode("ascii") if reason else "", tuple(headers)), size


def _too_large() -> HandshakeError:
    return HandshakeError(
        f"the handshake response head exceeds {MAX_HANDSHAKE_RESPONSE_SIZE} bytes"
    )


@dataclass(frozen=True, slots=True)
class ExtensionElement:
    """One element of a ``Sec-WebSocket-Extensions`` list: the extension's name and its
    parameters in order, values unquoted (None for a parameter without a value)."""

    name: str
    params: tuple[tuple[str, str | None], ...]


# RFC 6455 9.1 takes its ABNF from RFC 2616 ("implied *LWS"); the token and quoted-string
# rules are RFC 7230's (3.2.6), whitespace is spaces and tabs (h11 has unfolded lines).
_WS = re.compile(r"[ \t]*")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED = re.compile(r'"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\xff])*)"')
_QUOTED_PAIR = re.compile(r"\\(.)")


def parse_extension_list(value: str) -> list[ExtensionElement] | str:
    """Parse a ``Sec-WebSocket-Extensions`` value (several header fields joined with
    ``,``) by the ABNF of RFC 6455 9.1; return its elements, or why it is malformed.

    RFC 6455 9.1: "If a value is received by either the client or the server during
    negotiation that does not conform to the ABNF below, the recipient of such malformed
    data MUST immediately _Fail the WebSocket Connection_."::

        extension-list = 1#extension
        extension = extension-token *( ";" extension-param )
        extension-token = registered-token
        registered-token = token
        extension-param = token [ "=" (token | quoted-string) ]
            ;When using the quoted-string syntax variant, the value
            ;after quoted-string unescaping MUST conform to the
            ;'token' ABNF.

    Empty list elements (``a, , b``) are skipped, as RFC 7230 7 asks of list recipients.
    """
    elements: list[ExtensionElement] = []
    pos, end = 0, len(value)

    def skip_ws(at: int) -> int:
        match = _WS.match(value, at)
        assert match is not None  # [ \t]* always matches.
        return match.end()

    def malformed(what: str) -> str:
        return f"the Sec-WebSocket-Extensions header {value!r} is malformed: {what}"

    while True:
        pos = skip_ws(pos)
        if pos < end and value[pos] == ",":
            pos += 1
            continue
        if pos == end:
            return elements
        name_match = _TOKEN.match(value, pos)
        if name_match is None:
            return malformed(f"an extension name is expected at offset {pos}")
        pos = skip_ws(name_match.end())
        params: list[tuple[str, str | None]] = []
        while pos < end and value[pos] == ";":
            pos = skip_ws(pos + 1)
            param_match = _TOKEN.match(value, pos)
            if param_match is None:
                return malformed(f"a parameter name is expected at offset {pos}")
            pos = skip_ws(param_match.end())
            param_value: str | None = None
            if pos < end and value[pos] == "=":
                pos = skip_ws(pos + 1)
                token_match = _TOKEN.match(value, pos)
                if token_match is not None:
                    param_value = token_match.group()
                    pos = token_match.end()
                else:
                    quoted_match = _QUOTED.match(value, pos)
                    if quoted_match is None:
                        return malformed(f"a parameter value is expected at offset {pos}")
                    param_value = _QUOTED_PAIR.sub(r"\1", quoted_match.group(1))
                    if not _TOKEN.fullmatch(param_value):
                        return malformed(f"the quoted value {param_value!r} is not a token")
                    pos = quoted_match.end()
                pos = skip_ws(pos)
            params.append((param_match.group(), param_value))
        elements.append(ExtensionElement(name_match.group(), tuple(params)))
        if pos < end and value[pos] != ",":
            return malformed(f"',' or ';' is expected at offset {pos}")


def _tokens(values: list[str]) -> list[str]:
    return [token.strip().lower() for value in values for token in value.split(",")]


def validate_response(
    request: HandshakeRequest, response: HandshakeResponse
) -> tuple[str, str, DeflateParameters | None] | HandshakeError:
    """Apply the client's checks of RFC 6455 4.1 (and RFC 7692 for permessage-deflate) to
    the response; return the selected subprotocol, the extensions in use (normalized) and
    the agreed permessage-deflate parameters (None when not in use), or the reason the
    connection must fail."""
    status, headers = response.status_code, response.headers
    # Each header's values, in order (one pass: the checks below read five of them).
    fields: dict[str, list[str]] = {}
    for name, value in headers:
        if name in fields:
            fields[name].append(value)
        else:
            fields[name] = [value]
    # 4.1: "If the status code received from the server is not 101, the client handles the
    # response per HTTP [RFC2616] procedures." A WebSocket client follows no redirect and
    # answers no authentication challenge (the API specifications fail the connection).
    if status != 101:
        phrase = f" {response.reason}" if response.reason else ""
        return HandshakeError(
            f"the server answered HTTP {status}{phrase} instead of 101 Switching Protocols",
            status,
            headers,
            response.body,
        )
    # 4.1 check 2: "If the response lacks an |Upgrade| header field or the |Upgrade| header
    # field contains a value that is not an ASCII case-insensitive match for the value
    # "websocket", the client MUST _Fail the WebSocket Connection_."
    upgrade = fields.get("upgrade", [])
    if len(upgrade) != 1 or upgrade[0].strip().lower() != "websocket":
        return HandshakeError(f"the response's Upgrade header is {_show(upgrade)}, not websocket")
    # 4.1 check 3: "If the response lacks a |Connection| header field or the |Connection|
    # header field doesn't contain a token that is an ASCII case-insensitive match for the
    # value "Upgrade", the client MUST _Fail the WebSocket Connection_."
    connection = fields.get("connection", [])
    if "upgrade" not in _tokens(connection):
        return HandshakeError(
            f"the response's Connection header is {_show(connection)}, without Upgrade"
        )
    # 4.1 check 4: the |Sec-WebSocket-Accept| must be the base64-encoded SHA-1 of the key
    # concatenated with the GUID, "ignoring any leading and trailing whitespace".
    accept = fields.get("sec-websocket-accept", [])
    if len(accept) != 1 or accept[0].strip() != accept_value(request.key):
        return HandshakeError(
            f"the response's Sec-WebSocket-Accept is {_show(accept)}, "
            f"not {accept_value(request.key)!r} for the key sent"
        )
    # 4.1 check 5: "If the response includes a |Sec-WebSocket-Extensions| header field and
    # this header field indicates the use of an extension that was not present in the
    # client's handshake (the server has indicated an extension not requested by the
    # client), the client MUST _Fail the WebSocket Connection_."
    extensions = fields.get("sec-websocket-extensions", [])
    extension_value = ", ".join([value.strip() for value in extensions if value.strip()])
    deflate: DeflateParameters | None = None
    if extension_value:
        checked = _check_extensions(request, extension_value)
        if isinstance(checked, str):
            return HandshakeError(checked)
        deflate = checked
        # What the API's ``extensions`` shows: the element in use, normalized.
        extension_value = deflate.extension
    # 4.1 check 6: "If the response includes a |Sec-WebSocket-Protocol| header field and
    # this header field indicates the use of a subprotocol that was not present in the
    # client's handshake (the server has indicated a subprotocol not requested by the
    # client), the client MUST _Fail the WebSocket Connection_."
    protocols = fields.get("sec-websocket-protocol", [])
    if len(protocols) > 1:
        return HandshakeError(
            f"the server sent {len(protocols)} Sec-WebSocket-Protocol headers, not one"
        )
    protocol = protocols[0].strip() if protocols else ""
    if protocol and protocol not in request.protocols:
        return HandshakeError(
            f"the server selected the subprotocol {protocol!r}, which was not requested"
        )
    # The API specifications (CR 2011 and WHATWG) establish the connection only if the server
    # selected one of the requested subprotocols when any were requested.
    if request.protocols and not protocol:
        return HandshakeError(
            "the server selected no subprotocol; requested: " + ", ".join(request.protocols)
        )
    return protocol, extension_value, deflate


def _check_extensions(request: HandshakeRequest, value: str) -> DeflateParameters | str:
    """The extensions the server selected, against the offer: the agreed permessage-deflate
    parameters, or why the connection must fail."""
    elements = parse_extension_list(value)
    if isinstance(elements, str):
        return elements
    offered = parse_extension_list(request.extensions) if request.extensions else []
    assert isinstance(offered, list), "our own offer is well-formed"
    offered_names = {element.name for element in offered}
    for element in elements:
        # Extension names are compared exactly, as Chromium and websockets do: RFC 7692
        # registers "permessage-deflate" and nothing says its case may vary.
        if element.name not in offered_names:
            return f"the server selected the extension {element.name!r}, which was not offered"
    if len(elements) > 1:
        # RFC 7692 5: "A server MUST NOT accept a PMCE extension negotiation offer together
        # with another extension if the PMCE will conflict with the extension on their use
        # of the RSV1 bit. A client that received a response accepting a PMCE extension
        # negotiation offer together with such an extension MUST _Fail the WebSocket
        # Connection_." Two permessage-deflate elements would both claim RSV1.
        return f"the server accepted {EXTENSION_NAME} {len(elements)} times in {value!r}"
    (element,) = elements
    offer = next(candidate for candidate in offered if candidate.name == element.name)
    offer_params = {name for name, _ in offer.params}
    return parse_response(
        element.params, client_max_window_bits_offered="client_max_window_bits" in offer_params
    )


def _show(values: list[str]) -> str:
    if not values:
        return "missing"
    return ", ".join(repr(value) for value in values)
