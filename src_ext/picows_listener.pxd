from picows.picows cimport WSFrame, WSListener, WSTransport

from fishjam_fast._core.connection cimport Connection
from fishjam_fast._ext cimport TrackDataEncoder, codec_track_data_into
from fishjam_fast.transport._queue cimport BoundedQueue


# One picows connection: its state and every decision about its frames (the receive
# queue, fragments, control frames, the keepalive, failing and closing). The Python
# PicowsTransport (fishjam_fast/transport/picows.py) adds what it shares with the
# websockets transport (TransportBase: drain, telling the session) by overriding the
# two hooks declared below (on_ended, resume_writing), each calling this class's first.
# Fields are readonly: only this class changes them.
cdef class FrameListener(WSListener):
    cdef:
        # the receive queue (transport/_queue.py, compiled): bounded by max_queue and
        # max_queue_bytes; the websockets transport has the same class
        readonly BoundedQueue _queue
        readonly object _closed        # TransportClosed once the connection ended, or None
        readonly WSTransport _ws       # picows' transport, set in on_ws_connected
        readonly object _socket        # the asyncio transport under picows
        readonly object _loop          # the running loop (futures, timers)
        readonly object disconnected   # future: resolved once the socket is gone
        readonly object options        # the TransportOptions it was opened with
        object _fragments              # bytearray of a fragmented message, or None
        Py_ssize_t _fragment_count     # frames of the fragmented message so far
        Py_ssize_t _max_size           # max_message_size: a bigger frame is never delivered
        Py_ssize_t _max_fragments      # max_fragments
        bint _reading_paused           # reading stopped: the queue is past its bound
        bint _write_paused             # the write buffer is above its high-water mark
        object _pending_pong           # the latest ping's payload while writing is paused
        object _ping_timer             # TimerHandle of the next keepalive ping, or None
        object _pong_deadline          # TimerHandle failing the connection, or None
        object _abort_timer            # TimerHandle dropping the socket, or None
        # write_track_data's frame: HEADROOM bytes for picows' header, then the message
        # encoded in place; kept between writes up to max_message_size
        bytearray _out
        # the session core (fishjam_fast/_core/connection.py, compiled: decodes, routes), or
        # None; typed, so a frame is handed on by a C call (set_dispatcher refuses any
        # other object)
        public Connection _dispatcher

    # the per-message path (C calls)
    cpdef deliver(self, object message, Py_ssize_t size=*)
    cpdef recv_nowait(self)
    cpdef recv(self)
    cpdef write(self, frame)
    cpdef bint write_client_frames(self, frames) except -1
    cpdef Py_ssize_t write_track_data(self, encoder, data) except -1

    # Hook: the connection ended (`_closed` was just set). The default fails the
    # waiting reader (recv raises the cause); PicowsTransport extends it (drainers,
    # the session's on_closed). Called once per connection.
    cpdef on_ended(self)

    cpdef fail(self, int code, str reason, bint abort=*)
    cpdef begin_close(self)
    cpdef abort(self)

    cdef _deliver_frame(self, WSFrame frame)
    cdef _other_frame(self, WSTransport transport, WSFrame frame)
    cdef _add_fragment(self, WSFrame frame)
    cdef _failed_by_picows(self, WSTransport ws)
    cdef _pause_for_queue(self)
    cdef _resume_for_queue(self)
    cdef _on_ping(self, bytes payload)
    cdef _on_pong(self)
    cdef _on_close(self, object payload)
    cdef _schedule_ping(self)
    cdef _cancel_keepalive(self)
    cdef _cancel_timers(self)
    cdef _abort_later(self, double delay)
    cdef _closed_copy(self)
    cdef _raise_closed(self)
