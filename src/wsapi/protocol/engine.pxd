# The compiled build of engine.py: Cython compiles engine.py itself (pure-Python mode) with
# these declarations, so ClientConnection becomes an extension type that owns its fields.
# Other compiled modules cimport it and read its fields directly (``_reading.pyx``).
# Every field is public: the Python code of the other layers reads them as attributes.

cdef class ClientConnection:
    cdef public bytearray _buffer
    cdef public bint _eof
    cdef public Py_ssize_t _frame_consumed
    cdef public Py_ssize_t _frame_validated
    cdef public bytearray _message
    cdef public object _message_opcode
    cdef public list _output
    cdef public object _pending
    cdef public object _reader
    cdef public object _validator
    cdef public object close_received
    cdef public object close_sent
    cdef public object deflate
    cdef public str extensions
    cdef public object failure
    cdef public object max_message_size
    cdef public str protocol
    cdef public object request
    cdef public object state

    # The methods the pump calls for every read, called at C level.
    cpdef receive_data(self, data)
    cpdef next_event(self)
    cpdef list data_to_send(self)
    cpdef bint may_have_events(self)
    # The steps of sending a message, called at C level by the pump's send_message().
    cpdef send_message(self, payload, bint text)
    cpdef _send_data(self, int opcode, payload)
    cpdef _write_frame(self, int opcode, payload)


cdef object _CONNECTING, _OPEN, _CLOSING, _CLOSED
cdef int _TEXT, _BINARY
