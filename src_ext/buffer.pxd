# Declarations of the byte-buffer layer (buffer.pyx); included by fishjam_fast/_ext.pxd,
# the module's declarations, as pgproto.pxd includes frb.pxd and buffer.pxd.

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy
from cpython.buffer cimport (
    PyBUF_C_CONTIGUOUS,
    PyBUF_FULL_RO,
    PyBUF_SIMPLE,
    PyBuffer_IsContiguous,
    PyBuffer_Release,
    PyBuffer_ToContiguous,
    PyObject_GetBuffer,
)
from cpython.bytes cimport (
    PyBytes_AS_STRING,
    PyBytes_CheckExact,
    PyBytes_FromStringAndSize,
    PyBytes_GET_SIZE,
)
from cpython.unicode cimport PyUnicode_DecodeUTF8


cdef extern from "Python.h":
    # returns a pointer into the str's cached UTF-8 form (no copy for ASCII);
    # raises UnicodeEncodeError (a ValueError) for lone surrogates
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL


# Protobuf wire types (protobuf.dev/programming-guides/encoding/#structure).
cdef enum:
    WT_VARINT = 0
    WT_I64 = 1
    WT_LEN = 2
    WT_SGROUP = 3   # deprecated groups: rejected
    WT_EGROUP = 4   # deprecated groups: rejected
    WT_I32 = 5

cdef enum:
    RCUR_MAX_VARINT = 10  # a varint is at most 10 bytes (64 bits in 7-bit groups)
    RCUR_MAX_VARINT32 = 5  # keys and lengths are 32-bit varints: at most 5 bytes
    RCUR_VALID_WIRE_TYPES = 0x27  # bit set of wire types 0, 1, 2 and 5
    STRCACHE_SLOTS = 32        # slots of the decoded-string cache (the hash gives 5 bits)
    STRCACHE_MAX_BYTES = 96    # longer strings are decoded every time


# A read cursor over untrusted bytes (asyncpg's frb): every read goes through
# rcur_take, which checks the length against what remains.
cdef struct ReadCursor:
    const unsigned char *ptr    # next unread byte
    Py_ssize_t remaining        # bytes left in this (sub)message
    const unsigned char *base   # first byte of the whole frame, for error offsets


# Prototypes of the buffer functions other parts call (its `cdef inline` helpers,
# rcur_tag, rcur_sub, wbuf_write_*..., are defined in buffer.pyx only: Cython takes no
# prototype of an inline function; pgproto's frb.pxd holds such bodies instead).
cdef int rcur_skip(ReadCursor *cur, int wire_type) except -1
cdef int wbuf_check_written(
    const unsigned char *start, const unsigned char *end, Py_ssize_t size, str what
) except -1
