# Declarations of the session part (session_hot.pyx): the per-message path of a session.

cdef class Dispatcher:
    cdef readonly object stats        # the session's SessionStats
    cdef object _image_waiters        # the session's request_image futures, by track id
    cdef object _loop                 # reports a callback's exceptions
    cdef public object on_track_data  # the session's callback, or None
    cdef public object on_closed      # called by a transport when its connection ended
    cdef public object windows        # audio windows: the session's _WindowAssembler, or None

    cpdef object dispatch(self, object frame)
    # dispatch() of a frame at `data` (picows' receive buffer): the listener's C call
    cdef object dispatch_at(self, const unsigned char *data, Py_ssize_t size)
    # the decoded message, counted; None (counted, logged) if it is malformed
    cdef object _decode_counted(self, const unsigned char *data, Py_ssize_t size)


cdef class TrackSender:
    cdef readonly object session          # the track's AgentSession
    cdef readonly object encoder          # the track's TrackDataEncoder
    cdef readonly Py_ssize_t frame_bytes  # PCM16: 2 * channels; Opus: 1
    cdef readonly double seconds_per_byte # PCM16: playout seconds per byte; Opus: 0
    cdef readonly object clock            # the track's PlayoutClock
    cdef public bint enabled              # False: paced (max_queued) or removed
