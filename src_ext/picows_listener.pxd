from picows.picows cimport WSFrame, WSListener, WSTransport

from fishjam_fast._connection cimport Connection
from fishjam_fast.transport._queue cimport BoundedQueue


cdef class FrameListener(WSListener):
    cdef:
        # the receive queue (transport/_queue.py, compiled): bounded by max_queue and
        # max_queue_bytes; the websockets transport has the same class
        public BoundedQueue _queue
        public object _closed        # TransportClosed once the connection ended, or None
        public object _fragments     # bytearray of a fragmented message, or None
        public bint _reading_paused  # reading stopped: the queue is past its bound
        public Py_ssize_t _max_size  # max_message_size: a bigger frame is never delivered
        public bint _write_paused    # the write buffer is above its high-water mark
        public WSTransport _ws       # picows' transport, set in on_ws_connected
        public object _loop          # the running loop (recv's futures)
        # the session core (fishjam_fast/_connection.py, compiled: decodes, routes), or
        # None; typed, so a frame is handed on by a C call (set_dispatcher refuses any
        # other object)
        public Connection _dispatcher

    cpdef deliver(self, object message, Py_ssize_t size=*)
    cpdef recv_nowait(self)
    cpdef recv(self)
    cpdef write(self, frame)
