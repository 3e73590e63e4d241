# Byte buffers: a bounds-checked read cursor (rcur_*) and exact-size writers (wbuf_*).
#
# Reading: every access goes through rcur_take, which checks the asked length against
# the bytes left and raises AgentProtocolError naming the byte offset. Varints are
# decoded as uint64 (at most 10 bytes, no bits past 64) and compared with what
# remains before they are narrowed to Py_ssize_t. Field keys and lengths are 32-bit
# varints in protobuf: at most 5 bytes (upb rejects longer ones too).
#
# Writing: protobuf length prefixes are varints, so the encoders compute every size
# first (wbuf_varint_size), allocate the output once at its exact size (a bytes
# object or a NumPy array) and then write into it front to back (wbuf_write_*):
# no growth, no intermediate buffer, the payload copied exactly once.


cdef inline Py_ssize_t rcur_offset(const ReadCursor *cur):
    """Byte offset of the cursor in the whole frame (for error messages)."""
    return cur.ptr - cur.base


cdef int rcur_error(const ReadCursor *cur, str what) except -1:
    raise AgentProtocolError(
        f"malformed AgentResponse: {what} at offset {rcur_offset(cur)}"
    )


cdef inline int rcur_init(ReadCursor *cur, const unsigned char *data, Py_ssize_t n):
    cur.ptr = data
    cur.remaining = n
    cur.base = data
    return 0


cdef inline const unsigned char *rcur_take(ReadCursor *cur, Py_ssize_t n) except NULL:
    """Consumes ``n`` bytes and returns a pointer to them: the one checked read."""
    cdef const unsigned char *p = cur.ptr
    if n < 0 or n > cur.remaining:
        rcur_take_error(cur, n)
    cur.ptr += n
    cur.remaining -= n
    return p


cdef int rcur_take_error(const ReadCursor *cur, Py_ssize_t n) except -1:
    rcur_error(cur, f"{n} bytes needed but {cur.remaining} left")


cdef int rcur_varint_max(ReadCursor *cur, uint64_t *out, Py_ssize_t max_bytes) except -1:
    """Reads a base-128 varint of at most ``max_bytes`` (<= 10) that fits in 64 bits."""
    cdef const unsigned char *p = cur.ptr
    cdef Py_ssize_t avail = cur.remaining
    cdef Py_ssize_t i = 0
    cdef uint64_t value = 0
    cdef unsigned char byte
    if avail > max_bytes:
        avail = max_bytes
    while i < avail:
        byte = p[i]
        if i == max_bytes - 1 and byte & 0x80:
            rcur_error(cur, f"varint longer than {max_bytes} bytes")
        if i == RCUR_MAX_VARINT - 1 and byte > 1:  # the 10th byte holds bit 63 only
            rcur_error(cur, "varint overflows 64 bits")
        value |= (<uint64_t>(byte & 0x7F)) << (7 * i)
        i += 1
        if byte < 0x80:
            rcur_take(cur, i)
            out[0] = value
            return 0
    rcur_error(cur, "truncated varint")
    return -1


cdef inline int rcur_varint(ReadCursor *cur, uint64_t *out) except -1:
    """Reads a varint value: at most 10 bytes, within 64 bits."""
    if cur.remaining > 0 and cur.ptr[0] < 0x80:  # fast path: one byte
        out[0] = cur.ptr[0]
        cur.ptr += 1
        cur.remaining -= 1
        return 0
    return rcur_varint_max(cur, out, RCUR_MAX_VARINT)


cdef inline int rcur_tag(ReadCursor *cur, uint32_t *field, int *wire_type) except -1:
    """Reads a field key; rejects field number 0, numbers past 2**29-1 and groups."""
    cdef unsigned char key
    if cur.remaining > 0:
        key = cur.ptr[0]
        # fast path: a one-byte key (fields 1-15) of a valid wire type (0, 1, 2, 5)
        if key < 0x80 and key >= 8 and (RCUR_VALID_WIRE_TYPES >> (key & 7)) & 1:
            cur.ptr += 1
            cur.remaining -= 1
            field[0] = key >> 3
            wire_type[0] = key & 7
            return 0
    return rcur_tag_slow(cur, field, wire_type)


cdef int rcur_tag_slow(ReadCursor *cur, uint32_t *field, int *wire_type) except -1:
    """rcur_tag for multi-byte keys, and every error."""
    cdef ReadCursor at = cur[0]  # errors name the key's offset
    cdef uint64_t key
    rcur_varint_max(cur, &key, RCUR_MAX_VARINT32)
    if key > 0xFFFFFFFFu:
        rcur_error(&at, f"field key {key} too large")
    field[0] = <uint32_t>(key >> 3)
    wire_type[0] = <int>(key & 7)
    if field[0] == 0:
        rcur_error(&at, "field number 0")
    if wire_type[0] > WT_I32 or wire_type[0] == WT_SGROUP or wire_type[0] == WT_EGROUP:
        rcur_error(&at, f"invalid wire type {wire_type[0]} (field {field[0]})")
    return 0


cdef inline int rcur_sub(ReadCursor *cur, ReadCursor *sub) except -1:
    """Reads a length prefix and makes ``sub`` a cursor over those bytes only."""
    cdef Py_ssize_t length
    if cur.remaining > 0:
        length = cur.ptr[0]
        # fast path: a one-byte length (< 128) that fits in what is left
        if length < 0x80 and length < cur.remaining:
            sub.base = cur.base
            sub.ptr = cur.ptr + 1
            sub.remaining = length
            cur.ptr += length + 1
            cur.remaining -= length + 1
            return 0
    return rcur_sub_slow(cur, sub)


cdef int rcur_sub_slow(ReadCursor *cur, ReadCursor *sub) except -1:
    """rcur_sub for multi-byte lengths, and every error."""
    cdef ReadCursor at = cur[0]  # errors name the length's offset
    cdef uint64_t length
    rcur_varint_max(cur, &length, RCUR_MAX_VARINT32)
    if length > <uint64_t>cur.remaining:
        rcur_error(&at, f"length {length} exceeds the {cur.remaining} bytes left")
    sub.base = cur.base
    sub.ptr = rcur_take(cur, <Py_ssize_t>length)
    sub.remaining = <Py_ssize_t>length
    return 0


cdef int rcur_skip(ReadCursor *cur, int wire_type) except -1:
    """Skips the value of an unknown field (rcur_tag has validated ``wire_type``)."""
    cdef uint64_t ignored
    cdef ReadCursor sub
    if wire_type == WT_VARINT:
        rcur_varint(cur, &ignored)
    elif wire_type == WT_I64:
        rcur_take(cur, 8)
    elif wire_type == WT_LEN:
        rcur_sub(cur, &sub)
    else:  # WT_I32
        rcur_take(cur, 4)
    return 0


cdef str rcur_utf8(ReadCursor *sub, str field_name):
    """Decodes all of ``sub`` as a proto3 string: valid UTF-8 or AgentProtocolError."""
    try:
        return PyUnicode_DecodeUTF8(<const char *>sub.ptr, sub.remaining, NULL)
    except UnicodeDecodeError as exc:
        sub.ptr += exc.start
        rcur_error(sub, f"invalid UTF-8 in {field_name}")


cdef inline str rcur_str(ReadCursor *cur, str field_name):
    """Reads a length-delimited proto3 string."""
    cdef ReadCursor sub
    rcur_sub(cur, &sub)
    return rcur_utf8(&sub, field_name)


cdef class _StrCache:
    """Recently decoded short strings, direct-mapped (a peer's id, its track's id and
    metadata repeat on every chunk): a hit costs a memcmp instead of a UTF-8 decode
    and an allocation, and hands out the same immutable str again. Only strings that
    decoded as valid UTF-8 get in."""

    cdef unsigned char raw[STRCACHE_SLOTS][STRCACHE_MAX_BYTES]  # the UTF-8 bytes per slot
    cdef Py_ssize_t size[STRCACHE_SLOTS]                         # their length, -1: empty slot
    cdef list values                                             # the str per slot

    def __cinit__(self):
        cdef Py_ssize_t i
        for i in range(STRCACHE_SLOTS):
            self.size[i] = -1
        self.values = [None] * STRCACHE_SLOTS

    cdef inline str get(self, const unsigned char *p, Py_ssize_t n):
        """The cached str of p[:n], or None."""
        cdef Py_ssize_t slot = strcache_slot(p, n)
        if self.size[slot] == n and memcmp(self.raw[slot], p, n) == 0:
            return <str>self.values[slot]
        return None

    cdef inline void put(self, const unsigned char *p, Py_ssize_t n, str value):
        cdef Py_ssize_t slot = strcache_slot(p, n)
        memcpy(self.raw[slot], p, n)
        self.size[slot] = n
        self.values[slot] = value


cdef inline Py_ssize_t strcache_slot(const unsigned char *p, Py_ssize_t n) noexcept:
    """A cheap hash of length, first and last bytes (ids differ there), to a slot."""
    cdef uint64_t head = 0, tail = 0
    if n >= 8:
        memcpy(&head, p, 8)
        memcpy(&tail, p + n - 8, 8)
    elif n > 0:
        memcpy(&head, p, n)
    return <Py_ssize_t>(((head ^ (tail * 31) ^ <uint64_t>n) * 0x9E3779B97F4A7C15u) >> 59)


cdef _StrCache _str_cache = _StrCache()


cdef inline str rcur_str_cached(ReadCursor *cur, str field_name):
    """rcur_str through the cache of recent short strings."""
    cdef ReadCursor sub
    cdef str value
    rcur_sub(cur, &sub)
    if sub.remaining == 0:
        return ""
    if sub.remaining > STRCACHE_MAX_BYTES:
        return rcur_utf8(&sub, field_name)
    value = _str_cache.get(sub.ptr, sub.remaining)
    if value is None:
        value = rcur_utf8(&sub, field_name)
        _str_cache.put(sub.ptr, sub.remaining, value)
    return value


# -- writing ------------------------------------------------------------------------


cdef inline Py_ssize_t wbuf_varint_size(uint64_t value) noexcept nogil:
    """Bytes taken by ``value`` as a varint (1..10)."""
    cdef Py_ssize_t size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


cdef inline Py_ssize_t wbuf_len_field_size(Py_ssize_t length) noexcept nogil:
    """Bytes taken by a one-byte key, the length varint and ``length`` bytes."""
    return 1 + wbuf_varint_size(<uint64_t>length) + length


cdef inline unsigned char *wbuf_write_varint(unsigned char *p, uint64_t value) noexcept nogil:
    while value >= 0x80:
        p[0] = <unsigned char>(value | 0x80)
        value >>= 7
        p += 1
    p[0] = <unsigned char>value
    return p + 1


cdef inline unsigned char *wbuf_write_key_len(
    unsigned char *p, unsigned char key, Py_ssize_t length
) noexcept nogil:
    """Writes a one-byte key (field < 16) and a length prefix."""
    p[0] = key
    return wbuf_write_varint(p + 1, <uint64_t>length)


cdef inline unsigned char *wbuf_write_bytes(
    unsigned char *p, unsigned char key, const char *data, Py_ssize_t length
) noexcept nogil:
    """Writes a length-delimited field: key, length, the bytes."""
    p = wbuf_write_key_len(p, key, length)
    memcpy(p, data, length)
    return p + length


cdef int wbuf_check_written(
    const unsigned char *start, const unsigned char *end, Py_ssize_t size, str what
) except -1:
    """An encoder wrote exactly the ``size`` bytes it computed and allocated (checked
    by every encoder in FJ_DEBUG builds; SystemError: a bug, never bad input)."""
    if end - start != size:
        raise SystemError(f"{what} wrote {end - start} bytes, computed {size}")
    return 0
