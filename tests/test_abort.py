"""AbortController and AbortSignal: the DOM's "signal abort" (abort algorithms, then the
abort event, synchronously), the static abort(), timeout() on a real asyncio loop and any(),
with the expectations of web-platform-tests dom/abort/*."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref
from typing import Any

import pytest

from support import TIMEOUT, capture_reports
from wsapi import AbortController, AbortSignal
from wsapi.abort import add_an_algorithm, remove_an_algorithm, signal_abort
from wsapi.errors import DOMException
from wsapi.events import Event, EventTarget


def test_controller_has_one_signal_not_aborted() -> None:
    """A new controller's signal is always the same object, not aborted, reason None."""
    controller = AbortController()
    signal = controller.signal
    assert signal is controller.signal
    assert isinstance(signal, EventTarget)
    assert (signal.aborted, signal.reason, signal.onabort) == (False, None, None)


@pytest.mark.parametrize("reason", [(), (None,)], ids=["no-reason", "None"])
def test_abort_without_reason_is_an_abort_error(reason: tuple[Any, ...]) -> None:
    """abort() and abort(None) (JavaScript's undefined) set an "AbortError" DOMException,
    code 20, as the reason (WPT "aborting AbortController without reason creates an
    AbortError DOMException")."""
    controller = AbortController()
    controller.abort(*reason)
    error = controller.signal.reason
    assert controller.signal.aborted
    assert isinstance(error, DOMException)
    assert (error.name, error.code) == ("AbortError", DOMException.ABORT_ERR)


def test_abort_keeps_the_reason_and_happens_once() -> None:
    """abort(reason) sets that very reason; the abort event fires once, and a second
    abort() changes nothing (WPT "the abort event should fire only once")."""
    controller = AbortController()
    events: list[Event] = []
    controller.signal.addEventListener("abort", events.append)
    reason = ValueError("first")
    controller.abort(reason)
    controller.abort(ValueError("second"))
    assert controller.signal.reason is reason
    assert len(events) == 1
    assert events[0].type == "abort"
    assert events[0].isTrusted
    assert (events[0].bubbles, events[0].cancelable) == (False, False)


def test_abort_runs_algorithms_then_the_event_before_returning() -> None:
    """ "Signal abort" runs inside abort(): the abort algorithms, then the listeners and
    onabort in their order, all before abort() returns, with the signal already aborted."""
    controller = AbortController()
    signal = controller.signal
    log: list[str] = []
    add_an_algorithm(signal, lambda: log.append(f"algorithm aborted={signal.aborted}"))
    signal.addEventListener("abort", lambda event: log.append("listener"))
    signal.onabort = lambda event: log.append(f"onabort target={event.target is signal}")
    add_an_algorithm(signal, lambda: log.append("second algorithm"))
    controller.abort()
    log.append("abort() returned")
    assert log == [
        "algorithm aborted=True",
        "second algorithm",
        "listener",
        "onabort target=True",
        "abort() returned",
    ]


def test_algorithms_added_late_or_removed_do_not_run() -> None:
    """An algorithm removed before the abort does not run, one added to an aborted signal
    never runs, and the list is emptied by the abort (an algorithm runs once)."""
    controller = AbortController()
    calls: list[str] = []

    def removed() -> None:
        calls.append("removed")

    def kept() -> None:
        calls.append("kept")

    add_an_algorithm(controller.signal, removed)
    add_an_algorithm(controller.signal, kept)
    remove_an_algorithm(controller.signal, removed)
    remove_an_algorithm(controller.signal, removed)  # a second removal is a no-op
    controller.abort()
    add_an_algorithm(controller.signal, lambda: calls.append("late"))
    signal_abort(controller.signal)
    assert calls == ["kept"]


async def test_failing_algorithm_and_listener_are_reported_not_raised() -> None:
    """An abort algorithm or listener that raises is reported to the loop's exception
    handler; abort() returns and the next algorithm and listener still run."""
    reports = capture_reports()
    controller = AbortController()
    ran: list[str] = []

    def broken_algorithm() -> None:
        raise RuntimeError("algorithm")

    def broken_listener(event: Event) -> None:
        raise RuntimeError("listener")

    add_an_algorithm(controller.signal, broken_algorithm)
    add_an_algorithm(controller.signal, lambda: ran.append("algorithm"))
    controller.signal.addEventListener("abort", broken_listener)
    controller.signal.addEventListener("abort", lambda event: ran.append("listener"))
    controller.abort()
    assert ran == ["algorithm", "listener"]
    assert [str(report["exception"]) for report in reports] == ["algorithm", "listener"]
    assert reports[0]["message"].startswith("Exception in abort algorithm")
    assert reports[0]["signal"] is controller.signal


def test_failing_algorithm_without_a_loop_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """With no running loop, an abort algorithm's exception goes to the "wsapi" logger."""
    controller = AbortController()

    def broken() -> None:
        raise RuntimeError("no loop")

    add_an_algorithm(controller.signal, broken)
    with caplog.at_level(logging.ERROR, logger="wsapi"):
        controller.abort()
    [record] = caplog.records
    assert record.getMessage().startswith("Exception in abort algorithm")
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "no loop"


def test_throw_if_aborted() -> None:
    """throwIfAborted() does nothing before the abort, then raises the reason itself; a
    reason that is no exception becomes an AbortError naming it."""
    controller = AbortController()
    controller.signal.throwIfAborted()
    reason = KeyError("why")
    controller.abort(reason)
    with pytest.raises(KeyError) as info:
        controller.signal.throwIfAborted()
    assert info.value is reason
    other = AbortController()
    other.abort("bye")
    with pytest.raises(DOMException, match="aborted with the reason 'bye'") as error:
        other.signal.throwIfAborted()
    assert error.value.name == "AbortError"
    assert other.signal.reason == "bye"


def test_abort_signal_has_no_constructor() -> None:
    """AbortSignal() raises TypeError, as the interface has no constructor."""
    with pytest.raises(TypeError, match="AbortSignal has no constructor"):
        AbortSignal()


def test_static_abort() -> None:
    """AbortSignal.abort() is a new signal, aborted already, with an AbortError or the
    given reason; no event fired (nothing could listen yet)."""
    signal = AbortSignal.abort()
    assert signal.aborted
    assert (signal.reason.name, signal.reason.code) == ("AbortError", 20)
    assert AbortSignal.abort(reason := object()).reason is reason
    assert AbortSignal.abort() is not AbortSignal.abort()


def test_listener_with_a_signal_option_is_removed_on_abort() -> None:
    """addEventListener(..., {"signal": signal}) stops calling the listener once the
    signal aborts, and adds nothing for a signal aborted already."""
    target = EventTarget()
    controller = AbortController()
    calls: list[str] = []
    target.addEventListener("ping", lambda event: calls.append("a"), {"signal": controller.signal})
    target.dispatchEvent(Event("ping"))
    controller.abort()
    target.dispatchEvent(Event("ping"))
    target.addEventListener("ping", lambda event: calls.append("b"), {"signal": controller.signal})
    target.dispatchEvent(Event("ping"))
    assert calls == ["a"]


async def test_timeout_aborts_with_a_timeout_error() -> None:
    """AbortSignal.timeout(ms) is not aborted before ms have passed, then aborts with a
    "TimeoutError" DOMException (code 23), firing abort, on the running loop."""
    start = time.monotonic()
    signal = AbortSignal.timeout(100 * TIMEOUT)
    fired = asyncio.get_running_loop().create_future()
    signal.onabort = lambda event: fired.set_result(time.monotonic() - start)
    await asyncio.sleep(0.02)
    assert not signal.aborted
    elapsed = await asyncio.wait_for(fired, 10 * TIMEOUT)
    assert elapsed >= 0.1 * TIMEOUT - 0.005
    assert (signal.reason.name, signal.reason.code) == ("TimeoutError", 23)
    assert signal.reason.code == DOMException.TIMEOUT_ERR


async def test_timeout_zero_aborts_in_a_later_callback() -> None:
    """timeout(0) is not aborted at once (the abort is a task), but one loop turn later."""
    signal = AbortSignal.timeout(0)
    assert not signal.aborted
    await asyncio.sleep(0.01)
    assert signal.aborted


async def test_timeout_keeps_an_unreferenced_signal() -> None:
    """The timer holds its signal: a signal nobody keeps still aborts and runs what was
    added to it."""
    calls: list[str] = []
    signal = AbortSignal.timeout(10)
    add_an_algorithm(signal, lambda: calls.append("algorithm"))
    signal.addEventListener("abort", lambda event: calls.append("event"))
    ref = weakref.ref(signal)
    del signal
    gc.collect()
    assert ref() is not None
    await asyncio.sleep(0.1 * TIMEOUT)
    assert calls == ["algorithm", "event"]


def test_timeout_without_a_running_loop() -> None:
    """timeout() without a running asyncio loop raises RuntimeError saying so."""
    with pytest.raises(RuntimeError, match="needs a running asyncio event loop"):
        AbortSignal.timeout(10)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10", "takes a number, not str"),
        (True, "takes a number, not bool"),
        (-1, "is not in 0-"),
        (float("inf"), "is not in 0-"),
        (float("nan"), "is not in 0-"),
        (2**53, "is not in 0-"),
    ],
)
async def test_timeout_argument(value: Any, message: str) -> None:
    """timeout()'s [EnforceRange] unsigned long long: a non-number, or a value not finite
    or out of range, is a TypeError."""
    with pytest.raises(TypeError, match=message):
        AbortSignal.timeout(value)


def test_any_of_an_aborted_signal_is_aborted() -> None:
    """any() with a signal aborted already is aborted at once with its reason."""
    first = AbortController()
    second = AbortController()
    second.abort("second")
    first.abort("first")
    combined = AbortSignal.any([AbortController().signal, second.signal, first.signal])
    assert (combined.aborted, combined.reason) == (True, "second")
    assert AbortSignal.any([]).aborted is False


def test_any_follows_the_first_source_to_abort() -> None:
    """A dependent signal aborts with the first source's reason, after the source's own
    abort steps, and is already aborted while the source's listeners run; a later source
    changes nothing."""
    a = AbortController()
    b = AbortController()
    combined = AbortSignal.any([a.signal, b.signal])
    log: list[str] = []
    a.signal.onabort = lambda event: log.append(f"a: combined aborted={combined.aborted}")
    add_an_algorithm(combined, lambda: log.append("combined algorithm"))
    combined.onabort = lambda event: log.append("combined")
    a.abort("from a")
    b.abort("from b")
    assert log == ["a: combined aborted=True", "combined algorithm", "combined"]
    assert combined.reason == "from a"


def test_any_of_a_dependent_signal_depends_on_its_sources() -> None:
    """any() over a dependent signal depends on that signal's sources directly, so the
    source's abort reaches it."""
    a = AbortController()
    inner = AbortSignal.any([a.signal])
    outer = AbortSignal.any([inner])
    assert list(outer._source_signals) == [a.signal]
    a.abort("why")
    assert (inner.reason, outer.reason) == ("why", "why")


def test_any_rejects_what_is_not_a_signal() -> None:
    """any() takes AbortSignals only: anything else is a TypeError."""
    with pytest.raises(TypeError, match="takes AbortSignals, not AbortController"):
        AbortSignal.any([AbortController()])  # type: ignore[list-item]


def test_any_dependent_lives_while_its_source_may_abort_it() -> None:
    """A dependent signal that only its source holds still aborts and fires; once aborted,
    the sources let it go."""
    a = AbortController()
    b = AbortController()
    calls: list[str] = []
    dependent = AbortSignal.any([a.signal, b.signal])
    dependent.addEventListener("abort", lambda event: calls.append("fired"))
    ref = weakref.ref(dependent)
    del dependent
    gc.collect()
    assert ref() is not None
    a.abort()
    assert calls == ["fired"]
    gc.collect()
    assert ref() is None
