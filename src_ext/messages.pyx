# Decoded AgentResponse contents, native flavour of fishjam_fast/_messages_py.py.
#
# Same public attribute names, positional/keyword constructors, __match_args__,
# value equality (unhashable, like non-frozen dataclasses) and dataclass-like repr.
# The decoder builds them with __new__ and sets the fields directly (no __init__).
# Not final: IncomingTrackData gains PCM helpers in a later layer.
#
# Attribute access: Cython exposes `cdef public` fields through getset descriptors,
# which CPython's specializing interpreter cannot inline; reading six fields cost twice
# what it costs on a __slots__ dataclass. So the fields are plain `cdef object` and
# _msg_install_members (below) publishes them as T_OBJECT_EX member descriptors, the
# kind __slots__ uses (LOAD_ATTR_SLOT). Fields are never NULL: tp_new sets them to
# None and __delattr__ refuses deletion, so C code may read them without checks.

cdef object _TRACK_TYPE_UNSPECIFIED = TrackType.TRACK_TYPE_UNSPECIFIED


cdef class _Message:
    """Base of the message classes: attributes can be set, not deleted."""

    def __delattr__(self, name):
        raise AttributeError(f"cannot delete attribute {name!r} of {type(self).__name__}")


@cython.freelist(32)
cdef class Track(_Message):
    """A peer's track: ``id``, ``type`` (TrackType, or an int the enum lacks) and
    ``metadata`` (JSON text)."""

    cdef object id          # str: the track's id
    cdef object type        # TrackType member, or a plain int for unknown numbers
    cdef object metadata    # str: JSON text

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


# fishjam_fast.pcm is imported on first use: it imports this module itself
cdef object _pcm_view = None       # fishjam_fast.pcm.incoming_pcm_view
cdef object _pcm_samples = None    # fishjam_fast.pcm.incoming_samples


cdef _load_pcm_api():
    global _pcm_view, _pcm_samples
    from fishjam_fast.pcm import incoming_pcm_view, incoming_samples
    _pcm_view, _pcm_samples = incoming_pcm_view, incoming_samples


@cython.freelist(32)
cdef class IncomingTrackData(_Message):
    """A chunk of a peer's track: PCM16 little-endian audio for audio tracks.

    Attributes:
        peer_id: The peer whose track this is.
        track: The track the chunk belongs to.
        data: The chunk (an owned ``bytes`` object).
    """

    cdef object peer_id     # str: the peer whose track this is
    cdef object track       # Track
    cdef object data        # bytes: the chunk, owned

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
        if _pcm_view is None:
            _load_pcm_api()
        return _pcm_view(self.data)

    def samples(self):
        """The chunk as float32 samples in [-1, 1): a NEW array (``pcm / 32768``).

        Raises:
            ValueError: ``data`` has an odd number of bytes.
        """
        if _pcm_samples is None:
            _load_pcm_api()
        return _pcm_samples(self.data)

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

    cdef object track_id        # str: the track the image was captured from
    cdef object content_type    # str: MIME type, e.g. image/jpeg
    cdef object data            # bytes: the encoded image, owned

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

    cdef object field_number     # int: the unknown member's field number, or 0

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


# -- member descriptors ----------------------------------------------------------------

cdef PyMemberDef _msg_members[10]   # static: the descriptors point into it


cdef int _msg_member(
    int i, const char *name, Py_ssize_t offset, const char *doc
) except -1:
    _msg_members[i].name = name
    _msg_members[i].type = T_OBJECT_EX
    _msg_members[i].offset = offset
    _msg_members[i].flags = 0
    _msg_members[i].doc = doc
    return 0


cdef int _msg_install_members(type cls, int first, int count) except -1:
    """Publishes _msg_members[first:first+count] as member descriptors of ``cls``."""
    cdef int i
    for i in range(first, first + count):
        descriptor = PyDescr_NewMember(<PyTypeObject *>cls, &_msg_members[i])
        PyDict_SetItemString(
            <object>(<FjTypeObject *>cls).tp_dict, _msg_members[i].name, descriptor
        )
    PyType_Modified(<PyTypeObject *>cls)
    return 0


cdef Py_ssize_t _msg_offset(object instance, object value) except -1:
    """Byte offset of the field of ``instance`` that holds ``value``, found by scanning
    the object's struct (Cython does not give offsetof for object fields); ``value``
    is a fresh object, so exactly one word matches."""
    cdef PyObject **words = <PyObject **><PyObject *>instance
    cdef Py_ssize_t count = type(instance).__basicsize__ // sizeof(PyObject *)
    cdef Py_ssize_t i, found = -1
    for i in range(count):
        if words[i] == <PyObject *>value:
            if found != -1:
                raise SystemError("ambiguous field offset")
            found = i
    if found == -1:
        raise SystemError("field offset not found")
    return found * <Py_ssize_t>sizeof(PyObject *)


cdef int _msg_publish() except -1:
    cdef Track track = Track.__new__(Track)
    cdef IncomingTrackData chunk = IncomingTrackData.__new__(IncomingTrackData)
    cdef IncomingTrackImage image = IncomingTrackImage.__new__(IncomingTrackImage)
    cdef UnknownResponse unknown = UnknownResponse.__new__(UnknownResponse)
    track.id = a = object()
    track.type = b = object()
    track.metadata = c = object()
    _msg_member(0, b"id", _msg_offset(track, a), b"str: the track's id")
    _msg_member(1, b"type", _msg_offset(track, b), b"TrackType, or an int the enum lacks")
    _msg_member(2, b"metadata", _msg_offset(track, c), b"str: JSON text")
    _msg_install_members(Track, 0, 3)
    chunk.peer_id = a = object()
    chunk.track = b = object()
    chunk.data = c = object()
    _msg_member(3, b"peer_id", _msg_offset(chunk, a), b"str: the peer whose track this is")
    _msg_member(4, b"track", _msg_offset(chunk, b), b"Track: the track of the chunk")
    _msg_member(5, b"data", _msg_offset(chunk, c), b"bytes: the chunk (owned)")
    _msg_install_members(IncomingTrackData, 3, 3)
    image.track_id = a = object()
    image.content_type = b = object()
    image.data = c = object()
    _msg_member(6, b"track_id", _msg_offset(image, a), b"str: the track of the image")
    _msg_member(7, b"content_type", _msg_offset(image, b), b"str: the image's MIME type")
    _msg_member(8, b"data", _msg_offset(image, c), b"bytes: the encoded image (owned)")
    _msg_install_members(IncomingTrackImage, 6, 3)
    unknown.field_number = a = object()
    _msg_member(9, b"field_number", _msg_offset(unknown, a), b"int: the unknown member's number")
    _msg_install_members(UnknownResponse, 9, 1)
    return 0


_msg_publish()
