"""The timers of a connection's pump: the deadline of the phase that may hang, and keepalive.

One phase of a connection at a time may wait on the peer forever: the opening handshake
(``open_timeout``, set before the connection exists and adopted by the pump), the wait for
the rest of a refused handshake's body (``REFUSAL_BODY_WAIT``), the wait for the peer's Close
after ours and for the peer's TCP close after the closing handshake (``close_timeout``; RFC
6455 7.1.1: the server closes first, the client may close after "a reasonable time period").
Each is one entry on the loop's shared timer (``deadlines``), replaced by the next phase's.

Keepalive: the specification lets a user agent "send ping and unsolicited pong frames as
desired, for example in an attempt to maintain local network NAT mappings, to detect failed
connections". A Ping goes out every ``ping_interval`` seconds on an open connection; if
nothing at all arrives within ``ping_timeout`` of one, the connection fails.

The compiled build: Cython compiles this file itself, with ``timers.pxd``, as it does the
engine (see ``protocol/engine.py``); ``WSAPI_PURE_PYTHON=1`` runs this file as Python.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from .deadlines import Deadlines, Timer, deadlines_of
from .errors import ConnectionFailure
from .protocol.constants import CloseCode
from .protocol.engine import State
from .socket_transport import BufferedReceiver

if TYPE_CHECKING:
    from .errors import FailureKind
    from .protocol.engine import ClientConnection
    from .pump import ConnectionHandler

__all__ = ["REFUSAL_BODY_WAIT", "PumpTimers"]

logger = logging.getLogger("wsapi")

# The engine's states as module globals (a global read, not an enum class attribute).
_CONNECTING = State.CONNECTING
_OPEN = State.OPEN

REFUSAL_BODY_WAIT = 0.25
"""Seconds the failure of a handshake answered with a status other than 101 waits for the
rest of that response's body (its start is ``ConnectionFailure.body``), at most: a body sent
with its head is there at once; a server that stalls delays the error event no longer."""

DROP_AFTER_CLOSE = 10.0
"""Seconds a closed transport may take to write what it holds when ``close_timeout`` is
None: a peer that stopped reading would otherwise hold the connection open forever."""


class PumpTimers(BufferedReceiver):
    """The timer state and callbacks of ``pump.ConnectionPump`` (its base class), with the
    pump's fields they read: the engine, the handler, the loop, whether TCP is lost. (On a
    ``BufferedReceiver``: the socket transport hands the pump its reads at C level.)"""

    # (In the compiled build, timers.pxd declares these fields, typed.)
    __slots__ = (
        "_deadlines",
        "_keepalive",
        "_lost",
        "_ping_deadline",
        "_pings_sent",
        "_timer",
        "close_timeout",
        "engine",
        "handler",
        "last_pong",
        "loop",
        "ping_interval",
        "ping_timeout",
    )

    if TYPE_CHECKING:
        # What the pump gives its timers.
        def fail_the_websocket_connection(
            self, code: int | None, reason: str, kind: FailureKind
        ) -> None: ...
        def abort(self) -> None: ...
        def _call(self, callback: Callable[..., None], *args: object) -> None: ...
        def _flush(self, message_size: int = 0) -> None: ...
        def _schedule_pump(self) -> None: ...

    def __init__(
        self,
        engine: ClientConnection,
        handler: ConnectionHandler,
        close_timeout: float | None,
        ping_interval: float | None,
        ping_timeout: float | None,
    ) -> None:
        self.engine = engine
        self.handler = handler
        self.loop = asyncio.get_running_loop()
        self._lost = False
        self.close_timeout = close_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        # Keepalive: the timer of the next Ping, and the deadline of the outstanding one.
        self._keepalive: asyncio.TimerHandle | None = None
        self._ping_deadline: asyncio.TimerHandle | None = None
        self._pings_sent = 0
        self.last_pong: bytes | None = None
        # The timer of the phase that may hang (opening, closing), on the loop's shared timer.
        self._deadlines: Deadlines = deadlines_of(self.loop)
        self._timer: Timer | None = None

    # The phase that may hang.

    def _start_timer(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after ``close_timeout`` unless cancelled first; replaces the
        timer of the phase before."""
        # (The new timer is set before the old one goes: the shared timer of the loop then
        # never finds itself empty in between, which would cancel and re-arm it.)
        previous = self._timer
        self._timer = None
        if self.close_timeout is not None and not self._lost:
            self._timer = self._deadlines.call_later(self.close_timeout, callback)
        if previous is not None:
            self._deadlines.cancel(previous)

    def _cancel_timer(self, *, ended: bool = False) -> None:
        """Cancel the timer of the phase; ``ended``: the connection has ended (its last
        timer goes, see ``Deadlines.cancel``'s ``keep_armed``)."""
        if self._timer is not None:
            self._deadlines.cancel(self._timer, keep_armed=ended)
            self._timer = None

    def adopt_open_timer(self, timer: Timer) -> None:
        """``timer`` fails the opening handshake if it has not completed in time (it was set
        before the connection existed); it is cancelled once the connection opens or fails."""
        current = self._timer
        if current is not None and current.callback == self._refusal_body_waited:
            # A refusal came first: the shorter wait for its body is set already.
            self._deadlines.cancel(timer)
            return
        self._cancel_timer()
        self._timer = timer

    def open_timed_out(self, open_timeout: float) -> None:
        """Fail the connection if the opening handshake has not completed yet."""
        if self.engine.state is _CONNECTING:
            reason = f"the connection did not open within {open_timeout} s"
            self.fail_the_websocket_connection(None, reason, "timeout")

    def _wait_for_refusal_body(self) -> None:
        # The body of a refusal is worth a short wait, within open_timeout: this timer
        # replaces the open timer.
        when = self.loop.time() + REFUSAL_BODY_WAIT
        if self._timer is not None and self._timer.callback is not None:
            when = min(when, self._timer.when)
        self._cancel_timer()
        self._timer = self._deadlines.call_at(when, self._refusal_body_waited)

    def _refusal_body_waited(self) -> None:
        # Nothing more is read: to the engine the stream ends here, and the failure is
        # reported with the part of the body that arrived. (The TCP connection closes next.)
        self._timer = None
        self.engine.receive_eof()
        self._schedule_pump()

    def _close_timed_out(self) -> None:
        # Not "fail the WebSocket connection": the close is unclean (1006) but no failure
        # (no error event, as in Chromium). The handler hears why through its own hook.
        logger.info("the peer did not answer our Close within %s s", self.close_timeout)
        reason = f"the peer did not answer our Close frame within {self.close_timeout} s"
        self.engine.abandon()
        self._call(self.handler._on_close_timeout, ConnectionFailure("close_timeout", reason))
        self.abort()

    def _abort_later(self, transport: asyncio.Transport) -> None:
        """Abort ``transport``, closed but still writing, after ``close_timeout``."""
        delay = self.close_timeout if self.close_timeout is not None else DROP_AFTER_CLOSE
        self._cancel_timer()
        self._timer = self._deadlines.call_later(delay, transport.abort)

    # Keepalive.

    def _start_keepalive(self) -> None:
        if self.ping_interval is not None:
            self._keepalive = self.loop.call_later(self.ping_interval, self._send_keepalive)

    def _ping_payload(self) -> bytes:
        return self._pings_sent.to_bytes(4, "big")

    def _send_keepalive(self) -> None:
        self._keepalive = None
        engine = self.engine
        if self._lost or engine.state is not _OPEN or engine.close_sent is not None:
            return
        if self._ping_deadline is None:
            self._pings_sent = (self._pings_sent + 1) % 2**32
            engine.send_ping(self._ping_payload())
            self._flush()
            if self.ping_timeout is not None:
                self._ping_deadline = self.loop.call_later(
                    self.ping_timeout, self._keepalive_expired
                )
        assert self.ping_interval is not None
        self._keepalive = self.loop.call_later(self.ping_interval, self._send_keepalive)

    def _pong_received(self, data: bytes) -> None:
        self.last_pong = data
        if self._ping_deadline is not None and data == self._ping_payload():
            self._ping_deadline.cancel()
            self._ping_deadline = None

    def _reading_resumed(self) -> None:
        """Reading resumes after a pause: the outstanding Ping's deadline starts again, a
        full ``ping_timeout`` from now. What the peer sent meanwhile (its Pong, perhaps) is
        read only from the loop's next turn, after a deadline already due would have run."""
        deadline = self._ping_deadline
        if deadline is not None and self.ping_timeout is not None:
            deadline.cancel()
            self._ping_deadline = self.loop.call_later(self.ping_timeout, self._keepalive_expired)

    def _keepalive_expired(self) -> None:
        self._ping_deadline = None
        reason = f"no Pong (nor any data) arrived within {self.ping_timeout} s of a Ping"
        logger.info("WebSocket peer is unresponsive: %s", reason)
        # The peer is gone: say so with 1011 if the socket still takes it, and do not wait
        # for the write buffer of a dead connection to drain.
        self.fail_the_websocket_connection(CloseCode.INTERNAL_ERROR, reason, "keepalive_timeout")
        self.abort()

    def _stop_keepalive(self) -> None:
        for handle in (self._keepalive, self._ping_deadline):
            if handle is not None:
                handle.cancel()
        self._keepalive = self._ping_deadline = None
