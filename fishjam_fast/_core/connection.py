# cython: annotation_typing=False
"""The session core: one :class:`Connection` per agent session owns the connection's
state and does its per-message work (every audio chunk in and out goes through here).

It holds the transport in use (replaced on a reconnection), the counters
(``SessionStats``: every message in and out is counted here, in :meth:`Connection.write`
and :meth:`Connection._count_received`), the read lock, the backlog ``receive()`` reads
first, ``request_image``'s waiters, the outage and closed state, the ``receiving`` flag,
the ``on_track_data`` callback and the audio windows' assembler. It decodes and routes
each frame where the transport reads it (:meth:`Connection.dispatch`), reads
(:meth:`Connection.read_message`, ``receive()``'s loop), writes and counts
(:meth:`Connection.write`), and sends a plain chunk in one call
(:meth:`Connection.send_chunk`, with each track's :class:`TrackSender`).

``AgentSession``, ``OutgoingTrack`` and the audio windows are facades over it: they read
and set its declared fields and call its methods; it calls back into the session once,
through the declared ``on_lost`` field (the connection was lost: the session ends or
reconnects).

One source for both builds (Cython's pure-Python mode, as ``playout`` and ``locks``):
setup.py compiles this file with the augmenting ``connection.pxd`` into
``fishjam_fast._core.connection``, a cdef class with C fields, which Python imports in place
of this file; the picows listener cimports it and hands it each frame by a C call
(:meth:`Connection.dispatch_at`, compiled only). Without a compiler this file runs as it
is (the pure-Python build). Keep it to what Cython compiles (only the declared
attributes on the two declared classes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

# absolute: the tests load this file uncompiled under another name, outside the package
from fishjam_fast import _codec
from fishjam_fast._core import locks
from fishjam_fast._core.reconnect import connection_error
from fishjam_fast.errors import AgentError, AgentProtocolError
from fishjam_fast.transport.base import TransportClosed

try:
    import cython  # type: ignore[import-untyped, import-not-found, unused-ignore]

    COMPILED = cython.compiled
except ImportError:  # no Cython installed: this file runs uncompiled
    COMPILED = False

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from typing_extensions import Buffer

    from fishjam_fast._codec import IncomingTrackData, IncomingTrackImage
    from fishjam_fast._core.playout import PlayoutClock
    from fishjam_fast.stats import SessionStats
    from fishjam_fast.transport.base import Transport

__all__ = [
    "DECLINED",
    "NOT_OPEN",
    "RECEIVING_TWICE",
    "WRITTEN",
    "WRITTEN_FULL",
    "Connection",
    "TrackSender",
]

logger = logging.getLogger("fishjam_fast")

# What Connection.write and Connection.send_chunk return (C constants when compiled:
# the .pxd declares them as an enum)
WRITTEN = 0
"""Written and counted; the write buffer has room."""
WRITTEN_FULL = 1
"""Written and counted; the write buffer is now above its high-water mark (a sender
that may wait drains it)."""
NOT_OPEN = 2
"""Nothing was written: the session is reconnecting or closed, or the write found the
connection gone (the session was told: ``on_lost``)."""
DECLINED = 3
"""``send_chunk`` only: nothing was done; the general path sends the chunk (or says
what is wrong with it)."""

RECEIVING_TWICE = (
    "another task is iterating receive() of this session; read the messages in one "
    "loop and hand them on (e.g. via an asyncio.Queue)"
)

# the decoded message classes routed per frame (C globals when compiled: no lookup)
_TrackData = _codec.IncomingTrackData
_TrackImage = _codec.IncomingTrackImage
_monotonic = time.monotonic
_shield = asyncio.shield
_CancelledError = asyncio.CancelledError
_wait = asyncio.wait
_ensure_future = asyncio.ensure_future
_FIRST_COMPLETED = asyncio.FIRST_COMPLETED


class TrackSender:
    """What one outgoing track's sends need, read by :meth:`Connection.send_chunk`
    (C fields when compiled). ``OutgoingTrack`` keeps its state here, not beside it.

    Attributes:
        encoder: The track's TrackDataEncoder.
        frame_bytes: Bytes of one sample frame (PCM16: ``2 * channels``); 1 for Opus.
        seconds_per_byte: Playout seconds per PCM16 byte; 0.0 for Opus.
        clock: The track's PlayoutClock.
        paced: ``max_queued`` is set (the shortcut declines: sending may wait).
        removed: The track was removed (the shortcut declines: the general path raises).
    """

    __slots__ = ("clock", "encoder", "frame_bytes", "paced", "removed", "seconds_per_byte")

    def __init__(
        self,
        encoder: Any,
        frame_bytes: int,
        seconds_per_byte: float,
        clock: PlayoutClock,
        paced: bool,
    ) -> None:
        self.encoder = encoder
        self.frame_bytes = frame_bytes
        self.seconds_per_byte = seconds_per_byte
        self.clock = clock
        self.paced = paced
        self.removed = False


class Connection:
    """The state and the per-message work of one agent session's connection.

    Made by ``Agent.connect`` before the first connection (None: no transport yet; the
    authentication is counted here) and handed to the ``AgentSession``; one per
    session, kept across reconnections (only :attr:`transport` changes), handed to
    every transport the session uses as its dispatcher (``Transport.set_dispatcher``).

    Attributes:
        transport: The transport in use.
        stats: The session's counters: every message in and out is counted here, once.
        read_lock: Who reads the connection next (``receive()``, ``request_image``).
        backlog: Messages set aside for ``receive()``, which reads them first.
        image_waiters: ``request_image``'s futures, by track id.
        loop: The session's loop.
        outage: A future while the session reconnects (resolved when connected again,
            failed with what ended the session otherwise), else None.
        closed: What ended the session (a TransportClosed), else None.
        receiving: A ``receive()`` loop waits for the next message.
        on_track_data: ``AgentSession.on_track_data``'s callback, or None.
        on_lost: ``on_lost(transport, closed)``: the connection was found lost (the
            session ends or reconnects). Set by the session.
        on_closed: Called by a transport, once, soon after its connection ended (see
            ``Transport.set_dispatcher``). Set by the session.
        windows: Audio windows' native assembler (``on_audio``), or None.
    """

    __slots__ = (
        "backlog",
        "closed",
        "image_waiters",
        "loop",
        "on_closed",
        "on_lost",
        "on_track_data",
        "outage",
        "read_lock",
        "receiving",
        "stats",
        "transport",
        "windows",
    )

    def __init__(
        self, transport: Transport | None, stats: SessionStats, loop: asyncio.AbstractEventLoop
    ) -> None:
        # None until the session takes its first transport (Agent.connect authenticates
        # first, counting here)
        self.transport: Transport = transport  # type: ignore[assignment]
        self.stats = stats
        self.loop = loop
        self.read_lock = locks.ReadLock()
        self.backlog: deque[IncomingTrackData | IncomingTrackImage] = deque()
        self.image_waiters: dict[str, asyncio.Future[IncomingTrackImage]] = {}
        self.outage: asyncio.Future[None] | None = None
        self.closed: TransportClosed | None = None
        self.receiving = False
        self.on_track_data: Callable[[IncomingTrackData], object] | None = None
        self.on_lost: Callable[[Transport, TransportClosed], object] | None = None
        self.on_closed: Callable[[Transport, TransportClosed], object] | None = None
        self.windows: Any = None

    # -- receiving ------------------------------------------------------------------

    def dispatch(self, frame: Buffer) -> IncomingTrackData | IncomingTrackImage | None:
        """Counts, decodes and routes one frame (any buffer; valid during the call only).

        Returns the message for ``receive()``, or None when there is none: handed to
        ``on_track_data`` or to the audio windows, answering a ``request_image``,
        malformed (counted in ``stats.frames_skipped``, logged at WARNING), or of no
        interest (``authenticated``).
        """
        size = len(frame) if type(frame) is bytes else memoryview(frame).nbytes
        windows = self.windows
        if windows is not None and windows.take_frame(frame):
            self.count_received(size, None)  # a peer's audio, copied into its ring
            return None
        try:
            message = _codec.decode_response(frame)
        except AgentProtocolError as exc:
            self.count_received(size, exc)
            return None
        self.count_received(size, None)
        return self._route(message)

    def dispatch_at(self, data: Any, size: int) -> IncomingTrackData | IncomingTrackImage | None:
        """:meth:`dispatch` of a frame at ``data`` (a C pointer into picows' receive
        buffer): the picows listener's C call, decoded where the frame lies.

        Compiled only: its body uses the extension's C decoder and the assembler's C
        method (the uncompiled build has no native listener to call it).
        """
        windows = self.windows
        if windows is not None and windows.take(data, size):
            self.count_received(size, None)  # a peer's audio, copied into its ring
            return None
        try:
            message = _decode(data, size)  # type: ignore[name-defined]  # noqa: F821
        except AgentProtocolError as exc:
            self.count_received(size, exc)
            return None
        self.count_received(size, None)
        return self._route(message)

    def _route(self, message: Any) -> IncomingTrackData | IncomingTrackImage | None:
        """Where a decoded message goes: ``on_track_data``, a ``request_image`` waiter,
        or ``receive()`` (returned); None for what the application is not given."""
        if type(message) is _TrackData:
            callback = self.on_track_data
            if callback is None:
                return message
            try:
                callback(message)
            except Exception as exc:
                # as asyncio reports an exception raised by any callback it runs
                self.loop.call_exception_handler(
                    {
                        "message": f"exception in the on_track_data callback {callback!r}",
                        "exception": exc,
                    }
                )
            return None
        if type(message) is _TrackImage:
            waiter = self.image_waiters.pop(message.track_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
                return None
            return message
        return None  # authenticated again, or a kind this version does not know

    def count_received(self, size: int, error: Exception | None) -> int:
        """The one place incoming frames are counted: ``size`` bytes read; ``error``:
        the frame was malformed (skipped, logged). (The agent's authentication, read
        before the session takes the transport, is counted here too.)"""
        stats = self.stats
        stats.messages_received += 1
        stats.bytes_received += size
        if error is not None:
            stats.frames_skipped += 1
            logger.warning("skipped a malformed frame from Fishjam (%d bytes): %s", size, error)
        return 0

    def accept_frame(self, frame: Any) -> IncomingTrackData | IncomingTrackImage | None:
        """What a transport's ``recv()`` gave, for the application: a frame (bytes, read
        before the dispatcher was set) is dispatched now; a message the transport
        dispatched where it read it is returned."""
        if type(frame) is bytes:
            return self.dispatch(frame)
        return frame  # type: ignore[no-any-return]

    def keep_arrived(self, pending: object) -> None:
        """A read was cancelled (``recv(timeout)``'s deadline, ``request_image``'s): if
        the message arrived meanwhile, it goes to the backlog, which the next read
        takes first.

        It happens when the message resolves the transport's future in the same loop
        iteration as the cancellation: the task then wakes up with CancelledError
        instead of the result, which only the future still holds. (A future cancelled
        before the message came leaves it queued in the transport.)
        """
        if (
            isinstance(pending, asyncio.Future)
            and pending.done()
            and not pending.cancelled()
            and pending.exception() is None
        ):
            message = self.accept_frame(pending.result())
            if message is not None:
                self.backlog.append(message)

    async def read_message(
        self, until: asyncio.Future[Any] | None = None
    ) -> IncomingTrackData | IncomingTrackImage | None:
        """Reads a frame; the message in it for the application, or None: try again.

        No check of :attr:`closed` first: what the connection delivered before it
        ended is still read (the transport raises TransportClosed once it is all read).
        A read cancelled as its message arrived keeps the message (:meth:`keep_arrived`).

        Args:
            until: A future (``request_image``'s waiter): the read gives up, returning
                None, as soon as it is done (the image answering it was dispatched
                where it arrived). The message not read stays queued in the transport.

        Raises:
            TransportClosed: the connection ended (``on_lost`` was called first: the
                session ends, or starts reconnecting).
        """
        transport = self.transport
        try:
            frame = transport.recv_nowait()
            if frame is None:
                pending = transport.recv()
                try:
                    if until is None:
                        frame = await pending
                    else:
                        frame = await self._read_until(pending, until)
                        if frame is None:
                            return None  # given up: the message stays queued
                except _CancelledError:
                    # a message that came as the read was cancelled is kept
                    self.keep_arrived(pending)
                    raise
        except TransportClosed as closed:
            self._lost(transport, closed)
            raise
        return self.accept_frame(frame)

    async def _read_until(self, pending: Awaitable[Any], until: asyncio.Future[Any]) -> Any:
        """``pending`` (a transport's ``recv()``) once it is done, or None as soon as
        ``until`` is done first (the read is cancelled: its message stays queued)."""
        reading = _ensure_future(pending)  # (both transports' recv() is a future)
        try:
            await _wait((until, reading), return_when=_FIRST_COMPLETED)
        finally:
            if not reading.done():
                reading.cancel()
        if reading.cancelled():
            return None
        return reading.result()

    def receive(self) -> AsyncGenerator[IncomingTrackData | IncomingTrackImage]:
        """What ``AgentSession.receive()`` returns: an async generator over the
        session's messages (see its docstring)."""
        return _Receiver(self)

    async def _receive_messages(self) -> AsyncGenerator[IncomingTrackData | IncomingTrackImage]:
        """The body of ``receive()``'s async generator."""
        backlog = self.backlog
        while True:
            if backlog:
                yield backlog.popleft()
                continue
            if self.receiving:
                raise AgentError(RECEIVING_TWICE)
            self.receiving = True
            try:
                try:
                    # (self.read_lock, not a local: compiled, a C call on the typed field)
                    if not self.read_lock.try_acquire():
                        await self.read_lock.acquire()  # request_image is reading
                        if backlog:
                            # it read (and set aside) messages while we waited
                            self.read_lock.release()
                            continue
                    try:
                        message = await self.read_message()
                    finally:
                        self.read_lock.release()
                except TransportClosed:
                    outage = self.outage
                    if outage is not None:
                        await _shield(outage)  # back, or raises what ended it
                        continue
                    ended = self.closed  # what ended the session, maybe after a drop
                    if ended is None:
                        continue  # already reconnected
                    if ended.ok:
                        return
                    raise connection_error(ended, "the connection to Fishjam was lost") from None
            finally:
                self.receiving = False
            if message is not None:
                yield message

    def _lost(self, transport: Any, closed: TransportClosed) -> None:
        on_lost = self.on_lost
        if on_lost is not None:
            on_lost(transport, closed)

    # -- sending --------------------------------------------------------------------

    def write(self, frame: Buffer) -> int:
        """Writes one frame now if the connection is open, and counts it: the one
        place outgoing messages are counted (with :meth:`write_client_frames`).

        Returns:
            :data:`WRITTEN`, :data:`WRITTEN_FULL` (written; the write buffer is now
            full) or :data:`NOT_OPEN` (nothing written: reconnecting, closed, or the
            write found the connection gone, which ``on_lost`` was told).
        """
        if self.outage is not None or self.closed is not None:
            return NOT_OPEN
        transport = self.transport
        try:
            transport.write(frame)
        except TransportClosed as closed:
            self._lost(transport, closed)
            return NOT_OPEN
        self.count_sent(1, len(frame) if type(frame) is bytes else memoryview(frame).nbytes)
        return WRITTEN_FULL if transport.writing_paused else WRITTEN

    def write_client_frames(self, frames: Buffer, count: int, size: int) -> int:
        """Writes ``count`` messages of ``size`` bytes in all, framed and masked by the
        caller (audio windows' ``send_pcm_nowait``), in one write, and counts them.

        Returns:
            :data:`WRITTEN` or :data:`WRITTEN_FULL`; :data:`DECLINED`: nothing written
            (not open, or the transport does not take client frames: then :meth:`write`
            each message).
        """
        if self.outage is not None or self.closed is not None:
            return DECLINED
        transport = self.transport
        if not (transport.takes_client_frames and transport.write_client_frames(frames)):
            return DECLINED
        self.count_sent(count, size)
        return WRITTEN_FULL if transport.writing_paused else WRITTEN

    def count_sent(self, count: int, size: int) -> int:
        """The one place outgoing messages are counted: ``count`` messages of ``size``
        bytes in all, written (by :meth:`write`, :meth:`write_client_frames`, and the
        authentication and the tracks re-added on a new connection before the session
        takes it)."""
        stats = self.stats
        stats.messages_sent += count
        stats.bytes_sent += size
        return 0

    def send_chunk(self, sender: TrackSender, data: object, nowait: bool) -> int:
        """``OutgoingTrack.send_chunk``'s (and ``send_chunk_nowait``'s) shortcut for a
        plain chunk: ``bytes`` holding whole samples, on an unpaced track not removed,
        on an open connection (and for ``nowait``, a write buffer with room). Moves the
        track's playout clock, has the transport encode and write it
        (``Transport.write_track_data``: one copy of the audio on picows) and counts it
        (compiled: the clock's C fields, no Python frame of its own).

        Returns:
            :data:`WRITTEN`, :data:`WRITTEN_FULL`, :data:`NOT_OPEN` (the connection is
            not open, or the write found it gone: nothing was sent, the clock did not
            move), or :data:`DECLINED` (anything else): then the general path sends,
            waits or raises.
        """
        if type(data) is not bytes or sender.paced or sender.removed:
            return DECLINED
        size = len(data)
        if size % sender.frame_bytes:
            return DECLINED  # the general path says what is wrong
        if self.outage is not None or self.closed is not None:
            return NOT_OPEN
        if nowait and self.transport.writing_paused:
            return DECLINED  # the general path raises AgentWouldBlockError
        seconds = size * sender.seconds_per_byte
        clock = sender.clock
        now = ends_at = sent = 0.0
        if seconds:
            now = _monotonic()
            ends_at = clock.ends_at  # what it was: restored if nothing goes out
            sent = clock.sent_seconds
            clock.add(seconds, now)
        transport = self.transport
        try:
            # encoded and written in one call: on picows with the extension's encoder,
            # straight into the connection's reused buffer (one copy of the audio)
            written = transport.write_track_data(sender.encoder, data)
        except TransportClosed as closed:
            self._lost(transport, closed)
            if seconds:  # nothing went out: the clock did not move
                clock.ends_at = ends_at
                clock.sent_seconds = sent
            return NOT_OPEN
        self.count_sent(1, written)
        return WRITTEN_FULL if transport.writing_paused else WRITTEN


class _Receiver:
    """``receive()``'s async generator: the generator made on first use.

    Compiled, the generator is Cython's, which warns when it is collected unstarted
    ("coroutine ... was never awaited"; still so in Cython 3.3), where CPython's does
    not: ``session.receive()`` kept and never iterated must not warn, so the generator
    is made by the first ``__anext__``, ``asend``, ``athrow`` or ``aclose``, each
    delegating to it.
    """

    __slots__ = ("_connection", "_messages")

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._messages: Any = None

    def _generator(self) -> Any:
        if self._messages is None:
            self._messages = self._connection._receive_messages()
        return self._messages

    def __aiter__(self) -> _Receiver:
        return self

    def __anext__(self) -> Any:
        if COMPILED:  # the generator's C slot, as `async for` calls it (compiled only)
            return _anext(self._generator())  # type: ignore[name-defined]  # noqa: F821
        return self._generator().__anext__()

    def asend(self, value: Any) -> Any:
        return self._generator().asend(value)

    def athrow(self, *args: Any) -> Any:
        return self._generator().athrow(*args)

    def aclose(self) -> Any:
        return self._generator().aclose()


AsyncGenerator.register(_Receiver)
