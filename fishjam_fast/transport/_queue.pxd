# The augmenting declarations of fishjam_fast/transport/_queue.py (Cython's pure-Python
# mode): setup.py compiles that one source into fishjam_fast.transport._queue, and the
# picows transport's listener (src_ext/picows_listener.pyx) cimports the class to call
# put/take/at_bound/... in C per message.

cimport cython


@cython.final
cdef class BoundedQueue:
    cdef object _loop                 # the running loop (wait's futures)
    cdef object _messages             # deque: whole messages not yet taken
    cdef object _sizes                # deque[int]: the frame size of each
    cdef object _reader               # the future wait() returned, or None
    cdef Py_ssize_t _resume_at        # messages at which reading may resume
    cdef Py_ssize_t _resume_bytes     # bytes at which reading may resume
    cdef readonly Py_ssize_t max_queue    # messages at which reading stops
    cdef readonly Py_ssize_t max_bytes    # bytes at which reading stops
    cdef readonly Py_ssize_t queued_bytes # frame bytes of the queued messages

    cpdef put(self, object message, Py_ssize_t size)
    cpdef object take(self)
    cpdef bint at_bound(self)
    cpdef bint past_bound(self)
    cpdef bint drained(self)
    cpdef object wait(self)
    cpdef fail_reader(self, object exc)
