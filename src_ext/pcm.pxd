# Declarations of the PCM16 kernels (pcm.pyx); included by fishjam_fast/_ext.pxd.
#
# Every C-level name here starts with `pcm_` / `PCM_`: this file shares one extension
# unit (_ext.pyx) with the buffer and codec files.

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.math cimport fabs, isinf, isnan
from libc.stdint cimport int16_t, int64_t, uint8_t, uint16_t, uint64_t
from libc.string cimport memcpy, memmove

cimport numpy as cnp


cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


cdef extern from "pcm_kernels.h":
    # PCM16 is little-endian on the wire; true when the machine is too
    const bint PCM_LITTLE_ENDIAN
    # float input whose magnitude exceeds this is refused (int16-range data as float)
    const double PCM_FLOAT_LIMIT
    # n floats -> n PCM16 LE at dst (any alignment); x aligned for its type; returns
    # nonzero when some x is refused: |x| > PCM_FLOAT_LIMIT, infinite or NaN
    int pcm_f32_to_le16(const float *x, Py_ssize_t n, uint8_t *dst) noexcept nogil
    int pcm_f64_to_le16(const double *x, Py_ssize_t n, uint8_t *dst) noexcept nogil


cdef extern from *:
    """
    /* 2**-15: reading divides by 32768, exactly, as a multiplication. */
    static const float pcm_f32_read_scale = 1.0f / 32768.0f;
    """
    const float pcm_f32_read_scale


# What kind of values a pcm_source holds.
cdef enum pcm_kind:
    PCM_KIND_I16 = 0          # int16 in the machine's byte order
    PCM_KIND_I16_SWAPPED = 1  # int16 in the other byte order
    PCM_KIND_F32 = 2          # float32, machine byte order, scaled by 32767
    PCM_KIND_F64 = 3          # float64, machine byte order, scaled by 32767
    PCM_KIND_LE16 = 4         # bytes that already are PCM16 little-endian


# Strided values are gathered in blocks of this many, through a stack buffer.
cdef enum:
    PCM_BLOCK = 512


# A read-only 1-D or 2-D run of samples, visited in C (row-major) order: sample
# `k` is at row k // cols, column k % cols. Filled by pcm_source_init.
ctypedef struct pcm_source:
    const char *data        # the first value
    int kind                # a pcm_kind
    Py_ssize_t itemsize     # bytes per value: 2, 4 or 8
    Py_ssize_t rows         # number of rows (values, for 1-D input)
    Py_ssize_t cols         # values per row (1 for 1-D input)
    Py_ssize_t row_stride   # bytes from one row to the next
    Py_ssize_t col_stride   # bytes from one value of a row to the next
    bint packed             # values are aligned and back to back: one flat run
    int ndim                # 1 or 2: the array's (1 for bytes)
    Py_ssize_t count        # rows * cols


# Values [first, first + n) of src -> 2 * n bytes of PCM16 LE at dst; the caller
# checks first + n <= src.count and that dst holds 2 * n bytes. Raises ValueError
# (taking the GIL) when float values exceed PCM_FLOAT_LIMIT or are NaN.
cdef int pcm_convert(
    const pcm_source *src, Py_ssize_t first, Py_ssize_t n, uint8_t *dst
) except -1 nogil

# PCM16 LE bytes (n of them, even) -> a new 1-D float32 array, value / 32768: the
# kernel of pcm16_to_float32 and IncomingTrackData.samples().
cdef cnp.ndarray pcm_le16_to_float32(const uint8_t *data, Py_ssize_t n)
