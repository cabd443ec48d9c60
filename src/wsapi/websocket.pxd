# The compiled build of websocket.py: Cython compiles websocket.py itself (pure-Python mode)
# with these declarations, so WebSocket is an extension type (on EventTarget, events.pxd)
# that owns its fields and calls its pump (pump.pxd) and the dispatch of its message events
# (events.pxd) at C level. Every field is public:
# subclasses (ReconnectingWebSocket) and the tests read them as attributes. ``__dict__``:
# a script may still set attributes of its own on the object.

cimport cython

# (_get_ident: the compiled twin of cpython_calls.get_ident, which events.pxd cimports.)
from wsapi.events cimport EventTarget, _get_ident, fire_a_message_event
from wsapi.pump cimport ConnectionPump


cdef class WebSocket(EventTarget):
    cdef dict __dict__
    cdef public object _abort_reason
    cdef public object _agent
    cdef public object _binary_type
    cdef public Py_ssize_t _buffered_amount
    cdef public bint _buffered_stale
    cdef public object _close_event
    cdef public object _closed
    cdef public object _connect_task
    cdef public list _drain_waiters
    cdef public object _extensions
    cdef public bint _fail_required
    cdef public object _failure
    cdef public bint _full
    cdef public object _loop
    cdef public object _message_origin
    cdef public Py_ssize_t _never_sent
    cdef public object _opened
    cdef public object _mark_stale
    cdef public object _outbox
    cdef public Py_ssize_t _outbox_size
    cdef public object _protocol
    cdef public tuple _protocols
    cdef public ConnectionPump _pump
    cdef public int _ready_state
    cdef public object _registry
    cdef public unsigned long _thread
    cdef public object _url
    cdef public bint _was_opened
    cdef public bint _whatwg

    # The steps of send() for every message, called at C level.
    cpdef _check_thread(self)
    cpdef object _message_of(self, data)
    cpdef bytes _encode_text(self, str text, what)
    cpdef _refresh_buffered_amount(self)
    @cython.locals(in_pump=Py_ssize_t)
    cpdef Py_ssize_t _pending_bytes(self) except -1


cpdef Py_ssize_t _size_of(message) except -1
