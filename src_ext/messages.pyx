# Decoded AgentResponse contents, native flavour of fishjam_fast/_messages_py.py.
# Fields are declared in messages.pxd (`cdef public`).
#
# Same public attribute names, positional/keyword constructors, __match_args__,
# value equality (unhashable, like non-frozen dataclasses) and dataclass-like repr.
# The decoder builds them with __new__ and sets the fields directly (no __init__).

cdef object _TRACK_TYPE_UNSPECIFIED = TrackType.TRACK_TYPE_UNSPECIFIED


cdef class _Message:
    """Base of the message classes: attributes can be set, not deleted."""

    def __delattr__(self, name):
        raise AttributeError(f"cannot delete attribute {name!r} of {type(self).__name__}")


cdef class Track(_Message):
    """A peer's track: ``id``, ``type`` (TrackType, or an int the enum lacks) and
    ``metadata`` (JSON text)."""

    __match_args__ = ("id", "type", "metadata")
    __hash__ = None

    def __init__(self, id="", type=_TRACK_TYPE_UNSPECIFIED, metadata=""):
        self.id = id
        self.type = type
        self.metadata = metadata

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        cdef Track o = <Track>other
        return self.id == o.id and self.type == o.type and self.metadata == o.metadata

    def __repr__(self):
        return (
            f"{type(self).__name__}(id={self.id!r}, type={self.type!r}, "
            f"metadata={self.metadata!r})"
        )


cdef object _PCM_LE16 = np_dtype("<i2")   # PCM16 on the wire: little-endian int16


# IncomingTrackData.pcm and .samples() on ``bytes`` of even length (what the decoder
# makes): straight to NumPy / the kernel, what fishjam_fast.pcm's incoming_pcm_view and
# incoming_samples would give after their checks; any other data goes through those
# (imported here, on use: fishjam_fast.pcm imports this module itself), for their errors.

cdef object _incoming_pcm(object data):
    if PyBytes_CheckExact(data) and not PyBytes_GET_SIZE(data) & 1:
        return np_frombuffer(data, _PCM_LE16)  # read-only: a view of immutable bytes
    from fishjam_fast.pcm import incoming_pcm_view
    return incoming_pcm_view(data)


cdef object _incoming_samples(object data):
    if PyBytes_CheckExact(data) and not PyBytes_GET_SIZE(data) & 1:
        return pcm_le16_to_float32(
            <const uint8_t *>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data)
        )
    from fishjam_fast.pcm import incoming_samples
    return incoming_samples(data)


cdef class IncomingTrackData(_Message):
    """A chunk of a peer's track: PCM16 little-endian audio for audio tracks.

    Attributes:
        peer_id: The peer whose track this is.
        track: The track the chunk belongs to.
        data: The chunk (an owned ``bytes`` object).
    """

    __match_args__ = ("peer_id", "track", "data")
    __hash__ = None

    def __init__(self, peer_id="", track=None, data=b""):
        self.peer_id = peer_id
        self.track = Track() if track is None else track
        self.data = data

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        cdef IncomingTrackData o = <IncomingTrackData>other
        return self.peer_id == o.peer_id and self.track == o.track and self.data == o.data

    @property
    def pcm(self):
        """The chunk as PCM16 samples: a read-only int16 VIEW of :attr:`data` (no copy),
        shape ``(samples,)`` (channels interleaved).

        Raises:
            ValueError: ``data`` has an odd number of bytes.
        """
        return _incoming_pcm(self.data)

    def samples(self):
        """The chunk as float32 samples in [-1, 1): a NEW array (``pcm / 32768``).

        Raises:
            ValueError: ``data`` has an odd number of bytes.
        """
        return _incoming_samples(self.data)

    def __repr__(self):
        return (
            f"{type(self).__name__}(peer_id={self.peer_id!r}, track={self.track!r}, "
            f"data={self.data!r})"
        )


cdef class IncomingTrackImage(_Message):
    """An image captured from a track, answering ``capture_image``.

    Attributes:
        track_id: The track the image was captured from.
        content_type: The image's MIME type, e.g. ``image/jpeg``.
        data: The encoded image (an owned ``bytes`` object).
    """

    __match_args__ = ("track_id", "content_type", "data")
    __hash__ = None

    def __init__(self, track_id="", content_type="", data=b""):
        self.track_id = track_id
        self.content_type = content_type
        self.data = data

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        cdef IncomingTrackImage o = <IncomingTrackImage>other
        return (
            self.track_id == o.track_id
            and self.content_type == o.content_type
            and self.data == o.data
        )

    def __repr__(self):
        return (
            f"{type(self).__name__}(track_id={self.track_id!r}, "
            f"content_type={self.content_type!r}, data={self.data!r})"
        )


cdef class Authenticated(_Message):
    """The server accepted the agent's token."""

    __match_args__ = ()
    __hash__ = None

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return True

    def __repr__(self):
        return f"{type(self).__name__}()"


cdef class UnknownResponse(_Message):
    """An AgentResponse whose content this version does not know (a newer server).

    Attributes:
        field_number: The unknown oneof member's field number; 0 for an empty message.
    """

    __match_args__ = ("field_number",)
    __hash__ = None

    def __init__(self, field_number=0):
        self.field_number = field_number

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.field_number == (<UnknownResponse>other).field_number

    def __repr__(self):
        return f"{type(self).__name__}(field_number={self.field_number!r})"
