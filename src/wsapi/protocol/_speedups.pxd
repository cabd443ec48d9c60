# The C-level interface of _speedups.pyx for other compiled modules (cimport).

from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from libc.stdint cimport uint8_t

cdef class LoggerCheck:
    """logger.isEnabledFor(level), fast (enabled())."""

    cdef object logger
    cdef object level

    cdef bint enabled(self) except -1


cdef class MessageReceiver:
    """A receiver of messages that deliver_messages calls at C level (no Python call):
    subclasses override receive()."""

    cdef int receive(self, object message) except -1


# encode_masked_frame() of the n bytes at src: one masked frame with a fresh key.
cdef bytes masked_frame(int first_byte, const uint8_t* src, Py_ssize_t n)


# Fields of instances of Python classes with __slots__, read and written at their offsets (what
# the attribute does, without looking it up). slot_offset() checks that ``name`` is an object
# slot of ``cls``; the caller checks that an object is an instance of ``cls`` before using it.
cdef Py_ssize_t slot_offset(type cls, str name) except -1


cdef inline object slot_get(object obj, Py_ssize_t offset):
    """``obj.<slot at offset>``."""
    cdef PyObject* value = (<PyObject**> ((<char*> <PyObject*> obj) + offset))[0]
    if value is NULL:
        raise AttributeError("an unset slot")
    return <object> value


cdef inline void slot_put(object obj, Py_ssize_t offset, object value):
    """``obj.<slot at offset> = value``."""
    cdef PyObject** field = <PyObject**> ((<char*> <PyObject*> obj) + offset)
    cdef PyObject* old = field[0]
    Py_INCREF(value)
    field[0] = <PyObject*> value
    Py_XDECREF(old)
