# cython: language_level=3
"""The compiled twin of ``cpython_calls.py`` (same names and results): the current thread's
identifier, the monotonic clock and the generic attribute assignment, each one call of
CPython's C API.

Wired in at one place: ``events.pxd`` cimports them (``_cpython_calls.pxd``); the compiled
WebSocket takes ``get_ident`` through it.
"""

from cpython.object cimport PyObject_GenericSetAttr
from cpython.pythread cimport PyThread_get_thread_ident


cdef extern from *:
    """
    /* time.monotonic()'s clock: the public call from Python 3.13 on, the same clock's
       internal one before (3.10-3.12, where time.monotonic() reads it too). */
    #if PY_VERSION_HEX >= 0x030D0000
    static double wsapi_monotonic(void) {
        PyTime_t t;
        (void) PyTime_MonotonicRaw(&t);
        return PyTime_AsSecondsDouble(t);
    }
    #else
    static double wsapi_monotonic(void) {
        return _PyTime_AsSecondsDouble(_PyTime_GetMonotonicClock());
    }
    #endif
    """
    double wsapi_monotonic() nogil


cpdef unsigned long get_ident() noexcept:
    """``threading.get_ident()``."""
    return PyThread_get_thread_ident()


cpdef double monotonic() noexcept:
    """``time.monotonic()``."""
    return wsapi_monotonic()


cpdef int set_attribute(object target, object name, object value) except -1:
    """``object.__setattr__(target, name, value)``, without its refusal to apply past a
    compiled class's own ``__setattr__``."""
    return PyObject_GenericSetAttr(target, name, value)
