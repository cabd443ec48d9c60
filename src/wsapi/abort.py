"""``AbortController`` and ``AbortSignal``, the WHATWG DOM standard's (section 3, "Aborting
ongoing activities"): a controller aborts its signal; code that was given the signal reacts.

Theory of operation
-------------------

Rule 1: a signal is aborted when its abort reason is set, once, for good. Python's ``None``
stands for JavaScript's ``undefined``: ``reason`` is ``None`` until the signal is aborted,
and ``abort(None)`` is ``abort()`` (the reason becomes an ``"AbortError"`` DOMException).

Rule 2: "signal abort" runs synchronously, inside ``controller.abort()``: first the signal's
abort algorithms (the private hooks the library's own objects add with
:func:`add_an_algorithm`), then the ``abort`` event, dispatched before ``abort()`` returns.
That is DOM behaviour, and unlike the WebSocket's events, which are tasks. A listener's
exception is reported as for any event (``wsapi.events``, rule 2), never raised by
``abort()``; so is an abort algorithm's.

Rule 3: ``AbortSignal.timeout(ms)`` needs the running asyncio loop for its timer (called
without one it raises ``RuntimeError``). The timer holds the signal until it fires, so a
signal nobody else keeps still aborts what it was given to.

Rule 4: ``AbortSignal.any(signals)`` makes a dependent signal, aborted when the first of its
sources is. A source holds its dependents until they abort (the DOM's garbage-collection
rule keeps a dependent with listeners or algorithms alive while its sources are; this is that,
less finely): a dependent of a source that never aborts lives as long as the source.

Departures, each because Python has no equivalent: ``None`` cannot be a reason (JavaScript's
``abort(null)`` aborts with ``null``; Python has one "nothing", and it means undefined here);
``throwIfAborted()`` raises the reason when it is an exception, and otherwise
(``abort("bye")``: JavaScript throws any value) an ``"AbortError"`` DOMException that names it.
As in JavaScript, ``AbortSignal()`` raises ``TypeError``: the interface has no constructor.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Final

from .errors import DOMException
from .events import Event, EventHandler, EventTarget, fire_an_event, report_an_exception

__all__ = [
    "AbortController",
    "AbortSignal",
    "add_an_algorithm",
    "remove_an_algorithm",
    "signal_abort",
]

_MAX_TIMEOUT_MS: Final = 2**53 - 1
"""Web IDL [EnforceRange] unsigned long long: the largest integer a JavaScript number holds
exactly; a larger ``timeout()`` is a ``TypeError``."""

AbortAlgorithm = Callable[[], object]
"""An abort algorithm: called with no argument when the signal aborts."""


class AbortSignal(EventTarget):
    """A DOM ``AbortSignal``: ``aborted``, ``reason``, ``throwIfAborted()``, the ``abort``
    event (``onabort``), and the static ``AbortSignal.abort()``, ``AbortSignal.timeout(ms)``
    and ``AbortSignal.any(signals)``. Get one from an ``AbortController`` or those."""

    __slots__ = (
        "_abort_algorithms",
        "_abort_reason",
        "_dependent",
        "_dependent_signals",
        "_source_signals",
    )

    _abort_reason: Any
    _abort_algorithms: list[AbortAlgorithm]
    _dependent: bool
    _source_signals: weakref.WeakSet[AbortSignal]
    _dependent_signals: dict[AbortSignal, None]

    onabort = EventHandler[Event]("abort")

    def __init__(self) -> None:
        raise TypeError("AbortSignal has no constructor: use AbortController().signal")

    @classmethod
    def _new(cls) -> AbortSignal:
        """A new ``AbortSignal`` object, as the standard's algorithms create one."""
        signal = cls.__new__(cls)
        EventTarget.__init__(signal)
        # "An AbortSignal object has an associated abort reason, which is initially undefined."
        signal._abort_reason = None
        # "... abort algorithms, a set of algorithms which are to be executed when it is
        # aborted, which is initially empty."
        signal._abort_algorithms = []
        # "... a dependent (a boolean), which is initially false."
        signal._dependent = False
        # "... source signals (a weak set of AbortSignal objects that the object is dependent
        # on for its aborted state)" and "dependent signals (a weak set ...)". The dependents
        # are held strongly until they abort (module docstring, rule 4).
        signal._source_signals = weakref.WeakSet()
        signal._dependent_signals = {}
        return signal

    @staticmethod
    def abort(reason: Any = None) -> AbortSignal:
        """A signal already aborted, with ``reason`` (an ``"AbortError"`` DOMException if
        none)."""
        # 1. Let signal be a new AbortSignal object.
        signal = AbortSignal._new()
        # 2. Set signal's abort reason to reason if it is given; otherwise to a new
        # "AbortError" DOMException.
        signal._abort_reason = _reason_or_abort_error(reason)
        # 3. Return signal.
        return signal

    @staticmethod
    def timeout(milliseconds: int | float) -> AbortSignal:
        """A signal that aborts after ``milliseconds`` with a ``"TimeoutError"``
        DOMException. It runs on the running asyncio loop (``RuntimeError`` without one)."""
        # Web IDL [EnforceRange] unsigned long long: not finite, or out of range, is a
        # TypeError; a fraction is dropped.
        if isinstance(milliseconds, bool) or not isinstance(milliseconds, (int, float)):
            raise TypeError(
                f"AbortSignal.timeout() takes a number, not {type(milliseconds).__name__}"
            )
        if not math.isfinite(milliseconds) or not 0 <= milliseconds <= _MAX_TIMEOUT_MS:
            raise TypeError(
                f"AbortSignal.timeout() milliseconds {milliseconds} is not in 0-{_MAX_TIMEOUT_MS}"
            )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "AbortSignal.timeout() needs a running asyncio event loop for its timer"
            ) from None
        # 1. Let signal be a new AbortSignal object.
        signal = AbortSignal._new()
        # 3. Run steps after a timeout given global, "AbortSignal-timeout", milliseconds, and
        # the following step: queue a global task on the timer task source given global to
        # signal abort given signal and a new "TimeoutError" DOMException. (The timer's
        # callback is that task.) "For the duration of this timeout, if signal has any event
        # listeners registered for its abort event, there must be a strong reference from
        # global to signal": the timer's handle holds it (rule 3).
        loop.call_later(int(milliseconds) / 1000, _time_out, signal)
        # 4. Return signal.
        return signal

    @staticmethod
    def any(signals: Iterable[AbortSignal]) -> AbortSignal:
        """A signal that aborts when the first of ``signals`` does, with its reason (at
        once if one of them is aborted already)."""
        signals = list(signals)
        for signal in signals:
            if not isinstance(signal, AbortSignal):
                raise TypeError(
                    f"AbortSignal.any() takes AbortSignals, not {type(signal).__name__}"
                )
        # "Create a dependent abort signal from signals":
        # 1. Let resultSignal be a new object implementing AbortSignal.
        result = AbortSignal._new()
        # 2. For each signal of signals: if signal is aborted, then set resultSignal's abort
        # reason to signal's abort reason and return resultSignal.
        for signal in signals:
            if signal._abort_reason is not None:
                result._abort_reason = signal._abort_reason
                return result
        # 3. Set resultSignal's dependent to true.
        result._dependent = True
        # 4. For each signal of signals:
        for signal in signals:
            # 1. If signal's dependent is false: append signal to resultSignal's source
            # signals; append resultSignal to signal's dependent signals.
            if not signal._dependent:
                result._source_signals.add(signal)
                signal._dependent_signals[result] = None
                continue
            # 2. Otherwise, for each sourceSignal of signal's source signals: (assert:
            # sourceSignal is not aborted and not dependent) append sourceSignal to
            # resultSignal's source signals; append resultSignal to sourceSignal's
            # dependent signals.
            for source in signal._source_signals:
                result._source_signals.add(source)
                source._dependent_signals[result] = None
        # 5. Return resultSignal.
        return result

    @property
    def aborted(self) -> bool:
        """Whether the signal is aborted (its reason is set)."""
        # "An AbortSignal object is aborted when its abort reason is not undefined."
        return self._abort_reason is not None

    @property
    def reason(self) -> Any:
        """The abort reason: ``None`` until the signal is aborted."""
        return self._abort_reason

    def throwIfAborted(self) -> None:
        """Raise the abort reason if the signal is aborted (module docstring, departures)."""
        # "The throwIfAborted() method steps are to throw this's abort reason, if this is
        # aborted."
        reason = self._abort_reason
        if reason is None:
            return
        if isinstance(reason, BaseException):
            raise reason
        raise DOMException(f"the signal was aborted with the reason {reason!r}", "AbortError")

    def __repr__(self) -> str:
        if self._abort_reason is None:
            return "<AbortSignal aborted=False>"
        return f"<AbortSignal aborted=True reason={self._abort_reason!r}>"


class AbortController:
    """A DOM ``AbortController``: ``signal``, and ``abort(reason)`` which aborts it."""

    __slots__ = ("_signal",)

    def __init__(self) -> None:
        # 1. Let signal be a new AbortSignal object. 2. Set this's signal to signal.
        self._signal = AbortSignal._new()

    @property
    def signal(self) -> AbortSignal:
        """The signal this controller aborts (always the same object)."""
        return self._signal

    def abort(self, reason: Any = None) -> None:
        """Abort the signal with ``reason`` (an ``"AbortError"`` DOMException if none); the
        abort algorithms and ``abort`` listeners run before this returns. Once aborted, a
        signal stays so: a second call does nothing."""
        # "The abort(reason) method steps are to signal abort on this with reason if it is
        # given."
        signal_abort(self._signal, reason)

    def __repr__(self) -> str:
        return f"<AbortController signal={self._signal!r}>"


def add_an_algorithm(signal: AbortSignal, algorithm: AbortAlgorithm) -> None:
    """DOM "add an algorithm": run ``algorithm()`` when ``signal`` aborts, before its
    ``abort`` event. Nothing happens if it is aborted already: test ``aborted`` first."""
    # 1. If signal is aborted, then return.
    if signal._abort_reason is not None:
        return
    # 2. Append algorithm to signal's abort algorithms.
    signal._abort_algorithms.append(algorithm)


def remove_an_algorithm(signal: AbortSignal, algorithm: AbortAlgorithm) -> None:
    """DOM "remove an algorithm": forget ``algorithm`` (added with :func:`add_an_algorithm`;
    the same object, or an equal one such as the same bound method)."""
    # "Remove algorithm from signal's abort algorithms."
    if algorithm in signal._abort_algorithms:
        signal._abort_algorithms.remove(algorithm)


def signal_abort(signal: AbortSignal, reason: Any = None) -> None:
    """DOM "signal abort": abort ``signal`` with ``reason`` (an ``"AbortError"``
    DOMException if ``None``) and the signals that depend on it. No-op once aborted."""
    # 1. If signal is aborted, then return.
    if signal._abort_reason is not None:
        return
    # 2. Set signal's abort reason to reason if it is given; otherwise to a new "AbortError"
    # DOMException.
    signal._abort_reason = _reason_or_abort_error(reason)
    # 3. Let dependentSignalsToAbort be a new list.
    to_abort: list[AbortSignal] = []
    # 4. For each dependentSignal of signal's dependent signals: if dependentSignal is not
    # aborted, set its abort reason to signal's abort reason and append it to
    # dependentSignalsToAbort.
    for dependent in signal._dependent_signals:
        if dependent._abort_reason is None:
            dependent._abort_reason = signal._abort_reason
            to_abort.append(dependent)
    # An aborted dependent is never aborted again: its sources (signal among them) let it
    # go (rule 4).
    for dependent in to_abort:
        for source in dependent._source_signals:
            source._dependent_signals.pop(dependent, None)
    # 5. Run the abort steps for signal.
    _run_the_abort_steps(signal)
    # 6. For each dependentSignal of dependentSignalsToAbort, run the abort steps for
    # dependentSignal.
    for dependent in to_abort:
        _run_the_abort_steps(dependent)


def _run_the_abort_steps(signal: AbortSignal) -> None:
    """DOM "run the abort steps" for an AbortSignal."""
    # 1. For each algorithm of signal's abort algorithms: run algorithm. 2. Empty signal's
    # abort algorithms. (Emptied first, so that an algorithm that removes itself or
    # another changes nothing here.)
    algorithms, signal._abort_algorithms = signal._abort_algorithms, []
    for algorithm in algorithms:
        try:
            algorithm()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            report_an_exception(exc, f"Exception in abort algorithm {algorithm!r}", signal=signal)
    # 3. Fire an event named abort at signal.
    fire_an_event(signal, "abort")


def _time_out(signal: AbortSignal) -> None:
    # AbortSignal.timeout() step 3's task: signal abort given signal and a new
    # "TimeoutError" DOMException.
    signal_abort(signal, DOMException("signal timed out", "TimeoutError"))


def _reason_or_abort_error(reason: Any) -> Any:
    if reason is None:
        return DOMException("signal is aborted without reason", "AbortError")
    return reason
