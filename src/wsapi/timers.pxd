# The compiled build of timers.py (see protocol/engine.pxd): PumpTimers, the base of
# ConnectionPump, as an extension type with these fields.

from wsapi.protocol.engine cimport ClientConnection
from wsapi.socket_transport cimport BufferedReceiver


cdef class PumpTimers(BufferedReceiver):
    cdef public ClientConnection engine
    cdef public object handler
    cdef public object loop
    cdef public bint _lost
    cdef public object _deadlines
    cdef public object _keepalive
    cdef public object _ping_deadline
    cdef public object _pings_sent
    cdef public object _timer
    cdef public object close_timeout
    cdef public object last_pong
    cdef public object ping_interval
    cdef public object ping_timeout


cdef object _CONNECTING, _OPEN
