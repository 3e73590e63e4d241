# PCM16 kernels: NumPy samples -> PCM16 little-endian wire bytes, framed or not, and
# PCM16 bytes -> float32. Included by _ext.pyx; declarations in pcm.pxd.
#
# Semantics (the same as the NumPy reference, fishjam_fast/_pcm_py.py):
#   float -> PCM16: v = x * 32767 (in the input's precision), rounded to the nearest
#       integer, ties to even (np.rint), then clipped to [-32768, 32767]. Input whose
#       magnitude exceeds 2.0 is refused with ValueError (int16-range data passed as
#       float?), and so are infinities and NaN, each with a message of its own that
#       says where the first one is and how many there are (pcm_float_refuse).
#   int16 -> PCM16: the same value, written little-endian.
#   PCM16 -> float32: v / 32768, in [-1, 1 - 2**-15].
#
# Nothing here trusts a size it did not compute: every source is described by a
# pcm_source filled from the array's own shape and strides, every output is allocated
# here or checked to have exactly the bytes needed, before any loop runs. The loops
# use raw pointers (no Cython bounds checks apply to them); each says why it is safe.

# ---------------------------------------------------------------- converters

# The float kernels are in pcm_kernels.h (SSE2 C: see there why).


cdef inline uint16_t pcm_bswap16(uint16_t v) noexcept nogil:
    return <uint16_t>((v >> 8) | (v << 8))


cdef void pcm_gather(const pcm_source *src, Py_ssize_t first, Py_ssize_t n,
                     char *out) noexcept nogil:
    # Copies values [first, first + n) in C order into `out` (n * itemsize bytes,
    # aligned for any kind): the strided, unaligned or transposed case. Every address
    # read is data + r * row_stride + c * col_stride with r < rows and c < cols
    # (first + n <= count, checked by the callers), so it lies inside the array.
    cdef Py_ssize_t r = first // src.cols
    cdef Py_ssize_t c = first % src.cols
    cdef Py_ssize_t i, run
    cdef Py_ssize_t size = src.itemsize
    cdef const char *q = src.data + r * src.row_stride + c * src.col_stride
    cdef Py_ssize_t step = src.col_stride
    if src.cols == 1:
        step = src.row_stride      # 1-D: one long run down the rows
        c = 0
    while n > 0:
        # one run along a row (or down a 1-D array), then on to the next row
        run = n if src.cols == 1 else min(n, src.cols - c)
        if size == 4:
            for i in range(run):
                memcpy(out + 4 * i, q + i * step, 4)
        elif size == 8:
            for i in range(run):
                memcpy(out + 8 * i, q + i * step, 8)
        else:
            for i in range(run):
                memcpy(out + 2 * i, q + i * step, 2)
        out += run * size
        n -= run
        r += 1
        q = src.data + r * src.row_stride
        c = 0


# The same text as fishjam_fast._pcm_py.FLOAT_RANGE_ERROR (a test compares them).
cdef str PCM_FLOAT_RANGE_ERROR = (
    "float samples must be in [-1, 1] (values up to 2.0 in magnitude are clipped), "
    "but these exceed 2.0: int16-range audio stored as float? Scale it first: "
    "samples / 32768"
)


cdef int pcm_float_refuse(const pcm_source *src) except -1 with gil:
    # The slow path, taken only once a kernel said some value is refused: finds the
    # first such value in C order, and raises the ValueError for its kind, with the
    # count of that kind in the whole input. The text is _pcm_py._float_refusal's (the
    # tests compare the two on random input).
    cdef double scratch[PCM_BLOCK]      # gathered values; double: aligned for every kind
    cdef Py_ssize_t pos = 0, m, i, first = -1, nans = 0, infs = 0
    cdef double v, found = 0.0
    while pos < src.count:
        m = min(<Py_ssize_t>PCM_BLOCK, src.count - pos)
        pcm_gather(src, pos, m, <char *>scratch)
        for i in range(m):
            if src.kind == PCM_KIND_F32:
                v = (<float *>scratch)[i]
            else:
                v = scratch[i]
            if isnan(v):
                nans += 1
            elif isinf(v):
                infs += 1
            elif fabs(v) <= PCM_FLOAT_LIMIT:
                continue
            if first < 0:
                first, found = pos + i, v
        pos += m
    if first < 0:  # pragma: no cover - a kernel said there was one
        raise AssertionError("a PCM kernel refused input that holds no refused value")
    if src.ndim == 2:
        where = f"({first // src.cols}, {first % src.cols})"
    else:
        where = str(first)
    if isnan(found):
        raise ValueError(
            f"float samples must be numbers in [-1, 1], but {nans} "
            f"{'is' if nans == 1 else 'are'} NaN (the first at index {where}): find what "
            "produced it (0/0, an uninitialized buffer?) or replace it: "
            "np.nan_to_num(samples, nan=0.0)"
        )
    if isinf(found):
        raise ValueError(
            f"float samples must be finite, in [-1, 1], but {infs} "
            f"{'is' if infs == 1 else 'are'} infinite (the first, "
            f"{'-' if found < 0 else '+'}inf, at index {where}): find what produced it "
            "(an overflow, a division by 0?) or clip: np.clip(samples, -1.0, 1.0)"
        )
    raise ValueError(PCM_FLOAT_RANGE_ERROR)


cdef int pcm_convert(const pcm_source *src, Py_ssize_t first, Py_ssize_t n,
                     uint8_t *dst) except -1 nogil:
    # Raises (ValueError) when float values exceed PCM_FLOAT_LIMIT or are NaN: the
    # conversion loop itself tells, so the check costs no pass of its own. What was
    # written to dst before the raise is the caller's to discard.
    cdef double scratch[PCM_BLOCK]      # gathered values; double: aligned for every kind
    cdef int beyond = 0
    cdef const char *p
    cdef const uint16_t *s16
    cdef Py_ssize_t m, i
    cdef uint16_t u
    if src.packed and (src.kind == PCM_KIND_LE16
                       or (src.kind == PCM_KIND_I16 and PCM_LITTLE_ENDIAN)):
        # already the wire form; memmove: `out` may be the very memory of the input
        memmove(dst, src.data + 2 * first, 2 * n)
        return 0
    while n > 0:
        m = n if n < PCM_BLOCK else PCM_BLOCK
        if src.packed:
            p = src.data + first * src.itemsize
            if src.kind == PCM_KIND_F32 or src.kind == PCM_KIND_F64:
                m = n   # the float kernels take any length in one go
        else:
            pcm_gather(src, first, m, <char *>scratch)
            p = <const char *>scratch
        if src.kind == PCM_KIND_F32:
            beyond = pcm_f32_to_le16(<const float *>p, m, dst)
        elif src.kind == PCM_KIND_F64:
            beyond = pcm_f64_to_le16(<const double *>p, m, dst)
        else:
            # int16 not already in wire form (gathered, or swapped): the value, its
            # low byte first
            s16 = <const uint16_t *>p
            if src.kind == PCM_KIND_I16_SWAPPED:
                for i in range(m):
                    u = pcm_bswap16(s16[i])
                    dst[2 * i] = <uint8_t>(u & 0xFF)
                    dst[2 * i + 1] = <uint8_t>(u >> 8)
            else:
                for i in range(m):
                    u = s16[i]
                    dst[2 * i] = <uint8_t>(u & 0xFF)
                    dst[2 * i + 1] = <uint8_t>(u >> 8)
        if beyond:
            pcm_float_refuse(src)
        dst += 2 * m
        first += m
        n -= m
    return 0


# ---------------------------------------------------------------- sources

cdef object pcm_source_init(pcm_source *src, object samples, Py_buffer *view,
                            bint *has_view):
    """Describes `samples` in `src`; returns the object that must stay alive.

    A bytes-like object (not an ndarray) is taken as PCM16 little-endian and its
    buffer is held in `view` (`has_view` set): the caller releases it.
    """
    cdef cnp.ndarray arr
    cdef int type_num
    cdef int ndim
    has_view[0] = False
    if cnp.PyArray_Check(samples):
        arr = <cnp.ndarray>samples
        type_num = cnp.PyArray_TYPE(arr)
        if type_num == cnp.NPY_INT16:
            src.kind = PCM_KIND_I16 if cnp.PyArray_ISNOTSWAPPED(arr) else PCM_KIND_I16_SWAPPED
        elif type_num == cnp.NPY_FLOAT32 or type_num == cnp.NPY_FLOAT64:
            if not cnp.PyArray_ISNOTSWAPPED(arr):
                # rare: convert to the machine's byte order once (a copy)
                arr = samples.astype(samples.dtype.newbyteorder("="))
            src.kind = PCM_KIND_F32 if type_num == cnp.NPY_FLOAT32 else PCM_KIND_F64
        else:
            raise TypeError(
                f"samples must be an int16, float32 or float64 array, got dtype {samples.dtype}"
            )
        ndim = cnp.PyArray_NDIM(arr)
        if ndim == 1:
            src.rows = cnp.PyArray_DIMS(arr)[0]
            src.cols = 1
            src.row_stride = cnp.PyArray_STRIDES(arr)[0]
            src.col_stride = 0
        elif ndim == 2:
            src.rows = cnp.PyArray_DIMS(arr)[0]
            src.cols = cnp.PyArray_DIMS(arr)[1]
            src.row_stride = cnp.PyArray_STRIDES(arr)[0]
            src.col_stride = cnp.PyArray_STRIDES(arr)[1]
        else:
            raise ValueError(
                f"samples must have shape (n,) or (n, channels), got shape {samples.shape}"
            )
        src.data = <const char *>cnp.PyArray_DATA(arr)
        src.itemsize = cnp.PyArray_ITEMSIZE(arr)
        src.packed = cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISALIGNED(arr)
        src.ndim = ndim
        src.count = src.rows * src.cols  # (n, 0) gives 0: then no loop ever runs
        return arr
    try:
        PyObject_GetBuffer(samples, view, PyBUF_SIMPLE)
    except (TypeError, BufferError, ValueError):
        raise TypeError(
            "samples must be a NumPy array (int16, float32 or float64) or a "
            f"C-contiguous bytes-like object of PCM16, got {type(samples).__name__}"
        ) from None
    has_view[0] = True
    if view.len % 2:
        raise ValueError(f"PCM16 data must have an even number of bytes, got {view.len}")
    src.kind = PCM_KIND_LE16
    src.data = <const char *>view.buf
    src.itemsize = 2
    src.rows = view.len // 2
    src.cols = 1
    src.row_stride = 2
    src.col_stride = 0
    src.packed = True
    src.ndim = 1
    src.count = src.rows
    return samples


cdef int pcm_check_channels(const pcm_source *src, Py_ssize_t channels) except -1:
    if channels < 1:
        raise ValueError(f"channels must be at least 1, got {channels}")
    if src.ndim == 2 and src.cols != channels:
        raise ValueError(
            f"samples have {src.cols} channels (shape (n, {src.cols})), "
            f"but channels={channels}"
        )
    if src.count % channels:
        raise ValueError(
            f"{src.count} samples do not split evenly into {channels} interleaved channels"
        )
    return 0


# ---------------------------------------------------------------- Python API

def pcm16_bytes(object samples):
    """pcm16_bytes(samples) -> bytes

    Encodes samples as PCM16 little-endian (float scaled by 32767, rounded half to
    even, clipped; beyond 2.0, infinite or NaN: ValueError). `samples`: an int16 (either byte order), float32 or
    float64 array of shape (n,) or (n, channels), any strides; or bytes-like PCM16,
    returned as bytes.
    """
    cdef pcm_source src
    cdef Py_buffer view
    cdef bint has_view = False
    cdef bytes result
    cdef uint8_t *dst
    if type(samples) is bytes:
        if len(<bytes>samples) % 2:
            raise ValueError(
                f"PCM16 data must have an even number of bytes, got {len(<bytes>samples)}"
            )
        return samples
    keep = pcm_source_init(&src, samples, &view, &has_view)
    try:
        result = PyBytes_FromStringAndSize(NULL, 2 * src.count)
        dst = <uint8_t *>PyBytes_AS_STRING(result)
        with nogil:
            pcm_convert(&src, 0, src.count, dst)
        return result
    finally:
        if has_view:
            PyBuffer_Release(&view)


def pcm16_into(object samples, object out):
    """pcm16_into(samples, out) -> int

    Writes samples as PCM16 little-endian into `out`, a writable C-contiguous buffer
    (bytearray, memoryview, uint8/int8/little-endian int16 array) of exactly
    2 * samples.size bytes, and returns that number. `out` must not overlap `samples`
    except by being the very same int16 memory.
    """
    cdef pcm_source src
    cdef Py_buffer view
    cdef bint has_view = False
    cdef Py_buffer out_view
    cdef bint has_out = False
    cdef cnp.ndarray out_arr
    cdef Py_ssize_t needed
    if cnp.PyArray_Check(out):
        out_arr = <cnp.ndarray>out
        if not (
            cnp.PyArray_TYPE(out_arr) in (cnp.NPY_UINT8, cnp.NPY_INT8)
            or (cnp.PyArray_TYPE(out_arr) == cnp.NPY_INT16
                and cnp.PyArray_ISNOTSWAPPED(out_arr) == PCM_LITTLE_ENDIAN)
        ):
            raise TypeError(
                f"out must be a uint8, int8 or little-endian int16 array, got dtype {out.dtype}"
            )
        if not cnp.PyArray_IS_C_CONTIGUOUS(out_arr):
            raise ValueError("out must be C-contiguous")
        if not cnp.PyArray_ISWRITEABLE(out_arr):
            raise ValueError("out is read-only")
    keep = pcm_source_init(&src, samples, &view, &has_view)
    try:
        try:
            PyObject_GetBuffer(out, &out_view, PyBUF_WRITABLE)
        except (TypeError, BufferError, ValueError) as exc:
            raise TypeError(
                "out must be a writable C-contiguous buffer (bytearray, memoryview, "
                f"NumPy array), got {type(out).__name__}: {exc}"
            ) from None
        has_out = True
        needed = 2 * src.count
        if out_view.len != needed:
            raise ValueError(
                f"out holds {out_view.len} bytes, but {src.count} samples need {needed}"
            )
        with nogil:
            pcm_convert(&src, 0, src.count, <uint8_t *>out_view.buf)
        return needed
    finally:
        if has_out:
            PyBuffer_Release(&out_view)
        if has_view:
            PyBuffer_Release(&view)


cdef cnp.ndarray pcm_le16_to_float32(const uint8_t *data, Py_ssize_t n):
    cdef cnp.npy_intp count = n // 2
    cdef cnp.ndarray result = cnp.PyArray_EMPTY(1, &count, cnp.NPY_FLOAT32, 0)
    cdef float *o = <float *>cnp.PyArray_DATA(result)
    cdef int16_t v
    cdef Py_ssize_t i
    with nogil:
        # count = n // 2 values: reads end at data + 2 * count <= data + n, writes at
        # o + count (the array was just made with count elements)
        if PCM_LITTLE_ENDIAN:
            for i in range(count):
                memcpy(&v, data + 2 * i, 2)
                o[i] = <float>v * pcm_f32_read_scale
        else:
            for i in range(count):
                v = <int16_t>(data[2 * i] | (data[2 * i + 1] << 8))
                o[i] = <float>v * pcm_f32_read_scale
    return result


def pcm16_to_float32(object data):
    """pcm16_to_float32(data) -> numpy.ndarray

    Decodes PCM16 little-endian bytes to a new 1-D float32 array, value / 32768.
    """
    cdef Py_buffer view
    try:
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    except (TypeError, BufferError, ValueError):
        raise TypeError(
            f"data must be a C-contiguous bytes-like object, got {type(data).__name__}"
        ) from None
    try:
        if view.len % 2:
            raise ValueError(f"PCM16 data must have an even number of bytes, got {view.len}")
        return pcm_le16_to_float32(<const uint8_t *>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


def frame_pcm16(str track_id not None, object samples, Py_ssize_t channels,
                Py_ssize_t samples_per_chunk):
    """frame_pcm16(track_id, samples, channels, samples_per_chunk) -> (buffer, offsets)

    Encodes `samples` as PCM16 LE and frames it, in one pass into one new buffer, as
    consecutive AgentRequest{track_data{track_id, data}} messages of
    `samples_per_chunk * channels` samples each (the last one may be shorter).
    Byte-identical to _codec_py.frame_track_data(track_id, pcm16_bytes(samples),
    2 * samples_per_chunk * channels).

    Returns (buffer, offsets): a new uint8 array, and len(frames) + 1 int64 offsets;
    frame i is buffer[offsets[i]:offsets[i + 1]].
    """
    cdef pcm_source src
    cdef Py_buffer view
    cdef bint has_view = False
    cdef bytes id_field

    if samples_per_chunk < 1:
        raise ValueError(f"samples_per_chunk must be at least 1, got {samples_per_chunk}")
    if channels < 1:
        raise ValueError(f"channels must be at least 1, got {channels}")
    if samples_per_chunk > (PY_SSIZE_T_MAX // 4) // channels:
        raise ValueError(f"samples_per_chunk {samples_per_chunk} is too large")
    id_field = codec_track_id_field(track_id)
    keep = pcm_source_init(&src, samples, &view, &has_view)
    try:
        pcm_check_channels(&src, channels)
        # the codec's framing loop; each value becomes 2 bytes of payload
        return codec_frame_run(
            id_field, src.count, samples_per_chunk * channels, 2, pcm_frame_payload, &src
        )
    finally:
        if has_view:
            PyBuffer_Release(&view)


cdef int pcm_frame_payload(
    const void *src, Py_ssize_t first, Py_ssize_t count, unsigned char *dst
) except -1 nogil:
    """codec_payload_writer of frame_pcm16: values [first, first + count) as PCM16."""
    return pcm_convert(<const pcm_source *>src, first, count, dst)
