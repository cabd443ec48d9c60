"""The ``WebSocketStream`` interface: the WHATWG proposal (whatwg/websockets PR 48) that
reads messages from a ``ReadableStream`` and sends them through a ``WritableStream``, with
backpressure both ways.

Theory of operation
-------------------
Rule 1: the proposal's steps, in its order, with its names, quoted as comments. It exists
only in the living standard, so its rules are the living standard's whatever the agent's
``standard`` (URL parsing, a blocked port or mixed content failing the connection rather
than raising); the agent's settings (proxy, TLS, compression, cookies, timeouts, limits)
apply as for ``WebSocket``. The connection is ``WebSocket``'s machinery: the same opening,
engine and pump, this object being the pump's handler.

Rule 2: "apply backpressure" is ``pump.pause_delivery()``. Each message is enqueued into
the readable; once its queue holds ``RECEIVE_HIGH_WATER_MARK`` bytes (each message counted
as the memory it takes, ``sys.getsizeof`` plus its queue entry) the pump stops handing
messages over, the engine keeps what is read unparsed, and reading stops past the pump's
``READ_HIGH_WATER``: TCP then slows the server. The readable's pull ("release
backpressure") resumes it. The peer's Close waits behind the messages, in order; once this
side closes (``close()``, cancelling the readable, closing or aborting the writable) the
messages still to come are dropped, as the proposal's message steps say, so the closing
handshake completes whether the program reads or not.

Rule 3: a write hands its message to the pump at once, and resolves once the bytes not
yet handed to the operating system are down to ``SEND_HIGH_WATER_MARK`` (at once, when
they are): the writable's queue holds one chunk (the Streams default), so ``writer.ready``
is pending while the connection holds more than the mark, and a producer that awaits it
keeps at most the mark plus one message in memory. A write still waiting when the
connection closes rejects with an ``InvalidStateError``, which errors the writable.

Rule 4: ``opened`` and ``closed`` are awaitables over one outcome each: awaiting one
again, or after a cancelled wait, gives the same result, and a rejection nobody awaits
is not reported as an unretrieved exception.

Rule 5: like a ``WebSocket``, an open WebSocketStream is in its loop's registry until it
is closed, so the end of ``asyncio.run()`` makes it disappear (Close 1001) rather than
leaving its socket open.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Sequence
from typing import Any, Final, NamedTuple

from .abort import AbortSignal, add_an_algorithm, remove_an_algorithm
from .agent import UserAgent, default_agent
from .errors import (
    ConnectionFailure,
    DOMException,
    WebSocketError,
    new_websocket_error,
    validate_close_code_and_reason,
)
from .opening import establish_a_websocket_connection
from .protocol.constants import CloseCode
from .protocol.events import CloseReceived, Opened
from .pump import ConnectionPump, fail_without_a_connection
from .streams import (
    ReadableStream,
    ReadableStreamDefaultController,
    WritableStream,
    WritableStreamDefaultController,
)
from .url import parse_websocket_url
from .webidl import usv_string, usv_utf8
from .websocket import _check_protocols, _Outcome, _registry

__all__ = [
    "QUEUE_ENTRY_SIZE",
    "RECEIVE_HIGH_WATER_MARK",
    "SEND_HIGH_WATER_MARK",
    "WebSocketCloseInfo",
    "WebSocketOpenInfo",
    "WebSocketStream",
]

RECEIVE_HIGH_WATER_MARK = 1024 * 1024
"""Bytes of received messages the readable queues before the pump stops handing more over
(the proposal leaves the amount to the implementation): the size of the pump's own
``READ_HIGH_WATER``, so that a slow reader holds at most about 2 MiB of a fast peer's
messages plus the last message handed over (a batch of the pump's goes past the mark by at
most what one read brought)."""

QUEUE_ENTRY_SIZE = 96
"""What a queued message costs beyond its own object: the queue's tuple, the size it
records, and the deque's slot (CPython, 64-bit). Counted so that many small messages
weigh what they take."""

SEND_HIGH_WATER_MARK = 64 * 1024
"""Bytes written and not yet handed to the operating system above which a write waits
(and ``writer.ready`` with it): enough to keep a socket's send buffer busy, small enough
that a peer that stops reading holds little of the program's memory."""

CONNECTING: Final = 0
OPEN: Final = 1
CLOSING: Final = 2
CLOSED: Final = 3


class WebSocketOpenInfo(NamedTuple):
    """What ``await wss.opened`` gives (the IDL dictionary): unpack it as
    ``readable, writable, extensions, protocol = await wss.opened`` or read its fields."""

    readable: ReadableStream[str | bytes]
    """Each chunk is one message: ``str`` for text, ``bytes`` for binary."""
    writable: WritableStream[str | bytes | bytearray | memoryview]
    """Each chunk written is one message: ``str`` as text, bytes-like as binary."""
    extensions: str
    """The extensions in use."""
    protocol: str
    """The subprotocol in use."""


class WebSocketCloseInfo(NamedTuple):
    """What ``await wss.closed`` gives after a clean close: the code and reason of the
    Close frame the server sent (1005 and ``""`` when it had no body)."""

    closeCode: int
    reason: str


def _message_size(chunk: str | bytes) -> int:
    """The readable's size of a message: the memory it takes in the queue."""
    return sys.getsizeof(chunk) + QUEUE_ENTRY_SIZE


class WebSocketStream:
    """``WebSocketStream(url, *, protocols=(), signal=None, agent=None)``: a WebSocket
    connection read and written as streams. Call it with a running event loop; it
    connects in the background (``await wss.opened``)."""

    __slots__ = (
        "__weakref__",
        "_abort_reason",
        "_agent",
        "_closed",
        "_connect_task",
        "_failure",
        "_handshake_aborted",
        "_loop",
        "_opened",
        "_pump",
        "_readable",
        "_readable_controller",
        "_ready_state",
        "_registry",
        "_signal",
        "_sink_close",
        "_url",
        "_was_ever_connected",
        "_writable",
        "_writable_controller",
        "_write_waiter",
    )

    def __init__(
        self,
        url: str,
        *,
        protocols: Sequence[str] = (),
        signal: AbortSignal | None = None,
        agent: UserAgent | None = None,
    ) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "WebSocketStream() needs a running asyncio event loop: create it inside a "
                "coroutine or a callback of the loop (for example under asyncio.run())"
            ) from None
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, not {type(url).__name__}")
        if isinstance(protocols, str) or not isinstance(protocols, Sequence):
            raise TypeError(f"protocols must be a sequence of str, not {type(protocols).__name__}")
        protocol_list = list(protocols)
        for item in protocol_list:
            if not isinstance(item, str):
                raise TypeError(f"each protocol must be a str, not {type(item).__name__}")
        if signal is not None and not isinstance(signal, AbortSignal):
            raise TypeError(f"signal must be an AbortSignal, not {type(signal).__name__}")
        if agent is None:
            agent = default_agent()
        elif not isinstance(agent, UserAgent):
            raise TypeError(f"agent must be a UserAgent, not {type(agent).__name__}")
        # 1-2. "Let baseURL be this's relevant settings object's API base URL. Let urlRecord
        # be the result of getting a URL record given url and baseURL." (SyntaxError.)
        try:
            parsed = parse_websocket_url(url, standard="whatwg", base_url=agent.base_url)
        except ValueError as exc:
            raise DOMException(str(exc), "SyntaxError") from None
        # 3-4. "Let protocols be options["protocols"] if it exists, otherwise an empty
        # sequence. If any of the values in protocols occur more than once or otherwise fail
        # to match the requirements ... throw a "SyntaxError" DOMException."
        protocol_list = [usv_string(item) for item in protocol_list]
        _check_protocols(protocol_list, case_insensitive=True)
        # 5. "Set this's url to urlRecord."
        self._url = parsed
        self._agent = agent
        self._loop = loop
        self._ready_state = CONNECTING
        self._was_ever_connected = False
        self._handshake_aborted = False
        self._pump: ConnectionPump | None = None
        self._failure: ConnectionFailure | None = None
        self._readable: ReadableStream[str | bytes] | None = None
        self._readable_controller: ReadableStreamDefaultController[str | bytes] | None = None
        self._writable: WritableStream[Any] | None = None
        self._writable_controller: WritableStreamDefaultController[Any] | None = None
        # The write waiting for the connection's untransmitted bytes to go down to the mark,
        # and the writable's close, waiting for the closing handshake.
        self._write_waiter: asyncio.Future[None] | None = None
        self._sink_close: asyncio.Future[None] | None = None
        self._connect_task: asyncio.Task[None] | None = None
        # Why the connecting task was cancelled (close() or the signal while connecting);
        # None while it was not.
        self._abort_reason: str | None = None
        self._signal: AbortSignal | None = None
        # 6. "Set this's opened promise and closed promise to new promises."
        self._opened: asyncio.Future[WebSocketOpenInfo] = loop.create_future()
        self._closed: asyncio.Future[WebSocketCloseInfo] = loop.create_future()
        # 7. "Apply backpressure to the WebSocket." (Nothing is handed over before the
        # readable exists: the first messages wait in the pump until the open task made it.)
        # 8. If options["signal"] exists: if it is aborted, reject both promises with its
        # abort reason and return; else add the abort steps to it.
        if signal is not None:
            if signal.aborted:
                self._reject_both(signal.reason)
                self._handshake_aborted = True
                self._ready_state = CLOSED
                return
            self._signal = signal
            add_an_algorithm(signal, self._abort_steps)
        # The open connections of this loop, which the loop's end makes disappear (as
        # WebSocket's: fail it while connecting, else close with 1001).
        self._registry = _registry(loop)
        self._registry.add(self)
        # (What the living standard's WebSocket constructor does here: a blocked port, or
        # a ws: URL from a secure origin, makes Fetch's request a network error: the
        # connection fails.)
        blocked: str | None = None
        if not parsed.secure and agent.origin is not None and agent.origin.startswith("https:"):
            blocked = f"a ws: URL from the secure origin {agent.origin} is mixed content"
        elif parsed.port in agent.blocked_ports and parsed.port not in (80, 443):
            blocked = f"port {parsed.port} is blocked (the Fetch standard's bad ports)"
        # 9-10. "Let client be this's relevant settings object. Run this step in parallel:
        # Establish a WebSocket connection given urlRecord, protocols, and client."
        self._connect_task = loop.create_task(
            self._establish(tuple(protocol_list), blocked),
            name=f"wsapi WebSocketStream connect {parsed.href}",
        )
        self._connect_task.add_done_callback(self._connect_task_done)

    async def _establish(self, protocols: tuple[str, ...], blocked: str | None) -> None:
        if self._connect_task is not None:
            # The task runs: from here on, its own code reports how it ends.
            self._connect_task.remove_done_callback(self._connect_task_done)
        try:
            if blocked is not None:
                fail_without_a_connection(self, ConnectionFailure("blocked", blocked))
                return
            agent, url = self._agent, self._url
            await establish_a_websocket_connection(
                agent, url, self, protocols=protocols, headers=agent.request_headers(url.http_url)
            )
        finally:
            self._connect_task = None

    def _connect_task_done(self, task: asyncio.Task[None]) -> None:
        # Cancelled before its first step (aborted at once): it never reported the failure.
        if task.cancelled() and self._pump is None and self._ready_state != CLOSED:
            fail_without_a_connection(
                self, ConnectionFailure("aborted", "the connection was aborted")
            )

    # Attributes.

    @property
    def url(self) -> str:
        """ "The url getter steps are to return this's url, serialized." """
        return self._url.href

    @property
    def opened(self) -> Awaitable[WebSocketOpenInfo]:
        """Awaitable: the ``WebSocketOpenInfo`` once the connection is open; raises
        ``WebSocketError`` if it fails first (or the signal's reason if it was aborted)."""
        return _Outcome(self._opened)

    @property
    def closed(self) -> Awaitable[WebSocketCloseInfo]:
        """Awaitable: the ``WebSocketCloseInfo`` once the connection closed cleanly; raises
        ``WebSocketError`` (with ``closeCode``, ``reason`` and ``failure``) otherwise."""
        return _Outcome(self._closed)

    @property
    def failure(self) -> ConnectionFailure | None:
        """Why the connection failed, once it has (a Python convenience, as on
        ``WebSocket``)."""
        return self._failure

    def __repr__(self) -> str:
        state = ("CONNECTING", "OPEN", "CLOSING", "CLOSED")[self._ready_state]
        return f"<WebSocketStream {self.url} {state}>"

    # Methods.

    def close(self, *, closeCode: int | None = None, reason: str = "") -> None:
        """Start the closing handshake with ``closeCode`` (1000 or 3000-4999) and
        ``reason`` (at most 123 bytes of UTF-8); with neither, the Close frame has no body.
        While connecting, the connection is failed instead and both are ignored."""
        # WebSocketCloseInfo: [EnforceRange] unsigned short closeCode; USVString reason.
        if closeCode is not None:
            if isinstance(closeCode, bool) or not isinstance(closeCode, int):
                raise TypeError(f"closeCode must be an int, not {type(closeCode).__name__}")
            if not 0 <= closeCode <= 0xFFFF:
                raise TypeError(f"closeCode {closeCode} is not in 0-65535")
        if not isinstance(reason, str):
            raise TypeError(f"reason must be a str, not {type(reason).__name__}")
        # 1-3. "Let code be closeInfo["closeCode"] if present, or null otherwise. Let reason
        # be closeInfo["reason"]. Close the WebSocket with this, code, and reason."
        self._close_the_websocket(closeCode, usv_string(reason))

    # The proposal's algorithms.

    def _close_the_websocket(self, code: int | None = None, reason: str = "") -> None:
        """ "Close the WebSocket" for this object, given optional code and reason."""
        # 3. "Validate close code and reason with code and reason."
        validate_close_code_and_reason(code, reason)
        self._start_closing(code, reason)

    def _start_closing(self, code: int | None, reason: str) -> None:
        """Step 4 of "close the WebSocket", for a code and reason already valid (or one
        the library sends itself, such as 1001 when a ``wsapi.connect`` block raises)."""
        # 4. "Run the first matching steps from the following list":
        state = self._ready_state
        # "If object's ready state is CLOSING (2) or CLOSED (3): Do nothing."
        if state in (CLOSING, CLOSED):
            return
        self._ready_state = CLOSING
        # The messages still to come are dropped (rule 2): let them through.
        pump = self._pump
        if pump is not None:
            pump.resume_delivery()
        # "If the WebSocket connection is not yet established: Fail the WebSocket
        # connection and set object's ready state to CLOSING (2)."
        if state == CONNECTING:
            self._fail_the_websocket_connection("close() was called before the connection opened")
            return
        # "If the WebSocket closing handshake has not yet been started: Start the WebSocket
        # closing handshake and set object's ready state to CLOSING (2). If code is null and
        # reason is the empty string, the WebSocket Close frame must not have a body. ... if
        # reason is non-empty but code is null, then set code to 1000."
        if pump is not None and pump.can_send():
            if code is None and reason:
                code = CloseCode.NORMAL_CLOSURE
            pump.start_the_closing_handshake(code, reason)
        # "Otherwise: Set object's ready state to CLOSING (2)." -- done above.

    def _close_using_reason(self, reason: Any) -> None:
        """ "Close using reason": a WebSocketError's closeCode and reason go in the Close
        frame; any other reason is ignored."""
        # 1-3. "Let code be null. Let reasonString be the empty string. If reason implements
        # WebSocketError, set code to reason's closeCode and reasonString to its reason."
        code: int | None = None
        reason_string = ""
        if isinstance(reason, WebSocketError):
            code, reason_string = reason.closeCode, reason.reason
        # 4. "Close the WebSocket with stream, code, and reasonString. If this throws an
        # exception, discard code and reasonString and close the WebSocket with stream."
        try:
            self._close_the_websocket(code, reason_string)
        except DOMException:
            self._close_the_websocket()

    def _fail_the_websocket_connection(self, reason: str) -> None:
        """RFC 6455 7.1.7 for the API's own reason (close() or the signal while connecting):
        the pump fails it once TCP is up; before that the connecting task is cancelled,
        which reports an "aborted" failure."""
        pump = self._pump
        if pump is not None:
            pump.fail_the_websocket_connection(None, reason, "aborted")
        elif self._connect_task is not None:
            self._abort_reason = reason
            self._connect_task.cancel(reason)

    def _abort_steps(self) -> None:
        """The steps added to the signal."""
        signal = self._signal
        assert signal is not None
        # 1. "If the WebSocket connection is not yet established":
        if self._ready_state != CONNECTING:
            return
        # 1. "Fail the WebSocket connection." 2. "Set this's ready state to CLOSING."
        self._ready_state = CLOSING
        self._fail_the_websocket_connection("the signal was aborted")
        # 3. "Reject this's opened promise and closed promise with signal's abort reason."
        self._reject_both(signal.reason)
        # 4. "Set this's handshake aborted to true."
        self._handshake_aborted = True

    def _reject_both(self, reason: Any) -> None:
        error = reason if isinstance(reason, BaseException) else Exception(reason)
        for promise in (self._opened, self._closed):
            if not promise.done():
                promise.set_exception(error)
                promise.exception()  # Retrieved: an unawaited rejection logs nothing (rule 4).

    def _forget_signal(self) -> None:
        """ "After the handshake is complete, the signal does nothing." """
        if self._signal is not None:
            remove_an_algorithm(self._signal, self._abort_steps)
            self._signal = None

    # Stream operations: the readable's pull and cancel, the writable's write, close and
    # abort.

    def _pull(self, controller: object) -> None:
        """ "To pull bytes from a WebSocketStream stream, if stream is currently applying
        backpressure, release backpressure." """
        pump = self._pump
        if pump is not None:
            pump.resume_delivery()

    def _cancel(self, reason: Any) -> None:
        """ "To cancel a WebSocketStream stream given reason, close using reason giving
        stream and reason." """
        self._close_using_reason(reason)

    def _write(self, chunk: Any, controller: object) -> asyncio.Future[None] | None:
        """ "To write chunk to a WebSocketStream stream" (rule 3)."""
        # 4. "If chunk is a BufferSource, set data to a copy of the bytes given chunk and
        # opcode to a binary frame opcode." (The message is framed below, before this
        # returns, into a masked copy: bytes and bytearray need no copy of their own.)
        data: bytes | bytearray
        if isinstance(chunk, (bytes, bytearray, memoryview)):
            data = chunk.tobytes() if isinstance(chunk, memoryview) else chunk
            text = False
        # 5. "Otherwise, let string be the result of converting chunk to an IDL USVString.
        # If this throws an exception, return a promise rejected with the exception. Set
        # data to the result of UTF-8 encoding string." (A Python str only: no other value
        # is converted.)
        elif isinstance(chunk, str):
            data = usv_utf8(chunk)
            text = True
        else:
            raise TypeError(
                "a WebSocketStream writes str (a text message) or bytes, bytearray or "
                f"memoryview (a binary message), not {type(chunk).__name__}"
            )
        return self._send_data(data, text)

    def _send_data(self, data: bytes | bytearray, text: bool) -> asyncio.Future[None] | None:
        """Step 6 of "to write chunk": send ``data`` (the UTF-8 of a text message when
        ``text``, else a binary message's bytes); a future that resolves once the stream's
        buffer is below its mark, or None when it is already."""
        pump = self._pump
        # 6.2. "If the closing handshake has not yet started, Send a WebSocket Message to
        # stream comprised of data using opcode."
        if pump is None or not pump.can_send():
            return None
        pump.send_message(data, text)
        # 6.1. "Wait until there is sufficient buffer space in stream to send the message"
        # (rule 3), then 6.3 resolve the promise.
        if pump.untransmitted() <= SEND_HIGH_WATER_MARK:
            return None
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._write_waiter = waiter
        pump.watch_drain(SEND_HIGH_WATER_MARK)
        return waiter

    def _close_sink(self) -> asyncio.Future[None]:
        """ "To close a WebSocketStream stream, close the WebSocket with stream": the
        writer's ``close()`` resolves once the closing handshake completes."""
        sink_close: asyncio.Future[None] = self._loop.create_future()
        if self._ready_state == CLOSED:
            sink_close.set_result(None)
            return sink_close
        self._sink_close = sink_close
        self._close_the_websocket()
        return sink_close

    def _abort(self, reason: Any) -> None:
        """ "To abort a WebSocketStream stream given reason, close using reason giving
        stream and reason." """
        self._close_using_reason(reason)

    # Feedback from the protocol: the pump calls each from its own callback, as the
    # proposal's queued tasks.

    def _on_connect(self, pump: ConnectionPump) -> None:
        """The connection's pump exists (before any event)."""
        self._pump = pump
        reason = self._abort_reason
        if reason is not None:
            # The connecting task was cancelled, and its connect completed all the same
            # (asyncio.wait_for() before Python 3.12): what it made is failed at once.
            pump.fail_the_websocket_connection(None, reason, "aborted")

    def _on_open(self, event: Opened) -> None:
        """ "When the WebSocket connection is established for a WebSocketStream stream"."""
        if self._ready_state != CONNECTING:
            return  # Closed or aborted after the 101 arrived: the failure is on its way.
        self._forget_signal()
        # (The establish algorithm's last step: the cookies set by the handshake.)
        self._agent.store_cookies(self._url.http_url, event.headers)
        # 1. "Change stream's ready state to OPEN (1)." 2. "Set stream's was ever connected
        # to true." 3-4. The extensions and the subprotocol in use.
        self._ready_state = OPEN
        self._was_ever_connected = True
        # 5-8. "Let readable be a new ReadableStream. Set up readable with pullAlgorithm and
        # cancelAlgorithm" (the high-water mark and size: rule 2).
        readable: ReadableStream[str | bytes] = ReadableStream(
            {"start": self._start_readable, "pull": self._pull, "cancel": self._cancel},
            {"highWaterMark": RECEIVE_HIGH_WATER_MARK, "size": _message_size},
        )
        # 9-13. "Let writable be a new WritableStream. Set up writable with writeAlgorithm,
        # closeAlgorithm, and abortAlgorithm." (The default strategy: one chunk, rule 3.)
        writable: WritableStream[Any] = WritableStream(
            {
                "start": self._start_writable,
                "write": self._write,
                "close": self._close_sink,
                "abort": self._abort,
            }
        )
        # 14-15. Set stream's readable stream and writable stream.
        self._readable = readable
        self._writable = writable
        # 16. "Resolve stream's opened promise with WebSocketOpenInfo".
        self._opened.set_result(
            WebSocketOpenInfo(readable, writable, event.extensions, event.protocol)
        )

    def _start_readable(self, controller: ReadableStreamDefaultController[str | bytes]) -> None:
        self._readable_controller = controller

    def _start_writable(self, controller: WritableStreamDefaultController[Any]) -> None:
        self._writable_controller = controller

    def _on_message(self, data: str | bytes) -> None:
        """ "When a WebSocket message has been received for a WebSocketStream stream"."""
        # 1. "If stream's ready state is not OPEN (1), then return."
        if self._ready_state != OPEN:
            return
        controller = self._readable_controller
        assert controller is not None
        # 2-3. Text as a str, binary as bytes: "Enqueue chunk into stream's readable stream."
        controller.enqueue(data)
        # 4. "Apply backpressure to the WebSocket" (rule 2): while the queue is full.
        desired = controller.desiredSize
        if desired is not None and desired <= 0 and self._pump is not None:
            self._pump.pause_delivery()

    def _on_close_frame(self, event: CloseReceived) -> None:
        """ "When the WebSocket closing handshake is started for a WebSocketStream
        stream": its ready state becomes CLOSING."""
        if self._ready_state == OPEN:
            self._ready_state = CLOSING

    def _on_failure(self, failure: ConnectionFailure) -> None:
        """Why the connection failed, for the close task's errors."""
        if self._failure is None:
            self._failure = failure

    def _on_close_timeout(self, failure: ConnectionFailure) -> None:
        """Our Close went unanswered within ``close_timeout``: no failure, but why the close
        that follows is unclean (the ``WebSocketError`` of ``closed`` carries it)."""
        if self._failure is None:
            self._failure = failure

    def _on_closed(self, was_clean: bool, code: int, reason: str) -> None:
        """ "When the WebSocket connection is closed for a WebSocketStream stream, possibly
        cleanly"."""
        # 1. "Change stream's ready state to CLOSED (3)."
        self._ready_state = CLOSED
        self._pump = None
        self._registry.discard(self)
        self._forget_signal()
        # A write still waiting for the connection to take its message never will: it
        # rejects, which errors the writable with the same error (rule 3).
        # (Our Close frame was written behind that message: it never reached the peer, so
        # the closing handshake did not complete, whatever the engine counted as sent.)
        write_error: DOMException | None = None
        waiter, self._write_waiter = self._write_waiter, None
        if waiter is not None and not waiter.done():
            write_error = DOMException(
                "the connection closed before the message was sent", "InvalidStateError"
            )
            waiter.set_exception(write_error)
            was_clean = False
        # 2. "If stream's handshake aborted is true, then return."
        if self._handshake_aborted:
            return
        failure = self._failure
        # 3. "If stream's was ever connected is false, then reject stream's opened promise
        # with a new WebSocketError."
        if not self._was_ever_connected:
            reason_text = failure.reason if failure is not None else "the connection failed"
            self._opened.set_exception(new_websocket_error(reason_text, failure))
            self._opened.exception()  # Retrieved (rule 4).
        # 4-5. The close code, and the reason decoded as UTF-8 (the pump's already is).
        readable_controller = self._readable_controller
        writable_controller = self._writable_controller
        sink_close, self._sink_close = self._sink_close, None
        # 6. "If the connection was closed cleanly":
        if was_clean:
            # 1. "Close stream's readable stream."
            if readable_controller is not None and readable_controller.desiredSize is not None:
                with contextlib.suppress(TypeError):  # Cancelled already: closed.
                    readable_controller.close()
            # 2. "Error stream's writable stream with an "InvalidStateError" DOMException
            # indicating that a closed WebSocketStream cannot be written to."
            if writable_controller is not None:
                writable_controller.error(
                    write_error
                    or DOMException(
                        "the WebSocketStream is closed: it cannot be written to",
                        "InvalidStateError",
                    )
                )
            if sink_close is not None:
                sink_close.set_result(None)
            # 3. "Resolve stream's closed promise with WebSocketCloseInfo".
            self._closed.set_result(WebSocketCloseInfo(code, reason))
            return
        # 7. "Otherwise, let error be a new WebSocketError whose closeCode is code and reason
        # is reason. Error stream's readable stream with error. Error stream's writable
        # stream with error. Reject stream's closed promise with error."
        message = (
            failure.reason
            if failure is not None
            else f"the connection closed uncleanly (close code {code})"
        )
        error = new_websocket_error(message, failure, code, reason)
        if readable_controller is not None:
            readable_controller.error(error)
        if writable_controller is not None:
            writable_controller.error(write_error or error)
        if sink_close is not None:
            sink_close.set_exception(error)
        self._closed.set_exception(error)
        self._closed.exception()  # Retrieved (rule 4).

    def _on_drained(self) -> None:
        """The connection's write buffer went down to the mark a write waits for."""
        waiter = self._write_waiter
        pump = self._pump
        if waiter is None or pump is None:
            return
        if waiter.done():  # (Only this object settles it; a cancelled one is let go.)
            self._write_waiter = None
        elif pump.untransmitted() <= SEND_HIGH_WATER_MARK:
            self._write_waiter = None
            waiter.set_result(None)
        else:
            pump.watch_drain(SEND_HIGH_WATER_MARK)
