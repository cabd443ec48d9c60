# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twins of the hot functions of ``codec.py`` and ``handshake.py`` (same names and
behaviour): masking, the masked frame writer, the plain-101 head reader.

``codec`` and ``handshake`` use them when this extension is built (``pip install`` compiles it with the
machine's C compiler when Cython is available) and ``WSAPI_PURE_PYTHON`` is not set.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

import os

def apply_mask(data, bytes key):
    """Mask or unmask ``data`` with the 4-byte ``key`` (RFC 6455 5.3)."""
    if len(key) != 4:
        raise ValueError("a masking key is 4 bytes")
    if isinstance(data, memoryview) and (data.format != "B" or not data.c_contiguous):
        data = data.tobytes()
    cdef const uint8_t[::1] view = data
    cdef Py_ssize_t n = view.shape[0]
    cdef bytes result = PyBytes_FromStringAndSize(NULL, n)
    if n == 0:
        return result
    cdef uint8_t* out = <uint8_t*> PyBytes_AS_STRING(result)
    _mask(&view[0], out, n, <const uint8_t*> PyBytes_AS_STRING(key))
    return result


cdef inline void _mask(const uint8_t* src, uint8_t* out, Py_ssize_t n, const uint8_t* k):
    """``out[i] = src[i] ^ k[i % 4]`` for ``i < n`` (RFC 6455 5.3)."""
    cdef uint32_t key32
    memcpy(&key32, k, 4)
    cdef uint64_t key64 = (<uint64_t> key32 << 32) | key32
    cdef Py_ssize_t i = 0
    cdef uint64_t word
    # Eight bytes at a time; the key repeats every 4 bytes, so an 8-byte word takes it twice.
    while i + 8 <= n:
        memcpy(&word, src + i, 8)
        word ^= key64
        memcpy(out + i, &word, 8)
        i += 8
    while i < n:
        out[i] = src[i] ^ k[i & 3]
        i += 1


# RFC 6455 5.3: a fresh key from a strong source of entropy for every frame. Keys are drawn
# in order from a pool of os.urandom() bytes, each 4 bytes used once (as codec.mask_key).
cdef enum:
    KEY_POOL_SIZE = 4096
cdef bytes _key_pool = b""
cdef Py_ssize_t _key_pos = KEY_POOL_SIZE


def encode_masked_frame(int first_byte, data):
    """One masked frame as a single ``bytes``: the header (``first_byte`` holds FIN, RSV1-3
    and the opcode), a fresh masking key, and ``data`` masked with it -- what
    ``encode_frame_header(first_byte, len(data), key) + apply_mask(data, key)`` gives with
    ``key = mask_key()``, in one allocation and one pass over the payload."""
    cdef const uint8_t[::1] view
    if type(data) is bytes:
        return masked_frame(first_byte, <const uint8_t*> PyBytes_AS_STRING(data),
                            PyBytes_GET_SIZE(data))
    if isinstance(data, memoryview) and (data.format != "B" or not data.c_contiguous):
        data = data.tobytes()
    view = data
    return masked_frame(first_byte, &view[0] if view.shape[0] else NULL, view.shape[0])


cdef bytes masked_frame(int first_byte, const uint8_t* src, Py_ssize_t n):
    """``encode_masked_frame`` of the ``n`` bytes at ``src``."""
    global _key_pool, _key_pos
    cdef Py_ssize_t header = 2 if n < 126 else (4 if n < 65536 else 10)
    cdef bytes frame = PyBytes_FromStringAndSize(NULL, header + 4 + n)
    cdef uint8_t* out = <uint8_t*> PyBytes_AS_STRING(frame)
    cdef int i
    out[0] = <uint8_t> first_byte
    if n < 126:
        out[1] = 0x80 | <uint8_t> n
    elif n < 65536:
        out[1] = 0x80 | 126
        out[2] = <uint8_t> (n >> 8)
        out[3] = <uint8_t> n
    else:
        out[1] = 0x80 | 127
        for i in range(8):
            out[2 + i] = <uint8_t> ((<uint64_t> n) >> (56 - 8 * i))
    if _key_pos + 4 > KEY_POOL_SIZE:
        _key_pool = os.urandom(KEY_POOL_SIZE)
        _key_pos = 0
    cdef const uint8_t* k = <const uint8_t*> PyBytes_AS_STRING(_key_pool) + _key_pos
    _key_pos += 4
    memcpy(out + header, k, 4)
    _mask(src, out + header + 4, n, k)
    return frame

# The opening handshake: the plain 101 (handshake._read_plain_head, the Python twin, says
# what it is and why; the two give the same answer for any bytes).

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
