"""The parity scenarios, as data, and the known differences they declare.

Each scenario is one pytest item of tests/test_browser_parity.py. The differences are listed,
with their reasons, in docs/parity.md (a test checks that each is there, with the scenarios
that declare it).
"""

from __future__ import annotations

from .compare import Change, Difference, Drop, Ignore, Insert, Omit, Replace
from .data import binary, binary_pattern, blob, long_text, text, view
from .peers import (
    Accept,
    AwaitClose,
    CloseWith,
    EchoFrames,
    Frame,
    NoPeer,
    Pause,
    RawAction,
    RawPeer,
    ReadRequest,
    Receive,
    Record,
    Reset,
    Send,
    Shut,
    Write,
    WsPeer,
)
from .scenario import (
    Scenario,
    binary_type,
    check,
    close,
    construct,
    drain,
    handler,
    listen,
    send,
    sleep,
    stop,
    unlisten,
    wait,
)

# --- Known differences ------------------------------------------------------------------------


def entry(event: str, **values: object) -> dict[str, object]:
    """A log entry of the "log" listener, as Chromium has it in a declared difference."""
    base: dict[str, object] = {
        "event": event,
        "listener": "log",
        "readyState": 3,
        "bufferedAmount": 0,
        "protocol": "",
        "extensions": "",
    }
    return {**base, **values}


CHROMIUM_NO_ERROR_ON_TCP_LOSS = Difference(
    "chromium-no-error-on-tcp-loss",
    "Chromium fires no error event when TCP closes without a Close frame after the connection "
    "opened; wsapi treats that as a failure of the connection (DESIGN.md section 2), so its "
    "close task fires error before close (1006)",
    (Drop("client", {"event": "error"}),),
)
CHROMIUM_ACCEPTS_CLOSE_CODE_999 = Difference(
    "chromium-accepts-close-code-999",
    "RFC 6455 7.4.2: codes below 1000 are not used; a Close with one is a protocol error, "
    "which wsapi fails with 1002. Chromium accepts it and closes cleanly with code 999",
    (
        Drop("client", {"event": "error"}),
        Change("client", {"event": "close"}, {"code": 999, "wasClean": True}),
        Change("server", {"close": 1002}, {"close": 999}),
    ),
)
CHROMIUM_FAILS_ON_FRAME_AFTER_CLOSE = Difference(
    "chromium-fails-on-frame-after-close",
    "a frame the server sends after its Close (a second Close, or data) is ignored by wsapi: "
    "the closing handshake is done, and RFC 6455 5.5.1 only forbids the sending; Chromium "
    "fails the connection ('Close received after close', 'Data frame received after "
    "close'): error, then close 1006 instead of the clean close with the server's code",
    (
        Insert("client", {"event": "close"}, (entry("error"),)),
        Change("client", {"event": "close"}, {"code": 1006, "reason": "", "wasClean": False}),
    ),
)
CHROMIUM_FAILURE_CLOSE_REASON = Difference(
    "chromium-failure-close-reason",
    "when it fails the connection Chromium explains why in the reason of its Close frame "
    "('Unknown opcode', ...); wsapi sends the code alone. The reason is free text (RFC 6455 "
    "5.5.1), not visible to the page",
    (Omit("server", "reason", {"close": 1002}),),
)
CHROMIUM_1002_FOR_INVALID_UTF8 = Difference(
    "chromium-1002-for-invalid-utf8",
    "RFC 6455 7.4.1: 1007 is the code for data that is not consistent with the type of the "
    "message (non-UTF-8 in a text message or a Close reason); Chromium sends 1002 there",
    (Change("server", {"close": 1007}, {"close": 1002}),),
)
CHROMIUM_UNDEFINED_CLOSE_CODE = Difference(
    "chromium-undefined-close-code",
    "close(undefined, reason): Web IDL makes an optional argument given undefined 'missing', "
    "so the code is absent (and the living standard then sends 1000 with the reason); "
    "Chromium converts undefined to 0 and throws InvalidAccessError. The Python call is "
    "close(None, reason)",
    (
        Insert(
            "client", {"event": "close"}, ({"step": "close", "exception": "InvalidAccessError"},)
        ),
        # wsapi then closes with 1000 and the reason, as the living standard says; Chromium,
        # having thrown, closes later with the scenario's plain close(): no body, 1005.
        Change("client", {"event": "close"}, {"code": 1005, "reason": ""}),
        Replace("server", {"close": 1000, "reason": "why"}, ({"conn": 0, "close": None},)),
    ),
)
CHROMIUM_CASE_INSENSITIVE_DUPLICATES = Difference(
    "chromium-case-insensitive-duplicate-protocols",
    "protocols that differ only in ASCII case: wsapi's whatwg mode throws SyntaxError, as the "
    "web-platform-tests expect (DESIGN.md section 2); Chromium accepts them and connects",
    (
        Replace(
            "client",
            {"step": "construct"},
            (
                {
                    "step": "construct",
                    "binaryType": "blob",
                    "url": "ws://{host}/",
                    "readyState": 0,
                    "bufferedAmount": 0,
                    "protocol": "",
                    "extensions": "",
                },
                entry("error"),
                entry("close", code=1006, reason="", wasClean=False),
            ),
        ),
    ),
)
TIMING_BLOB_BUFFERED_AMOUNT = Difference(
    "timing-blob-buffered-amount",
    "Chromium reads a Blob asynchronously before it sends it, so how much is still queued "
    "when the echo of an earlier message arrives depends on timing: bufferedAmount at "
    "message events is left out (the value right after the sends is still compared)",
    (Omit("client", "bufferedAmount", {"event": "message"}),),
    required=False,
)

TIMING_REQUEST_BEFORE_CLOSE = Difference(
    "timing-request-before-close",
    "close() right after the constructor: whether Chromium's network process has sent the "
    "request before the close reaches it depends on timing (wsapi never sends it: its "
    "connection has not started), so what the server received is left out",
    (Ignore("server"),),
    required=False,
)


GLOBAL_DIFFERENCES: tuple[Difference, ...] = ()
"""Declared for every scenario: none now. (permessage-deflate was one while wsapi's whatwg
mode did not offer it yet; its offer and the extensions attribute are now compared.)"""

CHROMIUM_CLOSE_TIMEOUT = 60
"""Seconds Chromium waits for the server's Close after its own (kClosingHandshakeTimeout)."""
CHROMIUM_TCP_CLOSE_TIMEOUT = 2
"""Seconds Chromium waits for the server to close TCP after the closing handshake."""

# --- Peers ------------------------------------------------------------------------------------

ECHO = WsPeer()


def close_frame(code: int | None = None, reason: bytes = b"") -> Frame:
    """A Close frame from the server (no body when ``code`` is None)."""
    payload = b"" if code is None else code.to_bytes(2, "big") + reason
    return Frame(0x8, payload)


def raw_after_open(*frames: Frame | bytes, then: tuple[RawAction, ...] = ()) -> RawPeer:
    """A raw peer that accepts, sends ``frames`` in the same segment as its 101, then runs
    ``then`` (default: read until the client closes TCP)."""
    return RawPeer((ReadRequest(), Write(Accept(), *frames), *then))


def refuse(response: bytes) -> RawPeer:
    """A raw peer that answers the handshake with ``response`` and closes."""
    return RawPeer((ReadRequest(), Write(response), Shut()))


OPEN_THEN_CLOSE = (construct(), wait("open"), close())
"""Open, then close() without arguments."""
OPEN = (construct(),)
"""Construct and let the peer lead."""
CLOSE_ON_OPEN = (
    construct(log=False),
    listen("open", "log", do=[close()]),
    listen("error", "log"),
    listen("close", "log"),
)
"""Close in the open handler, if the connection opens."""

# --- Scenarios --------------------------------------------------------------------------------

HANDSHAKE = [
    Scenario(
        "open-and-close",
        "open, then close() with no arguments: the server gets a Close without a body",
        ECHO,
        (
            construct(),
            check("after constructor"),
            wait("open"),
            check("open"),
            close(),
            check("after close()"),
        ),
    ),
    Scenario(
        "http-url-becomes-ws",
        "an http: URL is connected to as ws:, with its path and query",
        ECHO,
        (construct("http://{host}/path?q=1"), wait("open"), close(1000)),
    ),
    Scenario(
        "url-with-fragment",
        "a URL with a fragment is a SyntaxError from the constructor",
        ECHO,
        (construct("ws://{host}/#fragment"),),
    ),
    Scenario(
        "url-normalized",
        "the URL is parsed and serialized: scheme lower-cased, spaces percent-encoded",
        ECHO,
        (construct("WS://{host}/a b?c d"), wait("open"), close()),
    ),
    Scenario(
        "blocked-port",
        "a port on the Fetch standard's bad-port list: the connection fails",
        NoPeer(),
        (construct("ws://127.0.0.1:6000/"),),
    ),
    Scenario(
        "url-bad-scheme",
        "a URL that is not ws:, wss:, http: or https: is a SyntaxError",
        ECHO,
        (construct("ftp://{host}/"),),
    ),
    Scenario(
        "connection-refused",
        "nothing listens on the port: error, then close 1006",
        NoPeer(),
        OPEN,
    ),
    Scenario(
        "status-404",
        "a 404 response fails the connection",
        refuse(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"),
        OPEN,
    ),
    Scenario(
        "status-200",
        "a 200 response (a plain web server) fails the connection",
        refuse(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"),
        OPEN,
    ),
    Scenario(
        "status-500",
        "a 500 response fails the connection",
        refuse(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"),
        OPEN,
    ),
    Scenario(
        "status-401",
        "a 401 asking for credentials fails the connection (a script has none to give)",
        refuse(
            b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="parity"\r\n'
            b"Content-Length: 0\r\n\r\n"
        ),
        OPEN,
    ),
    Scenario(
        "redirect-302",
        "a redirect is not followed: it fails the connection",
        refuse(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n"),
        OPEN,
    ),
    Scenario(
        "garbage-status-line",
        "a response that is not HTTP fails the connection",
        refuse(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"),
        OPEN,
    ),
    Scenario(
        "closed-before-response",
        "the server closes TCP after reading the request: error, close 1006",
        RawPeer((ReadRequest(), Shut())),
        OPEN,
    ),
    Scenario(
        "bad-accept-key",
        "a wrong Sec-WebSocket-Accept fails the connection",
        RawPeer((ReadRequest(), Write(Accept(key=b"dGhlIHNhbXBsZSBub25jZQ==")), Record(3))),
        OPEN,
    ),
    Scenario(
        "missing-accept",
        "a 101 without Sec-WebSocket-Accept fails the connection",
        RawPeer((ReadRequest(), Write(Accept(omit=("Sec-WebSocket-Accept",))), Record(3))),
        OPEN,
    ),
    Scenario(
        "missing-upgrade",
        "a 101 without Upgrade: websocket fails the connection",
        RawPeer((ReadRequest(), Write(Accept(omit=("Upgrade",))), Record(3))),
        OPEN,
    ),
    Scenario(
        "missing-connection",
        "a 101 without Connection: Upgrade fails the connection",
        RawPeer((ReadRequest(), Write(Accept(omit=("Connection",))), Record(3))),
        OPEN,
    ),
    Scenario(
        "http10-101",
        "a 101 with the version HTTP/1.0",
        RawPeer(
            (
                ReadRequest(),
                Write(Accept(status=b"HTTP/1.0 101 Switching Protocols")),
                EchoFrames(),
                Shut(),
            )
        ),
        CLOSE_ON_OPEN,
    ),
    Scenario(
        "unrequested-extension",
        "a server that selects an extension the client did not offer fails the connection",
        RawPeer(
            (ReadRequest(), Write(Accept(extra=b"Sec-WebSocket-Extensions: x-foo\r\n")), Record(3))
        ),
        OPEN,
    ),
    Scenario(
        "delayed-101",
        "a 101 half a second late: the connection opens, readyState CONNECTING until then",
        RawPeer((ReadRequest(), Pause(0.5), Write(Accept()), EchoFrames(), Shut())),
        (
            construct(),
            sleep(200),
            check("while the server waits"),
            wait("open"),
            send(text("late")),
            wait("message"),
            close(1000, "done"),
        ),
    ),
    Scenario(
        "send-while-connecting",
        "send() before open is an InvalidStateError and sends nothing",
        ECHO,
        (construct(), send(text("too early")), check("after send"), wait("open"), close()),
    ),
    Scenario(
        "close-while-connecting",
        "close() right after the constructor: CLOSING at once, then error and close 1006",
        RawPeer((ReadRequest(), Pause(0.3), Write(Accept()), Record(1))),
        (construct(), close(), check("after close()")),
        (TIMING_REQUEST_BEFORE_CLOSE,),
    ),
    Scenario(
        "close-during-slow-handshake",
        "close() while the server takes its time with the 101: error, close 1006",
        RawPeer((ReadRequest(), Pause(1.0), Write(Accept()), Record(1))),
        (construct(), sleep(200), close(1000, "bye"), check("after close()")),
    ),
    Scenario(
        "101-and-close-in-one-segment",
        "the 101 and a Close arrive together: open, then a clean close with the code",
        raw_after_open(close_frame(1000, b"bye"), then=(AwaitClose(reply=False), Shut())),
        OPEN,
    ),
    Scenario(
        "101-messages-and-close-in-one-segment",
        "messages that arrive with a Close are dispatched in order, while still OPEN",
        raw_after_open(
            Frame(0x1, b"one"),
            Frame(0x2, b"\x02"),
            Frame(0x1, b"three"),
            close_frame(1000),
            then=(AwaitClose(reply=False), Shut()),
        ),
        (construct(), binary_type("arraybuffer")),
    ),
]

SUBPROTOCOLS = [
    Scenario(
        "subprotocol-selected",
        "the server selects one of the requested subprotocols",
        WsPeer(subprotocols=("superchat", "chat")),
        (construct(protocols=["chat", "superchat"]), wait("open"), check("open"), close()),
    ),
    Scenario(
        "subprotocol-as-string",
        "protocols given as one string",
        WsPeer(subprotocols=("chat",)),
        (construct(protocols="chat"), wait("open"), close(1000)),
    ),
    Scenario(
        "subprotocol-missing",
        "subprotocols requested and none selected: the connection fails",
        RawPeer((ReadRequest(), Write(Accept()), Record(3))),
        (construct(protocols=["chat"]),),
    ),
    Scenario(
        "subprotocol-unrequested",
        "a subprotocol selected when none was requested fails the connection",
        RawPeer(
            (ReadRequest(), Write(Accept(extra=b"Sec-WebSocket-Protocol: chat\r\n")), Record(3))
        ),
        OPEN,
    ),
    Scenario(
        "subprotocol-not-among-requested",
        "a subprotocol that was not among those requested fails the connection",
        RawPeer(
            (ReadRequest(), Write(Accept(extra=b"Sec-WebSocket-Protocol: other\r\n")), Record(3))
        ),
        (construct(protocols=["chat"]),),
    ),
    Scenario(
        "subprotocol-case-differs",
        "the server answers CHAT to a request for chat",
        RawPeer(
            (
                ReadRequest(),
                Write(Accept(extra=b"Sec-WebSocket-Protocol: CHAT\r\n")),
                EchoFrames(),
                Shut(),
            )
        ),
        (construct(protocols=["chat"]), wait("close"), check("end")),
    ),
    Scenario(
        "subprotocol-duplicates",
        "the same protocol twice: SyntaxError",
        ECHO,
        (construct(protocols=["chat", "chat"]),),
    ),
    Scenario(
        "subprotocol-duplicates-in-case",
        "protocols that differ only in case",
        NoPeer(),
        (construct(protocols=["chat", "CHAT"]),),
        (CHROMIUM_CASE_INSENSITIVE_DUPLICATES,),
    ),
    Scenario(
        "subprotocol-invalid-token",
        "a protocol with a space is not a token: SyntaxError",
        ECHO,
        (construct(protocols=["a b"]),),
    ),
]

MESSAGES = [
    Scenario(
        "echo-text",
        "a text message and its echo",
        ECHO,
        (
            construct(),
            wait("open"),
            send(text("hello")),
            check("after send"),
            wait("message"),
            close(1000),
        ),
    ),
    Scenario(
        "echo-empty",
        "empty text and empty binary messages",
        ECHO,
        (
            construct(),
            binary_type("arraybuffer"),
            wait("open"),
            send(text("")),
            send(binary(b"")),
            wait("message", 2),
            close(),
        ),
    ),
    Scenario(
        "echo-unicode",
        "non-ASCII text; bufferedAmount counts UTF-8 bytes",
        ECHO,
        (
            construct(),
            wait("open"),
            send(text("h\u00e9llo w\u00f6rld \u2713 \U0001f600")),
            check("after send"),
            wait("message"),
            close(),
        ),
    ),
    Scenario(
        "lone-surrogate-replaced",
        "a lone surrogate in send() text becomes U+FFFD",
        ECHO,
        (
            construct(),
            wait("open"),
            send(text("a\ud800b")),
            check("after send"),
            wait("message"),
            close(),
        ),
    ),
    Scenario(
        "echo-binary-arraybuffer",
        "binary messages as ArrayBuffer",
        ECHO,
        (
            construct(),
            binary_type("arraybuffer"),
            wait("open"),
            send(binary(b"\x00\x01\xfe\xff")),
            check("after send"),
            wait("message"),
            close(),
        ),
    ),
    Scenario(
        "echo-binary-blob",
        "binary messages as Blob (the default binaryType)",
        ECHO,
        (construct(), wait("open"), send(binary(b"\x00\x01\xfe\xff")), wait("message"), close()),
    ),
    Scenario(
        "send-typed-array-view",
        "a view sends only its bytes, and bufferedAmount grows by its length",
        ECHO,
        (
            construct(),
            binary_type("arraybuffer"),
            wait("open"),
            send(view(bytes(range(8)), 2, 3)),
            check("after send"),
            wait("message"),
            close(),
        ),
    ),
    Scenario(
        "send-empty-blob",
        "an empty Blob is an empty binary message",
        ECHO,
        (
            construct(),
            wait("open"),
            send(blob(b"")),
            check("after send"),
            wait("message"),
            close(),
        ),
    ),
    Scenario(
        "send-blob",
        "a Blob is sent as a binary message",
        ECHO,
        (
            construct(),
            binary_type("arraybuffer"),
            wait("open"),
            send(blob(b"blob data")),
            check("after send"),
            wait("message"),
            close(),
        ),
    ),
    Scenario(
        "echo-large",
        "1 MiB of text and of binary",
        ECHO,
        (
            construct(),
            binary_type("arraybuffer"),
            wait("open"),
            send(long_text("abcdefgh", 131072)),
            check("after text"),
            wait("message"),
            send(binary_pattern(1 << 20)),
            check("after binary"),
            wait("message", 2),
            close(),
        ),
    ),
    Scenario(
        "large-blob-in-order",
        "a large Blob keeps its place among the messages sent around it",
        ECHO,
        (
            construct(),
            wait("open"),
            send(text("before")),
            send(blob(length=300_000)),
            send(text("after")),
            check("after sends"),
            wait("message", 3),
            close(),
        ),
        (TIMING_BLOB_BUFFERED_AMOUNT,),
    ),
    Scenario(
        "many-messages-in-one-segment",
        "twenty messages in one TCP segment arrive as twenty events, in order",
        raw_after_open(
            *(Frame(0x1, str(n).encode()) for n in range(20)),
            then=(Record(0.3), Write(close_frame(1000)), AwaitClose(reply=False), Shut()),
        ),
        OPEN,
    ),
    Scenario(
        "close-after-large-send",
        "close() right after a 1 MiB send: the message goes out first, then the Close",
        WsPeer((Receive(1),)),
        (
            construct(),
            wait("open"),
            send(binary_pattern(1 << 20)),
            close(1000, "sent"),
            check("after close()"),
        ),
    ),
    Scenario(
        "close-after-blob-send",
        "close() right after sending a Blob: the Blob goes out first, then the Close",
        WsPeer((Receive(1),)),
        (
            construct(),
            wait("open"),
            send(blob(length=100_000)),
            close(1000, "sent"),
            check("after close()"),
        ),
    ),
    Scenario(
        "binary-type-switch",
        "binaryType set in a message handler applies to the next message",
        WsPeer((Send(binary(b"\x01")), Send(binary(b"\x02")), Receive(1))),
        (
            construct(log=False),
            listen("message", "log", do=[binary_type("arraybuffer")], at=1),
            listen("close", "log"),
            wait("message", 2),
            close(),
        ),
    ),
    Scenario(
        "binary-type-invalid-ignored",
        "binaryType = 'other' is ignored",
        WsPeer((Send(binary(b"\x07")), Receive(1))),
        (
            construct(),
            binary_type("arraybuffer"),
            binary_type("other"),
            check("after set"),
            wait("message"),
            close(),
        ),
    ),
    Scenario(
        "server-fragments-and-ping",
        "a message in fragments with a Ping between them: one message, and a Pong",
        raw_after_open(
            Frame(0x1, b"hel", fin=False),
            Frame(0x9, b"ping"),
            Frame(0x0, b"lo", fin=False),
            Frame(0x0, b"!"),
            then=(Record(0.3), Write(close_frame(1000)), AwaitClose(reply=False), Shut()),
        ),
        OPEN,
    ),
    Scenario(
        "utf8-split-across-fragments",
        "a character whose UTF-8 bytes are split between two fragments is valid",
        raw_after_open(
            Frame(0x1, "\u00e9t\u00e9 \U0001f600".encode()[:6], fin=False),
            Frame(0x0, "\u00e9t\u00e9 \U0001f600".encode()[6:]),
            then=(Record(0.3), Write(close_frame(1000)), AwaitClose(reply=False), Shut()),
        ),
        OPEN,
    ),
    Scenario(
        "no-compression",
        "a server that does not negotiate permessage-deflate",
        WsPeer(compression=None),
        (
            construct(),
            binary_type("arraybuffer"),
            wait("open"),
            send(long_text("abc", 1000)),
            send(binary_pattern(5000)),
            wait("message", 2),
            close(),
        ),
    ),
]

BUFFERED_AMOUNT = [
    Scenario(
        "buffered-amount-sends",
        "bufferedAmount adds up sends in the same task, and is 0 once they went out",
        WsPeer((Receive(3),)),  # no echo: messages arriving would race with the drain
        (
            construct(),
            wait("open"),
            send(text("12345")),
            send(binary(b"123")),
            send(text("\u00e9")),
            check("after sends"),
            drain(),
            check("drained"),
            close(),
        ),
    ),
    Scenario(
        "buffered-amount-after-close",
        "data sent after close() is counted and never goes out",
        ECHO,
        (
            construct(),
            wait("open"),
            close(),
            send(text("abc")),
            check("after send"),
            sleep(100),
            check("later"),
        ),
    ),
    Scenario(
        "buffered-amount-in-handlers",
        "sends inside open and message handlers count at once",
        ECHO,
        (
            construct(log=False),
            listen("open", "opened", do=[send(text("ping")), check("in open")]),
            listen("message", "got", at=1, do=[send(text("pong!")), check("in message")]),
            listen("close", "log"),
            wait("message", 2),
            close(),
        ),
    ),
]

CLOSING = [
    Scenario(
        "client-close-code-reason",
        "close(1000, reason): the server gets both, and echoes them",
        ECHO,
        (construct(), wait("open"), close(1000, "bye")),
    ),
    Scenario(
        "client-close-4999-unicode",
        "close(4999, non-ASCII reason)",
        ECHO,
        (construct(), wait("open"), close(4999, "\u00fcn\u00efcode \u2713")),
    ),
    Scenario(
        "client-close-reason-only",
        "close(undefined, reason): a reason without a code",
        ECHO,
        (construct(), wait("open"), close(reason="why"), close()),
        (CHROMIUM_UNDEFINED_CLOSE_CODE,),
    ),
    Scenario(
        "client-close-invalid",
        "invalid codes are InvalidAccessError, a 124-byte reason SyntaxError, state unchanged",
        ECHO,
        (
            construct(),
            wait("open"),
            close(1001),
            close(2999),
            close(5000),
            close(0),
            close(1000, "x" * 124),
            check("after invalid closes"),
            close(3000, "y" * 123),
        ),
    ),
    Scenario(
        "client-close-code-clamp",
        "close() converts its code as [Clamp] unsigned short: 3000.5 is 3000",
        ECHO,
        (construct(), wait("open"), close(3000.5)),
    ),
    Scenario(
        "client-close-twice",
        "a second close() does nothing",
        ECHO,
        (construct(), wait("open"), close(3001), close(3002), check("after both")),
    ),
    Scenario(
        "server-close-code-reason",
        "the server closes with 1000 and a reason",
        WsPeer((CloseWith(1000, "bye"),)),
        OPEN,
    ),
    Scenario(
        "server-close-4000",
        "the server closes with an application code",
        WsPeer((CloseWith(4000, "custom"),)),
        OPEN,
    ),
    Scenario(
        "server-close-1001",
        "the server goes away",
        WsPeer((CloseWith(1001, ""),)),
        OPEN,
    ),
    Scenario(
        "server-close-without-code",
        "a Close without a body: code 1005, clean",
        raw_after_open(then=(Pause(0.1), Write(close_frame()), AwaitClose(reply=False), Shut())),
        OPEN,
    ),
    Scenario(
        "server-tcp-close",
        "the server closes TCP after open, without a closing handshake",
        RawPeer((ReadRequest(), Write(Accept()), Pause(0.1), Shut())),
        OPEN,
        (CHROMIUM_NO_ERROR_ON_TCP_LOSS,),
    ),
    Scenario(
        "server-tcp-reset",
        "the server resets TCP after open",
        RawPeer((ReadRequest(), Write(Accept()), Pause(0.1), Reset())),
        OPEN,
        (CHROMIUM_NO_ERROR_ON_TCP_LOSS,),
    ),
    Scenario(
        "server-never-answers-close",
        "the server ignores the client's Close, then drops TCP a second later",
        RawPeer((ReadRequest(), Write(Accept()), Record(1.0), Shut())),
        (construct(), wait("open"), close(1000, "bye"), check("after close()")),
        (CHROMIUM_NO_ERROR_ON_TCP_LOSS,),
    ),
    Scenario(
        "close-timeout-unanswered",
        "the server ignores the client's Close and keeps TCP open: the close times out, 1006, "
        "no error",
        RawPeer((ReadRequest(), Write(Accept()), Record(CHROMIUM_CLOSE_TIMEOUT + 15))),
        (construct(), wait("open"), close(1000, "bye"), check("after close()")),
        end_timeout_ms=(CHROMIUM_CLOSE_TIMEOUT + 10) * 1000,
        close_timeout=1.0,
    ),
    Scenario(
        "server-close-keeps-tcp",
        "the server closes with a code and reason, reads the reply and keeps TCP open: the "
        "client drops it, and the close is clean with the server's code and reason",
        raw_after_open(
            then=(
                Pause(0.1),
                Write(close_frame(4000, b"done")),
                AwaitClose(reply=False),
                Record(CHROMIUM_TCP_CLOSE_TIMEOUT + 5),
            )
        ),
        OPEN,
        close_timeout=1.0,
    ),
    Scenario(
        "close-answered-keeps-tcp",
        "the server answers the client's Close and keeps TCP open: the client drops it, and "
        "the close is clean with the server's code and reason",
        RawPeer(
            (
                ReadRequest(),
                Write(Accept()),
                AwaitClose(reply=True),
                Record(CHROMIUM_TCP_CLOSE_TIMEOUT + 5),
            )
        ),
        (construct(), wait("open"), close(4001, "bye")),
        close_timeout=1.0,
    ),
    Scenario(
        "server-close-code-999",
        "a Close with code 999, which no endpoint may send",
        raw_after_open(
            then=(Pause(0.1), Write(close_frame(999)), AwaitClose(reply=False), Shut())
        ),
        OPEN,
        (CHROMIUM_ACCEPTS_CLOSE_CODE_999,),
    ),
    Scenario(
        "server-close-code-1005",
        "a Close with code 1005, which must not be sent",
        raw_after_open(
            then=(Pause(0.1), Write(close_frame(1005)), AwaitClose(reply=False), Shut())
        ),
        OPEN,
    ),
    Scenario(
        "server-close-one-byte",
        "a Close with a one-byte body",
        raw_after_open(then=(Pause(0.1), Write(Frame(0x8, b"\x03")), Record(3))),
        OPEN,
    ),
    Scenario(
        "server-close-bad-utf8-reason",
        "a Close whose reason is not UTF-8",
        raw_after_open(then=(Pause(0.1), Write(close_frame(1000, b"\xff")), Record(3))),
        OPEN,
        (CHROMIUM_1002_FOR_INVALID_UTF8, CHROMIUM_FAILURE_CLOSE_REASON),
    ),
    Scenario(
        "server-second-close",
        "the server sends a second Close after the closing handshake",
        raw_after_open(
            then=(
                Pause(0.1),
                Write(close_frame(1000, b"one")),
                AwaitClose(reply=False),
                Write(close_frame(1000, b"two")),
                Pause(0.2),
                Shut(),
            )
        ),
        OPEN,
        (CHROMIUM_FAILS_ON_FRAME_AFTER_CLOSE,),
    ),
    Scenario(
        "server-close-long-reason",
        "a Close with a 123-byte reason of non-ASCII text",
        raw_after_open(
            then=(
                Pause(0.1),
                Write(close_frame(4001, ("\u00e9" * 61 + "x").encode())),
                AwaitClose(reply=False),
                Shut(),
            )
        ),
        OPEN,
    ),
    Scenario(
        "server-message-after-close",
        "a message the server sends after its Close",
        raw_after_open(
            then=(
                Pause(0.1),
                Write(close_frame(1000), Frame(0x1, b"late")),
                AwaitClose(reply=False),
                Pause(0.2),
                Shut(),
            )
        ),
        OPEN,
        (CHROMIUM_FAILS_ON_FRAME_AFTER_CLOSE,),
    ),
    Scenario(
        "server-close-after-messages",
        "messages, then the server's Close",
        WsPeer((Send(text("one")), Send(text("two")), CloseWith(1000, "done"))),
        OPEN,
    ),
]

VIOLATIONS = [
    Scenario(
        "reserved-opcode",
        "a frame with a reserved data opcode fails the connection",
        raw_after_open(then=(Pause(0.1), Write(Frame(0x3, b"?")), Record(3))),
        OPEN,
        (CHROMIUM_FAILURE_CLOSE_REASON,),
    ),
    Scenario(
        "reserved-control-opcode",
        "a frame with a reserved control opcode fails the connection",
        raw_after_open(then=(Pause(0.1), Write(Frame(0xB)), Record(3))),
        OPEN,
        (CHROMIUM_FAILURE_CLOSE_REASON,),
    ),
    Scenario(
        "invalid-utf8",
        "a text message that is not UTF-8 fails the connection (1007)",
        raw_after_open(then=(Pause(0.1), Write(Frame(0x1, b"ok \xff\xfe")), Record(3))),
        OPEN,
        (CHROMIUM_1002_FOR_INVALID_UTF8, CHROMIUM_FAILURE_CLOSE_REASON),
    ),
    Scenario(
        "rsv-bit-without-extension",
        "an RSV bit with no extension negotiated fails the connection",
        raw_after_open(then=(Pause(0.1), Write(Frame(0x1, b"x", rsv=2)), Record(3))),
        OPEN,
        (CHROMIUM_FAILURE_CLOSE_REASON,),
    ),
    Scenario(
        "rsv1-without-deflate",
        "RSV1 (compressed) on a connection without permessage-deflate fails it",
        raw_after_open(then=(Pause(0.1), Write(Frame(0x1, b"x", rsv=4)), Record(3))),
        OPEN,
        (CHROMIUM_FAILURE_CLOSE_REASON,),
    ),
    Scenario(
        "masked-server-frame",
        "a masked frame from the server fails the connection",
        raw_after_open(
            then=(
                Pause(0.1),
                Write(b"\x81\x82\x01\x02\x03\x04" + bytes([0x68 ^ 1, 0x69 ^ 2])),
                Record(3),
            )
        ),
        OPEN,
        (CHROMIUM_FAILURE_CLOSE_REASON,),
    ),
    Scenario(
        "fragmented-ping",
        "a control frame without FIN fails the connection",
        raw_after_open(then=(Pause(0.1), Write(Frame(0x9, b"p", fin=False)), Record(3))),
        OPEN,
        (CHROMIUM_FAILURE_CLOSE_REASON,),
    ),
    Scenario(
        "long-ping",
        "a control frame of 126 bytes fails the connection",
        raw_after_open(then=(Pause(0.1), Write(Frame(0x9, b"p" * 126)), Record(3))),
        OPEN,
        (CHROMIUM_FAILURE_CLOSE_REASON,),
    ),
    Scenario(
        "continuation-without-start",
        "a continuation frame with no message started fails the connection",
        raw_after_open(then=(Pause(0.1), Write(Frame(0x0, b"x")), Record(3))),
        OPEN,
        (CHROMIUM_FAILURE_CLOSE_REASON,),
    ),
    Scenario(
        "message-before-violation",
        "a message that arrives just before a violation is still delivered",
        raw_after_open(then=(Pause(0.1), Write(Frame(0x1, b"first"), Frame(0x3)), Record(3))),
        OPEN,
        (CHROMIUM_FAILURE_CLOSE_REASON,),
    ),
]

LISTENERS = [
    Scenario(
        "listener-order",
        "on* runs where it was first set among addEventListener listeners",
        ECHO,
        (
            construct(log=False),
            listen("message", "A"),
            listen("message", "on", how="on"),
            listen("message", "B"),
            listen("message", "on-again", how="on"),
            listen("close", "log"),
            wait("open"),
            send(text("x")),
            wait("message"),
            close(),
        ),
    ),
    Scenario(
        "handler-null-moves-to-end",
        "on* set to null and set again runs after the listeners added meanwhile",
        ECHO,
        (
            construct(log=False),
            listen("message", "on", how="on"),
            listen("message", "A"),
            handler("message", None),
            listen("message", "B"),
            handler("message", "on"),
            listen("close", "log"),
            wait("open"),
            send(text("x")),
            wait("message"),
            close(),
        ),
    ),
    Scenario(
        "stop-immediate-propagation",
        "stopImmediatePropagation() in the first listener stops the others",
        ECHO,
        (
            construct(log=False),
            listen("open", "first", do=[stop()]),
            listen("open", "second", how="on"),
            listen("open", "third"),
            listen("close", "log"),
            wait("open"),
            close(),
        ),
    ),
    Scenario(
        "once-and-handle-event",
        "a once listener runs once; a handleEvent object is called",
        ECHO,
        (
            construct(log=False),
            listen("message", "once", once=True),
            listen("message", "object", how="object"),
            listen("close", "log"),
            wait("open"),
            send(text("1")),
            send(text("2")),
            wait("message", 2),
            close(),
        ),
    ),
    Scenario(
        "listeners-changed-during-dispatch",
        "a listener added during dispatch waits for the next event; one removed is skipped",
        ECHO,
        (
            construct(log=False),
            listen("message", "A", at=1, do=[listen("message", "late"), unlisten("B")]),
            listen("message", "B"),
            listen("close", "log"),
            wait("open"),
            send(text("1")),
            wait("message"),
            send(text("2")),
            wait("message", 2),
            close(),
        ),
    ),
    Scenario(
        "close-in-open-handler",
        "close() inside the open handler: CLOSING at once, later listeners see it",
        ECHO,
        (
            construct(log=False),
            listen("open", "closer", do=[close(1000, "done"), check("in open")]),
            listen("open", "after"),
            listen("close", "log"),
        ),
    ),
    Scenario(
        "send-in-message-handler",
        "a ping-pong of three messages driven from the message handler",
        ECHO,
        (
            construct(log=False),
            listen("open", "log", do=[send(text("0"))]),
            listen("message", "A", at=1, do=[send(text("1"))]),
            listen("message", "B", at=2, do=[send(text("2"))]),
            listen("message", "C", at=3, do=[close(1000)]),
            listen("close", "log"),
        ),
    ),
    Scenario(
        "send-in-close-handler",
        "send() in the close handler throws nothing and counts in bufferedAmount",
        WsPeer((CloseWith(1000, "bye"),)),
        (construct(log=False), listen("close", "log", do=[send(text("late")), check("in close")])),
    ),
    Scenario(
        "close-in-error-handler",
        "close() in the error handler of a failed handshake does nothing",
        refuse(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"),
        (
            construct(log=False),
            listen("error", "log", do=[close(), check("in error")]),
            listen("close", "log"),
        ),
    ),
    Scenario(
        "message-then-close-in-handler",
        "close() in a message handler while more messages are queued drops them",
        raw_after_open(
            Frame(0x1, b"one"),
            Frame(0x1, b"two"),
            Frame(0x1, b"three"),
            then=(AwaitClose(reply=True), Shut()),
        ),
        (
            construct(log=False),
            listen("message", "log", at=1, do=[close(1000, "enough")]),
            listen("close", "log"),
        ),
    ),
]

SCENARIOS = [
    *HANDSHAKE,
    *SUBPROTOCOLS,
    *MESSAGES,
    *BUFFERED_AMOUNT,
    *CLOSING,
    *VIOLATIONS,
    *LISTENERS,
]

KNOWN_DIFFERENCES = (
    CHROMIUM_NO_ERROR_ON_TCP_LOSS,
    CHROMIUM_ACCEPTS_CLOSE_CODE_999,
    CHROMIUM_FAILS_ON_FRAME_AFTER_CLOSE,
    CHROMIUM_FAILURE_CLOSE_REASON,
    CHROMIUM_1002_FOR_INVALID_UTF8,
    CHROMIUM_UNDEFINED_CLOSE_CODE,
    CHROMIUM_CASE_INSENSITIVE_DUPLICATES,
    TIMING_BLOB_BUFFERED_AMOUNT,
    TIMING_REQUEST_BEFORE_CLOSE,
)
"""One of each."""
