# The augmenting declarations of fishjam_fast/_messages.py (Cython's pure-Python mode, as
# _playout.pxd): setup.py compiles that one source into the extension module
# fishjam_fast._messages, which Python imports before the .py beside it; without a
# compiler the .py runs as it is. The decoded AgentResponse contents are cdef classes
# here, and the native decoder (fishjam_fast._ext, which cimports them in _ext.pxd)
# makes them with __new__ and stores their C fields directly.
#
# The fields are `cdef public`, Cython's own way to publish a C field as a Python
# attribute (a getset descriptor: readable and settable). Cython initialises object
# fields to None in tp_new and _Message.__delattr__ refuses deletion, so a field is
# always a valid object and C code (the decoder) reads and writes it directly.

# PCM16 on the wire (see the .py): a C global in the compiled module
cdef object _PCM_LE16


cdef class _Message:
    pass


cdef class Track(_Message):
    cdef public object id           # str: the track's id
    cdef public object type         # TrackType member, or a plain int for unknown numbers
    cdef public object metadata     # str: JSON text


cdef class IncomingTrackData(_Message):
    cdef public object peer_id      # str: the peer whose track this is
    cdef public object track        # Track
    cdef public object data         # bytes: the chunk, owned


cdef class IncomingTrackImage(_Message):
    cdef public object track_id         # str: the track the image was captured from
    cdef public object content_type     # str: MIME type, e.g. image/jpeg
    cdef public object data             # bytes: the encoded image, owned


cdef class Authenticated(_Message):
    pass


cdef class UnknownResponse(_Message):
    cdef public object field_number     # int: the unknown member's field number, or 0
