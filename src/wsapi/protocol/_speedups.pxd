# The C-level interface of _speedups.pyx for other compiled modules (cimport).

from libc.stdint cimport uint8_t

# encode_masked_frame() of the n bytes at src: one masked frame with a fresh key.
cdef bytes masked_frame(int first_byte, const uint8_t* src, Py_ssize_t n)

