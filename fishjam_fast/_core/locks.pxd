# The augmenting declarations of fishjam_fast/_core/locks.py (Cython's pure-Python mode, as
# playout.pxd): setup.py compiles that one source into fishjam_fast._core.locks, and the
# session core's receive loop (the compiled fishjam_fast/_core/connection.py, through
# connection.pxd) cimports the class to take and release the lock by C calls, not by
# reading its fields.

cimport cython


@cython.final
cdef class ReadLock:
    cdef bint _locked       # held: someone reads the connection
    cdef object _waiters    # deque of the futures of acquire() calls waiting, in order

    cpdef bint try_acquire(self)
    cpdef release(self)
    cdef _wake_up_first(self)
