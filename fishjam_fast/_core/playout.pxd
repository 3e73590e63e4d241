# The augmenting declarations of fishjam_fast/_core/playout.py (Cython's pure-Python mode, as
# aiohttp compiles reader_c from reader_py.py): setup.py compiles that one source into
# the extension module fishjam_fast._core.playout, which Python imports before the .py
# beside it; without a compiler the .py runs as it is. These declarations make the
# class a cdef class with C fields, so that the session core's send path (the compiled
# fishjam_fast/_core/connection.py, which cimports it in connection.pxd) moves a track's
# clock with C field reads and writes and calls its methods through the vtable.

# a nanosecond (see the .py): a C constant in the compiled module
cdef double _EPSILON

cdef class PlayoutClock:
    cdef public double ends_at          # monotonic time at which everything sent has played
    cdef public double sent_seconds     # seconds of audio recorded by add()
    cdef public double dropped_seconds  # seconds of queued audio dropped by clear()

    cpdef double queued(self, double now)
    cpdef add(self, double seconds, double now)
    cpdef double clear(self, double now)
    cpdef double wait_before(self, double seconds, double limit, double now)
    cpdef double refill_wait(self, double seconds, double limit, double now)
