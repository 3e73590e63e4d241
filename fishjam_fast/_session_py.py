"""The per-message path of a session, in Python: the fallback of ``_ext``'s session part.

Every audio chunk in and out goes through these five functions; ``AgentSession`` and
``OutgoingTrack`` call them through ``fishjam_fast._hotpath``, which selects the
native twin (``src_ext/session_hot.pyx``, in ``fishjam_fast._ext``) when the extension
is built and this module otherwise.
Both have the same behaviour; tests run the session on each.

- :func:`receive_messages` is the body of ``AgentSession.receive()``;
- :class:`Dispatcher` counts, decodes and routes a frame where it is read;
- :func:`read_message` reads one message (:func:`accept_frame`: dispatched); a read
  cancelled as its message arrived keeps the message (``_session_shared.keep_arrived``);
- :func:`write_now` writes one frame and counts it;
- :func:`send_chunk_now` is ``OutgoingTrack.send_chunk``'s shortcut: none here (the
  native one frames and writes a plain chunk without entering the interpreter).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

# the module, not its names: tests swap the codec's implementation under it
from . import _codec
from ._reconnect import connection_error
from ._session_shared import RECEIVING_TWICE, keep_arrived
from .errors import AgentError, AgentProtocolError
from .transport.base import TransportClosed

if TYPE_CHECKING:
    from collections.abc import Callable

    from typing_extensions import Buffer

    from ._codec import IncomingTrackData, IncomingTrackImage
    from .session import AgentSession
    from .stats import SessionStats
    from .track import OutgoingTrack
    from .transport.base import Transport

logger = logging.getLogger("fishjam_fast")

SEND_CHUNK_DONE = None
""":func:`send_chunk_now` wrote the chunk; nothing is left to do."""
SEND_CHUNK_DRAIN = True
""":func:`send_chunk_now` wrote the chunk; the write buffer is full: ``session._drain()``."""
SEND_CHUNK_DECLINED = False
""":func:`send_chunk_now` did nothing: the general path must send the chunk."""


class Dispatcher:
    """Counts, decodes and routes the frames of one session where they are read.

    The session makes one and hands it to every transport it uses
    (``Transport.set_dispatcher``): the picows transport dispatches each frame where
    picows delivers it, decoding straight from picows' receive buffer, and queues only
    what ``receive()`` is to yield; a transport that does not dispatch hands frames on
    as bytes, and :func:`accept_frame` dispatches them as they are read.

    Attributes:
        stats: The session's counters: every frame is counted here, once.
        on_track_data: ``AgentSession.on_track_data``'s callback, or None: peers' audio
            goes to it, synchronously, instead of to ``receive()``.
        on_closed: Called by a transport, once, soon after its connection ended (see
            ``Transport.set_dispatcher``): the session learns of a drop at once.
    """

    __slots__ = ("_image_waiters", "_loop", "on_closed", "on_track_data", "stats", "windows")

    def __init__(
        self,
        stats: SessionStats,
        image_waiters: dict[str, asyncio.Future[IncomingTrackImage]],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.stats = stats
        self._image_waiters = image_waiters
        self._loop = loop
        self.on_track_data: Callable[[IncomingTrackData], object] | None = None
        self.on_closed: Callable[[Transport, TransportClosed], object] | None = None
        # audio windows: the session's native _WindowAssembler, or None (windows.py)
        self.windows: Any = None

    def dispatch(self, frame: Buffer) -> IncomingTrackData | IncomingTrackImage | None:
        """Counts and decodes one frame (any buffer; valid during the call only).

        Returns the message for ``receive()``, or None when there is none: handed to
        ``on_track_data``, answering a ``request_image``, malformed (counted in
        ``stats.frames_skipped``, logged at WARNING), or of no interest
        (``authenticated``).
        """
        # audio windows: with on_audio a peer's audio goes into its track's ring
        if self.windows is not None and self.windows.take_frame(frame):
            return None
        size = len(frame) if type(frame) is bytes else memoryview(frame).nbytes
        stats = self.stats
        stats.messages_received += 1
        stats.bytes_received += size
        try:
            message = _codec.decode_response(frame)
        except AgentProtocolError as exc:
            stats.frames_skipped += 1
            logger.warning("skipped a malformed frame from Fishjam (%d bytes): %s", size, exc)
            return None
        if type(message) is _codec.IncomingTrackData:
            callback = self.on_track_data
            if callback is None:
                return message
            try:
                callback(message)
            except Exception as exc:
                # as asyncio reports an exception raised by any callback it runs
                self._loop.call_exception_handler(
                    {
                        "message": f"exception in the on_track_data callback {callback!r}",
                        "exception": exc,
                    }
                )
            return None
        if type(message) is _codec.IncomingTrackImage:
            waiter = self._image_waiters.pop(message.track_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
                return None
            return message
        return None  # authenticated again, or a kind this version does not know


def accept_frame(
    session: AgentSession, frame: bytes | IncomingTrackData | IncomingTrackImage
) -> IncomingTrackData | IncomingTrackImage | None:
    """What ``recv()`` gave, for the application: a frame (bytes) is dispatched now; a
    message the transport decoded where it read it (already dispatched) is returned."""
    if type(frame) is bytes:
        return session._dispatcher.dispatch(frame)
    return frame  # type: ignore[return-value]


async def read_message(session: AgentSession) -> IncomingTrackData | IncomingTrackImage | None:
    """Reads a frame; the message in it for the application, or None: try again.

    Raises:
        TransportClosed: the connection ended (the session has been told: it ends, or
            starts reconnecting).
    """
    transport = session._transport
    try:
        # no check of session._closed first: what the connection delivered before it
        # ended is still read (the transport raises TransportClosed once it is all read)
        frame = transport.recv_nowait()
        if frame is None:
            pending = transport.recv()
            try:
                frame = await pending
            except asyncio.CancelledError:
                keep_arrived(session, pending)
                raise
    except TransportClosed as closed:
        session._lost(transport, closed)
        raise
    return accept_frame(session, frame)


async def receive_messages(
    session: AgentSession,
) -> AsyncGenerator[IncomingTrackData | IncomingTrackImage]:
    """What ``AgentSession.receive()`` iterates (see its docstring)."""
    lock = session._read_lock
    backlog = session._backlog
    while True:
        if backlog:
            yield backlog.popleft()
            continue
        if session._receiving:
            raise AgentError(RECEIVING_TWICE)
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
            except TransportClosed:
                if session._outage is not None:
                    await asyncio.shield(session._outage)  # back, or raises what ended it
                    continue
                ended = session._closed  # what ended the session, maybe after a drop
                if ended is None:
                    continue  # already reconnected
                if ended.ok:
                    return
                raise connection_error(ended, "the connection to Fishjam was lost") from None
        finally:
            session._receiving = False
        if message is not None:
            yield message


def write_now(session: AgentSession, frame: Buffer) -> bool:
    """Writes one frame now if the connection is open, and counts it.

    Returns False when nothing was written (closed, reconnecting, or the write found
    the connection gone): then ``session._send`` decides.
    """
    if session._outage is not None or session._closed is not None:
        return False
    transport = session._transport
    try:
        transport.write(frame)
    except TransportClosed as closed:
        session._lost(transport, closed)
        return False
    stats = session.stats
    stats.messages_sent += 1
    stats.bytes_sent += len(frame)  # type: ignore[arg-type]
    return True


class TrackSender:
    """What ``send_chunk``'s shortcut needs of one track (C fields in the native twin,
    which reads them without an attribute lookup each).

    Attributes:
        session: The track's session.
        encoder: The track's TrackDataEncoder.
        frame_bytes: Bytes of one sample frame (PCM16: ``2 * channels``); 1 for Opus.
        seconds_per_byte: Playout seconds per PCM16 byte; 0.0 for Opus.
        clock: The track's PlayoutClock.
        enabled: False when the shortcut must decline: a paced track, or one removed.
    """

    __slots__ = ("clock", "enabled", "encoder", "frame_bytes", "seconds_per_byte", "session")

    def __init__(
        self,
        session: AgentSession,
        encoder: Any,
        frame_bytes: int,
        seconds_per_byte: float,
        clock: Any,
        enabled: bool,
    ) -> None:
        self.session = session
        self.encoder = encoder
        self.frame_bytes = frame_bytes
        self.seconds_per_byte = seconds_per_byte
        self.clock = clock
        self.enabled = enabled


def send_chunk_now(
    track: OutgoingTrack, data: object, nowait: bool = False
) -> bool | Buffer | None:
    """``send_chunk``'s (and ``send_chunk_nowait``'s) shortcut for a plain chunk; in
    Python there is none.

    Returns:
        :data:`SEND_CHUNK_DECLINED`: the general path does everything.
    """
    return SEND_CHUNK_DECLINED
