from picows.picows cimport WSFrame, WSListener, WSTransport


cdef class FrameListener(WSListener):
    cdef:
        public object _messages      # deque[bytes]: whole messages not yet received
        public object _reader        # the future recv() waits on, or None
        public object _closed        # TransportClosed once the connection ended, or None
        public object _fragments     # bytearray of a fragmented message, or None
        public bint _reading_paused  # reading stopped: max_queue messages unread
        public Py_ssize_t _max_queue # unread messages before reading pauses
        public WSTransport _ws       # picows' transport, set in on_ws_connected

    cpdef deliver(self, bytes message)
    cpdef write(self, frame)
