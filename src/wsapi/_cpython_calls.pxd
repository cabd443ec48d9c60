# The C-level interface of _cpython_calls.pyx, the compiled twin of cpython_calls.py: the
# compiled events module cimports these (events.pxd), and the compiled WebSocket get_ident
# through it (websocket.pxd).

cpdef unsigned long get_ident() noexcept
cpdef double monotonic() noexcept
cpdef int set_attribute(object target, object name, object value) except -1
