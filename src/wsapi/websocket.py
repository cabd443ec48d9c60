"""The ``WebSocket`` interface: the W3C WebSocket API (CR 2011-12-08), and the WHATWG living
standard when the agent's ``standard`` is ``"whatwg"``.

Theory of operation
-------------------
Rule 1: the specification's steps, in its order, with its names. The constructor, ``send()``,
``close()`` and the attribute setters are the IDL's steps, numbered as in the CR (and the
WHATWG steps where they differ). API misuse raises at once, with the specification's
``DOMException``; nothing a peer does is ever raised.

Rule 2: events are tasks. The pump calls this object's ``_on_*`` methods each from its
own event-loop callback, in the order things happened; each of those methods is one of the
specification's queued tasks ("feedback from the protocol"): it changes ``readyState`` and
fires its events there, never earlier. Nothing is dispatched from inside the constructor,
``send()`` or ``close()``.

Rule 3: ``bufferedAmount`` is measured, not estimated: the pump knows which bytes of
each message the operating system has taken. The value seen by a program is refreshed at
most once per turn of the event loop, and every ``send()`` adds to it at once, so it includes
what was sent in the current callback and only goes down between callbacks, as the CR says.

Rule 4: a WebSocket stays alive while it can still deliver events: the event loop holds it
until its close event has fired (its pump and the loop's registry reference it), so a
program may drop its own reference. When a loop ends with WebSockets still open (the end of
``asyncio.run()``), they are "made to disappear" as the specification says: the ones still
connecting fail, the open ones start the closing handshake with 1001, and the loop waits a
short, bounded time for them to close.

readyState
----------
The IDL attribute moves forward only, each change in one of the specification's steps:

    CONNECTING --open task (_on_open)--> OPEN
    CONNECTING --close() (which fails the connection)--> CLOSING
    OPEN --close(), make disappear (start the closing handshake)--> CLOSING
    OPEN --"the WebSocket closing handshake is started" task (_on_close_frame)--> CLOSING
    any --"the WebSocket connection is closed" task (_on_closed)--> CLOSED

Only ``close()`` and make disappear change it at once; every other change waits for its task,
so a message that arrives in the same read as a Close is still dispatched with readyState
OPEN. The connection's own state (``protocol.engine``'s) runs ahead of it: what the API
needs to know of that, it asks the pump (``can_send()``).

The compiled build: Cython compiles this file itself, with ``websocket.pxd`` (WebSocket as
an extension type, calling its pump and the dispatch of its message events at C level);
``WSAPI_PURE_PYTHON=1`` runs this file as Python.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Sequence
from types import TracebackType
from typing import Any, Final, Generic, Literal, Protocol, TypeVar, overload

from .agent import UserAgent, default_agent
from .blob import SPOOL_THRESHOLD, Blob
from .cpython_calls import get_ident as _get_ident
from .errors import ConnectionFailure, DOMException, WebSocketError, new_websocket_error
from .events import (
    AddEventListenerOptions,
    CloseEvent,
    Event,
    EventHandler,
    EventListener,
    EventTarget,
    MessageEvent,
    TypedEventListener,
    dispatch_trusted,
    fire_a_message_event,
    fire_a_simple_event,
    trusted_close_event,
)
from .loops import PerLoop, at_loop_end
from .opening import establish_a_websocket_connection
from .protocol.constants import CloseCode
from .protocol.events import CloseReceived, Opened
from .pump import ConnectionPump, fail_without_a_connection
from .url import parse_websocket_url
from .webidl import paired_utf8, usv_utf8

__all__ = ["MAKE_DISAPPEAR_TIMEOUT", "BinaryType", "WebSocket", "WebSocketError", "ping"]

logger = logging.getLogger("wsapi")

MAKE_DISAPPEAR_TIMEOUT = 2.0
"""Seconds the end of an event loop waits for the closing handshakes it starts (1001) before
dropping the connections that did not finish: long enough for any live peer on a sane network,
short enough not to hold up a program's exit on a dead one."""

# RFC 2616 2.2 separators: not allowed in a Sec-WebSocket-Protocol element (RFC 6455 4.1).
_SEPARATORS = frozenset('()<>@,;:\\"/[]?={} \t')

_T = TypeVar("_T")


CONNECTING: Final = 0
OPEN: Final = 1
CLOSING: Final = 2
CLOSED: Final = 3


BinaryType = Literal["blob", "arraybuffer"]
"""The values of ``binaryType``."""


class WebSocket(EventTarget):
    """``WebSocket(url, protocols=None, *, agent=None)``: the browser's WebSocket object.

    Call it on a thread with a running asyncio event loop; it returns at once and connects
    in the background. Use it from that loop's thread only.
    """

    CONNECTING: Final = CONNECTING
    OPEN: Final = OPEN
    CLOSING: Final = CLOSING
    CLOSED: Final = CLOSED

    # The fields (websocket.pxd declares them for the compiled build). "__dict__": a script
    # may still set attributes of its own on the object.
    __slots__ = (
        "__dict__",
        "_abort_reason",
        "_agent",
        "_binary_type",
        "_buffered_amount",
        "_buffered_stale",
        "_close_event",
        "_closed",
        "_connect_task",
        "_drain_waiters",
        "_extensions",
        "_fail_required",
        "_failure",
        "_full",
        "_loop",
        "_mark_stale",
        "_message_origin",
        "_never_sent",
        "_opened",
        "_outbox",
        "_outbox_size",
        "_protocol",
        "_protocols",
        "_pump",
        "_ready_state",
        "_registry",
        "_thread",
        "_url",
        "_was_opened",
        "_whatwg",
    )

    onopen = EventHandler[Event]("open")
    onerror = EventHandler[Event]("error")
    onclose = EventHandler[CloseEvent]("close")
    onmessage = EventHandler[MessageEvent]("message")

    # Each event type's listener takes that type's event class, as TypeScript's
    # WebSocketEventMap says (for type checkers; EventTarget.addEventListener does the work).

    @overload
    def addEventListener(
        self,
        type: Literal["message"],
        callback: TypedEventListener[MessageEvent] | None,
        options: AddEventListenerOptions | bool | None = None,
    ) -> None: ...

    @overload
    def addEventListener(
        self,
        type: Literal["close"],
        callback: TypedEventListener[CloseEvent] | None,
        options: AddEventListenerOptions | bool | None = None,
    ) -> None: ...

    @overload
    def addEventListener(
        self,
        type: str,
        callback: TypedEventListener[Event] | None,
        options: AddEventListenerOptions | bool | None = None,
    ) -> None: ...

    def addEventListener(
        self,
        type: str,
        callback: EventListener | None,
        options: AddEventListenerOptions | bool | None = None,
    ) -> None:
        EventTarget.addEventListener(self, type, callback, options)

    def __init__(
        self,
        url: str,
        protocols: str | Sequence[str] | None = None,
        *,
        agent: UserAgent | None = None,
    ) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "WebSocket() needs a running asyncio event loop: create it inside a coroutine "
                "or a callback of the loop (for example under asyncio.run())"
            ) from None
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, not {type(url).__name__}")
        if agent is None:
            agent = default_agent()
        elif not isinstance(agent, UserAgent):
            raise TypeError(f"agent must be a UserAgent, not {type(agent).__name__}")
        super().__init__()
        whatwg = agent.standard == "whatwg"
        # CR step 1 (WHATWG steps 1-7): parse the URL; failure is a SyntaxError.
        try:
            parsed = parse_websocket_url(url, standard=agent.standard, base_url=agent.base_url)
        except ValueError as exc:
            raise DOMException(str(exc), "SyntaxError") from None
        blocked: str | None = None
        # CR step 2: "If secure is false but the origin of the entry script has a scheme
        # component that is itself a secure protocol, e.g. HTTPS, then throw a SecurityError
        # exception." (WHATWG: Fetch blocks the mixed-content request: the connection fails.)
        if not parsed.secure and agent.origin is not None and agent.origin.startswith("https:"):
            reason = f"a ws: URL from the secure origin {agent.origin} is mixed content"
            if not whatwg:
                raise DOMException(reason, "SecurityError")
            blocked = reason
        # CR step 3: "If port is a port to which the user agent is configured to block
        # access, then throw a SecurityError exception." Ports 80 and 443 are never blocked.
        # (WHATWG: Fetch's "bad port" check makes the request a network error.)
        if parsed.port in agent.blocked_ports and parsed.port not in (80, 443):
            reason = f"port {parsed.port} is blocked (the Fetch standard's bad ports)"
            if not whatwg:
                raise DOMException(reason, "SecurityError")
            blocked = blocked or reason
        # CR steps 4-5: absent protocols are an empty array; a string is an array of one.
        if protocols is None:
            protocol_list: list[str] = []
        elif isinstance(protocols, str):
            protocol_list = [protocols]
        elif isinstance(protocols, (bytes, bytearray, memoryview)) or not isinstance(
            protocols, Sequence
        ):
            raise TypeError(
                f"protocols must be a str or a sequence of str, not {type(protocols).__name__}"
            )
        else:
            protocol_list = list(protocols)
            for item in protocol_list:
                if not isinstance(item, str):
                    raise TypeError(f"each protocol must be a str, not {type(item).__name__}")
        # CR step 6: "If any of the values in protocols occur more than once or otherwise fail
        # to match the requirements for elements that comprise the value of
        # Sec-WebSocket-Protocol header fields ..., then throw a SyntaxError exception."
        _check_protocols(protocol_list, case_insensitive=whatwg)
        # CR step 7: "Let origin be the ASCII serialization of the origin of the entry
        # script, converted to ASCII lowercase." (UserAgent.origin is already serialized.)
        self._agent = agent
        self._loop = loop
        self._thread = _get_ident()
        self._url = parsed
        self._whatwg = whatwg
        self._protocols = tuple(protocol_list)
        self._ready_state = CONNECTING
        self._protocol = ""
        self._extensions = ""
        self._binary_type: BinaryType = "blob"
        self._message_origin = parsed.origin(unicode=not whatwg)
        self._pump: ConnectionPump | None = None
        self._failure: ConnectionFailure | None = None
        # Why the API gave the connection up (close(), or make disappear) while it was
        # connecting; None while it has not.
        self._abort_reason: str | None = None
        self._was_opened = False
        self._fail_required = False
        self._full = False
        self._close_event: CloseEvent | None = None
        self._opened: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[CloseEvent] | None = None
        # drained()'s waiters: the most bytes each lets remain, and its future.
        self._drain_waiters: list[tuple[int, asyncio.Future[None]]] = []
        # bufferedAmount (rule 3): the value last shown, whether the loop has turned since,
        # and the bytes that will never be transmitted (sent after closing started).
        self._buffered_amount = 0
        self._buffered_stale = True
        # What ends a snapshot, called after each callback that took one (made once: a
        # bound method made per send() is a measurable share of a round trip).
        self._mark_stale: Callable[[], None] = self._mark_buffered_stale
        self._never_sent = 0
        # Sends waiting behind a Blob whose bytes are being read from its file, in order
        # (made by the first send that waits: an empty deque is 0.6 KiB).
        self._outbox: deque[tuple[Literal["text", "data", "close"], Any, int]] | None = None
        self._outbox_size = 0
        # The open sockets of this loop, which the loop's end makes disappear (rule 4).
        self._registry = _registry(loop)
        self._registry.add(self)
        # CR step 8: "Return a new WebSocket object, and continue these steps in the
        # background (without blocking scripts)." Step 9: establish a WebSocket connection.
        self._connect_task: asyncio.Task[None] | None = loop.create_task(
            self._establish(blocked), name=f"wsapi connect {parsed.shown}"
        )
        self._connect_task.add_done_callback(self._connect_task_done)

    # The background part of the constructor.

    async def _establish(self, blocked: str | None) -> None:
        agent, url = self._agent, self._url
        if self._connect_task is not None:
            # The task runs: from here on, its own code reports how it ends.
            self._connect_task.remove_done_callback(self._connect_task_done)
        try:
            if blocked is not None:
                fail_without_a_connection(self, ConnectionFailure("blocked", blocked))
                return
            # CR step 9: the Origin, the cookies (agent.request_headers), then the
            # handshake. _on_connect() gives us the pump as soon as it exists, before any
            # event.
            await establish_a_websocket_connection(
                agent,
                url,
                self,
                protocols=self._protocols,
                headers=agent.request_headers(url.http_url),
            )
        finally:
            self._connect_task = None

    def _connect_task_done(self, task: asyncio.Task[None]) -> None:
        # A task cancelled before its first step (close() in the constructor's callback, or
        # the end of the program right away) never ran the code that reports the failure.
        # (The first step removes this callback: a callback costs a turn of the loop.)
        if task.cancelled() and self._pump is None and self._ready_state != CLOSED:
            reason = self._abort_reason or "the connection was aborted"
            fail_without_a_connection(self, ConnectionFailure("aborted", reason))

    # Attributes.

    @property
    def url(self) -> str:
        """The URL, resolved and serialized."""
        return self._url.href

    @property
    def readyState(self) -> int:
        """CONNECTING (0), OPEN (1), CLOSING (2) or CLOSED (3)."""
        return self._ready_state

    @property
    def bufferedAmount(self) -> int:
        """Bytes of application data queued by ``send()`` and not yet transmitted to the
        network, as of the start of the current event-loop callback (the standard lets a
        script see it change only between tasks)."""
        self._refresh_buffered_amount()
        return self._buffered_amount

    @property
    def extensions(self) -> str:
        """The extensions the server selected (``""`` until open)."""
        return self._extensions

    @property
    def protocol(self) -> str:
        """The subprotocol the server selected (``""`` until open)."""
        return self._protocol

    @property
    def binaryType(self) -> BinaryType:
        """``"blob"`` (the default) or ``"arraybuffer"``: what binary messages become. (Any
        other string is refused by the type checker; at run time it raises ``SyntaxError``
        in "cr-2011" and is ignored in "whatwg", as the standards say.)"""
        return self._binary_type

    @binaryType.setter
    def binaryType(self, value: BinaryType) -> None:
        self._check_thread()
        if not isinstance(value, str):
            raise TypeError(f"binaryType must be a str, not {type(value).__name__}")
        if value in ("blob", "arraybuffer"):
            self._binary_type = value
        elif not self._whatwg:
            # CR: "Otherwise, throw a SyntaxError exception."
            raise DOMException(
                f"binaryType must be 'blob' or 'arraybuffer', not {value!r}", "SyntaxError"
            )
        # WHATWG: an enumeration attribute ignores a value outside the enumeration.

    # Python conveniences (outside the IDL).

    @property
    def failure(self) -> ConnectionFailure | None:
        """Why the connection failed, once it has (the events carry only 1006)."""
        return self._failure

    @property
    def opened(self) -> Awaitable[None]:
        """Awaitable: done when the connection opens (after the open event); raises
        ``WebSocketError`` if it closes first. Each access is a new awaitable over one
        outcome: cancelling an await of it (a timeout) changes nothing for the others.
        Unawaited, it leaves no unretrieved exception behind."""
        opened = self._opened
        if opened is None:
            opened = self._opened = self._loop.create_future()
            if self._ready_state != CONNECTING:
                self._settle_opened()
        return _Outcome(opened)

    @property
    def closed(self) -> Awaitable[CloseEvent]:
        """Awaitable: the close event, once it has been dispatched. Never raises (only a
        cancellation of the awaiting task itself). Each access is a new awaitable over one
        outcome, as for ``opened``."""
        closed = self._closed
        if closed is None:
            closed = self._closed = self._loop.create_future()
            if self._close_event is not None:
                closed.set_result(self._close_event)
        return _Outcome(closed)

    async def drained(self, low_water: int = 0) -> None:
        """Wait until at most ``low_water`` bytes of what was sent are still to be handed to
        the network (or the connection has closed, after which nothing more will be): a
        producer's alternative to polling ``bufferedAmount``. It always lets the event loop
        run first, and ``bufferedAmount`` is measured afresh when it returns, so
        ``while ws.bufferedAmount > 0: await ws.drained()`` ends and lets other tasks run.
        A ``low_water`` above 0 keeps the pipe full: send more as soon as it returns."""
        if isinstance(low_water, bool) or not isinstance(low_water, int):
            raise TypeError(f"drained() low_water must be an int, not {type(low_water).__name__}")
        if low_water < 0:
            raise ValueError(f"drained() low_water must be 0 or more, not {low_water}")
        self._check_thread()
        if self._ready_state == CLOSED or self._pending_bytes() <= low_water:
            await asyncio.sleep(0)
        else:
            waiter: asyncio.Future[None] = self._loop.create_future()
            entry = (low_water, waiter)
            self._drain_waiters.append(entry)
            self._watch_drain()
            try:
                await waiter
            finally:
                if entry in self._drain_waiters:  # (Cancelled: the others' mark may rise.)
                    self._drain_waiters.remove(entry)
                    self._watch_drain()
        # The caller goes on in a later callback than the last measurement.
        self._buffered_stale = True

    async def __aenter__(self) -> WebSocket:
        try:
            await self.opened
        except asyncio.CancelledError:
            # Neither the block nor __aexit__ will run: the connection is given up here.
            self._close(1001, "")
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ready_state in (CONNECTING, OPEN):
            # 1000 when the block ends normally; 1001 "going away" when it ends by an
            # exception, as a browser sends when a page goes away.
            self._close(1000 if exc_type is None else 1001, "")
        await self.closed

    def __repr__(self) -> str:
        state = ("CONNECTING", "OPEN", "CLOSING", "CLOSED")[self._ready_state]
        return f"<WebSocket {self._url.shown} {state}>"

    # Methods.

    def send(self, data: str | bytes | bytearray | memoryview | Blob) -> None:
        """Transmit ``data``: ``str`` as a text message; ``bytes``, ``bytearray``,
        ``memoryview`` (only the view's bytes) or ``Blob`` as a binary message."""
        self._check_thread()
        # "If the readyState attribute is CONNECTING, it must throw an InvalidStateError."
        if self._ready_state == CONNECTING:
            raise DOMException(
                "send() was called while the WebSocket is still CONNECTING; wait for open",
                "InvalidStateError",
            )
        text = isinstance(data, str)
        message = self._message_of(data)
        size = _size_of(message)
        self._refresh_buffered_amount()
        # "Any invocation of this method ... that does not throw an exception must increase
        # the bufferedAmount attribute by the number of bytes" (of UTF-8, of the data).
        self._buffered_amount += size
        pump = self._pump
        # "If the WebSocket connection is established, and the WebSocket closing handshake
        # has not yet started, then the user agent must send a WebSocket Message".
        if pump is None or not pump.can_send():
            self._never_sent += size
            return
        # "if the data cannot be sent, e.g. because it would need to be buffered but the
        # buffer is full, the user agent must close the WebSocket connection with prejudice"
        # (WHATWG: "flag the WebSocket as full and then close the WebSocket connection").
        # (bufferedAmount bounds what is pending: the exact count is needed only above.)
        limit = self._agent.max_buffered_amount
        if self._buffered_amount > limit and self._pending_bytes() + size > limit:
            self._never_sent += size
            self._close_with_prejudice()
            return
        if not isinstance(message, bytes):  # A Blob.
            if self._outbox or message._file_backed:
                self._enqueue("data", message, size)
                return
            message = message._read_all()
        if self._outbox:
            self._enqueue("text" if text else "data", message, size)
        else:
            pump.send_message(message, text=text)

    def _message_of(self, data: object) -> bytes | Blob:
        """send()'s argument as the message to send (the UTF-8 of a ``str``, a copy of
        bytes, a ``Blob`` as it is), or send()'s exception."""
        if isinstance(data, str):
            # CR: "If the data argument has any unpaired surrogates, then throw a SyntaxError
            # exception." WHATWG: USVString conversion replaces them by U+FFFD.
            return self._encode_text(data, "send()")
        if isinstance(data, Blob):
            return data
        if isinstance(data, (bytes, bytearray, memoryview)):
            # Copy now: the caller may change a bytearray or the memory under a view later.
            return data.tobytes() if isinstance(data, memoryview) else bytes(data)
        raise TypeError(
            f"send() takes str, bytes, bytearray, memoryview or Blob, not {type(data).__name__}"
        )

    def close(self, code: int | float | None = None, reason: str | None = None) -> None:
        """Start the closing handshake: ``code`` 1000 or 3000-4999, ``reason`` at most 123
        bytes of UTF-8. With neither, the Close frame has no body."""
        self._check_thread()
        # WebIDL [Clamp] unsigned short conversion of the code.
        if code is not None:
            code = _clamp_unsigned_short(code)
        if reason is not None and not isinstance(reason, str):
            raise TypeError(f"close() reason must be a str, not {type(reason).__name__}")
        # Step 1: "If the method's first argument is present but is not an integer equal to
        # 1000 or in the range 3000 to 4999, throw an InvalidAccessError exception".
        if code is not None and code != 1000 and not 3000 <= code <= 4999:
            raise DOMException(
                f"close code {code} is not 1000 or in 3000-4999", "InvalidAccessError"
            )
        # Steps 2-3: unpaired surrogates (CR) and the 123-byte limit: SyntaxError.
        reason_bytes = b""
        if reason is not None:
            reason_bytes = self._encode_text(reason, "close() reason")
            if len(reason_bytes) > 123:
                raise DOMException(
                    f"close() reason is {len(reason_bytes)} bytes of UTF-8; at most 123",
                    "SyntaxError",
                )
        self._close(code, reason_bytes.decode("utf-8") if reason is not None else None)

    def _close(self, code: int | None, reason: str | None) -> None:
        # Step 4: run the first matching steps.
        state = self._ready_state
        # "If the readyState attribute is in the CLOSING (2) or CLOSED (3) state: Do nothing."
        if state in (CLOSING, CLOSED):
            return
        # "If the WebSocket connection is not yet established: Fail the WebSocket connection
        # and set the readyState attribute's value to CLOSING (2)."
        if state == CONNECTING:
            self._ready_state = CLOSING
            self._fail_the_websocket_connection("close() was called before the connection opened")
            return
        # "If the WebSocket closing handshake has not yet been started: Start the WebSocket
        # closing handshake and set the readyState attribute's value to CLOSING (2)." With
        # neither code nor reason, the Close frame has no body (WHATWG).
        self._ready_state = CLOSING
        pump = self._pump
        if pump is not None and pump.can_send():
            if code is None and reason and self._whatwg:
                # WHATWG "close the WebSocket": "If reason is non-empty but code is null,
                # then set code to 1000 ("Normal Closure")."
                code = CloseCode.NORMAL_CLOSURE
            elif code is None:
                # CR: the reason is sent only "if the second argument is also present" after
                # a code; the Close frame then has no body.
                reason = None
            if self._outbox:
                # WHATWG: close() "does not discard previously sent messages before starting
                # the WebSocket closing handshake".
                self._enqueue("close", (code, reason or ""), 0)
            else:
                pump.start_the_closing_handshake(code, reason or "")
        # "Otherwise: Set the readyState attribute's value to CLOSING (2)." -- done above.

    # Feedback from the protocol (section 5): each method runs as its own task (rule 2).

    def _on_connect(self, pump: ConnectionPump) -> None:
        """The connection's pump exists: sends made from the open event's listeners use it."""
        self._pump = pump
        reason = self._abort_reason
        if reason is not None:
            # The API gave the connection up and cancelled the connecting task, whose
            # connect completed all the same: asyncio.wait_for() before Python 3.12 returns
            # a result that is there when the cancellation comes. What it made is failed.
            pump.fail_the_websocket_connection(None, reason, "aborted")

    def _on_open(self, event: Opened) -> None:
        """ "When the WebSocket connection is established, the user agent must queue a task
        to run these steps"."""
        if self._ready_state != CONNECTING:
            # close() was called after the 101 arrived but before this task: the connection
            # is being failed; the close task will report it.
            return
        # 1. Change the readyState attribute's value to OPEN (1).
        self._ready_state = OPEN
        self._buffered_stale = True
        # 2-3. The extensions and the subprotocol in use.
        self._extensions = event.extensions
        self._protocol = event.protocol
        # 4. "Act as if the user agent had received a set-cookie-string consisting of the
        # cookies set during the server's opening handshake".
        self._agent.store_cookies(self._url.http_url, event.headers)
        self._was_opened = True
        self._settle_opened()
        # 5. Fire a simple event named open.
        fire_a_simple_event(self, "open")

    def _on_message(self, data: str | bytes) -> None:
        """ "When a WebSocket message has been received with type type and data data, the
        user agent must queue a task"."""
        # 1. "If the readyState attribute's value is not OPEN (1), then abort these steps."
        if self._ready_state != OPEN:
            return
        self._buffered_stale = True  # A new task: bufferedAmount is measured afresh.
        # 2-4. Text as a string; binary as a Blob or an ArrayBuffer (bytes).
        if type(data) is bytes and self._binary_type == "blob":
            # The spec invites spooling "blob" data to disk: large messages go to a
            # temporary file instead of staying in memory for the Blob's lifetime.
            message: str | bytes | Blob = (
                Blob._spooled(data) if len(data) > SPOOL_THRESHOLD else Blob._from_bytes(data)
            )
        else:
            message = data
        # 5. Dispatch a MessageEvent whose origin is the serialization of the URL's origin.
        fire_a_message_event(self, message, self._message_origin)

    def _on_close_frame(self, event: CloseReceived) -> None:
        """ "When the WebSocket closing handshake is started, the user agent must queue a task
        to change the readyState attribute's value to CLOSING (2)."""
        if self._ready_state == OPEN:
            self._ready_state = CLOSING

    def _on_failure(self, failure: ConnectionFailure) -> None:
        """The user agent was required to fail the WebSocket connection: remembered for the
        close task, which fires error before close."""
        self._fail_required = True
        if self._failure is None:
            self._failure = failure

    def _on_close_timeout(self, failure: ConnectionFailure) -> None:
        """The closing handshake took longer than ``close_timeout``: no failure in the
        standard's sense (the close is unclean, 1006, and fires no error, as in Chromium);
        ``ws.failure`` still says why."""
        if self._failure is None:
            self._failure = failure

    def _on_closed(self, was_clean: bool, code: int, reason: str) -> None:
        """ "When the WebSocket connection is closed, possibly cleanly, the user agent must
        queue a task to run the following substeps"."""
        # 1. Change the readyState attribute's value to CLOSED (3).
        self._ready_state = CLOSED
        self._buffered_stale = True
        self._pump = None
        self._registry.discard(self)
        self._settle_opened()
        self._wake_drain_waiters()
        # 2. "If the user agent was required to fail the websocket connection or the
        # WebSocket connection is closed with prejudice, fire a simple event named error".
        if self._fail_required or self._full:
            fire_a_simple_event(self, "error")
        # 3. The close event: wasClean, the close code, and the reason decoded as UTF-8.
        close_event = trusted_close_event(was_clean, code, reason)
        self._close_event = close_event
        dispatch_trusted(self, close_event)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(close_event)

    def _on_drained(self) -> None:
        """The pump's write buffer went down to the mark of ``_watch_drain()``."""
        self._wake_drain_waiters()

    # Internals.

    def _check_thread(self) -> None:
        if _get_ident() != self._thread:
            raise RuntimeError(
                "a WebSocket is used from its event loop's thread only; use "
                "loop.call_soon_threadsafe() to reach it from another thread"
            )

    def _encode_text(self, text: str, what: str) -> bytes:
        try:
            return text.encode("utf-8")  # No surrogates: the same in both standards.
        except UnicodeEncodeError:
            pass
        # WHATWG: a USVString. CR: "If the data argument has any unpaired surrogates, then
        # throw a SyntaxError exception" (a pair is the character it encodes, as in JS).
        if self._whatwg:
            return usv_utf8(text)
        try:
            return paired_utf8(text)
        except UnicodeDecodeError:
            raise DOMException(f"{what} text has unpaired surrogates", "SyntaxError") from None

    def _refresh_buffered_amount(self) -> None:
        if self._buffered_stale:
            self._buffered_stale = False
            self._buffered_amount = self._pending_bytes() + self._never_sent
            # The value holds until the current callback ends. Inside one of our tasks (each
            # marks it stale when it starts) the pump says when that is.
            pump = self._pump
            if pump is not None and pump.pumping():
                pump.call_after_pump(self._mark_stale)
            else:
                self._loop.call_soon(self._mark_stale)

    def _mark_buffered_stale(self) -> None:
        self._buffered_stale = True

    def _pending_bytes(self) -> int:
        pump = self._pump
        in_pump = pump.untransmitted() if pump is not None else 0
        return in_pump + self._outbox_size

    def _wake_drain_waiters(self) -> None:
        waiters = self._drain_waiters
        if not waiters:
            return
        # Once closed, nothing more will be transmitted: every waiter returns.
        pending = 0 if self._ready_state == CLOSED else self._pending_bytes()
        remaining = []
        for low_water, waiter in waiters:
            if waiter.done():
                continue
            if pending <= low_water:
                waiter.set_result(None)
            else:
                remaining.append((low_water, waiter))
        waiters[:] = remaining
        self._watch_drain()

    def _watch_drain(self) -> None:
        """Have the pump signal ``_on_drained`` at the lowest mark still waited for (once its
        write buffer is empty when nothing waits)."""
        pump = self._pump
        if pump is not None:
            pump.watch_drain(min((mark for mark, _ in self._drain_waiters), default=0))

    # The specification's algorithms that the API starts. (Starting the closing handshake
    # is the pump's start_the_closing_handshake(); "the WebSocket connection is closed" is
    # _on_closed, the task it queues.)

    def _fail_the_websocket_connection(self, reason: str) -> None:
        """ "Fail the WebSocket connection" (RFC 6455 7.1.7) for the API's own reason: close()
        before the connection is established, or make disappear. "the client MUST _Close
        the WebSocket Connection_": the pump does it once TCP is up; before that, the
        connecting task is cancelled and reports the failure ("aborted")."""
        self._abort_reason = reason
        pump = self._pump
        if pump is not None:
            pump.fail_the_websocket_connection(None, reason, "aborted")
        elif self._connect_task is not None:
            self._connect_task.cancel(reason)

    def _close_with_prejudice(self) -> None:
        """CR: "close the WebSocket connection with prejudice" when send()'s data cannot be
        buffered; WHATWG: "flag the WebSocket as full and then close the WebSocket
        connection". The TCP connection closes without a closing handshake; the close task
        fires error, then close with 1006."""
        self._full = True
        pump = self._pump
        if pump is not None:
            if self._failure is None:
                limit = self._agent.max_buffered_amount
                self._failure = ConnectionFailure(
                    "buffer_full", f"bufferedAmount would exceed the maximum of {limit} bytes"
                )
            pump.abort()

    def _enqueue(self, kind: Literal["text", "data", "close"], item: Any, size: int) -> None:
        start = not self._outbox
        if self._outbox is None:
            self._outbox = deque()
        self._outbox.append((kind, item, size))
        self._outbox_size += size
        if start:
            task = self._loop.create_task(self._flush_outbox())
            _background_tasks.add(task)
            task.add_done_callback(_background_tasks.discard)

    async def _flush_outbox(self) -> None:
        """Send queued messages in order, reading file-backed Blobs in a worker thread."""
        outbox = self._outbox
        assert outbox is not None
        while outbox:
            kind, item, size = outbox[0]
            if kind == "data" and isinstance(item, Blob):
                data: Any = await asyncio.to_thread(item._read_all)
            else:
                data = item
            outbox.popleft()
            self._outbox_size -= size
            pump = self._pump
            if pump is None or not pump.can_send():
                self._never_sent += size
                continue
            if kind == "close":
                pump.start_the_closing_handshake(*data)
            else:
                pump.send_message(data, text=kind == "text")
            # What the pump took at once ends no write-buffer wait: look here.
            self._wake_drain_waiters()

    def _settle_opened(self) -> None:
        opened = self._opened
        if opened is None or opened.done():
            return
        if self._was_opened:
            opened.set_result(None)
        elif self._ready_state == CLOSED:
            # A connection that closes before it opened failed, and the pump says so first
            # (pump.ConnectionHandler).
            failure = self._failure
            assert failure is not None, "closed before open without a failure"
            # The message is the failure's reason, as the CLI and logs show it; no close code
            # (the connection never opened, so none was exchanged).
            opened.set_exception(new_websocket_error(failure.reason, failure))
            opened.exception()  # Retrieved: an unawaited failure logs nothing.


class _Outcome(Generic[_T]):
    """An awaitable over a future that only the WebSocket settles: an await of it that is
    cancelled (a timeout) cancels its own wait, never the future, so every awaiter, before
    or after, gets the same outcome."""

    __slots__ = ("_future",)

    def __init__(self, future: asyncio.Future[_T]) -> None:
        self._future = future

    def __await__(self) -> Generator[Any, None, _T]:
        future = self._future
        if not future.done():
            yield from asyncio.shield(future).__await__()
        return future.result()


def _size_of(message: bytes | Blob) -> int:
    """The bytes a message adds to ``bufferedAmount``."""
    return len(message) if isinstance(message, bytes) else message.size


def _clamp_unsigned_short(value: object) -> int:
    """WebIDL "convert to unsigned short" with [Clamp]: NaN is 0, else round half to even
    and clamp to 0-65535."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"close() code must be a number, not {type(value).__name__}")
    if isinstance(value, float):
        if math.isnan(value):
            return 0
        value = max(0.0, min(65535.0, value))
        return round(value)  # Python's round() is half to even, as [Clamp] requires.
    return max(0, min(65535, value))


def _check_protocols(protocols: list[str], *, case_insensitive: bool) -> None:
    seen: set[str] = set()
    for protocol in protocols:
        # RFC 6455 4.1: "non-empty strings with characters in the range U+0021 to U+007E not
        # including separator characters as defined in [RFC2616]".
        if not protocol or any(
            not "\x21" <= char <= "\x7e" or char in _SEPARATORS for char in protocol
        ):
            raise DOMException(
                f"the subprotocol {protocol!r} is not a valid token (RFC 6455 4.1: visible "
                "ASCII without separators)",
                "SyntaxError",
            )
        key = protocol.lower() if case_insensitive else protocol
        if key in seen:
            raise DOMException(f"the subprotocol {protocol!r} occurs twice", "SyntaxError")
        seen.add(key)


def ping_payload(data: bytes | bytearray | memoryview) -> bytes:
    """A Ping's payload: bytes-like (``TypeError`` otherwise), at most 125 bytes
    (``ValueError``), as RFC 6455 5.5 allows a control frame."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"ping data must be bytes, not {type(data).__name__}")
    payload = bytes(data)
    if len(payload) > 125:
        raise ValueError(f"a Ping carries at most 125 bytes, not {len(payload)}")
    return payload


def ping(ws: WebSocket, data: bytes = b"") -> None:
    """Send a Ping on an open connection (outside the IDL, like undici's ``ping()``); the
    Pong is not an event. ``data`` is at most 125 bytes."""
    ws._check_thread()
    payload = ping_payload(data)
    pump = ws._pump
    if ws.readyState != OPEN or pump is None or not pump.can_send():
        raise DOMException("ping() needs an OPEN WebSocket", "InvalidStateError")
    pump.send_ping(payload)


# The end of an event loop (rule 4).

_background_tasks: set[asyncio.Task[Any]] = set()


class Disappearing(Protocol):
    """What the end of a loop makes disappear: a WebSocket, or a WebSocketStream (the
    same ready states, the same "fail" and "start the closing handshake" steps)."""

    _ready_state: int
    _pump: ConnectionPump | None

    def _fail_the_websocket_connection(self, reason: str) -> None: ...

    @property
    def closed(self) -> Awaitable[object]: ...


def _new_registry(loop: asyncio.AbstractEventLoop) -> set[Disappearing]:
    at_loop_end(loop, _make_disappear_all)
    return set()


# The open sockets of each loop, which the end of the loop makes disappear.
_registry: PerLoop[set[Disappearing]] = PerLoop(_new_registry)


async def _make_disappear_all(loop: asyncio.AbstractEventLoop) -> None:
    sockets = list(_registry.get(loop) or ())
    for ws in sockets:
        _make_disappear(ws)
    deadline = loop.time() + MAKE_DISAPPEAR_TIMEOUT
    for ws in sockets:
        if ws._ready_state == CLOSED:
            continue
        try:
            await asyncio.wait_for(ws.closed, max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            if ws._pump is not None:
                ws._pump.abort()
        except Exception:
            # A WebSocketStream's closed rejects when it did not close cleanly (or was
            # aborted): it is closed all the same.
            pass
    # Let the aborted connections report their close (and free their sockets).
    for _ in range(3):
        await asyncio.sleep(0)


def _make_disappear(ws: Disappearing) -> None:
    """The specification's "make disappear" (a browser's: when a Document goes away; here:
    when the event loop ends)."""
    pump = ws._pump
    # "If the WebSocket connection is not yet established: Fail the WebSocket connection."
    if ws._ready_state == CONNECTING:
        ws._fail_the_websocket_connection("the event loop is shutting down")
    # "If the WebSocket closing handshake has not yet been started: Start the WebSocket
    # closing handshake, with the status code to use in the WebSocket Close message being
    # 1001." (readyState goes to CLOSING with it, as for close().)
    elif pump is not None and pump.can_send():
        if ws._ready_state == OPEN:
            ws._ready_state = CLOSING
        pump.start_the_closing_handshake(CloseCode.GOING_AWAY, "")
    # "Otherwise: Do nothing."
