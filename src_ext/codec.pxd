# Declarations of the codec layer (included by _ext.pyx before codec.pyx).

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_Resize

# AgentRequest keys (field << 3 | WT_LEN): the oneof members.
cdef enum:
    KEY_AUTH_REQUEST = 0x0A
    KEY_ADD_TRACK = 0x12
    KEY_REMOVE_TRACK = 0x1A
    KEY_TRACK_DATA = 0x22
    KEY_INTERRUPT_TRACK = 0x2A
    KEY_CAPTURE_IMAGE = 0x32
    KEY_FIELD1_LEN = 0x0A    # field 1, length-delimited
    KEY_FIELD2_LEN = 0x12    # field 2, length-delimited
    KEY_FIELD3_LEN = 0x1A    # field 3, length-delimited
    KEY_FIELD1_VARINT = 0x08
    KEY_FIELD2_VARINT = 0x10
    KEY_FIELD3_VARINT = 0x18


# Writes the payload of units [first, first + count) of `src` at `dst` (exactly
# count * unit bytes, see codec_frame_run): raw bytes for frame_track_data, samples
# encoded as PCM16 for frame_pcm16 (which may raise: out-of-range float samples).
ctypedef int (*codec_payload_writer)(
    const void *src, Py_ssize_t first, Py_ssize_t count, unsigned char *dst
) except -1 nogil

# The encoded TrackData.track_id field (key, length, UTF-8), b"" if empty.
cdef bytes codec_track_id_field(object track_id)

# Encodes the track_data messages of one track (its id field encoded once); declared
# here so that the picows transport's listener reads the id field in C.
cdef class TrackDataEncoder:
    cdef readonly str track_id   # the track the frames belong to
    cdef bytes _id_field         # the encoded TrackData.track_id field

# Writes AgentRequest{track_data{<id_field>, data}} into `out` from `offset` on and
# resizes `out` to end exactly there (the payload copied once, from any buffer);
# returns the message's size. The first `offset` bytes are left as they are (the
# picows listener frames the message in that headroom).
cdef Py_ssize_t codec_track_data_into(
    bytearray out, Py_ssize_t offset, bytes id_field, object data
) except -1

# The one framing loop: `count` units as consecutive track_data frames of `chunk`
# units each; returns (buffer, offsets) as frame_track_data documents.
cdef tuple codec_frame_run(
    bytes id_field, Py_ssize_t count, Py_ssize_t chunk, Py_ssize_t unit,
    codec_payload_writer write_payload, const void *src,
)

# A decoder of one whole message held in C memory (the AgentResponse and ServerMessage
# decoders), and the one entry both take for a buffer that is not bytes (decode_buffer:
# in place when C-contiguous, else one copy in C order).
ctypedef object (*buffer_decoder)(const unsigned char *data, Py_ssize_t n)
cdef object decode_buffer(object frame, buffer_decoder decode)

# The decoder of one whole AgentResponse held in C memory: the decoded message, or
# AgentProtocolError. The session core (fishjam_fast/_core/connection.py, compiled) calls it
# on picows' receive buffer.
cdef object _decode(const unsigned char *data, Py_ssize_t n)

# A whole track_data AgentRequest frame: `id_field` (codec_track_id_field) and `data`
# (any buffer), as a new bytes (encode_track_data, TrackDataEncoder.encode).
cdef bytes _encode_track_data(bytes id_field, object data)
