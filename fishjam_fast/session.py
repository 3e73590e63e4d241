"""An agent's live connection: AgentSession.

The names, signatures and wire traffic are those of the plain SDK's ``fishjam.agent``;
the differences are documented on each method (clean end of ``receive()``, typed
errors, validation before sending, flow control, ``remove_track``, ``request_image``,
``stats``, automatic reconnection). The track, its options and the counters live in
their own modules (``track``, ``_options``, ``stats``) and are re-exported here under
their old names; the connection's lifecycle (states, reconnection, the end of the
session) is the base class in ``_core.lifecycle``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from . import _codec
from . import windows as _windows  # audio windows
from ._codec import IncomingTrackData, IncomingTrackImage
from ._core.connection import NOT_OPEN, WRITTEN, WRITTEN_FULL, Connection
from ._core.lifecycle import SendPolicy, SessionLifecycle
from ._core.reconnect import SessionState, SessionStateChange, connection_error
from ._options import (
    CHANNEL_COUNTS,
    MAX_METADATA_BYTES,
    OPUS_SAMPLE_RATES,
    PCM16_SAMPLE_RATES,
    OutgoingAudioTrackOptions,
    track_params,
)
from .errors import AgentConnectionError, AgentError, AgentWouldBlockError
from .stats import SessionStats
from .track import OutgoingTrack
from .transport.base import Transport, TransportClosed
from .windows import AudioStream, AudioWindows, TrackAudio  # audio windows

if TYPE_CHECKING:
    from collections.abc import Awaitable, Generator

    from typing_extensions import Buffer

    from .agent import Agent

__all__ = [
    "CHANNEL_COUNTS",
    "MAX_BACKLOG",
    "MAX_METADATA_BYTES",
    "OPUS_SAMPLE_RATES",
    "PCM16_SAMPLE_RATES",
    "AgentSession",
    "IncomingAgentMessage",
    "OutgoingAudioTrackOptions",
    "OutgoingTrack",
    "SessionState",
    "SessionStateChange",
    "SessionStats",
]

logger = logging.getLogger("fishjam_fast")

IncomingAgentMessage = IncomingTrackData | IncomingTrackImage

MAX_BACKLOG = 1024
"""Messages ``request_image`` may set aside for ``receive()`` while it reads itself."""


class _Done:
    """What ``_send`` returns when nothing is left to wait for: awaiting it returns at
    once (no coroutine made for the usual frame)."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # (a generator: awaiting it finishes at once)


_DONE = _Done()


class AgentSession(SessionLifecycle):
    """An authenticated connection of an agent to Fishjam.

    Obtained from ``async with agent.connect() as session``.

    Attributes:
        agent: The agent that opened the session.
    """

    def __init__(
        self,
        agent: Agent,
        transport: Transport,
        *,
        stats: SessionStats | None = None,
        conn: Connection | None = None,
    ) -> None:
        """Wraps an authenticated transport (done by :meth:`Agent.connect`, with the
        session core ``conn`` that counted the authentication)."""
        self.agent = agent
        if conn is None:
            if stats is None:
                stats = SessionStats(connected_at=time.monotonic())
            conn = Connection(transport, stats, asyncio.get_running_loop())
        conn.transport = transport
        self.stats = conn.stats
        # the session core: the connection's state and per-message work (it counts,
        # decodes and routes every frame where the transport reads it)
        self._conn = conn
        self._init_lifecycle()
        # the one call back into the session: a read or write found the connection lost;
        # and a transport's own report of its end, told at once, read or not (nothing
        # happens if it is an old connection, or already known)
        conn.on_lost = conn.on_closed = self._lost
        transport.set_dispatcher(conn)

    @property
    def _transport(self) -> Transport:
        """The transport in use (the session core's)."""
        return self._conn.transport

    async def _use_transport(self, transport: Transport) -> None:
        """Switches to a new connection (a reconnection): what the lost one still held
        for ``receive()`` goes to the backlog first, in order (bounded by the lost
        connection's own buffers, and in time by ``close_timeout``)."""
        conn = self._conn
        lock = conn.read_lock
        limit = self.agent._options.close_timeout
        try:
            async with asyncio.timeout(limit):
                await lock.acquire()  # a receive() reading the lost one lets go at its end
        except TimeoutError:  # (cannot happen: a reader of the lost connection ends)
            conn.transport = transport
            transport.set_dispatcher(conn)
            return
        try:
            async with asyncio.timeout(limit):
                while True:  # the lost one: what it holds, then TransportClosed
                    message = await conn.read_message()
                    if message is not None:
                        conn.backlog.append(message)
        except (TransportClosed, TimeoutError):
            pass
        finally:
            conn.transport = transport
            lock.release()
        transport.set_dispatcher(conn)

    # -- sending -----------------------------------------------------------------

    def _send(
        self,
        frame: Buffer | list[memoryview],
        policy: SendPolicy = "resend",
        *,
        waiting: str = "send_chunk",
    ) -> Awaitable[None]:
        """Sends one frame, or a list of frames, in order: the one way out of the
        session (tracks, interrupts, captures, track changes all send through it).

        Each frame is written and counted by the session core (``Connection.write``)
        before any wait for the write buffer, so a cancelled send leaves ``stats``
        saying exactly what went out. ``policy`` says whether to wait or fail: with an
        :data:`~fishjam_fast._core.lifecycle.AfterDrop` it waits while the write buffer is
        full and while the session reconnects, and says what becomes of the frames not
        yet written after a drop (frames written to the lost connection are not
        written again); ``"now"`` never waits: it raises before writing anything when
        it would have to (``waiting`` names the call that waits instead, for the
        message).

        Returns:
            What to await: done at once when nothing is left to wait for (``"now"``
            never leaves anything).

        Raises:
            AgentConnectionError: the session is closed, or the connection was lost and
                not restored; with ``"now"``: not open now (reconnecting), or the
                write found the connection gone.
            AgentWouldBlockError: ``"now"`` only: the write buffer is full.
            AgentAuthError: the server refused the token on reconnection.
        """
        conn = self._conn
        if policy == "now":
            self._check_now(waiting)
            for part in frame if isinstance(frame, list) else (frame,):
                if conn.write(part) == NOT_OPEN:
                    self._check_now(waiting)  # it found the connection gone: raises
                    raise AgentConnectionError("the connection to Fishjam was lost")
            return _DONE
        if not isinstance(frame, list):
            # one frame on an open connection: the path every audio chunk takes
            result = conn.write(frame)
            if result == WRITTEN:
                return _DONE
            if result == WRITTEN_FULL:
                return self._drain()
            frame = [memoryview(frame)]
        return self._send_through(frame, policy)

    async def _send_through(self, frames: list[memoryview], after_drop: SendPolicy) -> None:
        """``_send`` of frames that may wait: out in order, through an outage."""
        conn = self._conn
        done = 0
        while True:
            if (conn.outage is not None or conn.closed is not None) and not (
                await self._through_outage(after_drop)  # type: ignore[arg-type]
            ):
                return
            while done < len(frames):
                result = conn.write(frames[done])
                if result == NOT_OPEN:
                    break  # lost (the session was told): through the outage, or raise
                done += 1
                if result == WRITTEN_FULL:
                    transport = conn.transport
                    try:
                        await transport.drain()
                    except TransportClosed as closed:
                        self._lost(transport, closed)
                        if done == len(frames) and conn.outage is not None:
                            return  # all written; the next send waits for the reconnection
                        break
            else:
                return

    def _check_now(self, waiting: str) -> None:
        """For sends that do not wait: raises unless the connection is open now and its
        write buffer has room.

        Raises:
            AgentConnectionError: the session is closed, or reconnecting.
            AgentWouldBlockError: the write buffer is full.
        """
        conn = self._conn
        if conn.closed is not None:
            raise self._closed_error()
        if conn.outage is not None:
            drop = self._drop
            raise AgentConnectionError(
                f"the session is reconnecting ({drop}); nothing was sent: {waiting} "
                f"waits for the new connection, {waiting}_nowait does not",
                drop.code if drop is not None else 1006,
                drop.reason if drop is not None else "",
            )
        if conn.transport.writing_paused:
            raise AgentWouldBlockError(
                "the connection's write buffer is full (the network or the server is "
                f"slower than the audio); nothing was sent: {waiting} waits for room"
            )

    async def _drain(self) -> None:
        """Waits while the write buffer is full, after a frame was written.

        Raises:
            AgentConnectionError: the connection ended while waiting, not restored.
        """
        transport = self._conn.transport
        try:
            await transport.drain()
        except TransportClosed as closed:
            self._lost(transport, closed)
            if self._conn.outage is None:
                raise self._closed_error() from None

    async def add_track(self, options: Any, *, max_queued: float | None = None) -> OutgoingTrack:
        """Adds an outgoing audio track.

        Args:
            options: An :class:`OutgoingAudioTrackOptions`, or any object with
                ``encoding``, ``sample_rate``, ``channels`` and ``metadata``
                attributes (the plain SDK's options objects work as they are).
            max_queued: Pacing, in seconds (PCM16 tracks). When set, ``send_chunk`` and
                ``send_pcm`` wait while sending more would queue more than this ahead
                of real time, so the server never holds more and an interrupt drops
                at most this. ``None`` (the default): no pacing, as the plain SDK.

        Returns:
            The new track; send audio with :meth:`OutgoingTrack.send_chunk`.

        Raises:
            ValueError: unsupported encoding, sample rate or channel count; metadata
                holding NaN or infinity (not JSON), or larger than
                :data:`MAX_METADATA_BYTES` (1 MiB) as JSON; ``max_queued`` not
                positive, or given for an Opus track. Nothing is sent.
            TypeError: metadata that is not JSON-encodable; ``max_queued`` not a number.
            AgentConnectionError: the session is closed.
        """
        params = track_params(options)
        track = OutgoingTrack(uuid.uuid4().hex, self, options, params=params, max_queued=max_queued)
        await self._connected()
        # live from here: a drop from now on re-adds it on the new connection
        self._tracks[track.id] = track
        await self._send(track._add_track_frame(), "skip")
        return track

    async def remove_track(self, track: OutgoingTrack | str) -> None:
        """Removes an outgoing track (``RemoveTrack``; the plain SDK lacks it).

        Sending on the track afterwards raises :class:`AgentError`. Removing an
        :class:`OutgoingTrack` that was already removed does nothing.

        Args:
            track: The track, or its id.

        Raises:
            AgentConnectionError: the session is closed.
        """
        if isinstance(track, str) and track in self._tracks:
            track = self._tracks[track]
        if isinstance(track, OutgoingTrack):
            await track.remove()
        else:
            await self._send(_codec.encode_remove_track(track), "skip")

    async def capture_image(self, track_id: str) -> None:
        """Asks for an image of a peer's (video) track.

        The image arrives later as an :class:`IncomingTrackImage` from
        :meth:`receive`, as in the plain SDK. To await the image instead, use
        :meth:`request_image`.

        Args:
            track_id: The peer's track (``Track.id`` from the room's tracks).

        Raises:
            AgentConnectionError: the session is closed, or reconnecting (captures
                are limited to one per second per track: never repeated behind the
                application's back).
        """
        await self._send(_codec.encode_capture_image(track_id), "fail")

    async def request_image(self, track_id: str, timeout: float = 5.0) -> IncomingTrackImage:
        """Captures an image of a peer's track and returns it.

        The image answering this request is returned here, not yielded by
        :meth:`receive`. Works whether or not another task is iterating
        :meth:`receive`, and from inside a ``receive()`` loop.

        Args:
            track_id: The track to capture.
            timeout: Seconds to wait for the image.

        Returns:
            The captured image.

        Raises:
            AgentError: a request for this track is already pending.
            TimeoutError: no image came within ``timeout`` seconds (the server ignores
                tracks it does not know, and more than one capture per second per
                track); the message names the track.
            AgentConnectionError: the session ended first, or the connection dropped
                (the request is not re-sent after a reconnection).
        """
        waiters = self._conn.image_waiters
        if track_id in waiters:
            raise AgentError(f"an image of track {track_id} is already being requested")
        waiter: asyncio.Future[IncomingTrackImage] = asyncio.get_running_loop().create_future()
        waiters[track_id] = waiter
        try:
            await self.capture_image(track_id)
            try:
                async with asyncio.timeout(timeout):
                    return await self._await_image(waiter)
            except TimeoutError:
                raise TimeoutError(
                    f"no image of track {track_id!r} came within {timeout} s"
                ) from None
        finally:
            if waiters.get(track_id) is waiter:
                del waiters[track_id]

    async def _await_image(self, waiter: asyncio.Future[IncomingTrackImage]) -> IncomingTrackImage:
        conn = self._conn
        lock = conn.read_lock
        while not waiter.done():
            if len(conn.backlog) >= MAX_BACKLOG:
                # nobody consumes receive(): stop reading rather than buffer without bound
                return await waiter
            acquire = asyncio.ensure_future(lock.acquire())
            try:
                await asyncio.wait((waiter, acquire), return_when=asyncio.FIRST_COMPLETED)
            except BaseException:
                acquire.cancel()
                if acquire.done() and not acquire.cancelled():
                    lock.release()
                raise
            if not acquire.done():
                # another reader resolved the waiter
                acquire.cancel()
                continue
            try:
                if waiter.done():
                    break
                message = await conn.read_message(until=waiter)
                if message is not None:
                    conn.backlog.append(message)
            except TransportClosed as closed:
                # _end() has failed the waiter with an AgentConnectionError; receive()
                # learns of the close from self._closed
                if not waiter.done():
                    raise connection_error(closed, "the session ended") from None
            finally:
                lock.release()
        return waiter.result()

    # -- receiving ---------------------------------------------------------------

    def on_track_data(self, callback: Callable[[IncomingTrackData], object] | None) -> None:
        """Hands peers' audio to ``callback`` as it arrives, instead of to :meth:`receive`.

        For the highest fan-out: ``callback(message)`` is called synchronously for each
        :class:`IncomingTrackData`, where the transport decodes it (on picows, inside
        the socket's read callback), with no task, future or queue per message. Pair it
        with :meth:`OutgoingTrack.send_chunk_nowait` to answer from inside it.

        The callback must not block; it may not await (create a task for that). An
        exception it raises is reported to the loop's exception handler
        (``loop.call_exception_handler``, as asyncio reports any callback's) and the
        session goes on. While it is set, :meth:`receive` still yields images (and
        track data that was already queued when it was set); ``request_image`` works as
        before. The callback stays across reconnections. On the websockets transport
        it is called from the transport's reader task, as each message arrives.

        Args:
            callback: Called with each :class:`IncomingTrackData`; None: audio goes to
                :meth:`receive` again.

        Raises:
            TypeError: ``callback`` is neither callable nor None.
        """
        if callback is not None and not callable(callback):
            raise TypeError(
                f"on_track_data takes a callable or None, not {type(callback).__name__}"
            )
        self._conn.on_track_data = callback

    # audio windows: on_audio and audio() are fishjam_fast/windows.py's
    def on_audio(
        self,
        callback: Callable[[list[TrackAudio]], object] | None,
        window_ms: float = 100,
        *,
        sample_rate: int = 16000,
        channels: int = 1,
        max_buffered_ms: float = 1000,
        max_tracks: int = 32,
        coalesce: bool = True,
    ) -> AudioWindows | None:
        """Hands peers' audio to ``callback`` a window at a time, instead of per chunk.

        ``callback(window)`` is called with a list of :class:`~fishjam_fast.TrackAudio`,
        one for every peer track heard in the window, each ``window_ms`` of int16
        samples. A window is handed on as soon as all of its audio arrived (where the
        transport read it, as ``on_track_data``; right after that read when another
        track is mid-window); a track
        whose peer stopped mid-window comes zero-padded (``missing`` counts the zeros
        at its end) about ``window_ms`` + 30-60 ms after its last chunk. Each
        ``pcm`` is a view of the track's ring buffer, valid during the call only:
        ``.copy()`` what you keep. The session's socket is read about once per window
        (``SO_RCVLOWAT``; ``coalesce=False``: per chunk). The callback must not block;
        its exceptions go to the loop's exception handler. It replaces
        ``on_track_data``; images still go to :meth:`receive`; it stays across
        reconnections. See the README, "Audio in windows".

        Args:
            callback: Called with each window; None stops the windows.
            window_ms: Milliseconds per window (10 to 2000, whole samples).
            sample_rate: The rate peers' audio arrives at: the agent's
                ``audio_sample_rate`` (16000 or 24000; the wire does not say).
            channels: Channels of peers' audio (1, or 2 interleaved).
            max_buffered_ms: Audio each track's ring holds (whole windows); beyond
                it the oldest undelivered window is dropped and counted.
            max_tracks: Peer tracks held at once.
            coalesce: Read the socket once per window (True) or per chunk.

        Returns:
            The :class:`~fishjam_fast.windows.AudioWindows` (its counters, ``stop()``),
            or None when ``callback`` is None.

        Raises:
            TypeError: ``callback`` is neither callable nor None.
            ValueError: an option is out of range.
            AgentError: windows are already on, or the native extension is missing.
        """
        return _windows.on_audio(
            self, callback, window_ms, sample_rate=sample_rate, channels=channels,
            max_buffered_ms=max_buffered_ms, max_tracks=max_tracks, coalesce=coalesce,
        )  # fmt: skip

    def audio(
        self,
        window_ms: float = 100,
        *,
        sample_rate: int = 16000,
        channels: int = 1,
        max_buffered_ms: float = 1000,
        max_tracks: int = 32,
        coalesce: bool = True,
    ) -> AudioStream:
        """Peers' audio a window at a time, as an async iterator: ``async for window
        in session.audio(100)``. As :meth:`on_audio` (same arguments), but each
        window's ``pcm`` arrays are owned copies; at most ``max_buffered_ms`` of
        windows wait unread (then the oldest are dropped). Ends when the session
        closes normally; raises ``AgentConnectionError`` when it ended otherwise.
        Leaving the loop does not stop the windows: ``async with session.audio() as
        windows: async for window in windows: ...`` does, at its end (or ``aclose()``).

        Raises:
            ValueError: an option is out of range.
            AgentError: windows are already on, or the native extension is missing.
        """
        return _windows.audio(
            self, window_ms, sample_rate=sample_rate, channels=channels,
            max_buffered_ms=max_buffered_ms, max_tracks=max_tracks, coalesce=coalesce,
        )  # fmt: skip

    def receive(self) -> AsyncIterator[IncomingAgentMessage]:
        """Iterates over the messages Fishjam sends the agent.

        Yields :class:`IncomingTrackData` (peers' audio) and :class:`IncomingTrackImage`
        (answers to :meth:`capture_image`). Frames that fail to decode are skipped,
        counted in ``stats.frames_skipped`` and logged at WARNING.

        Unlike the plain SDK, the iteration simply ends when the server closes the
        connection normally (see :attr:`close_code` and :attr:`close_reason`). After
        an abnormal end it waits while the session reconnects, then carries on.

        One task at a time iterates: messages are not shared out between loops.

        Raises:
            AgentConnectionError: the connection ended abnormally (``.code``,
                ``.reason``) and was not restored (reconnection off, or its budget
                spent).
            AgentAuthError: the server refused the token on reconnection.
            AgentError: another task is iterating ``receive()`` of this session (it
                waits for the next message while this one asks for it).
        """
        # the session core's receive loop (compiled where the extension is)
        return self._conn.receive()

    async def recv(self, timeout: float | None = None) -> IncomingAgentMessage:
        """The next message, waiting at most ``timeout`` seconds.

        For silence and end-of-turn timeouts: a timeout loses nothing (a message that
        arrives as the deadline passes is kept for the next read), and the session,
        a later ``recv()`` and ``receive()`` go on as if it had not happened. The same
        holds when the task awaiting ``recv()`` is cancelled. It reads through the
        same code as :meth:`receive` (one ``receive()`` step each call), so the two
        can be mixed, one reader at a time.

        Do not put a deadline on ``receive()``'s iterator instead:
        ``asyncio.wait_for(anext(messages), t)`` on a ``messages = session.receive()``
        kept across calls ends that iterator for good when the deadline passes (the
        cancellation is raised inside it), and the next ``anext(messages)`` raises
        ``StopAsyncIteration``, which looks like a normal close. Write::

            try:
                message = await session.recv(timeout=0.8)
            except TimeoutError:
                ...  # 0.8 s of silence: end of the turn

        Args:
            timeout: Seconds to wait; None (the default) waits as long as it takes.
                0 returns a message only if one is ready now.

        Returns:
            The next :class:`IncomingTrackData` or :class:`IncomingTrackImage`.

        Raises:
            TimeoutError: none came within ``timeout`` seconds.
            AgentConnectionError: the session has ended. Where ``receive()`` would
                simply end (Fishjam closed the connection normally, or
                :meth:`disconnect` was called), this is the error, with the close
                code and reason in ``.code`` and ``.reason``; after an abnormal end,
                the same error ``receive()`` raises.
            AgentAuthError: the server refused the token on reconnection.
            AgentError: another task is iterating ``receive()`` or awaiting ``recv()``.
            TypeError, ValueError: ``timeout`` is not None or a number >= 0.
        """
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, int | float):
                raise TypeError(
                    f"timeout must be None or a number of seconds, not {type(timeout).__name__}"
                )
            if not timeout >= 0:  # NaN too
                raise ValueError(f"timeout must be None or >= 0 seconds, got {timeout!r}")
        # a receive() iterator for one step: its read is cancellation-safe (nothing is
        # lost when the deadline cancels it); throwing it away leaves the session as
        # it was (the backlog, the read lock)
        messages = self._conn.receive()
        try:
            async with asyncio.timeout(timeout):
                return await anext(messages)
        except StopAsyncIteration:
            raise (
                self._closed_error()
                if self._conn.closed is not None
                else AgentConnectionError("the session has ended")
            ) from None
        except TimeoutError:
            if timeout is None:
                raise  # not our deadline's
            raise TimeoutError(f"no message from Fishjam within {timeout:g} s") from None
        finally:
            await messages.aclose()
