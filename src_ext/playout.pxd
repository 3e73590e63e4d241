# Declarations of the playout clock (playout.pyx), native twin of fishjam_fast/_playout.py.

cdef class PlayoutClock:
    cdef public double ends_at          # monotonic time at which everything sent has played
    cdef public double sent_seconds     # seconds of audio recorded by add()
    cdef public double dropped_seconds  # seconds of queued audio dropped by clear()

    cpdef double queued(self, double now)
    cpdef add(self, double seconds, double now)
    cpdef double clear(self, double now)
    cpdef double wait_before(self, double seconds, double limit, double now)
    cpdef double refill_wait(self, double seconds, double limit, double now)
