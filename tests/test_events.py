"""DOM events: Event, MessageEvent, CloseEvent, EventTarget dispatch, on* event handlers and
the reporting of listener failures, with the edge cases web-platform-tests check
(dom/events/*)."""

from __future__ import annotations

import ast
import asyncio
import gc
import logging
import math
import socket
import sys
import time
import weakref
from pathlib import Path
from typing import Any

import pytest

from support import capture_reports
from wsapi import UserAgent, WebSocket
from wsapi.errors import DOMException
from wsapi.events import (
    CloseEvent,
    Event,
    EventHandler,
    EventTarget,
    MessageEvent,
    fire_an_event,
)

# --- helpers ---------------------------------------------------------------------------------


class Target(EventTarget):
    """An EventTarget subclass with event handler attributes, as WebSocket declares them."""

    onfoo = EventHandler[Event]("foo")
    onmessage = EventHandler[MessageEvent]("message")


class FakeAbortSignal(EventTarget):
    """The shape of a DOM AbortSignal: ``aborted`` and an ``abort`` event."""

    def __init__(self) -> None:
        super().__init__()
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True
        fire_an_event(self, "abort")


def recorder(log: list[str], name: str) -> Any:
    """A listener that appends ``name`` to ``log``."""
    return lambda _event: log.append(name)


# --- Event -----------------------------------------------------------------------------------


def test_event_defaults() -> None:
    """A new Event has the DOM's initial attribute values."""
    event = Event("foo")
    assert event.type == "foo"
    assert (event.bubbles, event.cancelable, event.composed) == (False, False, False)
    assert (event.defaultPrevented, event.isTrusted, event.cancelBubble) == (False, False, False)
    assert event.returnValue is True
    assert event.eventPhase == Event.NONE
    assert (event.target, event.currentTarget, event.srcElement) == (None, None, None)
    assert event.composedPath() == []
    assert isinstance(event.timeStamp, float)


def test_phase_constants_on_class_and_instance() -> None:
    """NONE, CAPTURING_PHASE, AT_TARGET and BUBBLING_PHASE are 0-3 on class and instance."""
    event = Event("x")
    for owner in (Event, event, MessageEvent, CloseEvent("close")):
        phases = (owner.NONE, owner.CAPTURING_PHASE, owner.AT_TARGET, owner.BUBBLING_PHASE)
        assert phases == (0, 1, 2, 3)


def test_init_dict_and_keywords_are_equivalent() -> None:
    """Event(type, {...}) and Event(type, **...) initialize the same attributes."""
    a = Event("x", {"bubbles": True, "cancelable": True, "composed": True})
    b = Event("x", bubbles=True, cancelable=True, composed=True)
    c = Event("x", eventInitDict={"bubbles": True, "cancelable": True, "composed": True})
    for event in (a, b, c):
        assert (event.bubbles, event.cancelable, event.composed) == (True, True, True)


def test_init_dict_and_keywords_together_is_type_error() -> None:
    """Passing both spellings of the init dictionary is ambiguous and raises TypeError."""
    with pytest.raises(TypeError):
        Event("x", {"bubbles": True}, cancelable=True)


def test_init_dict_none_means_empty() -> None:
    """An explicit None init dictionary is the empty dictionary."""
    event = Event("x", None)
    assert (event.bubbles, event.cancelable) == (False, False)


def test_unknown_init_members_are_ignored() -> None:
    """Unknown members are ignored, as Web IDL dictionaries ignore them."""
    extra: Any = {"bubbles": True, "isTrusted": True, "target": object(), "nonsense": 1}
    for event in (Event("x", extra), Event("x", **extra)):
        assert event.bubbles is True
        assert event.isTrusted is False
        assert event.target is None


def test_boolean_members_use_truthiness() -> None:
    """Boolean members convert like Web IDL's ToBoolean; None is "absent"."""
    init: Any = {"bubbles": 1, "cancelable": "", "composed": None}
    event = Event("x", init)
    assert (event.bubbles, event.cancelable, event.composed) == (True, False, False)


@pytest.mark.parametrize("bad_type", [None, 1, b"foo", ["foo"]])
def test_event_type_must_be_str(bad_type: Any) -> None:
    """A type that is not a str raises TypeError."""
    with pytest.raises(TypeError):
        Event(bad_type)
    with pytest.raises(TypeError):
        MessageEvent(bad_type)
    with pytest.raises(TypeError):
        CloseEvent(bad_type)


def test_event_type_is_required() -> None:
    """The type argument is required."""
    untyped: Any = Event
    with pytest.raises(TypeError):
        untyped()


@pytest.mark.parametrize("bad_init", [[("bubbles", True)], "bubbles", 1, True])
def test_init_dict_must_be_a_mapping(bad_init: Any) -> None:
    """A positional init dictionary that is not a mapping raises TypeError."""
    for cls in (Event, MessageEvent, CloseEvent):
        with pytest.raises(TypeError):
            cls("x", bad_init)


def test_type_may_be_given_by_keyword() -> None:
    """Event(type="x") works like Event("x")."""
    assert Event(type="x").type == "x"


def test_empty_type_is_allowed() -> None:
    """The empty string is a valid event type."""
    assert Event("").type == ""


@pytest.mark.parametrize(
    "attribute",
    [
        "type",
        "target",
        "currentTarget",
        "srcElement",
        "eventPhase",
        "bubbles",
        "cancelable",
        "composed",
        "defaultPrevented",
        "isTrusted",
        "timeStamp",
        "NONE",
        "AT_TARGET",
    ],
)
def test_event_attributes_are_read_only(attribute: str) -> None:
    """Assigning a read-only attribute raises AttributeError."""
    event = Event("x")
    with pytest.raises(AttributeError):
        setattr(event, attribute, 1)


def test_event_has_no_instance_dict() -> None:
    """Events are slotted: an unknown attribute cannot be set."""
    with pytest.raises(AttributeError):
        Event("x").expando = 1  # type: ignore[attr-defined]


def test_time_stamp_is_monotonic_milliseconds() -> None:
    """timeStamp counts milliseconds on a monotonic clock, in creation order."""
    first = Event("x")
    time.sleep(0.02)
    second = Event("x")
    assert 0 <= first.timeStamp <= second.timeStamp
    assert 15 <= second.timeStamp - first.timeStamp < 2000


def test_prevent_default_needs_cancelable() -> None:
    """preventDefault() cancels only a cancelable event."""
    plain = Event("x")
    plain.preventDefault()
    assert plain.defaultPrevented is False
    assert plain.returnValue is True
    cancelable = Event("x", cancelable=True)
    cancelable.preventDefault()
    assert cancelable.defaultPrevented is True
    assert cancelable.returnValue is False


def test_return_value_setter() -> None:
    """Setting returnValue to false cancels a cancelable event; true never un-cancels."""
    event = Event("x", cancelable=True)
    event.returnValue = True
    assert event.defaultPrevented is False
    event.returnValue = False
    assert event.defaultPrevented is True
    event.returnValue = True
    assert event.defaultPrevented is True
    plain = Event("x")
    plain.returnValue = False
    assert plain.defaultPrevented is False


def test_cancel_bubble_setter() -> None:
    """Setting cancelBubble true stops propagation; setting false does not undo it."""
    event = Event("x")
    event.cancelBubble = False
    assert event.cancelBubble is False
    event.cancelBubble = True
    assert event.cancelBubble is True
    event.cancelBubble = False
    assert event.cancelBubble is True


def test_stop_propagation_sets_cancel_bubble() -> None:
    """stopPropagation() and stopImmediatePropagation() both set cancelBubble."""
    a, b = Event("x"), Event("x")
    a.stopPropagation()
    b.stopImmediatePropagation()
    assert a.cancelBubble is True
    assert b.cancelBubble is True


def test_init_event_reinitializes() -> None:
    """initEvent() resets type, flags, target and isTrusted (legacy DOM API)."""
    target = EventTarget()
    event = Event("x", cancelable=True)
    event.preventDefault()
    event.stopPropagation()
    target.dispatchEvent(event)
    event.initEvent("y", True, False)
    assert (event.type, event.bubbles, event.cancelable) == ("y", True, False)
    assert (event.defaultPrevented, event.cancelBubble, event.target) == (False, False, None)


def test_init_event_is_ignored_during_dispatch() -> None:
    """initEvent() does nothing while the event is being dispatched."""
    target = EventTarget()
    event = Event("x")
    target.addEventListener("x", lambda e: e.initEvent("changed"))
    target.dispatchEvent(event)
    assert event.type == "x"


def test_event_repr() -> None:
    """repr() names the class and the type, and says when the event is trusted."""
    assert repr(Event("open")) == "<Event type='open'>"
    target = EventTarget()
    seen: list[Event] = []
    target.addEventListener("open", seen.append)
    fire_an_event(target, "open")
    assert repr(seen[0]) == "<Event type='open' isTrusted=True>"
    assert repr(CloseEvent.__new__(CloseEvent)) == "<CloseEvent (not initialized)>"


# --- MessageEvent and CloseEvent -------------------------------------------------------------


def test_message_event_defaults() -> None:
    """MessageEvent defaults: data None, origin and lastEventId "", source None, no ports."""
    event = MessageEvent("message")
    assert event.data is None
    assert (event.origin, event.lastEventId, event.source, event.ports) == ("", "", None, ())
    assert isinstance(event, Event)


def test_message_event_members() -> None:
    """Every MessageEventInit member is read back, the same from dict or keywords."""
    data: Any = bytearray(b"\x00\x01")  # (Any value, as the IDL's any; typed for WebSockets.)
    source = object()
    from_dict = MessageEvent(
        "message",
        {
            "data": data,
            "origin": "wss://example.com",
            "lastEventId": "7",
            "source": source,
            "ports": [1, 2],
            "cancelable": True,
        },
    )
    from_keywords = MessageEvent(
        "message",
        data=data,
        origin="wss://example.com",
        lastEventId="7",
        source=source,
        ports=[1, 2],
        cancelable=True,
    )
    for event in (from_dict, from_keywords):
        assert event.data is data
        assert event.origin == "wss://example.com"
        assert event.lastEventId == "7"
        assert event.source is source
        assert event.ports == (1, 2)
        assert event.cancelable is True


@pytest.mark.parametrize("attribute", ["data", "origin", "lastEventId", "source", "ports"])
def test_message_event_attributes_are_read_only(attribute: str) -> None:
    """MessageEvent's attributes are read-only."""
    with pytest.raises(AttributeError):
        setattr(MessageEvent("message", data="x"), attribute, "y")


def test_message_event_ports_cannot_be_mutated() -> None:
    """ports is an immutable tuple, not the list that was passed in."""
    ports = ["p"]
    event = MessageEvent("message", ports=ports)
    ports.append("q")
    assert event.ports == ("p",)
    assert isinstance(event.ports, tuple)


@pytest.mark.parametrize("ports", ["ab", b"ab", 5, object()])
def test_message_event_ports_must_be_a_sequence(ports: Any) -> None:
    """ports that is a string or not iterable raises TypeError."""
    with pytest.raises(TypeError):
        MessageEvent("message", {"ports": ports})


@pytest.mark.parametrize("member", ["origin", "lastEventId"])
def test_message_event_string_members_must_be_str(member: str) -> None:
    """origin and lastEventId must be str."""
    with pytest.raises(TypeError):
        MessageEvent("message", {member: 1})  # type: ignore[arg-type]


def test_message_event_origin_is_a_usv_string() -> None:
    """origin (a USVString) gets U+FFFD for lone surrogates; a pair becomes its character."""
    event = MessageEvent("message", origin="a\ud800b\udc00")
    assert event.origin == "a\ufffdb\ufffd"
    assert MessageEvent("message", origin="\ud83d\ude00").origin == "\U0001f600"
    # lastEventId is a DOMString: kept as is.
    assert MessageEvent("message", lastEventId="\ud800").lastEventId == "\ud800"


def test_message_event_repr_shows_data() -> None:
    """repr() shows the data (shortened) and the origin."""
    text = repr(MessageEvent("message", data="x" * 100, origin="ws://h"))
    assert text.startswith("<MessageEvent type='message' data='xxx")
    assert "..." in text
    assert "origin='ws://h'" in text


def test_close_event_defaults() -> None:
    """CloseEvent defaults: wasClean False, code 0, reason ""."""
    event = CloseEvent("close")
    assert (event.wasClean, event.code, event.reason) == (False, 0, "")
    assert isinstance(event, Event)


def test_close_event_members() -> None:
    """Every CloseEventInit member is read back, the same from dict or keywords."""
    a = CloseEvent("close", {"wasClean": True, "code": 1000, "reason": "bye"})
    b = CloseEvent("close", wasClean=True, code=1000, reason="bye")
    for event in (a, b):
        assert (event.wasClean, event.code, event.reason) == (True, 1000, "bye")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (1000, 1000),
        (65535, 65535),
        (65536, 0),
        (70000, 4464),
        (-1, 65535),
        (1000.9, 1000),
        (-0.5, 0),
        (-1.5, 65535),
        (math.nan, 0),
        (math.inf, 0),
        (-math.inf, 0),
    ],
)
def test_close_event_code_is_an_unsigned_short(code: Any, expected: int) -> None:
    """code converts as Web IDL unsigned short: truncated, modulo 2**16, NaN/inf to 0."""
    assert CloseEvent("close", {"code": code}).code == expected


@pytest.mark.parametrize("code", ["1000", True, b"1", [1000]])
def test_close_event_code_wrong_type(code: Any) -> None:
    """A code that is not an int or float (bool included) raises TypeError."""
    with pytest.raises(TypeError):
        CloseEvent("close", {"code": code})


def test_close_event_reason() -> None:
    """reason must be str, and is a USVString: lone surrogates become U+FFFD."""
    with pytest.raises(TypeError):
        CloseEvent("close", {"reason": b"bye"})  # type: ignore[arg-type]
    assert CloseEvent("close", reason="\udfff!").reason == "\ufffd!"


@pytest.mark.parametrize("attribute", ["wasClean", "code", "reason"])
def test_close_event_attributes_are_read_only(attribute: str) -> None:
    """CloseEvent's attributes are read-only."""
    with pytest.raises(AttributeError):
        setattr(CloseEvent("close"), attribute, 1)


def test_close_event_repr() -> None:
    """repr() shows the code, the reason and wasClean."""
    event = CloseEvent("close", code=1006)
    assert repr(event) == "<CloseEvent type='close' code=1006 reason='' wasClean=False>"


# --- EventTarget: adding, removing, dispatching ------------------------------------------------


def test_dispatch_sets_targets_and_phase() -> None:
    """During dispatch target and currentTarget are set and the phase is AT_TARGET; then reset."""
    target = EventTarget()
    event = Event("foo")
    seen: list[tuple[Any, ...]] = []

    def listener(e: Event) -> None:
        seen.append((e is event, e.target, e.currentTarget, e.srcElement, e.eventPhase))
        seen.append(tuple(e.composedPath()))

    target.addEventListener("foo", listener)
    assert target.dispatchEvent(event) is True
    assert seen == [(True, target, target, target, Event.AT_TARGET), (target,)]
    assert event.target is target
    assert event.currentTarget is None
    assert event.eventPhase == Event.NONE
    assert event.composedPath() == []
    assert event.isTrusted is False


def test_listeners_run_in_order_of_addition() -> None:
    """Listeners for one type run synchronously, in the order they were added."""
    target = EventTarget()
    log: list[str] = []
    for name in "abc":
        target.addEventListener("foo", recorder(log, name))
    target.addEventListener("bar", recorder(log, "other type"))
    target.dispatchEvent(Event("foo"))
    assert log == ["a", "b", "c"]


def test_capture_listeners_run_first_at_target() -> None:
    """At the target, capture listeners run before the others, whatever the order added."""
    target = EventTarget()
    log: list[str] = []
    target.addEventListener("foo", recorder(log, "bubble 1"))
    target.addEventListener("foo", recorder(log, "capture 1"), True)
    target.addEventListener("foo", recorder(log, "bubble 2"), {"capture": False})
    target.addEventListener("foo", recorder(log, "capture 2"), {"capture": True})
    target.dispatchEvent(Event("foo", bubbles=True))
    assert log == ["capture 1", "capture 2", "bubble 1", "bubble 2"]


def test_dispatch_returns_false_when_canceled() -> None:
    """dispatchEvent returns False when a listener canceled a cancelable event."""
    target = EventTarget()
    target.addEventListener("foo", lambda e: e.preventDefault())
    assert target.dispatchEvent(Event("foo", cancelable=True)) is False
    assert target.dispatchEvent(Event("foo")) is True


def test_dispatch_with_no_listeners() -> None:
    """Dispatching to a target with no listeners returns True and resets the event."""
    event = Event("foo")
    assert EventTarget().dispatchEvent(event) is True
    assert event.eventPhase == Event.NONE


def test_duplicate_listeners_are_added_once() -> None:
    """The same (type, callback, capture) is not added twice; a different capture is."""
    target = EventTarget()
    log: list[str] = []
    listener = recorder(log, "x")
    target.addEventListener("foo", listener)
    target.addEventListener("foo", listener, False)
    target.addEventListener("foo", listener, {"once": True, "passive": True})
    target.addEventListener("foo", listener, True)
    target.dispatchEvent(Event("foo"))
    assert log == ["x", "x"]
    # The first registration won: it was not once, so it is still there.
    target.dispatchEvent(Event("foo"))
    assert log == ["x"] * 4


def test_bound_methods_match_by_equality() -> None:
    """obj.method, a new object on each access, is one listener and can be removed."""

    class Handler:
        def __init__(self) -> None:
            self.count = 0

        def on_foo(self, _event: Event) -> None:
            self.count += 1

    target = EventTarget()
    handler = Handler()
    target.addEventListener("foo", handler.on_foo)
    target.addEventListener("foo", handler.on_foo)
    target.dispatchEvent(Event("foo"))
    assert handler.count == 1
    target.removeEventListener("foo", handler.on_foo)
    target.dispatchEvent(Event("foo"))
    assert handler.count == 1


def test_remove_event_listener_matches_capture() -> None:
    """removeEventListener removes only the registration with the same capture flag."""
    target = EventTarget()
    log: list[str] = []
    listener = recorder(log, "x")
    target.addEventListener("foo", listener, True)
    target.removeEventListener("foo", listener)
    target.removeEventListener("foo", listener, {"capture": False})
    target.dispatchEvent(Event("foo"))
    assert log == ["x"]
    target.removeEventListener("foo", listener, {"capture": True, "once": True})
    target.dispatchEvent(Event("foo"))
    assert log == ["x"]


def test_remove_unknown_listener_is_a_no_op() -> None:
    """Removing a listener that was never added, or of another type, does nothing."""
    target = EventTarget()
    log: list[str] = []
    listener = recorder(log, "x")
    target.addEventListener("foo", listener)
    target.removeEventListener("bar", listener)
    target.removeEventListener("foo", recorder(log, "other"))
    target.removeEventListener("foo", None)
    target.dispatchEvent(Event("foo"))
    assert log == ["x"]


def test_none_callback_is_ignored() -> None:
    """addEventListener with a None callback does nothing and raises nothing."""
    target = EventTarget()
    target.addEventListener("foo", None)
    assert target.dispatchEvent(Event("foo")) is True


@pytest.mark.parametrize("method", ["addEventListener", "removeEventListener"])
@pytest.mark.parametrize("bad_type", [None, 1, b"foo"])
def test_listener_type_must_be_str(method: str, bad_type: Any) -> None:
    """A non-str event type raises TypeError."""
    with pytest.raises(TypeError):
        getattr(EventTarget(), method)(bad_type, lambda e: None)


@pytest.mark.parametrize("method", ["addEventListener", "removeEventListener"])
@pytest.mark.parametrize("callback", [1, "handler", b"x", object()])
def test_listener_must_be_callable_or_have_handle_event(method: str, callback: Any) -> None:
    """A listener that is neither callable nor has handleEvent raises TypeError."""
    with pytest.raises(TypeError):
        getattr(EventTarget(), method)("foo", callback)


@pytest.mark.parametrize("method", ["addEventListener", "removeEventListener"])
@pytest.mark.parametrize("options", ["capture", 1, [True]])
def test_options_must_be_bool_or_mapping(method: str, options: Any) -> None:
    """options that is neither a bool, a mapping nor None raises TypeError."""
    with pytest.raises(TypeError):
        getattr(EventTarget(), method)("foo", lambda e: None, options)


def test_options_validated_even_for_none_callback() -> None:
    """Arguments are converted before a None callback is ignored, as in Web IDL."""
    bad: Any = "capture"
    with pytest.raises(TypeError):
        EventTarget().addEventListener("foo", None, bad)


def test_listener_removed_during_dispatch_does_not_run() -> None:
    """A listener removed by an earlier listener of the same dispatch is not called."""
    target = EventTarget()
    log: list[str] = []
    second = recorder(log, "second")

    def first(_event: Event) -> None:
        log.append("first")
        target.removeEventListener("foo", second)

    target.addEventListener("foo", first)
    target.addEventListener("foo", second)
    target.dispatchEvent(Event("foo"))
    assert log == ["first"]


def test_listener_removed_and_re_added_during_dispatch_does_not_run() -> None:
    """A pending listener removed and re-added in a dispatch waits for the next one."""
    target = EventTarget()
    log: list[str] = []
    second = recorder(log, "second")

    def first(_event: Event) -> None:
        log.append("first")
        if len(log) == 1:
            target.removeEventListener("foo", second)
            target.addEventListener("foo", second)

    target.addEventListener("foo", first)
    target.addEventListener("foo", second)
    target.dispatchEvent(Event("foo"))
    assert log == ["first"]
    target.dispatchEvent(Event("foo"))
    assert log == ["first", "first", "second"]


def test_listener_added_during_dispatch_runs_next_time() -> None:
    """A listener added during a dispatch does not run in it, and runs in the next one."""
    target = EventTarget()
    log: list[str] = []

    def first(_event: Event) -> None:
        log.append("first")
        target.addEventListener("foo", recorder(log, "added"))

    target.addEventListener("foo", first)
    target.dispatchEvent(Event("foo"))
    assert log == ["first"]
    target.dispatchEvent(Event("foo"))
    assert log[1:] == ["first", "added"]


def test_bubble_listener_added_by_capture_listener_runs() -> None:
    """The list is copied per pass: a capture listener's new bubble listener runs."""
    target = EventTarget()
    log: list[str] = []

    def capture(_event: Event) -> None:
        log.append("capture")
        target.addEventListener("foo", recorder(log, "added bubble"))
        target.addEventListener("foo", recorder(log, "added capture"), True)

    target.addEventListener("foo", capture, True)
    target.dispatchEvent(Event("foo"))
    assert log == ["capture", "added bubble"]


def test_once_listener_runs_once() -> None:
    """A once listener runs on the first dispatch only."""
    target = EventTarget()
    log: list[str] = []
    target.addEventListener("foo", recorder(log, "once"), {"once": True})
    target.dispatchEvent(Event("foo"))
    target.dispatchEvent(Event("foo"))
    assert log == ["once"]


def test_once_listener_is_removed_before_it_runs() -> None:
    """A once listener is removed before it is called: a nested dispatch skips it."""
    target = EventTarget()
    log: list[str] = []

    def listener(event: Event) -> None:
        log.append(event.type)
        if event.type == "foo":
            target.dispatchEvent(Event("foo"))  # nested: the listener is already removed
            target.addEventListener("foo", listener, {"once": True})

    target.addEventListener("foo", listener, {"once": True})
    target.dispatchEvent(Event("foo"))
    assert log == ["foo"]
    target.dispatchEvent(Event("foo"))
    assert log == ["foo", "foo"]


def test_once_listener_that_raises_is_still_removed(caplog: pytest.LogCaptureFixture) -> None:
    """A once listener that raises has been removed all the same."""
    target = EventTarget()
    calls: list[int] = []

    def listener(_event: Event) -> None:
        calls.append(1)
        raise ValueError("once")

    target.addEventListener("foo", listener, {"once": True})
    with caplog.at_level(logging.ERROR, logger="wsapi"):
        target.dispatchEvent(Event("foo"))
        target.dispatchEvent(Event("foo"))
    assert calls == [1]


def test_passive_listener_cannot_cancel() -> None:
    """preventDefault() and returnValue=False are ignored in a passive listener only."""
    target = EventTarget()
    states: list[bool] = []

    def passive(event: Event) -> None:
        event.preventDefault()
        event.returnValue = False
        states.append(event.defaultPrevented)

    def active(event: Event) -> None:
        event.preventDefault()
        states.append(event.defaultPrevented)

    target.addEventListener("foo", passive, {"passive": True})
    assert target.dispatchEvent(Event("foo", cancelable=True)) is True
    target.addEventListener("foo", active)
    assert target.dispatchEvent(Event("foo", cancelable=True)) is False
    assert states == [False, False, True]


def test_stop_immediate_propagation_stops_the_rest() -> None:
    """stopImmediatePropagation() skips the remaining listeners, of both passes."""
    target = EventTarget()
    log: list[str] = []

    def stopper(event: Event) -> None:
        log.append("stopper")
        event.stopImmediatePropagation()

    target.addEventListener("foo", recorder(log, "capture before"), True)
    target.addEventListener("foo", stopper, True)
    target.addEventListener("foo", recorder(log, "capture after"), True)
    target.addEventListener("foo", recorder(log, "bubble"))
    target.dispatchEvent(Event("foo"))
    assert log == ["capture before", "stopper"]


def test_stop_propagation_in_capture_pass_skips_bubble_pass() -> None:
    """stopPropagation() lets the current pass finish but skips the non-capture pass."""
    target = EventTarget()
    log: list[str] = []

    def stopper(event: Event) -> None:
        log.append("stopper")
        event.stopPropagation()

    target.addEventListener("foo", stopper, True)
    target.addEventListener("foo", recorder(log, "capture after"), True)
    target.addEventListener("foo", recorder(log, "bubble"))
    target.dispatchEvent(Event("foo"))
    assert log == ["stopper", "capture after"]


def test_stop_propagation_before_dispatch() -> None:
    """An event stopped before dispatch reaches no listener; the flag is cleared after."""
    target = EventTarget()
    log: list[str] = []
    target.addEventListener("foo", recorder(log, "x"))
    event = Event("foo")
    event.stopPropagation()
    assert target.dispatchEvent(event) is True
    assert log == []
    assert event.cancelBubble is False
    assert event.target is target


def test_prevent_default_before_dispatch() -> None:
    """A cancelable event canceled before dispatch makes dispatchEvent return False."""
    event = Event("foo", cancelable=True)
    event.preventDefault()
    assert EventTarget().dispatchEvent(event) is False
    assert event.defaultPrevented is True


def test_flags_reset_after_dispatch() -> None:
    """After dispatch the propagation flags are cleared, defaultPrevented is kept."""
    target = EventTarget()

    def listener(event: Event) -> None:
        event.preventDefault()
        event.stopImmediatePropagation()

    target.addEventListener("foo", listener)
    event = Event("foo", cancelable=True)
    target.dispatchEvent(event)
    assert (event.cancelBubble, event.defaultPrevented) == (False, True)


def test_event_can_be_dispatched_again_after_dispatch() -> None:
    """An event whose dispatch finished can be dispatched again, to another target."""
    first, second = EventTarget(), EventTarget()
    targets: list[Any] = []
    first.addEventListener("foo", lambda e: targets.append(e.currentTarget))
    second.addEventListener("foo", lambda e: targets.append(e.currentTarget))
    event = Event("foo")
    first.dispatchEvent(event)
    second.dispatchEvent(event)
    assert targets == [first, second]
    assert event.target is second


def test_redispatch_during_dispatch_is_invalid_state() -> None:
    """Dispatching an event that is being dispatched raises InvalidStateError (code 11)."""
    target, other = EventTarget(), EventTarget()
    errors: list[DOMException] = []

    def listener(event: Event) -> None:
        for where in (target, other):
            with pytest.raises(DOMException) as info:
                where.dispatchEvent(event)
            errors.append(info.value)

    target.addEventListener("foo", listener)
    target.dispatchEvent(Event("foo"))
    assert [(e.name, e.code) for e in errors] == [("InvalidStateError", 11)] * 2


def test_dispatch_uninitialized_event_is_invalid_state() -> None:
    """An event whose initialization never ran raises InvalidStateError."""
    event = Event.__new__(Event)
    with pytest.raises(DOMException) as info:
        EventTarget().dispatchEvent(event)
    assert info.value.name == "InvalidStateError"


@pytest.mark.parametrize("not_event", [None, "foo", object()])
def test_dispatch_requires_an_event(not_event: Any) -> None:
    """dispatchEvent with something that is not an Event raises TypeError."""
    with pytest.raises(TypeError):
        EventTarget().dispatchEvent(not_event)


def test_user_defined_event_subclass() -> None:
    """An Event subclass defined by a program (with a __dict__) dispatches normally."""

    class CustomEvent(Event):
        def __init__(self, type: str, detail: object = None) -> None:
            super().__init__(type)
            self.detail = detail

    target = EventTarget()
    details: list[object] = []
    target.addEventListener("custom", lambda e: details.append(e.detail))
    target.dispatchEvent(CustomEvent("custom", detail=42))
    assert details == [42]


def test_event_target_subclass_without_slots() -> None:
    """An EventTarget subclass may keep its own attributes in a __dict__."""

    class Widget(EventTarget):
        def __init__(self) -> None:
            super().__init__()
            self.name = "w"

    widget = Widget()
    names: list[str] = []
    widget.addEventListener("foo", lambda e: names.append(e.currentTarget.name))
    widget.dispatchEvent(Event("foo"))
    assert names == ["w"]


# --- handleEvent objects ---------------------------------------------------------------------


def test_handle_event_object() -> None:
    """An object with handleEvent is called through it, with the event."""

    class Listener:
        def __init__(self) -> None:
            self.events: list[Event] = []

        def handleEvent(self, event: Event) -> None:
            self.events.append(event)

    target = EventTarget()
    listener = Listener()
    target.addEventListener("foo", listener)
    target.addEventListener("foo", listener)
    event = Event("foo")
    target.dispatchEvent(event)
    assert listener.events == [event]
    target.removeEventListener("foo", listener)
    target.dispatchEvent(Event("foo"))
    assert listener.events == [event]


def test_handle_event_is_looked_up_at_dispatch_time() -> None:
    """handleEvent is read at every dispatch, not when the listener is added."""

    class Listener:
        def __init__(self) -> None:
            self.reads = 0
            self.log: list[str] = []
            self.current = lambda _e: self.log.append("first")

        @property
        def handleEvent(self) -> Any:
            self.reads += 1
            return self.current

    target = EventTarget()
    listener = Listener()
    target.addEventListener("foo", listener)
    assert listener.reads == 0
    target.dispatchEvent(Event("foo"))
    listener.current = lambda _e: listener.log.append("second")
    target.dispatchEvent(Event("foo"))
    assert listener.log == ["first", "second"]
    assert listener.reads == 2


def test_handle_event_replaced_on_instance() -> None:
    """Replacing handleEvent on the instance between dispatches takes effect."""

    class Listener:
        def handleEvent(self, _event: Event) -> None:
            log.append("method")

    log: list[str] = []
    target = EventTarget()
    listener = Listener()
    target.addEventListener("foo", listener)
    target.dispatchEvent(Event("foo"))

    def replacement(_event: Event) -> None:
        log.append("replaced")

    listener.handleEvent = replacement  # type: ignore[method-assign]
    target.dispatchEvent(Event("foo"))
    assert log == ["method", "replaced"]


def test_callable_object_is_called_not_its_handle_event() -> None:
    """A callable listener is called directly even if it has handleEvent (Web IDL)."""

    class Both:
        def __init__(self) -> None:
            self.log: list[str] = []

        def __call__(self, _event: Event) -> None:
            self.log.append("call")

        def handleEvent(self, _event: Event) -> None:
            self.log.append("handleEvent")

    target = EventTarget()
    both = Both()
    target.addEventListener("foo", both)
    target.dispatchEvent(Event("foo"))
    assert both.log == ["call"]


def test_non_callable_handle_event_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    """A handleEvent that is not callable is reported as a TypeError; the rest run."""

    class Broken:
        handleEvent = 1

    target = EventTarget()
    log: list[str] = []
    broken: Any = Broken()
    target.addEventListener("foo", broken)
    target.addEventListener("foo", recorder(log, "after"))
    with caplog.at_level(logging.ERROR, logger="wsapi"):
        target.dispatchEvent(Event("foo"))
    assert log == ["after"]
    [record] = caplog.records
    assert record.exc_info is not None
    assert record.exc_info[0] is TypeError


def test_handle_event_getter_error_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    """An error raised while reading handleEvent is reported; the rest run."""

    class Raising:
        @property
        def handleEvent(self) -> Any:
            raise LookupError("getter")

    target = EventTarget()
    log: list[str] = []
    target.addEventListener("foo", Raising())
    target.addEventListener("foo", recorder(log, "after"))
    with caplog.at_level(logging.ERROR, logger="wsapi"):
        target.dispatchEvent(Event("foo"))
    assert log == ["after"]
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [LookupError]


def test_handle_event_removed_after_adding_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    """An object whose handleEvent disappears after it was added is reported at dispatch."""

    class Listener:
        pass

    listener = Listener()
    listener.handleEvent = lambda _e: None  # type: ignore[attr-defined]
    target = EventTarget()
    target.addEventListener("foo", listener)  # type: ignore[arg-type]
    del listener.handleEvent  # type: ignore[attr-defined]
    with caplog.at_level(logging.ERROR, logger="wsapi"):
        target.dispatchEvent(Event("foo"))
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [AttributeError]


# --- AbortSignal -------------------------------------------------------------------------------


def test_signal_abort_removes_listener() -> None:
    """Aborting the signal given in options removes the listener."""
    target = EventTarget()
    signal = FakeAbortSignal()
    log: list[str] = []
    target.addEventListener("foo", recorder(log, "x"), {"signal": signal})
    target.dispatchEvent(Event("foo"))
    signal.abort()
    target.dispatchEvent(Event("foo"))
    assert log == ["x"]


def test_signal_abort_during_dispatch() -> None:
    """A listener aborted by an earlier listener of the same dispatch does not run."""
    target = EventTarget()
    signal = FakeAbortSignal()
    log: list[str] = []
    target.addEventListener("foo", lambda _e: signal.abort())
    target.addEventListener("foo", recorder(log, "x"), {"signal": signal})
    target.dispatchEvent(Event("foo"))
    assert log == []


def test_already_aborted_signal_adds_nothing() -> None:
    """A listener with an already aborted signal is not added."""
    target = EventTarget()
    signal = FakeAbortSignal()
    signal.abort()
    log: list[str] = []
    target.addEventListener("foo", recorder(log, "x"), {"signal": signal})
    target.dispatchEvent(Event("foo"))
    assert log == []


def test_signal_for_duplicate_does_not_remove_original() -> None:
    """A duplicate registration's signal does not remove the original registration."""
    target = EventTarget()
    signal = FakeAbortSignal()
    log: list[str] = []
    listener = recorder(log, "x")
    target.addEventListener("foo", listener)
    target.addEventListener("foo", listener, {"signal": signal})
    signal.abort()
    target.dispatchEvent(Event("foo"))
    assert log == ["x"]


def test_signal_does_not_keep_target_alive() -> None:
    """A pending signal holds its targets weakly: the target is collected while the signal
    lives, and aborting the signal afterwards does nothing."""
    signal = FakeAbortSignal()
    target = EventTarget()
    target.addEventListener("foo", lambda _e: None, {"signal": signal})
    collected = weakref.ref(target)
    del target
    gc.collect()
    assert collected() is None, "the signal keeps its target alive"
    signal.abort()  # the abort steps find no target and do nothing
    assert signal.aborted


@pytest.mark.parametrize("signal", [True, "signal", object()])
def test_signal_must_look_like_an_abort_signal(signal: Any) -> None:
    """A signal without aborted and addEventListener raises TypeError."""
    with pytest.raises(TypeError):
        EventTarget().addEventListener("foo", lambda _e: None, {"signal": signal})


# --- Trusted events ----------------------------------------------------------------------------


def test_fire_an_event_is_trusted() -> None:
    """fire_an_event creates the event with the given class and members, trusted."""
    target = EventTarget()
    seen: list[MessageEvent] = []
    target.addEventListener("message", seen.append)
    result = fire_an_event(target, "message", MessageEvent, data="hi", origin="ws://h")
    assert result is True
    [event] = seen
    assert type(event) is MessageEvent
    assert (event.type, event.data, event.origin, event.isTrusted) == (
        "message",
        "hi",
        "ws://h",
        True,
    )


def test_fire_an_event_returns_canceled_state() -> None:
    """fire_an_event returns False when a listener canceled the cancelable event."""
    target = EventTarget()
    target.addEventListener("foo", lambda e: e.preventDefault())
    assert fire_an_event(target, "foo", Event, cancelable=True) is False
    assert fire_an_event(target, "foo") is True


def test_redispatched_trusted_event_is_untrusted() -> None:
    """A trusted event passed to dispatchEvent becomes untrusted."""
    target = EventTarget()
    seen: list[Event] = []
    target.addEventListener("foo", seen.append)
    fire_an_event(target, "foo")
    assert seen[0].isTrusted is True
    target.dispatchEvent(seen[0])
    assert seen[1].isTrusted is False


def test_script_events_are_untrusted() -> None:
    """Events made by the constructor and dispatched are untrusted during dispatch."""
    target = EventTarget()
    trusted: list[bool] = []
    target.addEventListener("close", lambda e: trusted.append(e.isTrusted))
    target.dispatchEvent(CloseEvent("close", code=1000))
    assert trusted == [False]


# --- Reporting listener errors -----------------------------------------------------------------


def test_raising_listener_is_logged_without_loop(caplog: pytest.LogCaptureFixture) -> None:
    """With no loop a listener's exception is logged to "wsapi"; the rest still run."""
    target = EventTarget()
    log: list[str] = []

    def bad(_event: Event) -> None:
        raise ValueError("listener failed")

    target.addEventListener("foo", recorder(log, "before"))
    target.addEventListener("foo", bad)
    target.addEventListener("foo", recorder(log, "after"))
    with caplog.at_level(logging.ERROR, logger="wsapi"):
        assert target.dispatchEvent(Event("foo")) is True
    assert log == ["before", "after"]
    [record] = caplog.records
    assert record.name == "wsapi"
    assert record.levelno == logging.ERROR
    assert "'foo'" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)


async def test_raising_listener_is_reported_to_loop() -> None:
    """A listener's exception goes to the loop's exception handler; the rest still run."""
    reports = capture_reports()
    target = EventTarget()
    log: list[str] = []
    error = ValueError("listener failed")

    def bad(_event: Event) -> None:
        raise error

    target.addEventListener("foo", bad)
    target.addEventListener("foo", recorder(log, "after"))
    event = Event("foo")
    target.dispatchEvent(event)
    assert log == ["after"]
    [report] = reports
    assert report["exception"] is error
    assert report["event"] is event
    assert report["target"] is target
    assert report["listener"] is bad
    assert "'foo'" in report["message"]


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_exit_exceptions_propagate(exc_type: type[BaseException]) -> None:
    """KeyboardInterrupt and SystemExit propagate, and the event is left re-dispatchable."""
    target = EventTarget()

    def interrupt(_event: Event) -> None:
        raise exc_type

    target.addEventListener("foo", interrupt, {"passive": True})
    event = Event("foo")
    with pytest.raises(exc_type):
        target.dispatchEvent(event)
    assert (event.eventPhase, event.currentTarget) == (Event.NONE, None)
    target.removeEventListener("foo", interrupt)
    assert target.dispatchEvent(event) is True


# --- async def listeners -----------------------------------------------------------------------


async def test_async_listener_runs_as_task() -> None:
    """An async def listener runs as a task after dispatch returns, with the event."""
    target = EventTarget()
    done = asyncio.Event()
    log: list[str] = []

    async def listener(event: Event) -> None:
        log.append(f"start {event.type}")
        await asyncio.sleep(0)
        log.append("end")
        done.set()

    target.addEventListener("foo", listener)
    target.addEventListener("foo", recorder(log, "sync"))
    target.dispatchEvent(Event("foo"))
    assert log == ["sync"]
    await asyncio.wait_for(done.wait(), 5)
    assert log == ["sync", "start foo", "end"]


async def test_async_listener_task_survives_gc() -> None:
    """The listener's task is strongly referenced until it finishes."""
    target = EventTarget()
    done = asyncio.Event()

    async def listener(_event: Event) -> None:
        await asyncio.sleep(0.01)
        done.set()

    target.addEventListener("foo", listener)
    target.dispatchEvent(Event("foo"))
    gc.collect()
    await asyncio.wait_for(done.wait(), 5)


async def test_async_listener_failure_is_reported() -> None:
    """An exception in an async def listener's task goes to the loop's exception handler."""
    reports = capture_reports()
    target = EventTarget()
    error = RuntimeError("async failure")

    async def listener(_event: Event) -> None:
        await asyncio.sleep(0)
        raise error

    target.addEventListener("foo", listener)
    event = Event("foo")
    target.dispatchEvent(event)
    for _ in range(10):
        if reports:
            break
        await asyncio.sleep(0)
    [report] = reports
    assert report["exception"] is error
    assert report["event"] is event
    assert isinstance(report["task"], asyncio.Task)
    assert "async" in report["message"]


async def test_async_listener_cancellation_is_not_reported() -> None:
    """A listener task that is cancelled is not reported as a failure."""
    reports = capture_reports()
    target = EventTarget()
    started = asyncio.Event()
    tasks: list[asyncio.Task[Any] | None] = []

    async def listener(_event: Event) -> None:
        tasks.append(asyncio.current_task())
        started.set()
        await asyncio.sleep(3600)

    target.addEventListener("foo", listener)
    target.dispatchEvent(Event("foo"))
    await started.wait()
    [task] = tasks
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert reports == []


async def test_async_handle_event_method() -> None:
    """An object whose handleEvent is async def is scheduled like an async function."""
    done = asyncio.Event()

    class Listener:
        async def handleEvent(self, _event: Event) -> None:
            await asyncio.sleep(0)
            done.set()

    target = EventTarget()
    target.addEventListener("foo", Listener())
    target.dispatchEvent(Event("foo"))
    await asyncio.wait_for(done.wait(), 5)


def test_async_listener_without_loop_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    """With no loop an async listener's coroutine is closed and an error is logged."""
    target = EventTarget()
    ran: list[bool] = []

    async def listener(_event: Event) -> None:
        ran.append(True)

    target.addEventListener("foo", listener)
    with caplog.at_level(logging.ERROR, logger="wsapi"):
        target.dispatchEvent(Event("foo"))
    gc.collect()  # a coroutine left unclosed would warn here (warnings are errors)
    assert ran == []
    [record] = caplog.records
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError
    assert "no asyncio event loop" in str(record.exc_info[1])


# --- on* event handler attributes --------------------------------------------------------------


def test_event_handler_defaults_to_none() -> None:
    """An event handler attribute is None until set."""
    assert Target().onfoo is None


def test_event_handler_is_called() -> None:
    """A handler set on the attribute is called with the event, and read back."""
    target = Target()
    seen: list[Event] = []
    handler = seen.append
    target.onfoo = handler
    assert target.onfoo is handler
    event = Event("foo")
    target.dispatchEvent(event)
    assert seen == [event]


@pytest.mark.parametrize("value", [5, "handler", object()])
def test_non_callable_handler_is_stored_as_none(value: Any) -> None:
    """A non-callable value is stored as None and removes a previous handler."""
    target = Target()
    log: list[str] = []
    target.onfoo = recorder(log, "handler")
    target.onfoo = value
    assert target.onfoo is None
    target.dispatchEvent(Event("foo"))
    assert log == []


def test_handle_event_object_is_not_a_handler() -> None:
    """An object with only handleEvent is not a valid on* handler: stored as None."""

    class Listener:
        def handleEvent(self, _event: Event) -> None:
            raise AssertionError("not called")

    target = Target()
    untyped: Any = Listener()
    target.onfoo = untyped
    assert target.onfoo is None


def test_handler_keeps_first_position() -> None:
    """A handler keeps its first position when replaced; None then a new one goes last."""
    target = Target()
    log: list[str] = []
    target.addEventListener("foo", recorder(log, "A"))
    target.onfoo = recorder(log, "h1")
    target.addEventListener("foo", recorder(log, "B"))
    target.dispatchEvent(Event("foo"))
    assert log == ["A", "h1", "B"]
    log.clear()
    target.onfoo = recorder(log, "h2")
    target.dispatchEvent(Event("foo"))
    assert log == ["A", "h2", "B"]
    log.clear()
    target.onfoo = None
    target.dispatchEvent(Event("foo"))
    assert log == ["A", "B"]
    log.clear()
    target.onfoo = recorder(log, "h3")
    target.dispatchEvent(Event("foo"))
    assert log == ["A", "B", "h3"]


def test_handler_replaced_during_dispatch_runs_new_value() -> None:
    """Replacing the handler before its turn in a dispatch runs the new value."""
    target = Target()
    log: list[str] = []
    target.addEventListener("foo", lambda _e: setattr(target, "onfoo", recorder(log, "new")))
    target.onfoo = recorder(log, "old")
    target.dispatchEvent(Event("foo"))
    assert log == ["new"]


def test_handler_set_during_dispatch_waits() -> None:
    """A handler set for the first time during a dispatch runs from the next one."""
    target = Target()
    log: list[str] = []
    target.addEventListener("foo", lambda _e: setattr(target, "onfoo", recorder(log, "h")))
    target.dispatchEvent(Event("foo"))
    assert log == []
    target.dispatchEvent(Event("foo"))
    assert log == ["h"]


def test_handler_cleared_during_dispatch_does_not_run() -> None:
    """Setting the handler to None before its turn in a dispatch skips it."""
    target = Target()
    log: list[str] = []
    target.addEventListener("foo", lambda _e: setattr(target, "onfoo", None))
    target.onfoo = recorder(log, "h")
    target.dispatchEvent(Event("foo"))
    assert log == []


def test_remove_event_listener_does_not_remove_handler() -> None:
    """removeEventListener with the handler's function leaves the handler in place."""
    target = Target()
    log: list[str] = []
    handler = recorder(log, "h")
    target.onfoo = handler
    target.removeEventListener("foo", handler)
    target.dispatchEvent(Event("foo"))
    assert log == ["h"]


def test_same_function_as_handler_and_listener_runs_twice() -> None:
    """A function used both as handler and listener is two registrations."""
    target = Target()
    log: list[str] = []
    handler = recorder(log, "x")
    target.onfoo = handler
    target.addEventListener("foo", handler)
    target.dispatchEvent(Event("foo"))
    assert log == ["x", "x"]


def test_handler_returning_false_cancels() -> None:
    """An on* handler (not a listener) returning False cancels a cancelable event."""
    target = Target()
    target.onfoo = lambda _e: False
    assert target.dispatchEvent(Event("foo", cancelable=True)) is False
    assert target.dispatchEvent(Event("foo")) is True
    target.onfoo = lambda _e: 0  # falsy is not false
    assert target.dispatchEvent(Event("foo", cancelable=True)) is True
    target.onfoo = None
    target.addEventListener("foo", lambda _e: False)
    assert target.dispatchEvent(Event("foo", cancelable=True)) is True


def test_handler_error_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    """A handler's exception is reported and the listeners after it run."""
    target = Target()
    log: list[str] = []

    def bad(_event: Event) -> None:
        raise ValueError("handler")

    target.onfoo = bad
    target.addEventListener("foo", recorder(log, "after"))
    with caplog.at_level(logging.ERROR, logger="wsapi"):
        target.dispatchEvent(Event("foo"))
    assert log == ["after"]
    [record] = caplog.records
    assert "onfoo" in record.getMessage()


async def test_async_handler_runs_as_task() -> None:
    """An async def handler is scheduled as a task, like an async listener."""
    target = Target()
    got: list[Any] = []
    done = asyncio.Event()

    async def onmessage(event: MessageEvent) -> None:
        await asyncio.sleep(0)
        got.append(event.data)
        done.set()

    target.onmessage = onmessage
    fire_an_event(target, "message", MessageEvent, data="hello")
    await asyncio.wait_for(done.wait(), 5)
    assert got == ["hello"]


def test_event_handlers_are_per_instance() -> None:
    """Each target has its own handlers."""
    a, b = Target(), Target()
    log: list[str] = []
    a.onfoo = recorder(log, "a")
    assert b.onfoo is None
    b.dispatchEvent(Event("foo"))
    a.dispatchEvent(Event("foo"))
    assert log == ["a"]


def test_event_handler_on_the_class() -> None:
    """On the class the attribute is the descriptor, with its event type."""
    assert isinstance(Target.onmessage, EventHandler)
    assert Target.onmessage.type == "message"
    assert repr(Target.onfoo) == "EventHandler('foo')"


def test_handlers_for_different_types_are_independent() -> None:
    """Handlers for two event types run only for their own type."""
    target = Target()
    log: list[str] = []
    target.onfoo = recorder(log, "foo")
    target.onmessage = recorder(log, "message")
    target.dispatchEvent(MessageEvent("message"))
    assert log == ["message"]


# --- Attributes named on* that are not event handlers ------------------------------------------


@pytest.mark.parametrize("name", ["onfo", "on_foo", "onmesage", "onMessage", "on"])
def test_misspelt_handler_is_refused(name: str) -> None:
    """Setting an on* name the class does not declare raises AttributeError naming the
    handlers there are; nothing is stored."""
    target = Target()
    with pytest.raises(AttributeError) as info:
        setattr(target, name, lambda _event: None)
    message = str(info.value)
    assert f"has no event handler {name!r}" in message
    assert "(its event handlers: onfoo, onmessage)" in message
    assert (info.value.name, info.value.obj) == (name, target)
    assert name not in vars(target)


def test_handler_and_other_attributes_still_set() -> None:
    """The declared handlers, and attributes of a script's own not named on*, are set as
    before."""
    target = Target()
    log: list[str] = []
    target.onfoo = recorder(log, "foo")
    target.label = "mine"  # type: ignore[attr-defined]
    target.o = 1  # type: ignore[attr-defined]
    assert vars(target) == {"label": "mine", "o": 1}
    target.dispatchEvent(Event("foo"))
    assert log == ["foo"]


def test_on_name_of_a_method_is_refused() -> None:
    """An on* method is not a handler: assigning over it is refused; an on* property with a
    setter (a subclass's own) takes the assignment."""

    class Widget(EventTarget):
        def __init__(self) -> None:
            super().__init__()
            self._ready = False

        def on_thing(self) -> None:
            pass

        @property
        def onready(self) -> bool:
            return self._ready

        @onready.setter
        def onready(self, value: bool) -> None:
            self._ready = value

    widget = Widget()
    widget.onready = True
    assert widget.onready
    with pytest.raises(AttributeError, match=r"its event handlers: none"):
        widget.on_thing = lambda: None  # type: ignore[method-assign]


async def test_websocket_misspelt_handler_is_refused() -> None:
    """ws.onmesage = f and ws.on_message = f raise AttributeError naming the WebSocket's
    four handlers; a script's own attribute is still allowed."""
    with socket.socket() as unused:  # A port nothing listens on: the connection fails.
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    ws = WebSocket(f"ws://127.0.0.1:{port}/", agent=UserAgent(proxy=None))
    for name in ("onmesage", "on_message", "onOpen"):
        with pytest.raises(AttributeError) as info:
            setattr(ws, name, lambda _event: None)
        assert f"WebSocket has no event handler {name!r}" in str(info.value)
        assert "(its event handlers: onclose, onerror, onmessage, onopen)" in str(info.value)
    ws.label = "mine"  # type: ignore[attr-defined]
    ws.onmessage = print
    assert ws.onmessage is print
    ws.close()
    await asyncio.wait_for(ws.closed, 10)


# --- The module's place in the layers ----------------------------------------------------------


def _imports(module: str) -> tuple[set[str], set[str]]:
    """The absolute (top-level names) and relative imports of ``src/wsapi/<module>``."""
    source = Path(__file__).resolve().parent.parent / "src" / "wsapi" / module
    tree = ast.parse(source.read_text())
    absolute: set[str] = set()
    relative: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            absolute.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                relative.add("." * node.level + (node.module or ""))
            else:
                absolute.add((node.module or "").split(".")[0])
    return absolute, relative


def test_events_module_imports_only_stdlib_errors_and_webidl() -> None:
    """events.py imports the standard library, .errors, .webidl (string conversions) and
    .cpython_calls (the clock, setattr) only: no network layer; and .webidl and
    .cpython_calls import nothing of the package."""
    absolute, relative = _imports("events.py")
    # .blob is imported only for the type checker (MessageEvent.data's type), and itself
    # imports nothing of the package but .webidl.
    assert relative == {".errors", ".webidl", ".blob", ".cpython_calls"}
    assert _imports("cpython_calls.py")[1] == set()
    assert "Blob" not in vars(sys.modules["wsapi.events"])
    assert _imports("blob.py")[1] == {".webidl"}
    # typing_extensions is imported only for the type checker (under TYPE_CHECKING).
    assert absolute <= sys.stdlib_module_names | {"__future__", "typing_extensions"}
    absolute, relative = _imports("webidl.py")
    assert relative == set()
    assert absolute <= {"__future__"}
