# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twins of the hot functions of ``codec.py`` (same names and behaviour): masking and
the masked frame writer.

``codec`` uses them when this extension is built (``pip install`` compiles it with the
machine's C compiler when Cython is available) and ``WSAPI_PURE_PYTHON`` is not set.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
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


def _forget_keys():
    """A forked child must not use the keys its parent uses too: it starts a pool of its
    own."""
    global _key_pool, _key_pos
    _key_pool = b""
    _key_pos = KEY_POOL_SIZE


if hasattr(os, "register_at_fork"):  # (Not on Windows, which has no fork.)
    os.register_at_fork(after_in_child=_forget_keys)


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
