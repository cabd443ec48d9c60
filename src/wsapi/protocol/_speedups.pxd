# The C-level interface of _speedups.pyx for other compiled modules (cimport).

cdef class MessageReceiver:
    """A receiver of messages that deliver_messages calls at C level (no Python call):
    subclasses override receive()."""

    cdef int receive(self, object message) except -1
