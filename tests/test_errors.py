"""DOMException: the Web IDL constructor, names, legacy codes and constants, and its life as
a Python exception (str, repr, pickling); WebSocketError and the ConnectionFailure it
carries."""

from __future__ import annotations

import ast
import asyncio
import copy
import dataclasses
import pickle
import sys
from pathlib import Path
from typing import Any, get_args

import pytest

from support import TIMEOUT, raw_server, read_request
from wsapi import ConnectionFailure, UserAgent, WebSocket, WebSocketError
from wsapi.errors import FAILURE_KINDS, DOMException, FailureKind, new_websocket_error

# Web IDL "DOMException names" table: the names with a legacy code, and their constants.
LEGACY = [
    ("IndexSizeError", 1, "INDEX_SIZE_ERR"),
    ("HierarchyRequestError", 3, "HIERARCHY_REQUEST_ERR"),
    ("WrongDocumentError", 4, "WRONG_DOCUMENT_ERR"),
    ("InvalidCharacterError", 5, "INVALID_CHARACTER_ERR"),
    ("NoModificationAllowedError", 7, "NO_MODIFICATION_ALLOWED_ERR"),
    ("NotFoundError", 8, "NOT_FOUND_ERR"),
    ("NotSupportedError", 9, "NOT_SUPPORTED_ERR"),
    ("InvalidStateError", 11, "INVALID_STATE_ERR"),
    ("SyntaxError", 12, "SYNTAX_ERR"),
    ("InvalidModificationError", 13, "INVALID_MODIFICATION_ERR"),
    ("NamespaceError", 14, "NAMESPACE_ERR"),
    ("InvalidAccessError", 15, "INVALID_ACCESS_ERR"),
    ("TypeMismatchError", 17, "TYPE_MISMATCH_ERR"),
    ("SecurityError", 18, "SECURITY_ERR"),
    ("NetworkError", 19, "NETWORK_ERR"),
    ("AbortError", 20, "ABORT_ERR"),
    ("URLMismatchError", 21, "URL_MISMATCH_ERR"),
    ("QuotaExceededError", 22, "QUOTA_EXCEEDED_ERR"),
    ("TimeoutError", 23, "TIMEOUT_ERR"),
    ("InvalidNodeTypeError", 24, "INVALID_NODE_TYPE_ERR"),
    ("DataCloneError", 25, "DATA_CLONE_ERR"),
]
# Constants whose names no longer map to any error name, kept in the interface.
ORPHAN_CONSTANTS = [
    ("DOMSTRING_SIZE_ERR", 2),
    ("NO_DATA_ALLOWED_ERR", 6),
    ("INUSE_ATTRIBUTE_ERR", 10),
    ("VALIDATION_ERR", 16),
]


class CustomError(DOMException):
    """A subclass, at module level so that pickle can find it."""


def test_defaults() -> None:
    """With no arguments the name is "Error", the message empty and the code 0."""
    exc = DOMException()
    assert (exc.name, exc.message, exc.code) == ("Error", "", 0)


def test_is_an_exception() -> None:
    """DOMException is an Exception that can be raised and caught as one."""
    with pytest.raises(Exception, match="boom") as info:
        raise DOMException("boom", "SyntaxError")
    assert isinstance(info.value, DOMException)
    assert info.value.args == ("boom",)


def test_positional_and_keyword_arguments() -> None:
    """The arguments are (message, name), positionally or by keyword, as in Web IDL."""
    a = DOMException("bad url", "SyntaxError")
    b = DOMException(message="bad url", name="SyntaxError")
    assert (
        (a.name, a.message, a.code)
        == (b.name, b.message, b.code)
        == ("SyntaxError", "bad url", 12)
    )


@pytest.mark.parametrize(("name", "code", "constant"), LEGACY)
def test_legacy_code_of_each_name(name: str, code: int, constant: str) -> None:
    """Each name with a legacy code gets it, and it equals the matching class constant."""
    exc = DOMException("m", name)
    assert exc.code == code
    assert getattr(DOMException, constant) == code
    assert getattr(exc, constant) == code


@pytest.mark.parametrize("name", ["Error", "NotAllowedError", "EncodingError", "syntaxerror", ""])
def test_other_names_have_code_zero(name: str) -> None:
    """Names outside the legacy table (including a differently cased one) have code 0."""
    assert DOMException("m", name).code == 0


@pytest.mark.parametrize(("constant", "value"), ORPHAN_CONSTANTS)
def test_constants_without_a_name(constant: str, value: int) -> None:
    """The legacy constants that no name maps to any more are still defined."""
    assert getattr(DOMException, constant) == value


def test_spec_constants_used_by_the_websocket_api() -> None:
    """The four codes the WebSocket API relies on have their legacy values."""
    assert DOMException.SYNTAX_ERR == 12
    assert DOMException.INVALID_STATE_ERR == 11
    assert DOMException.INVALID_ACCESS_ERR == 15
    assert DOMException.SECURITY_ERR == 18


@pytest.mark.parametrize("attribute", ["name", "message", "code"])
def test_attributes_are_read_only(attribute: str) -> None:
    """name, message and code are read-only, like the IDL attributes."""
    exc = DOMException("m", "SyntaxError")
    with pytest.raises(AttributeError):
        setattr(exc, attribute, "x")


@pytest.mark.parametrize(("message", "name"), [(1, "SyntaxError"), ("m", None), (b"m", "Error")])
def test_wrong_argument_types_raise_type_error(message: Any, name: Any) -> None:
    """A non-str message or name is a TypeError, not silently stringified."""
    with pytest.raises(TypeError):
        DOMException(message, name)


def test_str_shows_name_and_message() -> None:
    """str() reads like a browser console: "SyntaxError: message"."""
    assert str(DOMException("invalid URL", "SyntaxError")) == "SyntaxError: invalid URL"


def test_str_without_message_is_the_name() -> None:
    """With an empty message, str() is the name alone."""
    assert str(DOMException("", "InvalidStateError")) == "InvalidStateError"


def test_repr_evaluates_back() -> None:
    """repr() is a constructor call that rebuilds an equal exception."""
    exc = DOMException('it\'s "quoted"', "InvalidAccessError")
    again = eval(repr(exc), {"DOMException": DOMException})
    assert repr(exc) == "DOMException('it\\'s \"quoted\"', 'InvalidAccessError')"
    assert (again.name, again.message, again.code) == (exc.name, exc.message, exc.code)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip(protocol: int) -> None:
    """Pickling keeps the name, message and code with every protocol."""
    exc = pickle.loads(pickle.dumps(DOMException("no", "SecurityError"), protocol))
    assert isinstance(exc, DOMException)
    assert (exc.name, exc.message, exc.code) == ("SecurityError", "no", 18)


def test_pickle_keeps_notes_and_subclass() -> None:
    """Pickling keeps the concrete class and the notes added to the exception."""
    exc = CustomError("late", "TimeoutError")
    if sys.version_info >= (3, 11):
        exc.add_note("while connecting")
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is CustomError
    assert (again.name, again.code) == ("TimeoutError", 23)
    assert getattr(again, "__notes__", None) == getattr(exc, "__notes__", None)


def test_copy() -> None:
    """copy.copy and copy.deepcopy give an equal exception."""
    exc = DOMException("x", "AbortError")
    for clone in (copy.copy(exc), copy.deepcopy(exc)):
        assert (clone.name, clone.message, clone.code) == ("AbortError", "x", 20)


def test_module_imports_only_the_standard_library() -> None:
    """errors.py is a leaf: it imports nothing but the standard library and the package's
    Web IDL string conversions (webidl.py, itself a leaf)."""
    source = Path(__file__).resolve().parent.parent / "src" / "wsapi" / "errors.py"
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                assert (node.level, node.module) == (1, "webidl"), "no other package import"
                continue
            roots.add((node.module or "").split(".")[0])
    assert roots <= sys.stdlib_module_names | {"__future__"}
    webidl = source.with_name("webidl.py")
    assert not any(
        isinstance(node, ast.ImportFrom) and node.level
        for node in ast.walk(ast.parse(webidl.read_text()))
    )


# --- WebSocketError and ConnectionFailure ----------------------------------------------------


# web-platform-tests websockets/stream/tentative/websocket-error.any.js, in Python.


def test_websocket_error_defaults() -> None:
    """WPT "WebSocketError defaults should be correct": code 0, name WebSocketError, empty
    message, closeCode None, empty reason; a DOMException."""
    error = WebSocketError()
    assert isinstance(error, DOMException)
    assert (error.code, error.name, error.message) == (0, "WebSocketError", "")
    assert (error.closeCode, error.reason) == (None, "")


def test_websocket_error_initialised_from_arguments() -> None:
    """WPT "WebSocketError should be initialised from arguments"."""
    error = WebSocketError("message", closeCode=3456, reason="reason")
    assert (error.code, error.name, error.message) == (0, "WebSocketError", "message")
    assert (error.closeCode, error.reason) == (3456, "reason")


@pytest.mark.parametrize("code", [999, 1001, 2999, 5000])
def test_websocket_error_invalid_code(code: int) -> None:
    """WPT "new WebSocketError with invalid code ... should throw": InvalidAccessError."""
    with pytest.raises(DOMException, match=f"close code {code} is not 1000") as info:
        WebSocketError("", closeCode=code)
    assert info.value.name == "InvalidAccessError"


def test_websocket_error_only_close_code() -> None:
    """WPT "passing only close code to WebSocketError should work"."""
    error = WebSocketError("", closeCode=3333)
    assert (error.closeCode, error.reason) == (3333, "")


def test_websocket_error_reason_defaults_the_code() -> None:
    """WPT "passing a non-empty reason should cause the close code to be set to 1000"."""
    error = WebSocketError("", reason="specified")
    assert (error.closeCode, error.reason) == (1000, "specified")


@pytest.mark.parametrize(
    ("code", "reason"),
    [(1000, "x" * 124), (None, "\N{ELECTRIC PLUG}" * 32)],
    ids=["ascii", "utf8"],
)
def test_websocket_error_overlong_reason(code: int | None, reason: str) -> None:
    """WPT "overlong reason should throw" and "reason should be rejected based on utf-8
    bytes, not character count": SyntaxError (32 plugs are 128 bytes, 31 are 124)."""
    with pytest.raises(DOMException, match="more than 123") as info:
        WebSocketError("", closeCode=code, reason=reason)
    assert info.value.name == "SyntaxError"
    assert WebSocketError("", reason="x" * 123).reason == "x" * 123


# The rest of the IDL, as Python sees it.


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"closeCode": "1000"}, "closeCode must be an int, not str"),
        ({"closeCode": 1000.0}, "closeCode must be an int, not float"),
        ({"closeCode": True}, "closeCode must be an int, not bool"),
        ({"closeCode": 65536}, "closeCode 65536 is not in 0-65535"),
        ({"closeCode": -1}, "closeCode -1 is not in 0-65535"),
        ({"reason": b"x"}, "reason must be a str, not bytes"),
    ],
)
def test_websocket_error_argument_types(kwargs: dict[str, Any], message: str) -> None:
    """closeCode is an [EnforceRange] unsigned short and reason a string: anything else,
    or a code outside 0-65535, is a TypeError (before the close-code rules)."""
    with pytest.raises(TypeError, match=message):
        WebSocketError("", **kwargs)


def test_websocket_error_reason_is_a_usv_string() -> None:
    """A lone surrogate in the reason becomes U+FFFD (USVString); a surrogate pair joins."""
    assert WebSocketError(reason="a\ud800").reason == "a\ufffd"
    assert WebSocketError(reason="\ud83d\udd0c").reason == "\N{ELECTRIC PLUG}"


def test_websocket_error_attributes_are_read_only() -> None:
    """closeCode, reason and failure are read-only, as the IDL attributes are."""
    error = WebSocketError(closeCode=1000)
    for attribute in ("closeCode", "reason", "failure", "name"):
        with pytest.raises(AttributeError):
            setattr(error, attribute, None)


def test_websocket_error_str_repr_and_pickle() -> None:
    """str() is "WebSocketError: message"; repr names the members; pickling and copying keep
    them all, the failure too, and a server's code no program may give (1001)."""
    error = WebSocketError("bye", closeCode=4000, reason="done")
    assert str(error) == "WebSocketError: bye"
    assert repr(error) == "WebSocketError('bye', closeCode=4000, reason='done')"
    failure = ConnectionFailure("connection_lost", "the server went away")
    lost = new_websocket_error("the server went away", failure, 1001, "going")
    for original in (error, lost):
        for clone in (pickle.loads(pickle.dumps(original)), copy.copy(original)):
            assert type(clone) is WebSocketError
            assert (clone.message, clone.closeCode, clone.reason, clone.name) == (
                original.message,
                original.closeCode,
                original.reason,
                "WebSocketError",
            )
    assert pickle.loads(pickle.dumps(lost)).failure == failure


def test_websocket_error_failure_only_from_the_library() -> None:
    """A WebSocketError a program builds has no failure (AttributeError that says so); the
    library's carries its ConnectionFailure and no close code."""
    with pytest.raises(AttributeError, match="has no failure"):
        _ = WebSocketError("x").failure
    assert getattr(WebSocketError("x"), "failure", None) is None
    failure = ConnectionFailure("refused", "127.0.0.1:1 refused the connection")
    error = new_websocket_error(failure.reason, failure)
    assert error.failure is failure
    assert (error.closeCode, error.reason) == (None, "")
    assert str(error) == "WebSocketError: 127.0.0.1:1 refused the connection"


def test_connection_failure_kind_is_checked() -> None:
    """A kind outside FAILURE_KINDS is a ValueError that lists the kinds."""
    with pytest.raises(ValueError, match=r"'http-status' is not a failure kind: dns, refused"):
        ConnectionFailure("http-status", "x")  # type: ignore[arg-type]
    assert set(FAILURE_KINDS) == set(get_args(FailureKind))
    assert len(FAILURE_KINDS) == 15


def test_connection_failure_headers_follow_raw_headers() -> None:
    """headers is derived from raw_headers (a copy made with replace() too) and takes no
    part in equality."""
    failure = ConnectionFailure("http_status", "403", 403, (("x-a", "1"), ("x-a", "2")), b"no")
    assert failure.headers["X-A"] == "1, 2"
    other = dataclasses.replace(failure, raw_headers=(("X-B", "3"),))
    assert dict(other.headers) == {"x-b": "3"}
    assert failure == ConnectionFailure(
        "http_status", "403", 403, (("x-a", "1"), ("x-a", "2")), b"no"
    )
    assert hash(failure) == hash(dataclasses.replace(failure))


async def test_awaiting_opened_raises_the_refusal() -> None:
    """await ws.opened raises WebSocketError whose failure has the 403's kind, status,
    headers and body, as the README's example reads them."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 6\r\n\r\nno way"
        )
        await writer.drain()
        await reader.read()

    async with raw_server(handler) as url:
        ws = WebSocket(url, agent=UserAgent(proxy=None))
        with pytest.raises(WebSocketError) as info:
            await asyncio.wait_for(ws.opened, 10 * TIMEOUT)
        await asyncio.wait_for(ws.closed, 10 * TIMEOUT)
    failure = info.value.failure
    assert (info.value.name, info.value.closeCode, info.value.message) == (
        "WebSocketError",
        None,
        failure.reason,
    )
    assert (failure.kind, failure.status_code) == ("http_status", 403)
    assert failure.headers["content-type"] == "text/plain"
    assert failure.body == b"no way"
    assert ws.failure == failure
