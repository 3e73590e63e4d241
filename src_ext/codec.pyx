# The AgentRequest encoders and the AgentResponse decoder (protos/fishjam_fast/_proto).
#
# Encoding follows protobuf's canonical output byte for byte (what google.protobuf's
# SerializeToString and betterproto write): fields in field-number order, proto3
# defaults (0, "", b"") left out, the chosen oneof member and set sub-messages
# always written, even when empty.
#
# Decoding follows protobuf's parser (upb) on untrusted input, and is stricter where
# upb is lax: groups (wire types 3/4) and varints with bits past 64 are rejected.
# Unknown fields are skipped, a known field with an unexpected wire type counts as
# unknown, fields may come in any order; a repeated scalar: the last one wins; a
# repeated sub-message: merged; a different oneof member: replaces the earlier one.

cdef tuple _TRACK_TYPES = TRACK_TYPES
cdef object _AUTHENTICATED = Authenticated.__new__(Authenticated)
cdef str _BUFFER_TYPES = "bytes, bytearray, memoryview, NumPy array or another buffer"

# -- input checks ---------------------------------------------------------------------


cdef inline const char *_utf8(object value, str name, Py_ssize_t *size) except NULL:
    """The UTF-8 bytes of a str argument (TypeError naming it if it is not a str)."""
    if type(value) is not str and not isinstance(value, str):
        raise TypeError(f"{name} must be str, not {type(value).__name__}")
    return PyUnicode_AsUTF8AndSize(value, size)


cdef int64_t _int_arg(object value, str name, int64_t low, int64_t high) except? -1:
    """An integer argument in [low, high]: TypeError if not an int (bool included,
    as google.protobuf), ValueError if out of range."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not bool")
    value = operator_index(value)
    if not low <= value <= high:
        raise ValueError(f"{name} out of range: {value}")
    return <int64_t>value


cdef int _get_data(object data, Py_buffer *view) except -1:
    """Gets a read-only buffer of ``data`` (strided ones too, see _copy_data)."""
    if PyObject_GetBuffer(data, view, PyBUF_FULL_RO) == -1:
        return -1
    return 0


cdef int _data_view(object data, Py_buffer *view) except -1:
    try:
        _get_data(data, view)
    except TypeError:
        raise TypeError(
            f"data must be a bytes-like object ({_BUFFER_TYPES}), not {type(data).__name__}"
        ) from None
    return 0


cdef inline int _copy_data(unsigned char *dest, Py_buffer *view) except -1:
    """Copies the buffer's bytes in C order: one memcpy if contiguous, else one
    strided copy (PyBuffer_ToContiguous), straight into the output."""
    if view.len == 0:
        return 0
    if PyBuffer_IsContiguous(view, b'C'):
        memcpy(dest, view.buf, view.len)
        return 0
    return PyBuffer_ToContiguous(dest, view, view.len, b'C')


# -- encoders -------------------------------------------------------------------------


cdef bytes _encode_string_member(unsigned char key, object value, str name):
    """AgentRequest{<member key>{1: value}}: the four single-string requests."""
    cdef Py_ssize_t n
    cdef const char *s = _utf8(value, name, &n)
    cdef Py_ssize_t inner = wbuf_len_field_size(n) if n else 0
    cdef Py_ssize_t size = wbuf_len_field_size(inner)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, size)
    cdef unsigned char *start = <unsigned char *>PyBytes_AS_STRING(out)
    cdef unsigned char *p = wbuf_write_key_len(start, key, inner)
    if n:
        p = wbuf_write_bytes(p, KEY_FIELD1_LEN, s, n)
    if FJ_DEBUG:
        wbuf_check_written(start, p, size, f"AgentRequest member {key:#x} ({name})")
    return out


def encode_auth_request(token):
    """Encodes ``AgentRequest{auth_request{token}}``.

    Raises:
        TypeError: ``token`` is not a str.
        UnicodeEncodeError: (a ValueError) ``token`` holds lone surrogates.
    """
    return _encode_string_member(KEY_AUTH_REQUEST, token, "token")


def encode_remove_track(track_id):
    """Encodes ``AgentRequest{remove_track{track_id}}``."""
    return _encode_string_member(KEY_REMOVE_TRACK, track_id, "track_id")


def encode_interrupt_track(track_id):
    """Encodes ``AgentRequest{interrupt_track{track_id}}``."""
    return _encode_string_member(KEY_INTERRUPT_TRACK, track_id, "track_id")


def encode_capture_image(track_id):
    """Encodes ``AgentRequest{capture_image{track_id}}``."""
    return _encode_string_member(KEY_CAPTURE_IMAGE, track_id, "track_id")


cdef inline Py_ssize_t _varint_field_size(uint64_t value) noexcept:
    return 1 + wbuf_varint_size(value) if value else 0


cdef inline unsigned char *_write_varint_field(
    unsigned char *p, unsigned char key, uint64_t value
) noexcept:
    if value:
        p[0] = key
        p = wbuf_write_varint(p + 1, value)
    return p


def encode_add_track(track_id, metadata, encoding, sample_rate, channels, track_type=2):
    """Encodes ``AgentRequest{add_track{track{id, type, metadata}, codec_params}}``.

    Raises:
        TypeError: ``track_id`` or ``metadata`` is not a str, a number is not an int.
        ValueError: ``encoding``/``track_type`` outside int32, ``sample_rate``/``channels``
            outside uint32, or a string with lone surrogates (UnicodeEncodeError).
    """
    cdef Py_ssize_t id_n, meta_n
    cdef const char *id_s = _utf8(track_id, "track_id", &id_n)
    cdef const char *meta_s = _utf8(metadata, "metadata", &meta_n)
    # enums are int32 on the wire, sign-extended to 64 bits when negative
    cdef uint64_t ttype = <uint64_t>_int_arg(track_type, "track_type", -2**31, 2**31 - 1)
    cdef uint64_t enc = <uint64_t>_int_arg(encoding, "encoding", -2**31, 2**31 - 1)
    cdef uint64_t rate = <uint64_t>_int_arg(sample_rate, "sample_rate", 0, 2**32 - 1)
    cdef uint64_t chans = <uint64_t>_int_arg(channels, "channels", 0, 2**32 - 1)
    cdef Py_ssize_t track_n = (
        (wbuf_len_field_size(id_n) if id_n else 0)
        + _varint_field_size(ttype)
        + (wbuf_len_field_size(meta_n) if meta_n else 0)
    )
    cdef Py_ssize_t codec_n = (
        _varint_field_size(enc) + _varint_field_size(rate) + _varint_field_size(chans)
    )
    cdef Py_ssize_t add_n = wbuf_len_field_size(track_n) + wbuf_len_field_size(codec_n)
    cdef Py_ssize_t size = wbuf_len_field_size(add_n)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, size)
    cdef unsigned char *start = <unsigned char *>PyBytes_AS_STRING(out)
    cdef unsigned char *p = wbuf_write_key_len(start, KEY_ADD_TRACK, add_n)
    p = wbuf_write_key_len(p, KEY_FIELD1_LEN, track_n)
    if id_n:
        p = wbuf_write_bytes(p, KEY_FIELD1_LEN, id_s, id_n)
    p = _write_varint_field(p, KEY_FIELD2_VARINT, ttype)
    if meta_n:
        p = wbuf_write_bytes(p, KEY_FIELD3_LEN, meta_s, meta_n)
    p = wbuf_write_key_len(p, KEY_FIELD2_LEN, codec_n)
    p = _write_varint_field(p, KEY_FIELD1_VARINT, enc)
    p = _write_varint_field(p, KEY_FIELD2_VARINT, rate)
    p = _write_varint_field(p, KEY_FIELD3_VARINT, chans)
    if FJ_DEBUG:
        wbuf_check_written(start, p, size, "encode_add_track")
    return out


cdef inline Py_ssize_t _track_data_size(Py_ssize_t id_field_n, Py_ssize_t data_n) noexcept nogil:
    """Size of AgentRequest{track_data{...}} given the track_id field's size."""
    cdef Py_ssize_t inner = id_field_n + (wbuf_len_field_size(data_n) if data_n else 0)
    return wbuf_len_field_size(inner)


cdef inline unsigned char *_write_track_data(
    unsigned char *p, const char *id_field, Py_ssize_t id_field_n, Py_ssize_t data_n
) noexcept nogil:
    """Writes everything of a track_data frame up to the payload, returns where the
    payload goes (the caller copies exactly ``data_n`` bytes there)."""
    cdef Py_ssize_t inner = id_field_n + (wbuf_len_field_size(data_n) if data_n else 0)
    p = wbuf_write_key_len(p, KEY_TRACK_DATA, inner)
    memcpy(p, id_field, id_field_n)
    p += id_field_n
    if data_n:
        p = wbuf_write_key_len(p, KEY_FIELD2_LEN, data_n)
    return p


cdef bytes codec_track_id_field(object track_id):
    cdef Py_ssize_t n
    cdef const char *s = _utf8(track_id, "track_id", &n)
    if not n:
        return b""
    cdef Py_ssize_t size = wbuf_len_field_size(n)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, size)
    cdef unsigned char *start = <unsigned char *>PyBytes_AS_STRING(out)
    cdef unsigned char *p = wbuf_write_bytes(start, KEY_FIELD1_LEN, s, n)
    if FJ_DEBUG:
        wbuf_check_written(start, p, size, "codec_track_id_field")
    return out


cdef bytes _encode_track_data(bytes id_field, object data):
    cdef Py_ssize_t id_field_n = PyBytes_GET_SIZE(id_field)
    cdef Py_buffer view
    cdef Py_ssize_t size
    cdef bytes out
    cdef unsigned char *start
    cdef unsigned char *p
    if PyBytes_CheckExact(data):  # the common case: no buffer-protocol round trip
        size = _track_data_size(id_field_n, PyBytes_GET_SIZE(data))
        out = PyBytes_FromStringAndSize(NULL, size)
        start = <unsigned char *>PyBytes_AS_STRING(out)
        p = _write_track_data(
            start, PyBytes_AS_STRING(id_field), id_field_n, PyBytes_GET_SIZE(data)
        )
        memcpy(p, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        if FJ_DEBUG:
            wbuf_check_written(start, p + PyBytes_GET_SIZE(data), size, "encode_track_data")
        return out
    _data_view(data, &view)
    try:
        out = PyBytes_FromStringAndSize(NULL, _track_data_size(id_field_n, view.len))
        _fill_track_data(<unsigned char *>PyBytes_AS_STRING(out), id_field, &view)
    finally:
        PyBuffer_Release(&view)
    return out


cdef inline Py_ssize_t _fill_track_data(
    unsigned char *start, bytes id_field, Py_buffer *view
) except -1:
    """Writes the whole track_data message carrying ``view`` at ``start`` (room for
    _track_data_size bytes); returns its size."""
    cdef Py_ssize_t id_field_n = PyBytes_GET_SIZE(id_field)
    cdef unsigned char *p = _write_track_data(
        start, PyBytes_AS_STRING(id_field), id_field_n, view.len
    )
    _copy_data(p, view)
    if FJ_DEBUG:
        wbuf_check_written(
            start, p + view.len, _track_data_size(id_field_n, view.len), "track_data"
        )
    return p + view.len - start


cdef Py_ssize_t codec_track_data_into(
    bytearray out, Py_ssize_t offset, bytes id_field, object data
) except -1:
    cdef Py_buffer view
    cdef Py_ssize_t id_field_n, data_n, size
    cdef unsigned char *start
    cdef unsigned char *p
    if PyBytes_CheckExact(data):  # the common case: no buffer-protocol round trip
        id_field_n = PyBytes_GET_SIZE(id_field)
        data_n = PyBytes_GET_SIZE(data)
        size = _track_data_size(id_field_n, data_n)
        PyByteArray_Resize(out, offset + size)
        start = <unsigned char *>PyByteArray_AS_STRING(out) + offset
        p = _write_track_data(start, PyBytes_AS_STRING(id_field), id_field_n, data_n)
        memcpy(p, PyBytes_AS_STRING(data), data_n)
        if FJ_DEBUG:
            wbuf_check_written(start, p + data_n, size, "codec_track_data_into")
        return size
    _data_view(data, &view)
    try:
        PyByteArray_Resize(
            out, offset + _track_data_size(PyBytes_GET_SIZE(id_field), view.len)
        )
        return _fill_track_data(
            <unsigned char *>PyByteArray_AS_STRING(out) + offset, id_field, &view
        )
    finally:
        PyBuffer_Release(&view)


def encode_track_data(track_id, data):
    """Encodes ``AgentRequest{track_data{track_id, data}}``.

    ``data`` is any buffer (bytes, bytearray, memoryview, NumPy array of any dtype:
    its raw bytes in C order); a non-contiguous one is copied once, in C order.

    Raises:
        TypeError: ``track_id`` is not a str or ``data`` is not a buffer.
    """
    return _encode_track_data(codec_track_id_field(track_id), data)


cdef class TrackDataEncoder:
    """Encodes ``track_data`` messages of one track (the hot path of sending).

    The track id's bytes are encoded once; each ``encode`` allocates the frame at its
    exact size and copies the payload into it once.
    """

    # (fields: declared in codec.pxd)

    def __init__(self, track_id):
        self._id_field = codec_track_id_field(track_id)
        self.track_id = track_id

    @cython.always_allow_keywords(False)
    def encode(self, data):  # METH_O
        """Returns the whole ``AgentRequest`` frame carrying ``data`` (a new bytes)."""
        return _encode_track_data(self._id_field, data)

    def __repr__(self):
        return f"TrackDataEncoder({self.track_id!r})"


def frame_track_data(track_id, payload, chunk_size):
    """Frames ``payload`` as consecutive ``track_data`` messages of ``chunk_size`` bytes.

    The last message carries what is left (possibly fewer bytes); an empty payload
    gives no message. ``payload`` is any buffer, like ``encode_track_data``'s ``data``
    (a non-contiguous one is first copied once into C order).

    Returns:
        ``(buffer, offsets)``: one new uint8 array (owned, not a view of ``payload``)
        holding every frame back to back, and ``len(frames) + 1`` int64 offsets:
        frame ``i`` is ``buffer[offsets[i]:offsets[i+1]]``.

    Raises:
        TypeError: bad ``track_id``/``payload`` type or ``chunk_size`` not an int.
        ValueError: ``chunk_size`` is not positive.
    """
    cdef bytes id_field = codec_track_id_field(track_id)
    chunk_size = operator_index(chunk_size)
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    cdef Py_buffer view
    _data_view(payload, &view)
    cdef bytes contiguous
    cdef const void *src = view.buf
    try:
        if not PyBuffer_IsContiguous(&view, b'C'):
            contiguous = PyBytes_FromStringAndSize(NULL, view.len)
            _copy_data(<unsigned char *>PyBytes_AS_STRING(contiguous), &view)
            src = PyBytes_AS_STRING(contiguous)
        # a chunk larger than the payload frames the same as one of its size: clamp
        # it so that it fits in a Py_ssize_t
        return codec_frame_run(
            id_field, view.len, <Py_ssize_t>min(chunk_size, max(view.len, 1)), 1,
            _copy_payload, src,
        )
    finally:
        PyBuffer_Release(&view)


cdef int _copy_payload(
    const void *src, Py_ssize_t first, Py_ssize_t count, unsigned char *dst
) except -1 nogil:
    """codec_payload_writer of frame_track_data: bytes [first, first + count)."""
    memcpy(dst, <const unsigned char *>src + first, count)
    return 0


cdef tuple codec_frame_run(
    bytes id_field, Py_ssize_t count, Py_ssize_t chunk, Py_ssize_t unit,
    codec_payload_writer write_payload, const void *src,
):
    """Frames ``count`` units of ``src`` as consecutive track_data messages of ``chunk``
    units each (the last one holds the rest; no unit, no frame): the one loop of
    frame_track_data and frame_pcm16. A unit becomes ``unit`` bytes of payload,
    written by ``write_payload``; the caller checked ``chunk >= 1`` and that
    ``chunk * unit`` fits. Sizes first, then one pass that writes exactly them."""
    cdef Py_ssize_t id_field_n = PyBytes_GET_SIZE(id_field)
    cdef const char *id_s = PyBytes_AS_STRING(id_field)
    cdef Py_ssize_t full_chunks = count // chunk
    cdef Py_ssize_t rest = count % chunk
    cdef Py_ssize_t frames = full_chunks + (1 if rest else 0)
    cdef Py_ssize_t full_frame = _track_data_size(id_field_n, chunk * unit)
    cdef Py_ssize_t last_frame = _track_data_size(id_field_n, rest * unit) if rest else 0
    if full_chunks and full_frame > (PY_SSIZE_T_MAX - last_frame) // full_chunks:
        raise MemoryError(f"{frames} frames of {full_frame} bytes do not fit in memory")
    cdef Py_ssize_t total = full_chunks * full_frame + last_frame
    cdef cnp.npy_intp dim = total
    cdef cnp.ndarray buffer = cnp.PyArray_EMPTY(1, &dim, cnp.NPY_UINT8, 0)
    dim = frames + 1
    cdef cnp.ndarray offsets = cnp.PyArray_EMPTY(1, &dim, cnp.NPY_INT64, 0)
    cdef unsigned char *out = <unsigned char *>cnp.PyArray_DATA(buffer)
    cdef int64_t *offs = <int64_t *>cnp.PyArray_DATA(offsets)
    cdef unsigned char *p = out
    cdef Py_ssize_t k, n
    with nogil:
        for k in range(frames):
            n = chunk if k < full_chunks else rest
            offs[k] = p - out
            p = _write_track_data(p, id_s, id_field_n, n * unit)
            write_payload(src, k * chunk, n, p)
            p += n * unit
        offs[frames] = p - out
    # always on (once per call, not per frame): a loud stop if the arithmetic drifts
    wbuf_check_written(out, p, total, "codec_frame_run")
    return buffer, offsets


# -- decoder --------------------------------------------------------------------------


cdef object _track_type(int32_t value):
    """TrackType member for known numbers (precomputed tuple), else the plain int."""
    if 0 <= value < <int32_t>len(_TRACK_TYPES):
        return _TRACK_TYPES[value]
    return value


cdef object _decode(const unsigned char *data, Py_ssize_t n):
    cdef ReadCursor cur, sub, inner, payload
    cdef uint32_t field, field2, field3
    cdef int wt, wt2, wt3
    cdef uint64_t value
    cdef uint32_t member = 0        # the oneof member seen last (1..3), 0: none
    cdef uint32_t unknown = 0       # the last unknown top-level field number
    # the member's fields; track_data: s1 peer_id; track_image: s1 track_id, s2 content_type
    cdef str s1 = None
    cdef str s2 = None
    cdef str track_id = None
    cdef str metadata = None
    cdef int32_t track_type = 0
    cdef const unsigned char *data_ptr = NULL
    cdef Py_ssize_t data_n = 0
    cdef Track track
    cdef IncomingTrackData track_data
    cdef IncomingTrackImage track_image
    cdef UnknownResponse unknown_response

    rcur_init(&cur, data, n)
    while cur.remaining > 0:
        rcur_tag(&cur, &field, &wt)
        if wt != WT_LEN or field > 3:
            unknown = field
            rcur_skip(&cur, wt)
            continue
        rcur_sub(&cur, &sub)
        if field != member:  # another oneof member replaces the earlier one
            member = field
            s1 = s2 = track_id = metadata = None
            track_type = 0
            data_ptr = NULL
            data_n = 0
        if field == 2:  # TrackData{1 peer_id, 2 track, 3 data}
            while sub.remaining > 0:
                rcur_tag(&sub, &field2, &wt2)
                if wt2 != WT_LEN:
                    rcur_skip(&sub, wt2)
                elif field2 == 1:
                    s1 = rcur_str_cached(&sub, "track_data.peer_id")
                elif field2 == 2:  # Track{1 id, 2 type, 3 metadata}, merged
                    rcur_sub(&sub, &inner)
                    while inner.remaining > 0:
                        rcur_tag(&inner, &field3, &wt3)
                        if field3 == 1 and wt3 == WT_LEN:
                            track_id = rcur_str_cached(&inner, "track_data.track.id")
                        elif field3 == 2 and wt3 == WT_VARINT:
                            rcur_varint(&inner, &value)
                            track_type = <int32_t>value  # int32 on the wire, as protobuf
                        elif field3 == 3 and wt3 == WT_LEN:
                            metadata = rcur_str_cached(&inner, "track_data.track.metadata")
                        else:
                            rcur_skip(&inner, wt3)
                elif field2 == 3:
                    rcur_sub(&sub, &payload)
                    data_ptr = payload.ptr
                    data_n = payload.remaining
                else:
                    rcur_skip(&sub, wt2)
        elif field == 3:  # TrackImage{1 track_id, 2 content_type, 3 data}
            while sub.remaining > 0:
                rcur_tag(&sub, &field2, &wt2)
                if wt2 != WT_LEN:
                    rcur_skip(&sub, wt2)
                elif field2 == 1:
                    s1 = rcur_str(&sub, "track_image.track_id")
                elif field2 == 2:
                    s2 = rcur_str(&sub, "track_image.content_type")
                elif field2 == 3:
                    rcur_sub(&sub, &payload)
                    data_ptr = payload.ptr
                    data_n = payload.remaining
                else:
                    rcur_skip(&sub, wt2)
        else:  # Authenticated{}: only unknown fields, still validated
            while sub.remaining > 0:
                rcur_tag(&sub, &field2, &wt2)
                rcur_skip(&sub, wt2)

    if member == 2:
        track = Track.__new__(Track)
        track.id = track_id if track_id is not None else ""
        track.type = _track_type(track_type)
        track.metadata = metadata if metadata is not None else ""
        track_data = IncomingTrackData.__new__(IncomingTrackData)
        track_data.peer_id = s1 if s1 is not None else ""
        track_data.track = track
        track_data.data = PyBytes_FromStringAndSize(<const char *>data_ptr, data_n)
        return track_data
    if member == 3:
        track_image = IncomingTrackImage.__new__(IncomingTrackImage)
        track_image.track_id = s1 if s1 is not None else ""
        track_image.content_type = s2 if s2 is not None else ""
        track_image.data = PyBytes_FromStringAndSize(<const char *>data_ptr, data_n)
        return track_image
    if member == 1:
        return _AUTHENTICATED
    unknown_response = UnknownResponse.__new__(UnknownResponse)
    unknown_response.field_number = unknown
    return unknown_response


@cython.binding(False)
@cython.always_allow_keywords(False)
cdef object decode_buffer(object frame, buffer_decoder decode):
    """A decoder's entry for any buffer but ``bytes`` (each decoder takes ``bytes``
    itself, its fast path): a C-contiguous buffer is decoded in place, any other is
    copied once in C order. Shared by ``decode_response`` and ``decode_server_message``.

    Raises:
        TypeError: ``frame`` is not a buffer.
    """
    cdef Py_buffer view
    cdef bytes contiguous
    try:
        PyObject_GetBuffer(frame, &view, PyBUF_FULL_RO)
    except TypeError:
        raise TypeError(
            f"frame must be a bytes-like object ({_BUFFER_TYPES}), not {type(frame).__name__}"
        ) from None
    try:
        if PyBuffer_IsContiguous(&view, b'C'):
            return decode(<const unsigned char *>view.buf, view.len)
        contiguous = PyBytes_FromStringAndSize(NULL, view.len)  # one copy, in C order
        _copy_data(<unsigned char *>PyBytes_AS_STRING(contiguous), &view)
    finally:
        PyBuffer_Release(&view)
    return decode(
        <const unsigned char *>PyBytes_AS_STRING(contiguous), PyBytes_GET_SIZE(contiguous)
    )


def decode_response(frame):  # METH_O: the per-frame call, kept as cheap as it gets
    """Decodes one ``AgentResponse`` frame (any buffer; ``bytes`` is the fast path).

    The result owns its data: ``data`` is a new bytes object (the one copy made).

    Returns:
        IncomingTrackData, IncomingTrackImage, Authenticated, or UnknownResponse
        (the field number of the last unknown top-level field, 0 if none).

    Raises:
        AgentProtocolError: ``frame`` is not a valid AgentResponse (the message says
            what was wrong and at which byte offset).
        TypeError: ``frame`` is not a buffer.
    """
    if PyBytes_CheckExact(frame):
        return _decode(
            <const unsigned char *>PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame)
        )
    return decode_buffer(frame, <buffer_decoder>_decode)
