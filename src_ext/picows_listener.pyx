# cython: language_level=3
"""fishjam_fast._picows_listener: the per-frame path of the picows transport, in C.

picows parses each frame and calls ``on_ws_frame`` through its vtable; here a whole,
unfragmented binary frame (every audio chunk) goes to the session's dispatcher
(``fishjam_fast._ext.Dispatcher``), which decodes it from a view of picows' receive
buffer, and what it returns for ``receive()`` is handed to the waiting reader (or
queued), without entering the interpreter; ``recv_nowait`` takes a queued one, also in
C. Before a session exists (authentication) the frame is copied into a ``bytes``. Everything rarer
(fragments, control frames, text, reserved bits) goes to the Python subclass's
``_on_other_frame``; pausing reading to ``_pause_for_queue``. Sends go straight to
``WSTransport.send`` (picows frames and masks them).

No Python twin: picows is itself compiled, and where fishjam_fast's extension is not
built (the pure-Python build) there is no native Dispatcher to call either, so the
picows transport needs this module and the pure-Python build uses the websockets
transport (``transport.choose.default_transport``).
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from picows.picows cimport WSFrame, WSListener, WSMsgType, WSTransport

# (Dispatcher: cimported in picows_listener.pxd)

from asyncio import get_running_loop


cdef class FrameListener(WSListener):
    def __init__(self, Py_ssize_t max_queue, Py_ssize_t max_size, Py_ssize_t max_bytes=0):
        self._loop = get_running_loop()
        # max_queue_bytes 0: no byte bound; reading pauses past either bound, resumes at
        # a quarter of both
        self._queue = BoundedQueue(self._loop, max_queue, max_bytes)
        self._closed = None
        self._fragments = None
        self._reading_paused = False
        self._max_size = max_size
        self._write_paused = False
        self._ws = None
        self._dispatcher = None

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        if (
            frame.msg_type == WSMsgType.BINARY
            and frame.fin
            and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
            and self._fragments is None
            # nothing is delivered once the connection ended: after the server's close
            # frame, after we failed it, after picows did (it sends its close, 1009 for
            # a frame over max_frame_size, yet goes on parsing what follows)
            and self._closed is None
            and not transport.is_close_frame_sent
            and frame.payload_size <= self._max_size
        ):
            dispatcher = self._dispatcher
            if dispatcher is None:  # authenticating: the agent reads the answer itself
                self.deliver(
                    PyBytes_FromStringAndSize(frame.payload_ptr, frame.payload_size),
                    frame.payload_size,
                )
                return
            # decoded where it lies in picows' receive buffer: the audio is copied once,
            # into the message; peers' audio may go straight to the session's
            # on_track_data callback, queued only what receive() yields
            message = dispatcher.dispatch_at(
                <const unsigned char *>frame.payload_ptr, frame.payload_size
            )
            if message is not None:
                self.deliver(message, frame.payload_size)
        else:
            self._on_other_frame(frame)

    cpdef deliver(self, object message, Py_ssize_t size=0):
        """Hands a whole message (a frame of ``size`` bytes) to the waiting reader, else
        queues it (pausing reading above max_queue messages or max_queue_bytes)."""
        queue = self._queue
        queue.put(message, size)
        if queue.past_bound() and not self._reading_paused:
            self._pause_for_queue()

    cpdef recv_nowait(self):
        """The next queued message; None if none is queued and the connection is open.

        Messages that arrived before the connection ended are still returned (at most
        max_queue of them), then the cause is raised (TransportClosed).
        """
        queue = self._queue
        message = queue.take()
        if message is None:
            if self._closed is not None:
                self._raise_closed()
            return None
        if self._reading_paused and queue.drained():
            self._resume_for_queue()
        return message

    cpdef recv(self):
        """The next message: a future that ``deliver`` resolves with it (no coroutine
        per message), or with the cause of the end of the connection."""
        message = self.recv_nowait()
        if message is None:
            return self._queue.wait()
        reader = self._loop.create_future()
        reader.set_result(message)
        return reader

    @property
    def writing_paused(self):
        """True while the write buffer is above its high-water mark."""
        return self._write_paused

    cpdef write(self, frame):
        """Frames, masks and writes one binary message (picows copies it)."""
        if self._closed is not None:
            self._raise_closed()
        self._ws.send(WSMsgType.BINARY, frame)
