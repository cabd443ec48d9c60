# cython: language_level=3, boundscheck=False, wraparound=False
"""The compiled twin of ``WebSocket._on_message`` and ``events.fire_a_message_event``: the
message task of the API and the dispatch of its ``MessageEvent``, for the common case.

Used by ``WebSocket._message_receiver()`` when this extension is built and
``WSAPI_PURE_PYTHON`` is not set. The common case is a target whose ``message`` listeners are
exactly one plain listener (not capture, once or passive) -- ``onmessage``, or one
``addEventListener("message", f)``. Then the event is built and dispatched here, with the
same observable state at every step as ``events._dispatch`` gives it; any other case (no
listener is trivial, several, capture, once, passive, a ``"blob"`` binary message) is handed
to the Python code, which is the reference.

The events are the Python classes of ``events.py``, which declare ``__slots__``; their
fields are written here directly at the offsets CPython gives those slots (what an
assignment to the attribute does, without the attribute lookup). The module refuses to load
(and the pure-Python path is used) if the classes' slots are not exactly the ones it fills.
"""

from cpython.object cimport PyTypeObject

import time
from asyncio import iscoroutine

from . import events as _events
from . import websocket as _websocket
from .protocol._speedups cimport (
    MessageReceiver,
    slot_get as _get,
    slot_offset as _slot,
    slot_put as _put,
)

cdef extern from "Python.h":
    object PyType_GenericAlloc(PyTypeObject* type, Py_ssize_t nitems)

    ctypedef struct PyMemberDef:
        const char* name
        int type
        Py_ssize_t offset
        int flags
        const char* doc

    object PyDescr_NewMember(PyTypeObject* type, PyMemberDef* member)

cdef enum:
    OPEN = 1  # readyState OPEN (websocket.py)
    T_OBJECT_EX = 16  # Py_T_OBJECT_EX, the member type of a __slots__ entry
    READONLY = 1  # Py_READONLY


cdef type MessageEvent = _events.MessageEvent
cdef type WebSocket = _websocket.WebSocket
cdef type HandlerCallback = _events._EventHandlerCallback
cdef object fire_a_message_event = _events.fire_a_message_event
cdef object call_a_user_objects_operation = _events._call_a_user_objects_operation
cdef object report_the_exception = _events._report_the_exception
cdef object schedule = _events._schedule
cdef double TIME_ORIGIN = _events._TIME_ORIGIN
cdef object monotonic = time.monotonic

# Event and MessageEvent fields.
cdef Py_ssize_t E_TYPE = _slot(MessageEvent, "_type")
cdef Py_ssize_t E_BUBBLES = _slot(MessageEvent, "_bubbles")
cdef Py_ssize_t E_CANCELABLE = _slot(MessageEvent, "_cancelable")
cdef Py_ssize_t E_COMPOSED = _slot(MessageEvent, "_composed")
cdef Py_ssize_t E_TARGET = _slot(MessageEvent, "_target")
cdef Py_ssize_t E_CURRENT_TARGET = _slot(MessageEvent, "_current_target")
cdef Py_ssize_t E_EVENT_PHASE = _slot(MessageEvent, "_event_phase")
cdef Py_ssize_t E_IS_TRUSTED = _slot(MessageEvent, "_is_trusted")
cdef Py_ssize_t E_TIME_STAMP = _slot(MessageEvent, "_time_stamp")
cdef Py_ssize_t E_STOP_PROPAGATION = _slot(MessageEvent, "_stop_propagation")
cdef Py_ssize_t E_STOP_IMMEDIATE = _slot(MessageEvent, "_stop_immediate_propagation")
cdef Py_ssize_t E_CANCELED = _slot(MessageEvent, "_canceled")
cdef Py_ssize_t E_IN_PASSIVE = _slot(MessageEvent, "_in_passive_listener")
cdef Py_ssize_t E_DISPATCH = _slot(MessageEvent, "_dispatch")
cdef Py_ssize_t E_INITIALIZED = _slot(MessageEvent, "_initialized")
cdef Py_ssize_t E_DATA = _slot(MessageEvent, "_data")
cdef Py_ssize_t E_ORIGIN = _slot(MessageEvent, "_origin")
cdef Py_ssize_t E_LAST_EVENT_ID = _slot(MessageEvent, "_last_event_id")
cdef Py_ssize_t E_SOURCE = _slot(MessageEvent, "_source")
cdef Py_ssize_t E_PORTS = _slot(MessageEvent, "_ports")
# EventTarget, _EventListener and _EventHandlerCallback fields.
cdef Py_ssize_t T_LISTENERS = _slot(_events.EventTarget, "_listeners")
cdef Py_ssize_t T_CAPTURES = _slot(_events.EventTarget, "_captures")
cdef Py_ssize_t L_CALLBACK = _slot(_events._EventListener, "callback")
cdef Py_ssize_t L_CAPTURE = _slot(_events._EventListener, "capture")
cdef Py_ssize_t L_ONCE = _slot(_events._EventListener, "once")
cdef Py_ssize_t L_PASSIVE = _slot(_events._EventListener, "passive")
cdef Py_ssize_t L_REMOVED = _slot(_events._EventListener, "removed")
cdef Py_ssize_t H_VALUE = _slot(HandlerCallback, "value")
# WebSocket fields (websocket.py imports this module after it defines the class).
cdef Py_ssize_t W_READY_STATE = _slot(WebSocket, "_ready_state")
cdef Py_ssize_t W_BINARY_TYPE = _slot(WebSocket, "_binary_type")
cdef Py_ssize_t W_BUFFERED_STALE = _slot(WebSocket, "_buffered_stale")

_FILLED = {
    "_type", "_bubbles", "_cancelable", "_composed", "_target", "_current_target",
    "_event_phase", "_is_trusted", "_time_stamp", "_stop_propagation",
    "_stop_immediate_propagation", "_canceled", "_in_passive_listener", "_dispatch",
    "_initialized", "_data", "_origin", "_last_event_id", "_source", "_ports",
}
_declared = {name for klass in MessageEvent.__mro__ for name in getattr(klass, "__slots__", ())}
if _declared != _FILLED:
    raise ImportError(f"MessageEvent's slots changed: {sorted(_declared ^ _FILLED)}")
if (<PyTypeObject*> MessageEvent).tp_dictoffset or MessageEvent.__new__ is not object.__new__:
    raise ImportError("MessageEvent is no longer a plain slotted class")

# MessageEvent.data, the attribute every message handler reads: events.py makes it a read-only
# property over the _data slot; here it becomes the read-only slot descriptor itself (the same
# value, doc and AttributeError on assignment), which the interpreter reads as fast as a
# plain attribute instead of calling the property's getter.
cdef PyMemberDef DATA_MEMBER
DATA_MEMBER.name = "data"
DATA_MEMBER.type = T_OBJECT_EX
DATA_MEMBER.offset = E_DATA
DATA_MEMBER.flags = READONLY
DATA_MEMBER.doc = "The message: ``str`` for text; ``bytes`` or a ``Blob`` for binary data."
if type(MessageEvent.__dict__["data"]) is not property:
    raise ImportError("MessageEvent.data is no longer the property this module replaces")
MessageEvent.data = PyDescr_NewMember(<PyTypeObject*> MessageEvent, &DATA_MEMBER)


cdef extern from *:
    """
    #if defined(__linux__)
    #include <time.h>
    /* time.monotonic() on Linux is clock_gettime(CLOCK_MONOTONIC). */
    static int wsapi_monotonic(double *seconds) {
        struct timespec now;
        if (clock_gettime(CLOCK_MONOTONIC, &now) != 0) return -1;
        *seconds = (double) now.tv_sec + (double) now.tv_nsec * 1e-9;
        return 0;
    }
    #else
    static int wsapi_monotonic(double *seconds) { (void) seconds; return -1; }
    #endif
    """
    int wsapi_monotonic(double* seconds)


cdef inline double _now_ms() except? -1.0:
    """``(time.monotonic() - _TIME_ORIGIN) * 1000.0``, as ``events`` computes it: the clock
    read directly where time.monotonic() is known to be CLOCK_MONOTONIC, else called."""
    cdef double seconds
    if wsapi_monotonic(&seconds) != 0:
        seconds = monotonic()
    return (seconds - TIME_ORIGIN) * 1000.0


cdef object _dispatched_message_event(object target, object data, object origin):
    """What ``fire_a_message_event`` builds, in the state ``_dispatch`` puts it in while
    its listeners run at ``target`` (dispatch flag set, AT_TARGET, target and currentTarget
    set)."""
    event = PyType_GenericAlloc(<PyTypeObject*> MessageEvent, 0)
    _put(event, E_TYPE, "message")
    _put(event, E_BUBBLES, False)
    _put(event, E_CANCELABLE, False)
    _put(event, E_COMPOSED, False)
    _put(event, E_TARGET, target)
    _put(event, E_CURRENT_TARGET, target)
    _put(event, E_EVENT_PHASE, 2)  # AT_TARGET
    _put(event, E_IS_TRUSTED, True)
    _put(event, E_TIME_STAMP, _now_ms())
    _put(event, E_STOP_PROPAGATION, False)
    _put(event, E_STOP_IMMEDIATE, False)
    _put(event, E_CANCELED, False)
    _put(event, E_IN_PASSIVE, False)
    _put(event, E_DISPATCH, True)
    _put(event, E_INITIALIZED, True)
    _put(event, E_DATA, data)
    _put(event, E_ORIGIN, origin)
    _put(event, E_LAST_EVENT_ID, "")
    _put(event, E_SOURCE, None)
    _put(event, E_PORTS, ())
    return event


cdef class MessageDelivery(MessageReceiver):
    """``WebSocket._on_message`` for one WebSocket, compiled: call it with each message
    (``deliver_messages`` calls its ``receive`` directly)."""

    cdef object target
    cdef object on_message
    cdef object origin

    def __init__(self, target, on_message):
        """``target`` is the WebSocket; ``on_message`` its Python ``_on_message`` (bound),
        which gets every case this class does not handle itself."""
        if not isinstance(target, WebSocket):
            raise TypeError(f"expected a WebSocket, not {type(target).__name__}")
        self.target = target
        self.on_message = on_message
        self.origin = target._message_origin

    cdef int receive(self, object data) except -1:
        target = self.target
        # 1. "If the readyState attribute's value is not OPEN (1), then abort these steps."
        if _get(target, W_READY_STATE) != OPEN:
            return 0
        if type(data) is not str and _get(target, W_BINARY_TYPE) == "blob":
            self.on_message(data)  # The Blob is built in Python.
            return 0
        # A new task: bufferedAmount is measured afresh.
        _put(target, W_BUFFERED_STALE, True)
        # 5. Dispatch a MessageEvent (DOM "dispatch", for the common case: see the module
        # docstring; rule numbers and steps as in events._dispatch and events._invoke).
        listeners = (<dict> _get(target, T_LISTENERS)).get("message")
        if listeners is None:
            return 0  # No listener: dispatching would run nothing and change nothing.
        captures = <dict> _get(target, T_CAPTURES)
        if len(<list> listeners) != 1 or (captures and captures.get("message")):
            fire_a_message_event(target, data, self.origin)
            return 0
        listener = (<list> listeners)[0]
        if (
            _get(listener, L_CAPTURE) is not False
            or _get(listener, L_ONCE) is not False
            or _get(listener, L_PASSIVE) is not False
            or _get(listener, L_REMOVED) is not False
        ):
            fire_a_message_event(target, data, self.origin)
            return 0
        callback = _get(listener, L_CALLBACK)
        event = _dispatched_message_event(target, data, self.origin)
        try:
            # "Call a user object's operation" (events._call_a_user_objects_operation).
            try:
                if type(callback) is HandlerCallback:
                    result = _get(callback, H_VALUE)(event)
                    # HTML "process return value": false cancels the event.
                    if result is False:
                        event._set_the_canceled_flag()
                else:
                    call_a_user_objects_operation(callback, event)
                    result = None
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                report_the_exception(exc, event, callback)
                result = None
            if result is not None and iscoroutine(result):
                schedule(result, event, callback)
        finally:
            # DOM 2.9 "dispatch" steps 7, 8 and 10.
            _put(event, E_EVENT_PHASE, 0)
            _put(event, E_CURRENT_TARGET, None)
            _put(event, E_DISPATCH, False)
            _put(event, E_STOP_PROPAGATION, False)
            _put(event, E_STOP_IMMEDIATE, False)
            _put(event, E_IN_PASSIVE, False)
        return 0
