# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twins of the hot functions of ``codec.py``, with the same names and behaviour.

``codec`` uses them when this extension is built (``pip install`` compiles it with the
machine's C compiler when Cython is available) and ``WSAPI_PURE_PYTHON`` is not set.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy


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
    cdef const uint8_t* src = &view[0]
    cdef const uint8_t* k = <const uint8_t*> PyBytes_AS_STRING(key)
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
    return result
