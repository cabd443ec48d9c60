# cython: language_level=3, boundscheck=False, wraparound=False
"""The compiled twin of ``handshake._read_plain_head_py``: the reader of a plain 101 response
head (``handshake.py`` says what it is and why; the two give the same answer for any bytes).

Wired in at one place: ``handshake.py`` uses it when this extension is built and
``WSAPI_PURE_PYTHON`` is not set.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t

from .constants import MAX_HANDSHAKE_RESPONSE_SIZE as _MAX_HEAD

cdef bytes _PLAIN_STATUS = b"HTTP/1.1 101"
cdef Py_ssize_t MAX_HANDSHAKE_RESPONSE_SIZE = _MAX_HEAD

# RFC 9110 5.6.2 tchar: the bytes of a token (a header name).
cdef bint _TCHAR[256]
for _byte in range(256):
    _TCHAR[_byte] = (
        48 <= _byte <= 57 or 65 <= _byte <= 90 or 97 <= _byte <= 122
        or chr(_byte) in "!#$%&'*+-.^_`|~"
    )

cdef inline bint _is_field_byte(uint8_t c):
    """A byte of a plain header value or reason phrase: a tab or printable ASCII."""
    return c == 9 or 32 <= c <= 126


cdef inline bint _has_bare_blank_line(const uint8_t* p, Py_ssize_t n):
    """Whether ``\\n\\n`` or ``\\n\\r\\n`` occurs (h11 would end a head there)."""
    cdef Py_ssize_t i
    for i in range(n - 1):
        if p[i] == 10 and (p[i + 1] == 10 or (p[i + 1] == 13 and i + 2 < n and p[i + 2] == 10)):
            return True
    return False


def read_plain_head(bytes data):
    """``handshake._read_plain_head`` without building the ``HandshakeResponse``: the
    reason phrase, the headers and the head's size for a plain 101; True when more bytes
    may still make one; False when h11 must read it."""
    cdef const uint8_t* p = <const uint8_t*> PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t end = -1, i, start, colon, value_start, value_end
    cdef bint upper
    for i in range(n - 3):
        if p[i] == 13 and p[i + 1] == 10 and p[i + 2] == 13 and p[i + 3] == 10:
            end = i
            break
    if end < 0:
        if n > MAX_HANDSHAKE_RESPONSE_SIZE:
            return False
        for i in range(min(n, 12)):
            if p[i] != (<const uint8_t*> PyBytes_AS_STRING(_PLAIN_STATUS))[i]:
                return False
        return not _has_bare_blank_line(p, n)
    if end + 4 > MAX_HANDSHAKE_RESPONSE_SIZE or end < 12:
        return False
    for i in range(12):
        if p[i] != (<const uint8_t*> PyBytes_AS_STRING(_PLAIN_STATUS))[i]:
            return False
    # The status line: "HTTP/1.1 101", then CRLF or a space and the reason phrase.
    i = 12
    reason = ""
    if p[i] == 32:
        i += 1
        start = i
        while _is_field_byte(p[i]):
            i += 1
        reason = data[start:i].decode("ascii")
    if not (p[i] == 13 and p[i + 1] == 10):
        return False
    i += 2
    # The header lines: a token, ":", a value of tabs and printable ASCII, CRLF; the head
    # ends at the first blank line (end + 2), which no line before it can contain.
    headers = []
    while i < end + 2:
        start = i
        upper = False
        while _TCHAR[p[i]]:
            upper = upper or 65 <= p[i] <= 90
            i += 1
        if i == start or p[i] != 58:  # ":"
            return False
        colon = i
        i += 1
        while _is_field_byte(p[i]):
            i += 1
        if not (p[i] == 13 and p[i + 1] == 10):
            return False
        value_start, value_end = colon + 1, i
        while value_start < value_end and (p[value_start] == 32 or p[value_start] == 9):
            value_start += 1
        while value_end > value_start and (p[value_end - 1] == 32 or p[value_end - 1] == 9):
            value_end -= 1
        name = data[start:colon].decode("ascii")
        if upper:
            name = name.lower()
        if name == "content-length" or name == "transfer-encoding":
            return False  # h11 checks their values.
        headers.append((name, data[value_start:value_end].decode("ascii")))
        i += 2
    if i != end + 2:
        return False
    return reason, tuple(headers), end + 4
