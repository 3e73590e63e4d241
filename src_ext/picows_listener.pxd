from picows.picows cimport WSFrame, WSListener, WSTransport

from fishjam_fast._ext cimport Dispatcher


cdef class FrameListener(WSListener):
    cdef:
        public object _messages      # deque[bytes]: whole messages not yet received
        public object _reader        # the future recv() returned, resolved with the message
        public object _closed        # TransportClosed once the connection ended, or None
        public object _fragments     # bytearray of a fragmented message, or None
        public bint _reading_paused  # reading stopped: max_queue messages unread
        public Py_ssize_t _max_queue # unread messages before reading pauses
        public Py_ssize_t _max_size  # max_message_size: a bigger frame is never delivered
        public Py_ssize_t _max_bytes    # max_queue_bytes: queued frame bytes before reading pauses
        public Py_ssize_t _resume_bytes # queued bytes at which paused reading resumes
        public Py_ssize_t _queued_bytes # frame bytes of the queued messages
        public object _sizes            # deque[int]: the frame size of each queued message
        public Py_ssize_t _resume_at # unread messages at which paused reading resumes
        public bint _write_paused    # the write buffer is above its high-water mark
        public WSTransport _ws       # picows' transport, set in on_ws_connected
        public object _loop          # the running loop (recv's futures)
        # the session's native Dispatcher (decodes, routes), or None; typed, so a frame
        # is handed on by a C call (set_dispatcher refuses any other object)
        public Dispatcher _dispatcher

    cpdef deliver(self, object message, Py_ssize_t size=*)
    cpdef recv_nowait(self)
    cpdef recv(self)
    cpdef write(self, frame)
