"""The reconnect policy: whether a connection that ended is opened again, and after how long.

Sans-I/O: ``ReconnectPolicy`` holds the options and ``Backoff`` the state of one
reconnecting client; the caller tells it when a connection opened and how one ended, with
the times, and gets back the delay before the next attempt (or None: stop). Clocks and the
random source are injected, so the delays can be tested exactly. ``ReconnectingWebSocket``
and the reconnecting ``async for`` of ``wsapi.connect`` share this one implementation.

Rule 1: what ends a connection is an *ending*: a ``ConnectionFailure`` when the connection
failed, or an object with the close ``code`` (a ``CloseEvent``) when it closed without
failing; an object with a ``failure`` attribute (an exception) is judged by that failure
when it has one. ``should_reconnect`` decides from the ending alone; the program's own
``close()`` never reaches it (the caller stops without asking).

Rule 2: the backoff. Before the n-th consecutive attempt (n from 1) the wait is drawn from
``[(1 - jitter) * d, d]`` with ``d = min(max_delay, min_delay * grow_factor ** (n - 1))``:
``jitter=1`` is "full jitter" (uniform in ``[0, d]``), so that clients that lost the same
server do not come back in step; ``jitter=0`` waits exactly ``d``. A connection that stayed
open for ``min_uptime`` seconds resets n to 0; one that lived shorter does not, so a server
that accepts and drops at once still sees the waits grow.

Rule 3: a refusal with ``Retry-After`` (HTTP 429 or 5xx) waits at least what the server
asked, up to ``MAX_RETRY_AFTER``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Final

from .errors import ConnectionFailure, FailureKind

__all__ = [
    "DEFAULT_GROW_FACTOR",
    "DEFAULT_JITTER",
    "DEFAULT_MAX_DELAY",
    "DEFAULT_MIN_DELAY",
    "DEFAULT_MIN_UPTIME",
    "MAX_RETRY_AFTER",
    "RECONNECT_CLOSE_CODES",
    "RECONNECT_FAILURE_KINDS",
    "Backoff",
    "ReconnectPolicy",
    "retry_after",
    "should_reconnect",
]

DEFAULT_MIN_DELAY: Final = 1.0
"""Seconds: the first wait's bound (the reconnecting-websocket package draws its minimum
from 1-5 s): a server that restarts comes back within about a second."""

DEFAULT_MAX_DELAY: Final = 10.0
"""Seconds: the longest wait between attempts (the reconnecting-websocket package's
default): a client finds its server at most this long after the server is back."""

DEFAULT_GROW_FACTOR: Final = 1.3
"""Each wait's bound is this times the one before (the reconnecting-websocket package's
default): from 1 s, the bound reaches 10 s at the tenth attempt."""

DEFAULT_JITTER: Final = 1.0
"""Full jitter: each wait is uniform between 0 and its bound, which spreads the clients of
one server the most for the least total wait."""

DEFAULT_MIN_UPTIME: Final = 5.0
"""Seconds a connection must stay open to reset the backoff (the reconnecting-websocket
package's default): a server that accepts and drops at once is not hammered."""

MAX_RETRY_AFTER: Final = 300.0
"""The longest wait a server's ``Retry-After`` can ask for, in seconds: beyond this (a
mistake, or an hour-long outage) the client tries again after 5 minutes anyway."""

RECONNECT_FAILURE_KINDS: Final[frozenset[FailureKind]] = frozenset(
    {"dns", "refused", "unreachable", "timeout", "connection_lost", "keepalive_timeout", "proxy"}
)
"""Failures that reconnect: the network's, which may be gone on the next try. Not: TLS
(a certificate does not fix itself), a handshake that broke RFC 6455, a peer's protocol
violation, a full send buffer, a blocked URL, an abort, and HTTP statuses other than 429
and 5xx (``should_reconnect``)."""

RECONNECT_CLOSE_CODES: Final[frozenset[int]] = frozenset({1001, 1006, 1011, 1012, 1013, 1014})
"""Close codes that reconnect: going away, abnormal closure, internal error, service
restart, try again later, bad gateway. Not 1000 (the server is done with us), nor a code
that says the client is at fault (1002, 1003, 1007, 1008, 1009, 1010)."""


def should_reconnect(ending: Any) -> bool:
    """The default rule: whether ``ending`` (rule 1 of the module) reconnects."""
    failure = ending if isinstance(ending, ConnectionFailure) else getattr(ending, "failure", None)
    # A closing handshake that timed out is not a failure of the standard's: its close code
    # (the one the server sent, if any) decides.
    if isinstance(failure, ConnectionFailure) and failure.kind != "close_timeout":
        if failure.kind == "http_status":
            status = failure.status_code or 0
            return status == 429 or 500 <= status <= 599
        return failure.kind in RECONNECT_FAILURE_KINDS
    # (A WebSocketError's close code is closeCode: its code is DOMException's legacy one.)
    code = getattr(ending, "closeCode", None)
    if code is None:
        code = getattr(ending, "code", None)
    return code in RECONNECT_CLOSE_CODES


def retry_after(ending: Any, now: float) -> float | None:
    """Seconds the server asked to wait (RFC 9110 10.2.3 ``Retry-After``: delay-seconds or
    an HTTP-date, compared with the wall-clock time ``now``), for an HTTP 429 or 5xx
    refusal that carries the header; None otherwise or when the value does not parse."""
    failure = ending if isinstance(ending, ConnectionFailure) else getattr(ending, "failure", None)
    if not isinstance(failure, ConnectionFailure) or failure.kind != "http_status":
        return None
    status = failure.status_code or 0
    value = failure.headers.get("retry-after")
    if value is None or not (status == 429 or 500 <= status <= 599):
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None  # An HTTP-date is always GMT; a date without a zone is not one.
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """The options of reconnection (rule 2 of the module); seconds throughout."""

    min_delay: float = DEFAULT_MIN_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    grow_factor: float = DEFAULT_GROW_FACTOR
    jitter: float = DEFAULT_JITTER
    max_retries: int | None = None
    """Consecutive attempts before giving up; None: never give up."""
    min_uptime: float = DEFAULT_MIN_UPTIME
    should_reconnect: Callable[[Any], bool] = should_reconnect
    """Whether an ending reconnects; the default is this module's ``should_reconnect``."""

    def __post_init__(self) -> None:
        for name in ("min_delay", "max_delay", "grow_factor", "jitter", "min_uptime"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, not {type(value).__name__}")
            if not 0 <= value < float("inf"):
                raise ValueError(f"{name} must be a finite number >= 0, not {value}")
        if self.max_delay < self.min_delay:
            raise ValueError(
                f"max_delay ({self.max_delay}) must not be below min_delay ({self.min_delay})"
            )
        if self.grow_factor < 1:
            raise ValueError(f"grow_factor must be >= 1, not {self.grow_factor}")
        if self.jitter > 1:
            raise ValueError(f"jitter must be between 0 and 1, not {self.jitter}")
        retries = self.max_retries
        if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int)):
            raise TypeError(f"max_retries must be an int or None, not {type(retries).__name__}")
        if retries is not None and retries < 0:
            raise ValueError(f"max_retries must be >= 0 or None, not {retries}")
        if not callable(self.should_reconnect):
            raise TypeError("should_reconnect must be callable")

    def bound(self, attempt: int) -> float:
        """The largest wait before the ``attempt``-th consecutive attempt (from 1)."""
        # min_delay * grow_factor ** (attempt - 1), without overflowing on a long outage.
        delay = self.min_delay
        for _ in range(attempt - 1):
            if delay >= self.max_delay:
                break
            delay *= self.grow_factor
        return min(delay, self.max_delay)

    def delay(self, attempt: int, draw: float) -> float:
        """The wait before the ``attempt``-th attempt, for ``draw`` uniform in [0, 1)."""
        bound = self.bound(attempt)
        return bound * (1.0 - self.jitter * draw)


class Backoff:
    """The state of one reconnecting client: the consecutive attempts since the last
    connection that stayed up ``min_uptime`` (``retry_count``), and when the current
    connection opened. ``now`` is a monotonic clock's seconds (the event loop's time);
    ``random`` draws in [0, 1) and ``wall_clock`` gives the time of day (for an HTTP-date
    ``Retry-After``)."""

    __slots__ = ("_opened_at", "_random", "_wall_clock", "policy", "retry_count")

    def __init__(
        self,
        policy: ReconnectPolicy,
        *,
        random: Callable[[], float] = random.random,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.retry_count = 0
        self._opened_at: float | None = None
        self._random = random
        self._wall_clock = wall_clock

    def opened(self, now: float) -> None:
        """A connection opened at ``now``."""
        self._opened_at = now

    def retries(self, now: float) -> int:
        """``retry_count`` as of ``now``: 0 once the open connection has lived ``min_uptime``."""
        opened_at = self._opened_at
        if opened_at is not None and now - opened_at >= self.policy.min_uptime:
            return 0
        return self.retry_count

    def reset(self) -> None:
        """Start the backoff over (a reconnection the program asked for)."""
        self.retry_count = 0
        self._opened_at = None

    def next_delay(self, ending: Any, now: float) -> float | None:
        """The connection (or the attempt) ended at ``now`` with ``ending``: the seconds to
        wait before the next attempt, or None when there is none (the ending does not
        reconnect, or ``max_retries`` attempts were made). Counts the attempt it allows."""
        self.retry_count = self.retries(now)
        self._opened_at = None
        policy = self.policy
        if not policy.should_reconnect(ending):
            return None
        if policy.max_retries is not None and self.retry_count >= policy.max_retries:
            return None
        self.retry_count += 1
        delay = policy.delay(self.retry_count, self._random())
        asked = retry_after(ending, self._wall_clock())
        if asked is not None:
            delay = max(delay, min(asked, MAX_RETRY_AFTER))
        return delay
