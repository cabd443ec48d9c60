"""DOM events: ``Event``, ``EventTarget``, and the WebSocket API's ``MessageEvent`` and
``CloseEvent``, with the semantics of the WHATWG DOM standard (section 2, "Events").

Theory of operation
-------------------

Rule 1: dispatch is the DOM's "dispatch" algorithm (DOM 2.9) for a target that has no parent,
which is every ``EventTarget`` here (the DOM's "get the parent" returns null for anything that
is not a node). The event path is therefore ``[target]``: listeners registered with
``capture`` run first, then the others, all with ``eventPhase == AT_TARGET``. Each of the two
passes works on a copy of the listener list taken when it starts (DOM "invoke" step 6), so a
listener added during a pass does not run in that pass, while a listener removed during
dispatch never runs afterwards (its ``removed`` flag is checked).

Rule 2: a listener never breaks the dispatch. Whatever it raises is reported (DOM "report the
exception") -- to the running asyncio loop's exception handler, or, with no loop running, to
the ``"wsapi"`` logger -- and the next listener runs. ``SystemExit`` and
``KeyboardInterrupt`` propagate, as they do from asyncio callbacks.

Rule 3: a listener that returns a coroutine (an ``async def`` listener) is treated like a
JavaScript listener that returns a promise nobody awaits: the coroutine is scheduled as a task
on the running loop, a strong reference is kept until it finishes, and its failure is reported
as in rule 2. Dispatch does not wait for it. With no running loop the coroutine cannot run: it
is closed and that is reported.

Rule 4: ``isTrusted`` is false for every event a program creates and dispatches with
``dispatchEvent()``. The library fires events as the user agent with :func:`fire_an_event`,
the DOM's "fire an event": it creates the event, marks it trusted and dispatches it. That is
the only way to get a trusted event.

Rule 5: the ``on*`` event handler attributes (HTML "event handlers") are
:class:`EventHandler` descriptors. Setting a handler for the first time adds one internal
listener at the end of the list; replacing it keeps that listener and so its position;
setting ``None`` (or anything that is not callable) removes it, and a later handler goes to
the end. A handler that returns ``False`` cancels the event (HTML "process return value"),
which has an effect only on a ``cancelable`` event. Setting an ``on*`` name that the class
does not declare settable (``ws.onmesage``) raises ``AttributeError``: in JavaScript it
would be a silent expando that never runs; other attribute names stay free.

Departures from JavaScript, each because Python has no equivalent: every argument that Web
IDL would convert from any value (``DOMString``, dictionaries) must already have the Python
type, else ``TypeError``; ``None`` as an init dictionary member means "absent"; a listener
must be callable or have a ``handleEvent`` attribute when it is added (JavaScript accepts any
object there; Python has no primitive/object split to lean on); and listeners are "the same"
when they compare equal, so that ``obj.method`` (a new bound method object on every access)
can be removed as it was added.

The compiled build: Cython compiles this file itself, with ``events.pxd`` (the events, the
target and its listener records as extension types; the dispatch of the library's events
at C level); ``WSAPI_PURE_PYTHON=1`` runs this file as Python.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import math
import weakref
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypedDict, TypeVar, overload

from .cpython_calls import monotonic as _monotonic
from .cpython_calls import set_attribute as _set_attribute
from .errors import DOMException
from .webidl import usv_string

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .blob import Blob

__all__ = [
    "AddEventListenerOptions",
    "CloseEvent",
    "CloseEventInit",
    "Event",
    "EventHandler",
    "EventInit",
    "EventListener",
    "EventListenerObject",
    "EventListenerOptions",
    "EventTarget",
    "MessageEvent",
    "MessageEventInit",
    "TypedEventListener",
    "dispatch_trusted",
    "fire_a_message_event",
    "fire_a_simple_event",
    "fire_an_event",
    "report_an_exception",
    "trusted_close_event",
]

logger = logging.getLogger("wsapi")

_TIME_ORIGIN: Final = _monotonic()
"""The "time origin" that ``Event.timeStamp`` counts from: when this module was imported.
A browser counts from the creation of the page's global object; a process has no page, and
the import of the event machinery is the nearest equivalent that is the same for all events."""


_NONE = 0
_AT_TARGET = 2
"""The values of ``Event.NONE`` and ``Event.AT_TARGET``, as module constants (C constants in
the compiled build: events.pxd)."""

_LISTENER_TASKS: Final[set[asyncio.Task[Any]]] = set()
"""Tasks running ``async def`` listeners. The event loop keeps only weak references to tasks,
so without this set a task could be garbage-collected before it finishes."""


# --- Init dictionaries (the IDL dictionaries, as TypedDicts for the type checker) ----------


class EventInit(TypedDict, total=False):
    """DOM ``dictionary EventInit``."""

    bubbles: bool
    cancelable: bool
    composed: bool


class MessageEventInit(EventInit, total=False):
    """HTML ``dictionary MessageEventInit``. (At run time ``data`` may be anything, as the
    IDL's ``any``; the type checker holds it to what a WebSocket delivers.)"""

    data: str | bytes | Blob
    origin: str
    lastEventId: str
    source: object
    ports: Sequence[object]


class CloseEventInit(EventInit, total=False):
    """WebSockets ``dictionary CloseEventInit``."""

    wasClean: bool
    code: int
    reason: str


class EventListenerOptions(TypedDict, total=False):
    """DOM ``dictionary EventListenerOptions``."""

    capture: bool


class AddEventListenerOptions(EventListenerOptions, total=False):
    """DOM ``dictionary AddEventListenerOptions``. ``signal`` is any object with the shape of
    an ``AbortSignal``: a bool ``aborted`` and an ``addEventListener`` that fires ``abort``."""

    passive: bool
    once: bool
    signal: Any


E = TypeVar("E", bound="Event")
E_contra = TypeVar("E_contra", bound="Event", contravariant=True)


class EventListenerObject(Protocol[E_contra]):
    """The object form of the DOM's ``callback interface EventListener``."""

    def handleEvent(self, event: E_contra, /) -> object: ...


EventListener = Callable[[Any], object] | EventListenerObject[Any]
"""A listener of any event type: a callable taking the event, or an object with
``handleEvent(event)``. The event parameter is ``Any`` here, for a target that does not say
which event each type carries; ``WebSocket.addEventListener`` says it (``"message"`` takes
a ``MessageEvent`` listener), as TypeScript's per-type event maps do."""

TypedEventListener = Callable[[E], object] | EventListenerObject[E]
"""A listener of events of class ``E``: ``TypedEventListener[MessageEvent]``."""


def _init_dictionary(
    interface: str, eventInitDict: Mapping[str, object] | None, kwargs: Mapping[str, object]
) -> Mapping[str, object]:
    """The init dictionary from either of the two spellings DESIGN.md allows."""
    if eventInitDict is None:
        return kwargs
    if not isinstance(eventInitDict, Mapping):
        raise TypeError(
            f"{interface} eventInitDict must be a mapping, not {type(eventInitDict).__name__}"
        )
    if kwargs:
        raise TypeError(f"{interface}() takes the init dictionary or keywords, not both")
    return eventInitDict


def _boolean(init: Mapping[str, object], member: str) -> bool:
    # Web IDL converts any value to boolean by truthiness (ECMAScript ToBoolean).
    return bool(init.get(member))


def _string(interface: str, init: Mapping[str, object], member: str) -> str:
    value = init.get(member)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"{interface}Init {member} must be str, not {type(value).__name__}")
    return value


def _usv_string(interface: str, init: Mapping[str, object], member: str) -> str:
    """A Web IDL ``USVString`` member: lone surrogates become U+FFFD, while a surrogate pair
    (two code points in a Python str) becomes the character it encodes, as in JavaScript."""
    return usv_string(_string(interface, init, member))


def _unsigned_short(interface: str, init: Mapping[str, object], member: str) -> int:
    """A Web IDL ``unsigned short`` member (no ``[Clamp]``): truncated toward zero, modulo
    2**16, with NaN and the infinities giving 0 (Web IDL "ConvertToInt")."""
    value = init.get(member)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{interface}Init {member} must be a number, not {type(value).__name__}")
    if isinstance(value, float):
        if not math.isfinite(value):
            return 0
        value = math.trunc(value)
    return value % 0x10000


# --- Event ---------------------------------------------------------------------------------


class Event:
    """A DOM ``Event``: ``Event(type, eventInitDict=None, **kwargs)``.

    The init dictionary (``bubbles``, ``cancelable``, ``composed``) is given positionally or
    as keywords, not both; unknown members are ignored, as Web IDL ignores them. Every IDL
    attribute is read-only except ``returnValue`` and ``cancelBubble``, whose setters can only
    cancel the event or stop its propagation. ``timeStamp`` is in milliseconds, from
    ``time.monotonic()``, relative to the import of this module.
    """

    __slots__ = (
        "_bubbles",
        "_cancelable",
        "_canceled",
        "_composed",
        "_created",
        "_current_target",
        "_dispatch",
        "_event_phase",
        "_in_passive_listener",
        "_initialized",
        "_is_trusted",
        "_stop_immediate_propagation",
        "_stop_propagation",
        "_target",
        "_type",
    )

    NONE: Final = _NONE
    CAPTURING_PHASE: Final = 1
    AT_TARGET: Final = _AT_TARGET
    BUBBLING_PHASE: Final = 3

    def __init__(
        self,
        type: str,
        eventInitDict: EventInit | None = None,
        **kwargs: Unpack[EventInit],
    ) -> None:
        self._initialize_event("Event", type, _init_dictionary("Event", eventInitDict, kwargs))

    def _initialize_event(self, interface: str, type: str, init: Mapping[str, object]) -> None:
        """DOM 2.5 "inner event creation steps", for this class's members of ``init``."""
        if not isinstance(type, str):
            raise TypeError(f"{interface} type must be str, not {type.__class__.__name__}")
        self._type = type
        self._bubbles = _boolean(init, "bubbles")
        self._cancelable = _boolean(init, "cancelable")
        self._composed = _boolean(init, "composed")
        self._target: EventTarget | None = None
        self._current_target: EventTarget | None = None
        self._event_phase = _NONE
        self._is_trusted = False
        self._created = _monotonic()
        self._stop_propagation = False
        self._stop_immediate_propagation = False
        self._canceled = False
        self._in_passive_listener = False
        self._dispatch = False
        self._initialized = True

    @property
    def type(self) -> str:
        """The event type, e.g. ``"message"``."""
        return self._type

    @property
    def target(self) -> EventTarget | None:
        """The object the event was dispatched to (it stays set after the dispatch)."""
        return self._target

    @property
    def srcElement(self) -> EventTarget | None:
        """Legacy alias of ``target``."""
        return self._target

    @property
    def currentTarget(self) -> EventTarget | None:
        """The object whose listeners are running; ``None`` outside a dispatch."""
        return self._current_target

    @property
    def eventPhase(self) -> int:
        """``NONE`` outside a dispatch, ``AT_TARGET`` during one (nothing here has a parent
        to capture or bubble through)."""
        return self._event_phase

    @property
    def bubbles(self) -> bool:
        """Whether the event would bubble up a tree (kept for fidelity: no target has a
        parent here)."""
        return self._bubbles

    @property
    def cancelable(self) -> bool:
        """Whether ``preventDefault()`` can cancel the event."""
        return self._cancelable

    @property
    def composed(self) -> bool:
        """Whether the event would cross a shadow root (kept for fidelity)."""
        return self._composed

    @property
    def defaultPrevented(self) -> bool:
        """Whether the event was canceled."""
        return self._canceled

    @property
    def isTrusted(self) -> bool:
        """True for events the library fires, false for ones a program dispatches."""
        return self._is_trusted

    @property
    def timeStamp(self) -> float:
        """When the event was created, in milliseconds since the time origin."""
        return (self._created - _TIME_ORIGIN) * 1000.0

    @property
    def returnValue(self) -> bool:
        """Legacy: false once the event is canceled; setting false cancels it."""
        return not self._canceled

    @returnValue.setter
    def returnValue(self, value: bool) -> None:
        if not value:
            self._set_the_canceled_flag()

    @property
    def cancelBubble(self) -> bool:
        """Legacy: whether propagation was stopped; setting true stops it."""
        return self._stop_propagation

    @cancelBubble.setter
    def cancelBubble(self, value: bool) -> None:
        if value:
            self._stop_propagation = True

    def composedPath(self) -> list[EventTarget]:
        """The event's path: ``[currentTarget]`` during a dispatch, ``[]`` otherwise."""
        return [] if self._current_target is None else [self._current_target]

    def stopPropagation(self) -> None:
        """Stop the event from reaching further targets (none exist here, but a call before
        dispatch means no listener runs, as in the DOM)."""
        self._stop_propagation = True

    def stopImmediatePropagation(self) -> None:
        """Stop propagation and skip the remaining listeners of the current target."""
        self._stop_propagation = True
        self._stop_immediate_propagation = True

    def preventDefault(self) -> None:
        """Cancel the event, if it is cancelable and the listener is not passive."""
        self._set_the_canceled_flag()

    def initEvent(self, type: str, bubbles: bool = False, cancelable: bool = False) -> None:
        """Legacy re-initialization (DOM ``initEvent``); ignored during a dispatch."""
        # DOM 2.2: 1. If this's dispatch flag is set, then return.
        if self._dispatch:
            return
        # 2. Initialize this with type, bubbles, and cancelable.
        if not isinstance(type, str):
            raise TypeError(f"initEvent type must be str, not {type.__class__.__name__}")
        self._initialized = True
        self._stop_propagation = self._stop_immediate_propagation = self._canceled = False
        self._is_trusted = False
        self._target = None
        self._type = type
        self._bubbles = bool(bubbles)
        self._cancelable = bool(cancelable)

    def _set_the_canceled_flag(self) -> None:
        # DOM 2.2 "set the canceled flag": only for a cancelable event, outside a passive
        # listener.
        if self._cancelable and not self._in_passive_listener:
            self._canceled = True

    def _repr_members(self) -> str:
        return ""

    def __repr__(self) -> str:
        if not getattr(self, "_initialized", False):  # Made with __new__ alone.
            return f"<{type(self).__name__} (not initialized)>"
        members = f"type={self._type!r}{self._repr_members()}"
        trusted = " isTrusted=True" if self._is_trusted else ""
        return f"<{type(self).__name__} {members}{trusted}>"


class MessageEvent(Event):
    """HTML ``MessageEvent``: ``MessageEvent(type, eventInitDict=None, **kwargs)`` with
    ``data`` (default ``None``), ``origin`` and ``lastEventId`` (default ``""``), ``source``
    (default ``None``) and ``ports`` (a tuple, default empty), all read-only."""

    __slots__ = ("_data", "_last_event_id", "_origin", "_ports", "_source")

    def __init__(
        self,
        type: str,
        eventInitDict: MessageEventInit | None = None,
        **kwargs: Unpack[MessageEventInit],
    ) -> None:
        init = _init_dictionary("MessageEvent", eventInitDict, kwargs)
        self._initialize_event("MessageEvent", type, init)
        self._data: object = init.get("data")
        self._origin = _usv_string("MessageEvent", init, "origin")
        self._last_event_id = _string("MessageEvent", init, "lastEventId")
        self._source: object = init.get("source")
        ports = init.get("ports")
        # Web IDL sequence<MessagePort>: any iterable, but a string is not a sequence.
        if ports is None:
            self._ports: tuple[object, ...] = ()
        elif isinstance(ports, str | bytes) or not hasattr(ports, "__iter__"):
            raise TypeError(
                f"MessageEventInit ports must be a sequence, not {ports.__class__.__name__}"
            )
        else:
            self._ports = tuple(ports)

    @property
    def data(self) -> str | bytes | Blob:
        """The message: ``str`` for text; ``bytes`` or a ``Blob`` for binary data. (A
        MessageEvent made by hand holds whatever its init dictionary's data was: IDL any.)"""
        return self._data  # type: ignore[return-value]  # (IDL any: see above.)

    @property
    def origin(self) -> str:
        """The origin of the message (for a WebSocket, the serialized URL's origin)."""
        return self._origin

    @property
    def lastEventId(self) -> str:
        """The last event ID (server-sent events; empty for WebSocket messages)."""
        return self._last_event_id

    @property
    def source(self) -> object:
        """The message's source window or port (``None`` for WebSocket messages)."""
        return self._source

    @property
    def ports(self) -> tuple[object, ...]:
        """The ports sent with the message (empty for WebSocket messages)."""
        return self._ports

    def _repr_members(self) -> str:
        data = repr(self._data)
        if len(data) > 60:
            data = data[:57] + "..."
        origin = f" origin={self._origin!r}" if self._origin else ""
        return f" data={data}{origin}"


class CloseEvent(Event):
    """WebSockets ``CloseEvent``: ``CloseEvent(type, eventInitDict=None, **kwargs)`` with
    ``wasClean`` (default ``False``), ``code`` (default 0; converted as a Web IDL ``unsigned
    short``) and ``reason`` (default ``""``), all read-only."""

    __slots__ = ("_code", "_reason", "_was_clean")

    def __init__(
        self,
        type: str,
        eventInitDict: CloseEventInit | None = None,
        **kwargs: Unpack[CloseEventInit],
    ) -> None:
        init = _init_dictionary("CloseEvent", eventInitDict, kwargs)
        self._initialize_event("CloseEvent", type, init)
        self._was_clean = _boolean(init, "wasClean")
        self._code = _unsigned_short("CloseEvent", init, "code")
        self._reason = _usv_string("CloseEvent", init, "reason")

    @property
    def wasClean(self) -> bool:
        """Whether the connection closed cleanly (the closing handshake completed)."""
        return self._was_clean

    @property
    def code(self) -> int:
        """The close code (1005 when the Close frame had none, 1006 when none arrived)."""
        return self._code

    @property
    def reason(self) -> str:
        """The close reason the server sent."""
        return self._reason

    def _repr_members(self) -> str:
        return f" code={self._code} reason={self._reason!r} wasClean={self._was_clean}"


# --- EventTarget -----------------------------------------------------------------------------


class _EventListener:
    """DOM 2.7 "event listener": the record kept in a target's event listener list."""

    __slots__ = ("callback", "capture", "once", "passive", "removed", "type")

    def __init__(
        self, type: str, callback: EventListener, capture: bool, passive: bool, once: bool
    ) -> None:
        self.type = type
        self.callback = callback
        self.capture = capture
        self.passive = passive
        self.once = once
        self.removed = False


def _check_callback(method: str, callback: object) -> None:
    """Reject a listener that can never be called (see the module docstring). The
    ``handleEvent`` attribute is not read here: Web IDL reads it at every dispatch."""
    if callback is None or callable(callback):
        return
    try:
        inspect.getattr_static(callback, "handleEvent")
    except AttributeError:
        if not hasattr(type(callback), "__getattr__"):
            raise TypeError(
                f"{method}: the listener must be callable or have a handleEvent method, "
                f"not {type(callback).__name__}"
            ) from None


def _check_type(method: str, type_: object) -> str:
    if not isinstance(type_, str):
        raise TypeError(f"{method}: the event type must be str, not {type(type_).__name__}")
    return type_


def _flatten(method: str, options: object) -> bool:
    """DOM "flatten options": the capture flag."""
    if options is None:
        return False
    if isinstance(options, bool):
        return options
    if isinstance(options, Mapping):
        return _boolean(options, "capture")
    raise TypeError(f"{method}: options must be a bool or a mapping, not {type(options).__name__}")


def _settable(cls: type[EventTarget], name: str) -> bool:
    """Whether ``cls`` declares ``name`` as an attribute that takes assignments (a data
    descriptor: an event handler, a property with a setter, a slot), not a method."""
    # (The class attribute as the class gives it: a descriptor gives itself, an event
    # handler too; a name no class declares gives None.)
    return hasattr(type(getattr(cls, name, None)), "__set__")


def _not_a_handler(cls: type[EventTarget], name: str) -> str:
    """What is wrong with setting ``name``, which starts with "on" and which ``cls`` does
    not declare: the event handlers it does have."""
    handlers = sorted(
        attribute
        for klass in cls.__mro__
        for attribute, value in vars(klass).items()
        if isinstance(value, EventHandler)
    )
    have = ", ".join(handlers) if handlers else "none"
    return (
        f"{cls.__name__} has no event handler {name!r} (its event handlers: {have}); an "
        "attribute of its own whose name starts with 'on' is refused as a likely mistake"
    )


def _same_callback(a: object, b: object) -> bool:
    return a is b or bool(a == b)


class EventTarget:
    """A DOM ``EventTarget``: ``addEventListener``, ``removeEventListener``,
    ``dispatchEvent``.

    Subclasses call ``super().__init__()`` and declare their ``on*`` attributes with
    ``EventHandler`` descriptors. ``options["signal"]`` is supported: it takes any object shaped
    like an ``AbortSignal`` (a bool ``aborted`` and ``addEventListener("abort", ...)``), and
    the listener is removed when it fires ``abort``.
    """

    __slots__ = ("__weakref__", "_captures", "_event_handlers", "_listeners")

    def __init__(self) -> None:
        # The event listener list, split by type: dispatch only ever looks at one type, and
        # the order that matters is the order within a type.
        self._listeners: dict[str, list[_EventListener]] = {}
        # How many capture listeners each type has: a dispatch skips the capturing pass
        # when there are none (nothing could run in it), the common case.
        self._captures: dict[str, int] = {}
        # HTML "event handler map": event type -> (the processing callback, its listener).
        self._event_handlers: dict[str, tuple[_EventHandlerCallback, _EventListener]] = {}

    if not TYPE_CHECKING:  # (Seen by a type checker, it would allow any attribute name.)

        def __setattr__(self, name, value, /):
            # A misspelt handler (``ws.onmesage = f``, ``ws.on_message = f``) would be
            # stored as an attribute of the object's own and never called: a name starting
            # with "on" must be one the class declares settable (an event handler, or a
            # property of a subclass). Every other name passes after that one comparison,
            # which every attribute set (the library's own too) pays.
            if name[:2] == "on" and not _settable(type(self), name):
                raise AttributeError(_not_a_handler(type(self), name), name=name, obj=self)
            _set_attribute(self, name, value)

    def addEventListener(
        self,
        type: str,
        callback: EventListener | None,
        options: AddEventListenerOptions | bool | None = None,
    ) -> None:
        """Add ``callback`` for events of ``type``, unless the same callback with the same
        ``capture`` is already there; ``options`` is a bool (capture) or a mapping with
        ``capture``, ``once``, ``passive`` and ``signal``. A ``None`` callback is ignored."""
        type = _check_type("addEventListener", type)
        _check_callback("addEventListener", callback)
        # DOM "flatten more options".
        capture = _flatten("addEventListener", options)
        once = passive = False
        signal: Any = None
        if isinstance(options, Mapping):
            once = _boolean(options, "once")
            passive = _boolean(options, "passive")
            signal = options.get("signal")
            if signal is not None and not (
                isinstance(getattr(signal, "aborted", None), bool)
                and callable(getattr(signal, "addEventListener", None))
            ):
                raise TypeError("addEventListener: options['signal'] must be an AbortSignal")
        # DOM "add an event listener" 2. If listener's signal is non-null and is aborted,
        # then return. 3. If listener's callback is null, then return.
        if (signal is not None and signal.aborted) or callback is None:
            return
        listener = _EventListener(type, callback, capture, passive, once)
        if not self._add_an_event_listener(listener) or signal is None:
            return
        # 6. If listener's signal is non-null, then add the following abort steps to it:
        # remove an event listener with eventTarget and listener. (Only when the listener
        # was appended: removing one that was not is a no-op.) The target is held weakly
        # so that a long-lived signal does not keep it alive.
        target_ref = weakref.ref(self)

        def abort_steps(_event: object) -> None:
            target = target_ref()
            if target is not None:
                target._remove_an_event_listener(listener)

        signal.addEventListener("abort", abort_steps, {"once": True})

    def removeEventListener(
        self,
        type: str,
        callback: EventListener | None,
        options: EventListenerOptions | AddEventListenerOptions | bool | None = None,
    ) -> None:
        """Remove the listener with the same type, callback and ``capture``, if any (the
        other members of ``options`` are ignored, so the options that added it will do)."""
        type = _check_type("removeEventListener", type)
        _check_callback("removeEventListener", callback)
        capture = _flatten("removeEventListener", options)
        for listener in self._listeners.get(type, ()):
            if listener.capture == capture and _same_callback(listener.callback, callback):
                self._remove_an_event_listener(listener)
                return

    def dispatchEvent(self, event: Event) -> bool:
        """Dispatch ``event`` here, synchronously, as an untrusted event; return ``False``
        if it was canceled. Raise ``InvalidStateError`` if it is being dispatched already
        or was never initialized."""
        if not isinstance(event, Event):
            raise TypeError(f"dispatchEvent: expected an Event, not {type(event).__name__}")
        # DOM 2.7: 1. If event's dispatch flag is set, or if its initialized flag is not
        # set, then throw an "InvalidStateError" DOMException.
        if not getattr(event, "_initialized", False):
            raise DOMException("the event was not initialized", "InvalidStateError")
        if event._dispatch:
            raise DOMException("the event is already being dispatched", "InvalidStateError")
        # 2. Initialize event's isTrusted attribute to false.
        event._is_trusted = False
        # 3. Return the result of dispatching event to this.
        return _dispatch(event, self)

    def _add_an_event_listener(self, listener: _EventListener) -> bool:
        """DOM "add an event listener" step 5; return whether the listener was appended."""
        listeners = self._listeners.setdefault(listener.type, [])
        for existing in listeners:
            if existing.capture == listener.capture and _same_callback(
                existing.callback, listener.callback
            ):
                return False
        listeners.append(listener)
        if listener.capture:
            self._captures[listener.type] = self._captures.get(listener.type, 0) + 1
        return True

    def _remove_an_event_listener(self, listener: _EventListener) -> None:
        """DOM "remove an event listener": mark it removed (a dispatch holding a copy of the
        list skips it) and take it out of the list."""
        listener.removed = True
        listeners = self._listeners.get(listener.type)
        if listeners is None:
            return
        if len(listeners) == 1:
            if listeners[0] is listener:  # (The common case: an on* handler alone.)
                del self._listeners[listener.type]
                if listener.capture:
                    self._captures[listener.type] -= 1
            return
        if listener in listeners:
            listeners.remove(listener)
            if listener.capture:
                self._captures[listener.type] -= 1


def _dispatch(event: Event, target: EventTarget) -> bool:
    """DOM 2.9 "dispatch" for a target without a parent; return false if canceled."""
    # 1. Set event's dispatch flag.
    event._dispatch = True
    try:
        # 6.3: the event path is [target]. 13. For each struct, in reverse order: the
        # shadow-adjusted target is non-null, so eventPhase is AT_TARGET; invoke "capturing".
        event._event_phase = _AT_TARGET
        if target._captures.get(event._type):
            _invoke(event, target, True)
        # 14. For each struct: eventPhase AT_TARGET; invoke "bubbling".
        event._event_phase = _AT_TARGET
        _invoke(event, target, False)
    finally:
        _end_dispatch(event)
    # 13. Return false if event's canceled flag is set; otherwise true.
    return not event._canceled


def _end_dispatch(event: Event) -> None:
    """DOM 2.9 "dispatch" steps 7, 8 and 10, when the listeners have run."""
    # 7. Set event's eventPhase attribute to NONE. 8. Set event's currentTarget to null.
    # 10. Unset event's dispatch flag, stop propagation flag, and stop immediate propagation
    # flag.
    event._event_phase = _NONE
    event._current_target = None
    event._dispatch = False
    event._stop_propagation = event._stop_immediate_propagation = False
    event._in_passive_listener = False


def _invoke(event: Event, target: EventTarget, capturing: bool) -> None:
    """DOM 2.9 "invoke" and "inner invoke" for one phase at ``target``."""
    # 1. Set event's target to the shadow-adjusted target.
    event._target = target
    # 4. If event's stop propagation flag is set, then return.
    if event._stop_propagation:
        return
    # 5. Initialize event's currentTarget attribute to struct's invocation target.
    event._current_target = target
    # 6. Let listeners be a clone of event's currentTarget's event listener list.
    listeners = target._listeners.get(event._type)
    if not listeners:
        return
    # Inner invoke, 2. For each listener of listeners, whose removed is false:
    for listener in tuple(listeners):
        if listener.removed:
            continue
        # 3.-4. Skip listeners of the other phase.
        if listener.capture != capturing:
            continue
        # 5. If listener's once is true, then remove an event listener.
        if listener.once:
            target._remove_an_event_listener(listener)
        # 9. If listener's passive is true, then set event's in passive listener flag.
        event._in_passive_listener = listener.passive
        try:
            # 11. Call a user object's operation with listener's callback, "handleEvent".
            _call_a_user_objects_operation(listener.callback, event)
        finally:
            # 12. Unset event's in passive listener flag.
            event._in_passive_listener = False
        # 14. If event's stop immediate propagation flag is set, then break.
        if event._stop_immediate_propagation:
            break


def _call_a_user_objects_operation(callback: Any, event: Event) -> None:
    """Web IDL "call a user object's operation" with "report the exception": a callable is
    called; otherwise its ``handleEvent`` is looked up now, at every call. A coroutine
    result is scheduled as a task (module docstring, rule 3)."""
    try:
        if type(callback) is _EventHandlerCallback:
            # An on* handler (the common case): its call, without __call__'s.
            handler: _EventHandlerCallback = callback
            result = handler.call(event)
        elif callable(callback):
            result = callback(event)
        else:
            operation = callback.handleEvent
            if not callable(operation):
                raise TypeError(f"{callback!r}.handleEvent is not callable")
            result = operation(event)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        # As asyncio does for its callbacks: everything else is reported, not raised.
        _report_the_exception(exc, event, callback)
        return
    if result is not None and asyncio.iscoroutine(result):
        _schedule(result, event, callback)


def _report_the_exception(exc: BaseException, event: Event, callback: object) -> None:
    """HTML "report the exception", for a listener's exception."""
    report_an_exception(
        exc,
        f"Exception in {event._type!r} event listener {callback!r}",
        event=event,
        target=event._current_target,
        listener=callback,
    )


def report_an_exception(exc: BaseException, message: str, **context: object) -> None:
    """HTML "report the exception", for a program with an asyncio loop or without one: to
    the running loop's exception handler (with ``context``), else to the "wsapi" logger."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        logger.error("%s", message, exc_info=exc)
        return
    loop.call_exception_handler({"message": message, "exception": exc, **context})


def _schedule(coroutine: Coroutine[Any, Any, Any], event: Event, callback: object) -> None:
    """Run an ``async def`` listener's coroutine as a task, reporting its failure."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        coroutine.close()  # it can never run; closing it avoids "never awaited"
        _report_the_exception(
            RuntimeError(
                f"the {event._type!r} event listener {callback!r} returned a coroutine, "
                "but no asyncio event loop is running to run it"
            ),
            event,
            callback,
        )
        return
    task = loop.create_task(coroutine)
    _LISTENER_TASKS.add(task)
    task.add_done_callback(functools.partial(_listener_task_done, event, callback))


def _listener_task_done(event: Event, callback: object, task: asyncio.Task[Any]) -> None:
    _LISTENER_TASKS.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        task.get_loop().call_exception_handler(
            {
                "message": f"Exception in {event._type!r} async event listener {callback!r}",
                "exception": exc,
                "task": task,
                "event": event,
                "listener": callback,
            }
        )


# --- Firing events (the library's side) --------------------------------------------------


def fire_an_event(
    target: EventTarget,
    type: str,
    eventConstructor: type[Event] = Event,
    /,
    **init: Any,
) -> bool:
    """DOM 2.10 "fire an event named ``type`` at ``target``, using ``eventConstructor``,
    with its attributes initialized from ``init``": the way the library dispatches the
    events it originates, with ``isTrusted`` true. Return false if the event was canceled.

    ``fire_an_event(ws, "close", CloseEvent, wasClean=True, code=1000, reason="")``
    """
    # 2. Let event be the result of creating an event given eventConstructor ("create an
    # event" initializes isTrusted to true). 3.-4. Initialize type and the other attributes.
    event = eventConstructor(type, init)  # type: ignore[arg-type]
    event._is_trusted = True
    # 5. Return the result of dispatching event at target.
    return _dispatch(event, target)


def _init_trusted_event(event: Event, type: str) -> None:
    """Set the members of Event of a new ``event`` (made with ``__new__``) as "create an
    event" and "fire an event" set them, with no init dictionary to convert (the library's
    values are already of the right types); the members of its class are the caller's."""
    event._type = type
    event._bubbles = event._cancelable = event._composed = False
    event._target = event._current_target = None
    event._event_phase = _NONE
    event._is_trusted = True
    event._created = _monotonic()
    event._stop_propagation = event._stop_immediate_propagation = False
    event._canceled = event._in_passive_listener = event._dispatch = False
    event._initialized = True


def fire_a_simple_event(target: EventTarget, type: str) -> bool:
    """HTML "fire a simple event" (``fire_an_event(target, type)``), for the library's
    ``open`` and ``error``: the same event, built without an init dictionary."""
    event = Event.__new__(Event)
    _init_trusted_event(event, type)
    return _dispatch_trusted(event, target)


def trusted_close_event(was_clean: bool, code: int, reason: str) -> CloseEvent:
    """``CloseEvent("close", {"wasClean": ..., "code": ..., "reason": ...})`` as "fire an
    event" creates it (``isTrusted`` true), for a code in 0-65535 and a reason of valid
    Unicode: the library's values, which the init dictionary's conversions would leave as
    they are. Dispatch it with ``dispatch_trusted``."""
    event = CloseEvent.__new__(CloseEvent)
    _init_trusted_event(event, "close")
    event._was_clean = was_clean
    event._code = code
    event._reason = reason
    return event


def fire_a_message_event(target: EventTarget, data: object, origin: str) -> bool:
    """``fire_an_event(target, "message", MessageEvent, data=data, origin=origin)``, for the
    library's hot path: the same event, built without converting an init dictionary (the
    library's values are already of the right types). Return false if it was canceled."""
    event = MessageEvent.__new__(MessageEvent)
    _init_trusted_event(event, "message")
    event._data = data
    event._origin = origin
    event._last_event_id = ""
    event._source = None
    event._ports = ()
    return _dispatch_trusted(event, target)


def _dispatch_trusted(event: Event, target: EventTarget) -> bool:
    """``_dispatch`` for an event the library made and no one has seen yet."""
    event_type = event._type
    listeners = target._listeners.get(event_type)
    if not listeners or len(listeners) != 1 or target._captures.get(event_type):
        return _dispatch(event, target)
    # The common case, one plain listener (the on* handler, say): _dispatch and _invoke
    # reduced to what they do for it, the same state at every step.
    listener = listeners[0]
    if listener.capture or listener.once or listener.passive or listener.removed:
        return _dispatch(event, target)
    event._dispatch = True
    event._event_phase = _AT_TARGET
    event._target = event._current_target = target
    try:
        _call_a_user_objects_operation(listener.callback, event)
    finally:
        _end_dispatch(event)
    return not event._canceled


def dispatch_trusted(target: EventTarget, event: Event) -> bool:
    """Dispatch an event the library created itself (as "fire an event" does, for a caller
    that needs the event object afterwards), with ``isTrusted`` true."""
    event._is_trusted = True
    return _dispatch_trusted(event, target)


# --- Event handler attributes (HTML 8.1.8) -------------------------------------------------


class _EventHandlerCallback:
    """HTML "the event handler processing algorithm": the callback of an event handler's
    internal listener. It reads the handler's current value at each call, which is what
    lets a new value keep the old one's position."""

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: Callable[[Any], object]) -> None:
        self.name = name
        self.value = value

    def __call__(self, event: Event) -> object:
        return self.call(event)

    def call(self, event: Event) -> object:
        result = self.value(event)
        # HTML "process return value": if return value is false, set event's canceled flag.
        if result is False:
            event._set_the_canceled_flag()
        return result

    def __repr__(self) -> str:
        return f"<{self.name} handler {self.value!r}>"


class EventHandler(Generic[E]):
    """An ``on*`` event handler attribute (HTML "event handler IDL attribute"), as a
    descriptor for ``EventTarget`` subclasses::

        class WebSocket(EventTarget):
            onopen = EventHandler[Event]("open")
            onmessage = EventHandler[MessageEvent]("message")

    Reading gives the handler or ``None``. Setting a callable registers it (see the module
    docstring, rule 5, for its position); setting anything else stores ``None``.
    """

    __slots__ = ("_name", "type")

    def __init__(self, type: str) -> None:
        self.type: Final = type
        self._name = "on" + type

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> EventHandler[E]: ...

    @overload
    def __get__(self, instance: EventTarget, owner: type[Any]) -> Callable[[E], object] | None: ...

    def __get__(
        self, instance: EventTarget | None, owner: type[Any]
    ) -> EventHandler[E] | Callable[[E], object] | None:
        if instance is None:
            return self
        active = instance._event_handlers.get(self.type)
        return None if active is None else active[0].value

    def __set__(self, instance: EventTarget, value: Callable[[E], object] | None) -> None:
        handlers = instance._event_handlers
        active = handlers.get(self.type)
        # [LegacyTreatNonObjectAsNull] and DESIGN.md: a non-callable value is stored as null.
        type = self.type
        if not callable(value):
            # HTML "deactivate an event handler": remove the listener, forget the position.
            if active is not None:
                del handlers[type]
                instance._remove_an_event_listener(active[1])
            return
        if active is not None:
            # Already active: only the value changes; the listener keeps its place.
            active[0].value = value
            return
        # HTML "activate an event handler": a new listener at the end of the list. ("Add an
        # event listener", reduced: its callback is a new object, which no listener in the
        # list can be, and it does not capture.)
        callback = _EventHandlerCallback(self._name, value)
        listener = _EventListener(type, callback, False, False, False)
        listeners = instance._listeners.get(type)
        if listeners is None:
            instance._listeners[type] = [listener]
        else:
            listeners.append(listener)
        handlers[type] = (callback, listener)

    def __repr__(self) -> str:
        return f"EventHandler({self.type!r})"
