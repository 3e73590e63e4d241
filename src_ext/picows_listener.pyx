# cython: language_level=3
"""fishjam_fast._picows_listener: the per-frame path of the picows transport, in C.

picows parses each frame and calls ``on_ws_frame`` through its vtable; here a whole,
unfragmented binary frame (every audio chunk) is copied once out of picows' receive
buffer into a ``bytes`` and queued, without entering the interpreter. Everything rarer
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
        """Queues a whole message, wakes recv(), pauses reading above max_queue."""
        self._messages.append(message)
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)
        if len(self._messages) > self._max_queue and not self._reading_paused:
            self._pause_for_queue()

    cpdef write(self, frame):
        """Frames, masks and writes one binary message (picows copies it)."""
        if self._closed is not None:
            self._raise_closed()
        self._ws.send(WSMsgType.BINARY, frame)
