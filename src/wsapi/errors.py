"""The errors: ``DOMException``, the exception the web platform's APIs throw, as Web IDL
defines it; and ``ConnectionFailure``, why a connection failed, which the standard events may
not say.

The WebSocket API raises it for API misuse with the name the specification gives
(``"SyntaxError"``, ``"InvalidStateError"``, ``"InvalidAccessError"``, ``"SecurityError"``),
so code written against the JavaScript API can test ``exc.name`` or the legacy ``exc.code``
unchanged. Python-level misuse (a missing argument, a wrong type) stays a ``TypeError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from .webidl import usv_string

__all__ = [
    "FAILURE_KINDS",
    "ConnectionFailure",
    "DOMException",
    "FailureKind",
    "Headers",
    "WebSocketError",
    "new_websocket_error",
    "validate_close_code_and_reason",
]

# Web IDL 2.8.1 "DOMException names": the names that have a legacy code. Every other name
# (including the default "Error" and newer names such as "NotAllowedError") has code 0.
_LEGACY_CODES: Final[dict[str, int]] = {
    "IndexSizeError": 1,
    "HierarchyRequestError": 3,
    "WrongDocumentError": 4,
    "InvalidCharacterError": 5,
    "NoModificationAllowedError": 7,
    "NotFoundError": 8,
    "NotSupportedError": 9,
    "InvalidStateError": 11,
    "SyntaxError": 12,
    "InvalidModificationError": 13,
    "NamespaceError": 14,
    "InvalidAccessError": 15,
    "TypeMismatchError": 17,
    "SecurityError": 18,
    "NetworkError": 19,
    "AbortError": 20,
    "URLMismatchError": 21,
    "QuotaExceededError": 22,
    "TimeoutError": 23,
    "InvalidNodeTypeError": 24,
    "DataCloneError": 25,
}


class DOMException(Exception):
    """An exception named by a web specification: ``DOMException(message="", name="Error")``.

    Like the Web IDL interface, ``name``, ``message`` and ``code`` are read-only, ``code`` is
    the legacy code of the name (0 for names without one), and the legacy code constants
    (``SYNTAX_ERR``, ``INVALID_STATE_ERR``, ...) are attributes of the class and of every
    instance. ``str()`` gives ``"SyntaxError: message"``, the form a browser console shows.
    """

    # BaseException instances always carry a __dict__ (for __notes__ and the like), so the
    # slots only make the two fields fixed-layout; they are private so that the public
    # names can be read-only properties, as the IDL attributes are.
    __slots__ = ("_message", "_name")

    # The legacy codes, Web IDL "interface DOMException" constants. Codes 2, 6, 10 and 16
    # have no name that maps to them any more, but the constants stay in the interface.
    INDEX_SIZE_ERR: Final = 1
    DOMSTRING_SIZE_ERR: Final = 2
    HIERARCHY_REQUEST_ERR: Final = 3
    WRONG_DOCUMENT_ERR: Final = 4
    INVALID_CHARACTER_ERR: Final = 5
    NO_DATA_ALLOWED_ERR: Final = 6
    NO_MODIFICATION_ALLOWED_ERR: Final = 7
    NOT_FOUND_ERR: Final = 8
    NOT_SUPPORTED_ERR: Final = 9
    INUSE_ATTRIBUTE_ERR: Final = 10
    INVALID_STATE_ERR: Final = 11
    SYNTAX_ERR: Final = 12
    INVALID_MODIFICATION_ERR: Final = 13
    NAMESPACE_ERR: Final = 14
    INVALID_ACCESS_ERR: Final = 15
    VALIDATION_ERR: Final = 16
    TYPE_MISMATCH_ERR: Final = 17
    SECURITY_ERR: Final = 18
    NETWORK_ERR: Final = 19
    ABORT_ERR: Final = 20
    URL_MISMATCH_ERR: Final = 21
    QUOTA_EXCEEDED_ERR: Final = 22
    TIMEOUT_ERR: Final = 23
    INVALID_NODE_TYPE_ERR: Final = 24
    DATA_CLONE_ERR: Final = 25

    def __init__(self, message: str = "", name: str = "Error") -> None:
        # Web IDL converts both arguments to DOMString; in Python a non-str is a mistake
        # (DESIGN.md: wrong types raise TypeError) rather than something to stringify.
        if not isinstance(message, str):
            raise TypeError(f"DOMException message must be str, not {type(message).__name__}")
        if not isinstance(name, str):
            raise TypeError(f"DOMException name must be str, not {type(name).__name__}")
        super().__init__(message)
        self._message = message
        self._name = name

    @property
    def name(self) -> str:
        """The error name, e.g. ``"SyntaxError"``."""
        return self._name

    @property
    def message(self) -> str:
        """The human-readable message given to the constructor."""
        return self._message

    @property
    def code(self) -> int:
        """The legacy numeric code of ``name`` (``SYNTAX_ERR`` is 12), or 0 if it has none."""
        return _LEGACY_CODES.get(self._name, 0)

    def __str__(self) -> str:
        return f"{self._name}: {self._message}" if self._message else self._name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._message!r}, {self._name!r})"

    def __reduce__(self) -> tuple[type[DOMException], tuple[str, str], dict[str, object] | None]:
        # The default reduction rebuilds from self.args, which holds only the message; the
        # name must travel too. The instance dict carries notes and other extra attributes.
        return (type(self), (self._message, self._name), self.__dict__ or None)


FailureKind = Literal[
    "dns",  # the host name did not resolve
    "refused",  # the server refused the TCP connection
    "unreachable",  # any other network error while connecting
    "tls",  # the TLS handshake failed (certificate, host name, protocol)
    "timeout",  # open_timeout passed before the connection opened
    "http_status",  # the server answered the handshake with a status other than 101
    "handshake",  # the server's 101 response broke a rule of RFC 6455 4.1
    "protocol",  # the peer broke RFC 6455 after the opening (wsapi sent 1002/1007/1009)
    "connection_lost",  # TCP closed or reset without a Close frame
    "close_timeout",  # our Close unanswered within close_timeout (close 1006, no error event)
    "keepalive_timeout",  # nothing arrived within ping_timeout after a keepalive Ping
    "proxy",  # the proxy refused or failed
    "blocked",  # the agent refused the URL (blocked port, mixed content) or the request
    "buffer_full",  # bufferedAmount passed the agent's maximum
    "aborted",  # close() before the connection opened, or the program ended
]
"""What failed: the ``kind`` of a ``ConnectionFailure``."""

FAILURE_KINDS: tuple[FailureKind, ...] = get_args(FailureKind)


class Headers(Mapping[str, str]):
    """HTTP response headers as a read-only mapping whose names are case-insensitive:
    ``headers["content-type"]``, ``"Content-Type" in headers``. A name sent in several
    fields gives their values joined by ``", "`` (as Fetch's ``Headers.get()``), and
    ``get_all(name)`` gives them one by one; iteration gives each name once, lower-cased,
    in the order of first appearance."""

    __slots__ = ("_fields",)

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        fields: dict[str, list[str]] = {}
        for name, value in pairs:
            fields.setdefault(name.lower(), []).append(value)
        self._fields = fields

    def __getitem__(self, name: str) -> str:
        values = self._fields.get(name.lower()) if isinstance(name, str) else None
        if values is None:
            raise KeyError(name)
        return ", ".join(values)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def get_all(self, name: str) -> list[str]:
        """The values of every field named ``name`` (any case), in order; ``[]`` if none."""
        return list(self._fields.get(name.lower(), ()))

    def __repr__(self) -> str:
        pairs = [(name, value) for name, values in self._fields.items() for value in values]
        return f"Headers({pairs!r})"


@dataclass(frozen=True, slots=True)
class ConnectionFailure:
    """Why a connection failed: the readable reason the standard events may not carry (the
    living standard hides it from scripts; a Python program is not a web page)."""

    kind: FailureKind
    """One of ``FAILURE_KINDS``."""
    reason: str
    """A sentence for people and logs."""
    status_code: int | None = None
    """The HTTP status, when the server (or the proxy) answered with one other than 101
    (or 200 to a proxy's CONNECT)."""
    raw_headers: tuple[tuple[str, str], ...] = ()
    """That response's header fields, in order (names lower-cased)."""
    body: bytes = field(default=b"", repr=False)
    """The start of that response's body: at most ``MAX_REFUSAL_BODY_SIZE`` bytes, those
    that arrived within ``REFUSAL_BODY_WAIT`` seconds of its head. (Not in the repr: it may
    be long.)"""
    headers: Headers = field(init=False, repr=False, compare=False)
    """``raw_headers`` as a read-only mapping with case-insensitive names."""

    def __post_init__(self) -> None:
        if self.kind not in FAILURE_KINDS:
            raise ValueError(f"{self.kind!r} is not a failure kind: {', '.join(FAILURE_KINDS)}")
        object.__setattr__(self, "headers", Headers(self.raw_headers))

    def __str__(self) -> str:
        return self.reason


class WebSocketError(DOMException):
    """The WebSocketStream proposal's ``WebSocketError``: a ``DOMException`` named
    ``"WebSocketError"`` that carries a close code and reason,
    ``WebSocketError(message="", *, closeCode=None, reason="")``.

    The IDL's ``init`` dictionary (``WebSocketCloseInfo``) becomes the keyword arguments.
    The constructor validates them as ``close()`` does: ``closeCode`` 1000 or 3000-4999
    (``InvalidAccessError``), ``reason`` at most 123 bytes of UTF-8 (``SyntaxError``); a
    non-empty reason without a code means 1000.

    wsapi raises it from ``await ws.opened`` and ``async with WebSocket(...)`` when the
    connection fails, with the ``ConnectionFailure`` that says why as ``failure``. One built
    by a program has no failure: reading ``failure`` raises ``AttributeError`` then
    (``getattr(exc, "failure", None)`` tests for it), so that the attribute's type stays
    ``ConnectionFailure`` for the errors the library raises.
    """

    __slots__ = ("_close_code", "_failure", "_reason")

    def __init__(
        self, message: str = "", *, closeCode: int | None = None, reason: str = ""
    ) -> None:
        # Web IDL: WebSocketCloseInfo is {[EnforceRange] unsigned short closeCode;
        # USVString reason = "";}. A value of the wrong Python type is a TypeError.
        if closeCode is not None:
            if isinstance(closeCode, bool) or not isinstance(closeCode, int):
                raise TypeError(
                    f"WebSocketError closeCode must be an int, not {type(closeCode).__name__}"
                )
            if not 0 <= closeCode <= 0xFFFF:
                # [EnforceRange]: a value outside unsigned short's range is a TypeError.
                raise TypeError(f"WebSocketError closeCode {closeCode} is not in 0-65535")
        if not isinstance(reason, str):
            raise TypeError(f"WebSocketError reason must be a str, not {type(reason).__name__}")
        reason = usv_string(reason)
        # 1. Set this's name to "WebSocketError". 2. Set this's message to message.
        super().__init__(message, "WebSocketError")
        # 3. Let code be init["closeCode"] if it exists, or null otherwise. 4. Let reason be
        # init["reason"] if it exists, or the empty string otherwise.
        # 5. Validate close code and reason with code and reason.
        validate_close_code_and_reason(closeCode, reason)
        # 6. If reason is non-empty, but code is null, then set code to 1000 ("Normal
        # Closure").
        if reason and closeCode is None:
            closeCode = 1000
        # 7. Set this's closeCode to code. 8. Set this's reason to reason.
        self._close_code = closeCode
        self._reason = reason
        self._failure: ConnectionFailure | None = None

    @property
    def closeCode(self) -> int | None:
        """The close code: one given to the constructor, or the one the connection closed
        with (which may be a code a program may not send, such as 1001); ``None`` if none."""
        return self._close_code

    @property
    def reason(self) -> str:
        """The close reason, ``""`` if none."""
        return self._reason

    @property
    def failure(self) -> ConnectionFailure:
        """Why the connection failed, for an error wsapi raised for a failed connection;
        ``AttributeError`` for one that has no failure (a program built it)."""
        failure = self._failure
        if failure is None:
            raise AttributeError(
                "this WebSocketError has no failure: it was not raised for a failed connection",
                name="failure",
                obj=self,
            )
        return failure

    def __repr__(self) -> str:
        members = [repr(self.message)]
        if self._close_code is not None:
            members.append(f"closeCode={self._close_code!r}")
        if self._reason:
            members.append(f"reason={self._reason!r}")
        if self._failure is not None:
            members.append(f"failure={self._failure!r}")
        return f"{type(self).__name__}({', '.join(members)})"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...], dict[str, object] | None]:
        # The constructor would validate again (and refuse a code the server sent): rebuild
        # with the library's factory instead.
        return (
            new_websocket_error,
            (self.message, self._failure, self._close_code, self._reason),
            self.__dict__ or None,
        )


def new_websocket_error(
    message: str,
    failure: ConnectionFailure | None = None,
    close_code: int | None = None,
    reason: str = "",
) -> WebSocketError:
    """A new ``WebSocketError`` as the library makes it: the WebSocketStream proposal's
    "a new WebSocketError whose closeCode is code and reason is reason" sets the values
    without the constructor's validation (a server may close with 1001, which no program
    may give), and wsapi's ``failure`` is set when the error is a failed connection's."""
    error = WebSocketError(message)
    error._close_code = close_code
    error._reason = reason
    error._failure = failure
    return error


def validate_close_code_and_reason(code: int | None, reason: str | None) -> None:
    """The WebSockets standard's "validate close code and reason", for ``code`` already an
    unsigned short and ``reason`` already a ``USVString``."""
    # 1. If code is not null, but is neither an integer equal to 1000 nor an integer in the
    # range 3000 to 4999, inclusive, throw an "InvalidAccessError" DOMException.
    if code is not None and code != 1000 and not 3000 <= code <= 4999:
        raise DOMException(f"close code {code} is not 1000 or in 3000-4999", "InvalidAccessError")
    # 2. If reason is not null, then: 1. Let reasonBytes be the result of UTF-8 encoding
    # reason. 2. If reasonBytes is longer than 123 bytes, then throw a "SyntaxError"
    # DOMException.
    if reason is not None:
        size = len(reason.encode("utf-8"))
        if size > 123:
            raise DOMException(
                f"close reason is {size} bytes of UTF-8, more than 123", "SyntaxError"
            )
