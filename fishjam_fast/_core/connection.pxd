# The augmenting declarations of fishjam_fast/_core/connection.py (Cython's pure-Python mode,
# as playout.pxd and locks.pxd): setup.py compiles that one source into the extension
# module fishjam_fast._core.connection, which Python imports before the .py beside it; without
# a compiler the .py runs as it is. Here the connection's state is C fields of a cdef
# class: the picows listener (src_ext/picows_listener.pyx) cimports Connection and hands
# it each frame by a C call (dispatch_at), and the chunk-out shortcut moves the compiled
# PlayoutClock's C fields and hands the chunk to the transport's write_track_data.

cimport cython

# the decoder of the agent protocol and the audio windows' assembler: C-level names of
# the extension fishjam_fast._ext (fishjam_fast/_ext.pxd)
from fishjam_fast._ext cimport _WindowAssembler, _decode
from fishjam_fast._core.locks cimport ReadLock
from fishjam_fast._core.playout cimport PlayoutClock

# True here (cython.compiled), False in the uncompiled .py: _Receiver's C call
cdef bint COMPILED
# the decoded message classes (fishjam_fast._messages, compiled) that _route tells apart
cdef object _TrackData, _TrackImage


@cython.final
cdef class TrackSender:
    # the track's encoder: the extension's TrackDataEncoder (the picows listener encodes
    # with its C field), or the pure-Python codec's under FISHJAM_FAST_NO_EXTENSIONS=1
    cdef readonly object encoder
    cdef readonly Py_ssize_t frame_bytes     # PCM16: 2 * channels; Opus: 1
    cdef readonly double seconds_per_byte    # PCM16: playout seconds per byte; Opus: 0
    cdef readonly PlayoutClock clock         # the track's playout clock
    cdef public bint paced                   # max_queued is set: sending may wait
    cdef public bint removed                 # the track was removed


@cython.final
cdef class Connection:
    cdef public object transport          # the Transport in use (replaced on reconnection)
    cdef readonly object stats            # the session's SessionStats: counted here only
    cdef readonly ReadLock read_lock      # who reads the connection next
    cdef readonly object backlog          # deque of messages set aside for receive()
    cdef readonly dict image_waiters      # request_image's futures, by track id
    cdef readonly object loop             # the session's loop (reports callbacks' errors)
    cdef public object outage             # a future while reconnecting, else None
    cdef public object closed             # TransportClosed once the session ended, else None
    cdef public bint receiving            # a receive() loop waits for the next message
    cdef public object on_track_data      # the session's callback, or None
    cdef public object on_lost            # on_lost(transport, closed): the session's _lost
    cdef public object on_closed          # what a transport calls when its connection ended
    cdef public _WindowAssembler windows  # audio windows (on_audio), or None

    # receiving
    cpdef object dispatch(self, object frame)
    cdef object dispatch_at(self, const unsigned char *data, Py_ssize_t size)
    cdef object _route(self, object message)
    cpdef int count_received(self, Py_ssize_t size, object error) except -1
    cpdef object accept_frame(self, object frame)
    cpdef keep_arrived(self, object pending)
    # sending
    cpdef int write(self, object frame) except -1
    cpdef int write_client_frames(self, object frames, Py_ssize_t count,
                                  Py_ssize_t size) except -1
    cpdef int count_sent(self, Py_ssize_t count, Py_ssize_t size) except -1

    @cython.locals(size=Py_ssize_t, seconds=cython.double, now=cython.double,
                   ends_at=cython.double, sent=cython.double, written=Py_ssize_t,
                   clock=PlayoutClock)
    cpdef int send_chunk(self, TrackSender sender, object data, bint nowait) except -1


# the am_anext slot of an async iterator, as `async for` calls it (_Receiver.__anext__)
cdef extern from *:
    """
    static PyObject *fj_anext(PyObject *iterator) {
        PyAsyncMethods *methods = Py_TYPE(iterator)->tp_as_async;
        if (methods != NULL && methods->am_anext != NULL) {
            return methods->am_anext(iterator);
        }
        return PyObject_CallMethod(iterator, "__anext__", NULL);
    }
    """
    object _anext "fj_anext"(object iterator)


@cython.final
cdef class _Receiver:
    cdef Connection _connection
    cdef object _messages         # the generator, once made
    cdef object _generator(self)
