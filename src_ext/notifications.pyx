# The ServerMessage decoder: the notification socket's frames and webhook bodies.
#
# Table-driven: fishjam_fast.events.SCHEMA names each oneof member's class and the kind
# of each of its fields (numbered 1, 2, 3... in the class's field order), loaded on first
# use (events imports this module's Track through fishjam_fast._codec). Decoding
# follows protobuf's parser as codec.pyx does: every read through the checked cursor of
# buffer.pyx, unknown fields of every wire type skipped (a known field with another wire
# type counts as unknown), a repeated scalar: the last one wins, a repeated sub-message
# (a track, the member itself): merged, another oneof member replaces the earlier one.
#
# A batch (notification_batch) decodes as the list of its notifications; a batch
# inside a batch is validated and handed on as UnknownNotification(33): Fishjam never
# nests them and the plain SDK drops them; nesting past NM_MAX_DEPTH is refused.

cdef list _nm_table = None      # content field number -> (class, kinds: bytes, enums: tuple)
cdef object _nm_unknown = None  # fishjam_fast.events.UnknownNotification
cdef str _NM_STRING = "a ServerMessage string"


cdef int _nm_load() except -1:
    global _nm_table, _nm_unknown
    from fishjam_fast import events

    codes = {
        events.K_STR: NK_STR,
        events.K_ENDPOINT: NK_ENDPOINT,
        events.K_TRACK: NK_TRACK,
        events.K_OPT_TRACK: NK_OPT_TRACK,
        events.K_BATCH: NK_BATCH,
    }
    table = [None] * (max(events.SCHEMA) + 1)
    for number, (cls, kinds) in events.SCHEMA.items():
        table[number] = (
            cls,
            bytes([NK_ENUM if type(kind) is tuple else codes[kind] for kind in kinds]),
            tuple([kind if type(kind) is tuple else None for kind in kinds]),
        )
    _nm_unknown = events.UnknownNotification
    _nm_table = table
    return 0


cdef list _nm_defaults(bytes kinds, tuple enums):
    """A member's field values before any is read (proto3 defaults)."""
    cdef Py_ssize_t i
    cdef Py_ssize_t n = len(kinds)
    cdef list values = [None] * n
    cdef unsigned char kind
    for i in range(n):
        kind = kinds[i]
        if kind == NK_STR or kind == NK_ENDPOINT:
            values[i] = ""
        elif kind == NK_ENUM:
            values[i] = (<tuple>enums[i])[0]
        elif kind == NK_BATCH:
            values[i] = []
    return values


cdef Track _nm_track(ReadCursor *cur, object existing):
    """Reads a Track{1 id, 2 type, 3 metadata}, merged into ``existing`` if not None."""
    cdef ReadCursor sub
    cdef uint32_t field
    cdef int wt
    cdef uint64_t value
    cdef Track track
    rcur_sub(cur, &sub)
    if existing is None:
        track = Track.__new__(Track)
        track.id = ""
        track.type = _track_type(0)
        track.metadata = ""
    else:
        track = <Track>existing
    while sub.remaining > 0:
        rcur_tag(&sub, &field, &wt)
        if field == 1 and wt == WT_LEN:
            track.id = rcur_str(&sub, "track.id")
        elif field == 2 and wt == WT_VARINT:
            rcur_varint(&sub, &value)
            track.type = _track_type(<int32_t>value)  # int32 on the wire, as protobuf
        elif field == 3 and wt == WT_LEN:
            track.metadata = rcur_str(&sub, "track.metadata")
        else:
            rcur_skip(&sub, wt)
    return track


cdef int _nm_fields(ReadCursor *sub, bytes kinds, tuple enums, list values, int depth) except -1:
    """Reads one member's fields into ``values`` (merging into what is there)."""
    cdef const unsigned char *k = kinds
    cdef Py_ssize_t n = len(kinds)
    cdef uint32_t field
    cdef int wt
    cdef uint64_t value
    cdef int32_t number
    cdef unsigned char kind
    cdef tuple members
    cdef ReadCursor inner
    while sub.remaining > 0:
        rcur_tag(sub, &field, &wt)
        if field > <uint32_t>n:
            rcur_skip(sub, wt)
            continue
        kind = k[field - 1]
        if kind == NK_ENUM:
            if wt != WT_VARINT:
                rcur_skip(sub, wt)
                continue
            rcur_varint(sub, &value)
            number = <int32_t>value  # int32 on the wire, as protobuf
            members = <tuple>enums[field - 1]
            values[field - 1] = members[number] if 0 <= number < len(members) else number
            continue
        if wt != WT_LEN:
            rcur_skip(sub, wt)
            continue
        if kind == NK_STR:
            values[field - 1] = rcur_str(sub, _NM_STRING)
        elif kind == NK_ENDPOINT:  # fields 2 and 3: setting one clears the other
            values[field - 1] = rcur_str(sub, _NM_STRING)
            values[4 - field] = ""
        elif kind == NK_TRACK or kind == NK_OPT_TRACK:
            values[field - 1] = _nm_track(sub, values[field - 1])
        else:  # NK_BATCH
            rcur_sub(sub, &inner)
            (<list>values[field - 1]).append(_nm_message(&inner, depth + 1))
    return 0


cdef object _nm_message(ReadCursor *cur, int depth):
    """One ServerMessage: its member's object, a batch's list (depth 0), or
    UnknownNotification."""
    cdef uint32_t field
    cdef int wt
    cdef uint32_t member = 0    # the oneof member seen last, 0: none
    cdef uint32_t unknown = 0   # the last unknown field number
    cdef tuple spec = None
    cdef list values = None
    cdef ReadCursor sub
    cdef Py_ssize_t i
    if depth > NM_MAX_DEPTH:
        rcur_error(cur, f"notification batches nested more than {NM_MAX_DEPTH} deep")
    while cur.remaining > 0:
        rcur_tag(cur, &field, &wt)
        if wt != WT_LEN or field >= <uint32_t>len(_nm_table) or _nm_table[field] is None:
            unknown = field
            rcur_skip(cur, wt)
            continue
        rcur_sub(cur, &sub)
        if field != member:  # another oneof member replaces the earlier one
            member = field
            spec = <tuple>_nm_table[field]
            values = _nm_defaults(<bytes>spec[1], <tuple>spec[2])
        _nm_fields(&sub, <bytes>spec[1], <tuple>spec[2], values, depth)
    if member == 0:
        return _nm_unknown(unknown)
    if member == NM_BATCH_FIELD:
        return values[0] if depth == 0 else _nm_unknown(NM_BATCH_FIELD)
    for i in range(len(values)):
        if values[i] is None and (<bytes>spec[1])[i] == NK_TRACK:
            values[i] = _nm_track_default()
    return spec[0](*values)


cdef Track _nm_track_default():
    cdef Track track = Track.__new__(Track)
    track.id = ""
    track.type = _track_type(0)
    track.metadata = ""
    return track


cdef list _nm_decode(const unsigned char *data, Py_ssize_t n):
    cdef ReadCursor cur
    if _nm_table is None:
        _nm_load()
    rcur_init(&cur, data, n)
    try:
        result = _nm_message(&cur, 0)
    except AgentProtocolError as exc:  # the cursor's errors name AgentResponse
        raise AgentProtocolError(
            str(exc).replace("malformed AgentResponse", "malformed ServerMessage", 1)
        ) from None
    if type(result) is list:
        return <list>result
    return [result]


def decode_server_message(frame):
    """Decodes one ``ServerMessage`` (a notification frame or a webhook body).

    Returns:
        A list: the one notification (a ``fishjam_fast.events`` class), or a batch's
        notifications in order; members this version does not know, an empty message
        and nested batches are ``UnknownNotification`` items.

    Raises:
        AgentProtocolError: ``frame`` is not a valid ServerMessage (the message says
            what was wrong and at which byte offset).
        TypeError: ``frame`` is not a buffer.
    """
    if PyBytes_CheckExact(frame):
        return _nm_decode(
            <const unsigned char *>PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame)
        )
    return decode_buffer(frame, <buffer_decoder>_nm_decode)
