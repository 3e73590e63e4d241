# cython: language_level=3
"""fishjam_fast._picows_listener: the per-frame path of the picows transport, in C.

picows parses each frame and calls ``on_ws_frame`` through its vtable; here a whole,
unfragmented binary frame (every audio chunk) is copied once out of picows' receive
buffer into a ``bytes`` and handed to the waiting reader (or queued), without entering
the interpreter; ``recv_nowait`` takes a queued one, also in C. Everything rarer
(fragments, control frames, text, reserved bits) goes to the Python subclass's
``_on_other_frame``; pausing reading to ``_pause_for_queue``. Sends go straight to
``WSTransport.send`` (picows frames and masks them).

``fishjam_fast/_picows_frames_py.py`` is the same class in Python, the fallback where
this module is not built; tests run both.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from picows.picows cimport WSFrame, WSListener, WSMsgType, WSTransport

from collections import deque

NATIVE = True


cdef class FrameListener(WSListener):
    def __init__(self, Py_ssize_t max_queue):
        self._messages = deque()
        self._reader = None
        self._closed = None
        self._fragments = None
        self._reading_paused = False
        self._max_queue = max_queue
        self._resume_at = max(1, max_queue // 4)
        self._write_paused = False
        self._ws = None

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        if (
            frame.msg_type == WSMsgType.BINARY
            and frame.fin
            and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
            and self._fragments is None
        ):
            self.deliver(PyBytes_FromStringAndSize(frame.payload_ptr, frame.payload_size))
        else:
            self._on_other_frame(frame)

    cpdef deliver(self, bytes message):
        """Hands a whole message to the waiting reader, else queues it (pausing reading
        above max_queue)."""
        reader = self._reader
        if reader is not None:
            # a reader waits only while the queue is empty: no message jumps the queue
            self._reader = None
            if not reader.done():  # else its task was cancelled: queue the message
                reader.set_result(message)
                return
        self._messages.append(message)
        if len(self._messages) > self._max_queue and not self._reading_paused:
            self._pause_for_queue()

    cpdef recv_nowait(self):
        """The next queued message; None if none is queued and the connection is open.

        Messages that arrived before the connection ended are still returned (at most
        max_queue of them), then the cause is raised (TransportClosed).
        """
        messages = self._messages
        if not messages:
            if self._closed is not None:
                self._raise_closed()
            return None
        message = messages.popleft()
        if self._reading_paused and len(messages) <= self._resume_at:
            self._resume_for_queue()
        return message

    @property
    def writing_paused(self):
        """True while the write buffer is above its high-water mark."""
        return self._write_paused

    cpdef write(self, frame):
        """Frames, masks and writes one binary message (picows copies it)."""
        if self._closed is not None:
            self._raise_closed()
        self._ws.send(WSMsgType.BINARY, frame)
