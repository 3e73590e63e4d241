# cython: language_level=3
"""fishjam_fast._picows_listener: one picows connection, in C.

picows parses each frame and calls ``on_ws_frame`` through its vtable; here a whole,
unfragmented binary frame (every audio chunk) goes to the session core
(``fishjam_fast._core.connection.Connection``, by a C call), which decodes it from a view of
picows' receive buffer, and what it returns for ``receive()`` is handed to the waiting reader (or
queued), without entering the interpreter; ``recv_nowait`` takes a queued one, also in
C. Before a session exists (authentication) the frame is copied into a ``bytes``.

Everything picows leaves to its user is done here too, so that this object alone holds
the connection's state: reassembling fragments (one buffer, ``max_message_size``,
``max_fragments``), refusing text frames (1003) and reserved bits (1002), answering
pings (coalesced to the latest one while writing is paused), the keepalive (timers, not
a task), pausing reading while ``max_queue`` messages are unread, failing the
connection and the closing handshake. The Python ``PicowsTransport``
(``fishjam_fast.transport.picows``) subclasses it only to add what it shares with the
websockets transport, through the hooks its ``.pxd`` declares.

No Python twin: picows is itself compiled, and where fishjam_fast's extension is not
built (the pure-Python build) there is no compiled Connection to call either, so the
picows transport needs this module and the pure-Python build uses the websockets
transport (``transport.choose.default_transport``).
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from picows.picows cimport WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

# (Connection, TrackDataEncoder: cimported in picows_listener.pxd)

import asyncio
from asyncio import get_running_loop

from fishjam_fast.transport.base import TransportClosed, closed_by_server, dropped, failed

# a close reason must fit a control frame: 125 bytes minus the 2-byte code
cdef Py_ssize_t _MAX_REASON_BYTES = 123

# bytes picows needs in front of a message it frames in place
# (send_reuse_external_bytearray: the longest client header, 2 + 8 + 4-byte mask)
cdef Py_ssize_t HEADROOM = 14


cdef tuple _close_frame(object view):
    """The code and reason of a close frame's payload (picows checked the UTF-8)."""
    if len(view) < 2:
        return 1005, ""
    return int.from_bytes(view[:2], "big"), bytes(view[2:]).decode("utf-8", "replace")


def _retrieve_exception(future):
    if not future.cancelled():
        future.exception()


cdef class FrameListener(WSListener):
    def __init__(self, options):
        """One connection's listener, bounded by ``options`` (a TransportOptions)."""
        self._loop = get_running_loop()
        self.options = options
        # max_queue_bytes 0: no byte bound; reading pauses past either bound, resumes at
        # a quarter of both
        self._queue = BoundedQueue(self._loop, options.max_queue, options.max_queue_bytes)
        self._closed = None
        self._ws = None
        self._socket = None
        self.disconnected = self._loop.create_future()
        self._fragments = None
        self._fragment_count = 0
        self._max_size = options.max_message_size
        self._max_fragments = options.max_fragments
        self._reading_paused = False
        self._write_paused = False
        self._pending_pong = None
        self._ping_timer = None
        self._pong_deadline = None
        self._abort_timer = None
        self._out = bytearray(HEADROOM)
        self._dispatcher = None

    # -- picows callbacks ------------------------------------------------------------

    cpdef on_ws_connected(self, WSTransport transport):
        self._ws = transport
        self._socket = transport.underlying_transport
        self._socket.set_write_buffer_limits(high=self.options.write_limit)
        self._schedule_ping()

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
            self._other_frame(transport, frame)

    cpdef on_ws_disconnected(self, WSTransport transport):
        self._cancel_timers()
        if self._closed is None:
            handshake = transport.close_handshake
            sent = handshake.sent if handshake is not None else None
            if sent is not None:
                # picows failed the connection itself (a frame over max_message_size,
                # a malformed frame, an invalid close): the code and reason it sent
                self._closed = failed(int(sent.code), sent.reason or "")
            else:
                self._closed = dropped()
            self._fragments = None
        self.on_ended()
        if not self.disconnected.done():
            self.disconnected.set_result(None)
        # picows also stores a failure it detected itself (1007, 1002, ...) in its own
        # disconnect future, right after this callback; the cause is already in
        # self._closed, so retrieve it there: otherwise asyncio logs "Future exception
        # was never retrieved" when the connection is collected.
        waiter = asyncio.ensure_future(transport.wait_disconnected())
        waiter.add_done_callback(_retrieve_exception)

    cpdef pause_writing(self):
        self._write_paused = True

    cpdef resume_writing(self):
        """Hook (picows'): writing may go on. Sends the pong held meanwhile;
        PicowsTransport extends it (wakes drain())."""
        self._write_paused = False
        pong, self._pending_pong = self._pending_pong, None
        if pong is not None and self._closed is None and self._ws is not None:
            self._ws.send_pong(pong)

    cpdef on_ended(self):
        """Hook: the connection ended (``_closed`` is set): the waiting reader raises."""
        self._queue.fail_reader(self._closed_copy())

    cdef _closed_copy(self):
        # a fresh exception each time: raising one instance again grows its traceback
        closed = self._closed
        return TransportClosed(closed.code, closed.reason, closed.ok, closed.by_client)

    # -- the frames picows delivers but the fast path does not take ------------------

    cdef _other_frame(self, WSTransport transport, WSFrame frame):
        """Every frame but a whole binary one outside a fragmented message, and every
        frame once the connection ended (only the answer to our close is read then)."""
        msg_type = frame.msg_type
        if self._closed is None:
            if transport.is_close_frame_sent:
                if (
                    frame.last_in_buffer
                    and msg_type == WSMsgType.BINARY
                    and frame.fin
                    and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
                    and self._fragments is None
                    and frame.payload_size <= self._max_size
                ):
                    # picows parses one frame ahead: this one came before the frame it
                    # failed on (it delivers it after sending its close), so it counts
                    self._deliver_frame(frame)
                self._failed_by_picows(transport)
            elif (
                msg_type == WSMsgType.BINARY or msg_type == WSMsgType.CONTINUATION
            ) and frame.payload_size > self._max_size:
                # picows refuses it already (max_frame_size): never delivered, whatever
                # order picows reports it in
                self.fail(
                    1009,
                    f"a frame of {frame.payload_size} bytes exceeds the limit {self._max_size}",
                )
                return
        if self._closed is not None:
            # RFC 6455 section 5.5.1: nothing after a close frame; nothing after a
            # failure either, on both transports
            if msg_type == WSMsgType.CLOSE:
                self._on_close(frame.get_payload_as_memoryview())
            return
        if frame.rsv1 or frame.rsv2 or frame.rsv3:
            self.fail(1002, "reserved bits set: no extension was negotiated")
        elif msg_type == WSMsgType.BINARY:
            if self._fragments is not None:
                self.fail(1002, "a new message began inside a fragmented message")
            else:
                self._fragments = bytearray()
                self._fragment_count = 0
                self._add_fragment(frame)
        elif msg_type == WSMsgType.CONTINUATION:
            if self._fragments is None:
                self.fail(1002, "a continuation frame with no message to continue")
            else:
                self._add_fragment(frame)
        elif msg_type == WSMsgType.TEXT:
            self.fail(1003, "text frames are not part of the agent protocol")
        elif msg_type == WSMsgType.PING:
            self._on_ping(frame.get_payload_as_bytes())
        elif msg_type == WSMsgType.PONG:
            self._on_pong()
        elif msg_type == WSMsgType.CLOSE:
            self._on_close(frame.get_payload_as_memoryview())

    cdef _deliver_frame(self, WSFrame frame):
        """A whole binary frame, as the fast path hands it on."""
        dispatcher = self._dispatcher
        if dispatcher is None:
            self.deliver(frame.get_payload_as_bytes(), frame.payload_size)
            return
        message = dispatcher.dispatch(frame.get_payload_as_memoryview())
        if message is not None:
            self.deliver(message, frame.payload_size)

    cdef _add_fragment(self, WSFrame frame):
        fragments = self._fragments
        self._fragment_count += 1
        cdef Py_ssize_t size = len(fragments) + frame.payload_size
        if size > self._max_size:
            self.fail(
                1009,
                f"fragmented message of {size} bytes or more exceeds the limit {self._max_size}",
            )
            return
        if self._fragment_count > self._max_fragments:
            self.fail(1009, f"message spans more than {self._max_fragments} fragments")
            return
        fragments += frame.get_payload_as_memoryview()
        if frame.fin:
            self._fragments = None
            dispatcher = self._dispatcher
            message = bytes(fragments)
            if dispatcher is not None:
                message = dispatcher.dispatch(message)
            if message is not None:
                self.deliver(message, len(fragments))

    cdef _failed_by_picows(self, WSTransport ws):
        """picows failed the connection itself (sent its close: a frame over
        max_frame_size, a malformed frame) but goes on parsing what follows: take its
        code and reason as the cause now, before any later frame is looked at."""
        handshake = ws.close_handshake
        sent = handshake.sent if handshake is not None else None
        code = int(sent.code) if sent is not None else 1002
        self._closed = failed(code, (sent.reason or "") if sent is not None else "")
        self._fragments = None
        self._cancel_keepalive()
        self._abort_later(self.options.close_timeout)
        self.on_ended()

    # -- receiving ---------------------------------------------------------------------

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

    cdef _pause_for_queue(self):
        # the application does not keep up: stop reading (the kernel's buffer and then
        # the server's writes back up) and suspend the keepalive, whose pongs would now
        # wait behind unread data
        self._reading_paused = True
        self._socket.pause_reading()
        self._cancel_keepalive()

    cdef _resume_for_queue(self):
        self._reading_paused = False
        if self._closed is None:
            self._socket.resume_reading()
            self._schedule_ping()

    @property
    def reading_paused(self):
        """True while reading from the socket is paused (``max_queue`` unread messages)."""
        return self._reading_paused

    @property
    def queued_messages(self):
        """Messages received and not yet read."""
        return len(self._queue)

    # -- control frames and the keepalive ------------------------------------------------

    cdef _on_ping(self, bytes payload):
        if self._closed is not None or self._ws is None:
            return
        if self._write_paused:
            # RFC 6455 section 5.5.3: a pong for the latest ping only is enough; a ping
            # flood from a peer that does not read cannot pile up pongs here
            self._pending_pong = payload
        else:
            self._ws.send_pong(payload)

    cdef _schedule_ping(self):
        interval = self.options.ping_interval
        if interval is not None and self._closed is None and self._ping_timer is None:
            self._ping_timer = self._loop.call_later(interval, self._ping)

    def _ping(self):
        self._ping_timer = None
        if self._closed is not None or self._reading_paused or self._ws is None:
            return
        self._ws.send_ping(b"fishjam_fast")
        # the deadline runs from now, even if the ping waits behind a full write buffer
        self._pong_deadline = self._loop.call_later(
            self.options.ping_timeout, self._ping_expired
        )

    cdef _on_pong(self):
        deadline = self._pong_deadline
        if deadline is not None:
            deadline.cancel()
            self._pong_deadline = None
            self._schedule_ping()

    def _ping_expired(self):
        self._pong_deadline = None
        timeout = self.options.ping_timeout
        self.fail(1011, f"keepalive ping timeout: no pong within {timeout:g} s", abort=True)

    cdef _cancel_keepalive(self):
        for timer in (self._ping_timer, self._pong_deadline):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_deadline = None

    cdef _cancel_timers(self):
        self._cancel_keepalive()
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None

    cdef _on_close(self, object payload):
        code, reason = _close_frame(payload)
        cdef int echo = code if code != 1005 else 1000
        ws = self._ws
        if self._closed is None:
            self._closed = closed_by_server(code, reason)
            self._fragments = None
            self._cancel_keepalive()
            # echo the code (RFC 6455 section 5.5.1); the server then closes the socket
            ws.send_close(<WSCloseCode>echo)
            self.on_ended()
            self._abort_later(self.options.close_timeout)
        else:
            # the answer to our close: the handshake is complete
            ws.disconnect()

    # -- failing and closing -----------------------------------------------------------

    cpdef fail(self, int code, str reason, bint abort=False):
        """Fails the connection: sends ``code`` and ``reason``, tells every waiter now
        (nothing if it already ended). ``abort``: the peer is gone, the socket is
        dropped without waiting for its buffer to drain."""
        if self._closed is not None:
            return
        self._closed = failed(code, reason)
        self._fragments = None
        self._cancel_keepalive()
        ws = self._ws
        if ws is not None:
            ws.send_close(<WSCloseCode>code, reason.encode()[:_MAX_REASON_BYTES])
            if abort:
                self._abort_later(0.0)
            else:
                ws.disconnect()
                self._abort_later(self.options.close_timeout)
        self.on_ended()

    cpdef begin_close(self):
        """Starts the closing handshake (1000), once; reads on if reading was paused so
        that the answer, behind unread messages, arrives (they are not delivered)."""
        if self._closed is None:
            self._closed = TransportClosed(1000, "", True, by_client=True)
            self._fragments = None
            self._cancel_keepalive()
            if self._ws is not None:
                self._ws.send_close(<WSCloseCode>1000)
            self.on_ended()
        if self._reading_paused and self._socket is not None and not self.disconnected.done():
            self._socket.resume_reading()

    cdef _abort_later(self, double delay):
        if self._abort_timer is None and not self.disconnected.done():
            self._abort_timer = self._loop.call_later(delay, self.abort)

    cpdef abort(self):
        """Drops the socket at once (no closing handshake)."""
        self._abort_timer = None
        if self._socket is not None and not self.disconnected.done():
            self._socket.abort()

    cdef _raise_closed(self):
        raise self._closed_copy()

    # -- sending -----------------------------------------------------------------------

    @property
    def writing_paused(self):
        """True while the write buffer is above its high-water mark."""
        return self._write_paused

    cpdef write(self, frame):
        """Frames, masks and writes one binary message (picows copies it)."""
        if self._closed is not None:
            self._raise_closed()
        self._ws.send(WSMsgType.BINARY, frame)

    cpdef bint write_client_frames(self, frames) except -1:
        """Writes frames the caller framed and masked straight to the socket, in one
        write (picows' own ``send`` would frame each message again); False, writing
        nothing, once the connection ended or our close frame went out."""
        ws = self._ws
        if self._closed is not None or ws is None or ws.is_close_frame_sent:
            return False
        self._socket.write(frames)
        return True

    cpdef Py_ssize_t write_track_data(self, encoder, data) except -1:
        """Writes one ``track_data`` message of ``encoder``'s track carrying ``data``
        (any buffer) now, without waiting; returns the message's size.

        One copy: the message is encoded into a buffer this connection keeps, after
        picows' headroom, and picows frames and masks it there
        (``send_reuse_external_bytearray``). What the socket does not take at once
        picows hands to the event loop as a copy of its own, so the buffer is free
        again when this returns. A buffer grown past ``max_message_size`` is not kept.
        An encoder other than the native TrackDataEncoder encodes a new bytes (its
        ``encode``), written as :meth:`write` does.
        """
        if self._closed is not None:
            self._raise_closed()
        if type(encoder) is not TrackDataEncoder:
            frame = encoder.encode(data)
            self._ws.send(WSMsgType.BINARY, frame)
            return len(frame)
        out = self._out
        cdef Py_ssize_t size = codec_track_data_into(
            out, HEADROOM, (<TrackDataEncoder>encoder)._id_field, data
        )
        self._ws.send_reuse_external_bytearray(WSMsgType.BINARY, out, HEADROOM)
        if size > self._max_size:
            self._out = bytearray(HEADROOM)  # the bound: a rare large one is not kept
        return size

    def get_extra_info(self, name):
        """The socket transport's ``get_extra_info(name)`` (None before it connected)."""
        return self._socket.get_extra_info(name) if self._socket is not None else None
