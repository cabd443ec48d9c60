# The compiled build of events.py: Cython compiles events.py itself (pure-Python mode) with
# these declarations, so the events, their target and its listener records are extension
# types that own their fields, and the library's dispatch of the events it fires runs at C
# level. websocket.pxd cimports them. Every field is public: Python code (subclasses, the
# tests) reads them as attributes.

# The calls into the interpreter (events.py imports them from cpython_calls.py): their
# compiled twin, which makes each from C. websocket.pxd takes _get_ident from here.
from wsapi._cpython_calls cimport get_ident as _get_ident
from wsapi._cpython_calls cimport monotonic as _monotonic
from wsapi._cpython_calls cimport set_attribute as _set_attribute

cdef class Event:
    cdef public bint _bubbles
    cdef public bint _cancelable
    cdef public bint _canceled
    cdef public bint _composed
    cdef public double _created  # time.monotonic() when the event was created
    cdef public object _current_target
    cdef public bint _dispatch
    cdef public int _event_phase
    cdef public bint _in_passive_listener
    cdef public bint _initialized
    cdef public bint _is_trusted
    cdef public bint _stop_immediate_propagation
    cdef public bint _stop_propagation
    cdef public object _target
    cdef public object _type

    cpdef _set_the_canceled_flag(self)


cdef class MessageEvent(Event):
    cdef public object _data
    cdef public object _last_event_id
    cdef public object _origin
    cdef public object _ports
    cdef public object _source


cdef class _EventListener:
    cdef public object callback
    cdef public bint capture
    cdef public bint once
    cdef public bint passive
    cdef public bint removed
    cdef public object type


cdef class EventTarget:
    cdef object __weakref__
    cdef public dict _captures
    cdef public dict _event_handlers
    cdef public dict _listeners

    cpdef _remove_an_event_listener(self, _EventListener listener)


cdef class _EventHandlerCallback:
    cdef public object name
    cdef public object value

    cpdef call(self, Event event)


cimport cython

cdef int _NONE, _AT_TARGET


# Dispatch of the events the library fires (the message event for every message), called
# at C level from one another and from websocket.py's compiled build.
cpdef bint _dispatch(Event event, EventTarget target) except -1
cdef _end_dispatch(Event event)
@cython.locals(listener=_EventListener)
cdef _invoke(Event event, EventTarget target, bint capturing)
@cython.locals(handler=_EventHandlerCallback)
cpdef _call_a_user_objects_operation(callback, Event event)
cdef _init_trusted_event(Event event, object type)
@cython.locals(event=MessageEvent)
cpdef bint fire_a_message_event(EventTarget target, data, origin) except -1
@cython.locals(listeners=list, listener=_EventListener)
cpdef bint _dispatch_trusted(Event event, EventTarget target) except -1
