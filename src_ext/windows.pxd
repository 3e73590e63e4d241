# Declarations of the audio windows (windows.pyx): peers' audio copied once from the
# frame into a per-track ring of NumPy int16, handed on a window at a time.

cdef class _TrackRing:
    cdef bytes peer_key           # the peer id's UTF-8 bytes, as on the wire
    cdef bytes track_key          # the track id's UTF-8 bytes, as on the wire
    cdef object peer_id           # str: decoded once
    cdef object track_id          # str: decoded once
    cdef object ring              # NumPy int16, (slots * window,) or (slots * window, channels)
    cdef char *base               # the ring's first byte
    cdef Py_ssize_t slots         # windows the ring holds
    cdef Py_ssize_t oldest        # sequence number of the oldest undelivered window
    cdef Py_ssize_t ready         # complete windows not yet delivered
    cdef Py_ssize_t fill          # sample frames in the window being written
    cdef double[::1] starts       # each window's start on the session clock (slots,)
    cdef Py_ssize_t[::1] missing  # each window's zero-filled sample frames (slots,)
    cdef double next_start        # start of the next window; NaN: the next one starts a run
    cdef double last_data         # monotonic time of the last chunk
    cdef Py_ssize_t wire_bytes    # bytes on the socket of the last chunk (frame + header)
    cdef Py_ssize_t chunk_frames  # sample frames of the last chunk
    cdef list views               # each slot's NumPy view, made once (handed on as pcm)


cdef class _WindowAssembler:
    cdef object loop              # the session's loop (call_soon, exception handler)
    cdef public object deliver    # deliver(items): a window's TrackAudio list
    cdef public object session    # the session core (its declared transport, closed)
    cdef public object transport  # the transport whose socket `fd` is
    cdef object make_item         # TrackAudio(peer_id, track_id, rate, pcm, start, missing)
    cdef list tracks              # _TrackRing of each track heard (at most max_tracks)
    cdef _TrackRing last          # the ring of the last chunk (most chunks are its track's)
    cdef list spare               # the last window's list of TrackAudio, nobody else held it
    cdef readonly Py_ssize_t sample_rate
    cdef readonly Py_ssize_t channels
    cdef readonly Py_ssize_t window       # sample frames per window
    cdef readonly double window_s         # seconds per window
    cdef readonly double tick_s           # the ticker's period for this window
    cdef readonly double stop_s           # no chunk for this long: a partial window is padded
    cdef Py_ssize_t slots                 # windows per ring (max_buffered_ms)
    cdef Py_ssize_t max_tracks            # tracks held at once
    cdef double clock0                    # monotonic time of the session clock's zero
    cdef bint scheduled                   # a flush is scheduled (call_soon)
    cdef public int fd                    # the socket (SO_RCVLOWAT), -1: none
    cdef public bint coalesce             # use SO_RCVLOWAT
    cdef readonly Py_ssize_t lowat        # the low-water mark set, 0: none (1 while forced)
    cdef double last_read                 # monotonic time of the last frame taken
    cdef double forced_at                 # when the mark was lowered to force a read, 0: not
    cdef double check_at                  # when the ticker next looks at the session
    cdef bint lowat_stale                 # a chunk came since the mark was last computed
    cdef double next_due                  # the ticker has nothing to do here before this
    cdef public bint closed               # stopped: takes nothing
    # counters (AudioWindows reads them)
    cdef readonly Py_ssize_t windows_delivered
    cdef readonly Py_ssize_t chunks
    cdef readonly Py_ssize_t overflow_frames
    cdef readonly Py_ssize_t missing_frames
    cdef readonly Py_ssize_t refused_chunks
    cdef readonly Py_ssize_t refused_tracks
    cdef readonly Py_ssize_t forced_reads

    # the hook of the session core (Connection.dispatch_at): True if the frame was a
    # peer's audio, taken here (the session core counts it)
    cdef bint take(self, const unsigned char *data, Py_ssize_t size) except -1
    # the ring of a track (made on its first chunk); None or _REFUSED: see windows.pyx
    cdef object _ring(self, ReadCursor *peer, ReadCursor *track_id, double now)
    # copies n sample frames into a ring: the one copy of the audio
    cdef int _write(self, _TrackRing ring, const unsigned char *src, Py_ssize_t n,
                    double now) except -1
    # completes a partial window with zeros
    cdef int _pad(self, _TrackRing ring) except -1
    # hands on every complete window
    cpdef flush(self)
    # no track is mid-window without a whole one ready
    cdef bint _all_ready(self)
    # the ticker's work: 1 when the session ended
    cdef int tick(self, double now) except -1
    cdef double _next_due(self)
    cdef Py_ssize_t _wanted_lowat(self, double now)
    cdef int _set_lowat(self, Py_ssize_t value) except -1
