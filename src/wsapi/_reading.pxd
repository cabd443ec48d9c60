# The C-level interface of _reading.pyx: the compiled pump cimports deliver_messages (pump.pxd).

from wsapi.protocol.engine cimport ClientConnection


cpdef Py_ssize_t deliver_messages(
    ClientConnection engine,
    object on_message,
    object report_error,
    Py_ssize_t limit,
    object data=*,
    Py_ssize_t size=*,
) except -1
