# The per-message path of a session, native twin of fishjam_fast/_session_py.py (read
# that module's docstring; the behaviour is the same, tests run the session on both).
#
# Why it is here: at hundreds of real-time agents per core, what the client spends per
# audio chunk outside the kernel was mostly the interpreter running these few functions
# (a Python async generator, a coroutine per read, attribute reads and counters). In C
# the async generator and the read coroutine are Cython coroutines, the decode and the
# framing are direct C calls, and a plain chunk is framed and written by one call.
#
# The session's and the track's attributes are read as Python attributes: they are
# Python objects (their classes stay Python for subclassing and the fallback); only
# the work between the reads moved to C.

import asyncio
import logging
import time
from collections.abc import AsyncGenerator as _AsyncGenerator

from fishjam_fast._reconnect import connection_error as _connection_error
from fishjam_fast._session_shared import RECEIVING_TWICE as _RECEIVING_TWICE
from fishjam_fast._session_shared import keep_arrived as _keep_arrived
from fishjam_fast.transport.base import TransportClosed as _TransportClosed
from fishjam_fast.errors import AgentError as _AgentError

cdef object _logger = logging.getLogger("fishjam_fast")
cdef object _shield = asyncio.shield
cdef object _CancelledError = asyncio.CancelledError
cdef object _monotonic = time.monotonic


cdef class Dispatcher:
    """Counts, decodes and routes the frames of one session where they are read.

    (As fishjam_fast._session_py.Dispatcher, which documents it.)
    """

    def __init__(self, stats, image_waiters, loop):
        self.stats = stats
        self._image_waiters = image_waiters
        self._loop = loop
        self.on_track_data = None
        self.on_closed = None
        self.windows = None

    cpdef object dispatch(self, object frame):
        """Counts and decodes one frame (any buffer; valid during the call only).

        Returns the message for ``receive()``, or None when there is none: handed to
        ``on_track_data``, answering a ``request_image``, malformed (counted in
        ``stats.frames_skipped``, logged), or of no interest (``authenticated``).
        """
        cdef Py_buffer view
        if PyBytes_CheckExact(frame):
            return self.dispatch_at(
                <const unsigned char *>PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame)
            )
        PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE)  # a C-contiguous byte run
        try:
            return self.dispatch_at(<const unsigned char *>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    cdef object dispatch_at(self, const unsigned char *data, Py_ssize_t size):
        # the native listener calls this with picows' payload pointer: decoded where it
        # lies in picows' receive buffer, the audio copied once, into the message
        # audio windows: with on_audio a peer's audio is copied into its track's ring
        # instead (windows.pyx), counted there
        windows = self.windows
        if windows is not None and (<_WindowAssembler>windows).take(data, size):
            return None
        message = self._decode_counted(data, size)
        if message is None:
            return None
        if type(message) is IncomingTrackData:
            callback = self.on_track_data
            if callback is None:
                return message
            try:
                callback(message)
            except Exception as exc:
                _report(self._loop, callback, exc)
            return None
        if type(message) is IncomingTrackImage:
            waiter = self._image_waiters.pop((<IncomingTrackImage>message).track_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
                return None
            return message
        return None  # authenticated again, or a kind this version does not know

    cdef object _decode_counted(self, const unsigned char *data, Py_ssize_t size):
        """The decoded message, counted; None (counted, logged) if it is malformed."""
        stats = self.stats
        stats.messages_received += 1
        stats.bytes_received += size
        try:
            return _decode(data, size)
        except AgentProtocolError as exc:
            stats.frames_skipped += 1
            _logger.warning("skipped a malformed frame from Fishjam (%d bytes): %s", size, exc)
            return None


cdef object _report(object loop, object callback, object exc):
    # as asyncio reports an exception raised by any callback it runs
    loop.call_exception_handler({
        "message": f"exception in the on_track_data callback {callback!r}",
        "exception": exc,
    })


cdef inline object _accept(object session, object frame):
    """accept_frame: a frame (bytes) dispatched now, or a message the transport decoded."""
    if PyBytes_CheckExact(frame):
        dispatcher = session._dispatcher
        if type(dispatcher) is Dispatcher:
            return (<Dispatcher>dispatcher).dispatch(frame)
        return dispatcher.dispatch(frame)
    return frame


def accept_frame(session, frame):
    """What ``recv()`` gave, for the application: a frame (bytes) is dispatched now; a
    message the transport decoded where it read it (already dispatched) is returned.

    (As fishjam_fast._session_py.accept_frame.)
    """
    return _accept(session, frame)


async def read_message(session):
    """Reads a frame; the message in it for the application, or None: try again.

    (As fishjam_fast._session_py.read_message.) No check of session._closed first:
    what the connection delivered before it ended is still read (the transport raises
    TransportClosed once it is all read), and on TransportClosed the session is told
    first (it ends, or starts reconnecting).
    """
    transport = session._transport
    try:
        frame = transport.recv_nowait()
        if frame is None:
            pending = transport.recv()
            try:
                frame = await pending
            except _CancelledError:
                # a message that came as the read was cancelled is kept (the backlog)
                _keep_arrived(session, pending)
                raise
    except _TransportClosed as closed:
        session._lost(transport, closed)
        raise
    return _accept(session, frame)


def receive_messages(session):
    """What AgentSession.receive() returns (as fishjam_fast._session_py.receive_messages):
    an async generator over the session's messages."""
    return _Receiver(session)


cdef extern from *:
    """
    /* the am_anext slot of an async iterator, as `async for` calls it */
    static PyObject *fj_anext(PyObject *iterator) {
        PyAsyncMethods *methods = Py_TYPE(iterator)->tp_as_async;
        if (methods != NULL && methods->am_anext != NULL) {
            return methods->am_anext(iterator);
        }
        return PyObject_CallMethod(iterator, "__anext__", NULL);
    }
    """
    object _anext "fj_anext"(object iterator)


cdef class _Receiver:
    """receive()'s async generator, native: the generator below, made on first use.

    Cython warns when one of its async generators is collected unstarted ("coroutine
    ... was never awaited"), CPython's do not: ``session.receive()`` kept and never
    iterated must not warn, so the generator is made by the first ``__anext__``,
    ``asend``, ``athrow`` or ``aclose``. Each delegates to it (a C call).
    """

    cdef object _session
    cdef object _messages  # _receive_messages(session), once used

    def __init__(self, session):
        self._session = session
        self._messages = None

    cdef object _generator(self):
        if self._messages is None:
            self._messages = _receive_messages(self._session)
        return self._messages

    def __aiter__(self):
        return self

    def __anext__(self):
        return _anext(self._generator())

    def asend(self, value):
        return self._generator().asend(value)

    def athrow(self, *args):
        return self._generator().athrow(*args)

    def aclose(self):
        return self._generator().aclose()


_AsyncGenerator.register(_Receiver)


async def _receive_messages(session):
    """The body of receive()'s async generator (as fishjam_fast._session_py's)."""
    # the compiled ReadLock (fishjam_fast/_locks.py): taken and released by C calls
    cdef ReadLock lock = session._read_lock
    backlog = session._backlog
    while True:
        if backlog:
            yield backlog.popleft()
            continue
        if session._receiving:
            raise _AgentError(_RECEIVING_TWICE)
        session._receiving = True
        try:
            try:
                if not lock.try_acquire():
                    await lock.acquire()  # request_image is reading
                    if backlog:
                        # it read (and set aside) messages while we waited
                        lock.release()
                        continue
                try:
                    message = await read_message(session)
                finally:
                    lock.release()
            except _TransportClosed as closed:
                if session._outage is not None:
                    await _shield(session._outage)  # back, or raises what ended it
                    continue
                ended = session._closed  # what ended the session, maybe after a drop
                if ended is None:
                    continue  # already reconnected
                if ended.ok:
                    return
                raise _connection_error(ended, "the connection to Fishjam was lost") from None
        finally:
            session._receiving = False
        if message is not None:
            yield message


cpdef bint write_now(object session, object frame) except -1:
    """Writes one frame now if the connection is open, and counts it.

    (As fishjam_fast._session_py.write_now.) Returns False when nothing was written
    (closed, reconnecting, or the write found the connection gone).
    """
    if session._outage is not None or session._closed is not None:
        return False
    return _write_counted(session, session._transport, frame)


cdef bint _write_counted(object session, object transport, object frame) except -1:
    """write_now once the connection was found open (``transport`` is the session's)."""
    try:
        transport.write(frame)
    except _TransportClosed as closed:
        session._lost(transport, closed)
        return False
    stats = session.stats
    stats.messages_sent += 1
    stats.bytes_sent += len(frame)
    return True


cdef class TrackSender:
    """What send_chunk's shortcut needs of one track, as C fields.

    (As fishjam_fast._session_py.TrackSender, which documents it.)
    """

    def __init__(self, session, encoder, Py_ssize_t frame_bytes, double seconds_per_byte,
                 clock, bint enabled):
        self.session = session
        self.encoder = encoder
        self.frame_bytes = frame_bytes
        self.seconds_per_byte = seconds_per_byte
        self.clock = clock
        self.enabled = enabled


def send_chunk_now(track, data, bint nowait=False):
    """OutgoingTrack.send_chunk's (and send_chunk_nowait's) shortcut for a plain chunk:
    ``bytes`` holding whole samples, on an unpaced track, on an open connection (and,
    for ``nowait``, a write buffer below its high-water mark).

    Frames it (the track's TrackDataEncoder), moves the playout clock as
    ``PlayoutClock.add`` does, writes it and counts it, all without a Python frame;
    what it needs of the track is in C fields of its TrackSender.

    Returns:
        None: written, nothing left to do. True: written, and the write buffer is now
        full (``send_chunk`` waits in ``session._drain()``). False: nothing was done
        (anything else, or the write found the connection gone under ``nowait``): the
        general path sends it, waits, or raises. A frame (not ``nowait``): framed and
        clocked, not written (the connection dropped as it was written): the caller
        hands it to ``session._send``.
    """
    sender = track._sender
    if type(sender) is not TrackSender or not PyBytes_CheckExact(data):
        return False
    cdef TrackSender s = <TrackSender>sender
    if not s.enabled or type(s.encoder) is not TrackDataEncoder:
        return False
    cdef Py_ssize_t size = PyBytes_GET_SIZE(data)
    if size % s.frame_bytes:
        return False  # the general path says what is wrong
    session = s.session
    if session._outage is not None or session._closed is not None:
        return False
    transport = session._transport
    if nowait and transport.writing_paused:
        return False
    frame = _encode_track_data((<TrackDataEncoder>s.encoder)._id_field, data)
    cdef double seconds = size * s.seconds_per_byte
    cdef double now = 0.0, ends_at = 0.0, sent = 0.0
    cdef PlayoutClock clock = None
    if seconds:
        if type(s.clock) is not PlayoutClock:
            return False  # (the uncompiled clock of a pure-Python build: the general path)
        # the clock's own add (a C call through its vtable); what it was is kept for
        # the case where nothing goes out
        clock = <PlayoutClock>s.clock
        now = _monotonic()
        ends_at = clock.ends_at
        sent = clock.sent_seconds
        clock.add(seconds, now)
    if not _write_counted(session, transport, frame):
        if not nowait:
            return frame
        if clock is not None:  # nothing went out: the clock did not move
            clock.ends_at = ends_at
            clock.sent_seconds = sent
        return False
    if not nowait and transport.writing_paused:  # (send_chunk_nowait does not wait)
        return True
    return None
