"""An agent's live connection: AgentSession.

The names, signatures and wire traffic are those of the plain SDK's ``fishjam.agent``;
the differences are documented on each method (clean end of ``receive()``, typed
errors, validation before sending, flow control, ``remove_track``, ``request_image``,
``stats``). The track, its options and the counters live in their own modules
(``track``, ``_options``, ``stats``) and are re-exported here under their old names.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Literal

from . import _codec
from ._codec import IncomingTrackData, IncomingTrackImage
from ._locks import ReadLock
from ._options import (
    CHANNEL_COUNTS,
    OPUS_SAMPLE_RATES,
    PCM16_SAMPLE_RATES,
    OutgoingAudioTrackOptions,
    track_params,
)
from ._reconnect import (
    RECONNECT_CLOSE_CODES,
    SessionState,
    SessionStateChange,
    connection_error,
    reopen,
)
from ._transport import NORMAL_CLOSE_CODES, Transport, TransportClosed
from .errors import AgentConnectionError, AgentError, AgentProtocolError
from .stats import SessionStats
from .track import OutgoingTrack

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from .agent import Agent

__all__ = [
    "CHANNEL_COUNTS",
    "MAX_BACKLOG",
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

AfterDrop = Literal["resend", "skip", "fail"]
"""What ``_send`` does with a frame when the connection drops before or while it is
sent: ``"resend"`` it on the new connection (audio), ``"skip"`` it because it only
meant something on the old one (the reconnection re-adds the live tracks, and nothing
is queued on the server after a drop), or ``"fail"`` with AgentConnectionError at once
(image captures are never repeated behind the application's back)."""


class AgentSession:
    """An authenticated connection of an agent to Fishjam.

    Obtained from ``async with agent.connect() as session``.

    Attributes:
        agent: The agent that opened the session.
    """

    def __init__(
        self, agent: Agent, transport: Transport, *, stats: SessionStats | None = None
    ) -> None:
        """Wraps an authenticated transport (done by :meth:`Agent.connect`)."""
        self.agent = agent
        self.stats = stats if stats is not None else SessionStats(connected_at=time.monotonic())
        self._transport = transport
        self._closed: TransportClosed | None = None
        # -- reconnection (see _reconnect.py): live tracks, re-added on a new connection
        self._tracks: dict[str, OutgoingTrack] = {}
        self._state: SessionState = "connected"
        self._listeners: list[Callable[[SessionStateChange], object]] = []
        # while reconnecting: resolved when connected again, failed with the error that
        # ended the session otherwise
        self._outage: asyncio.Future[None] | None = None
        self._drop: AgentConnectionError | None = None  # what started the outage
        self._reconnector: asyncio.Task[None] | None = None
        self._closing = False  # disconnect() was called: a drop now ends the session
        self._read_lock = ReadLock()
        # messages read by request_image while receive() was not reading
        self._backlog: deque[IncomingAgentMessage] = deque()
        self._image_waiters: dict[str, asyncio.Future[IncomingTrackImage]] = {}

    # -- state -------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the connection has ended, for whatever reason."""
        return self._closed is not None

    @property
    def close_code(self) -> int | None:
        """The WebSocket close code once the session ended (1006: dropped), else None."""
        return self._closed.code if self._closed is not None else self._transport.close_code

    @property
    def close_reason(self) -> str:
        """The server's close reason once the session ended, e.g. ``"Peer removed"``."""
        return self._closed.reason if self._closed is not None else self._transport.close_reason

    @property
    def state(self) -> SessionState:
        """``"connected"``, ``"reconnecting"`` (after an abnormal end, while the agent's
        :class:`ReconnectPolicy` allows), or ``"closed"``."""
        return self._state

    def on_state_change(
        self, callback: Callable[[SessionStateChange], object]
    ) -> Callable[[], None]:
        """Calls ``callback(change)`` at every transition of :attr:`state`.

        The callback runs on the event loop, synchronously, at the transition: to
        ``"reconnecting"`` (``change.cause`` is the drop), back to ``"connected"``, and
        to ``"closed"`` (``change.cause`` is the error that ended the session, or None).
        It must not block; an exception it raises is logged and ignored.

        Args:
            callback: Called with a :class:`SessionStateChange`.

        Returns:
            A function that unregisters the callback.
        """
        self._listeners.append(callback)

        def unregister() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unregister

    def _set_state(self, state: SessionState, cause: Exception | None) -> None:
        previous, self._state = self._state, state
        change = SessionStateChange(state, previous, cause, time.monotonic())
        for callback in tuple(self._listeners):
            try:
                callback(change)
            except Exception:
                logger.exception("a state-change callback of agent %s failed", self.agent.id)

    def _end(self, closed: TransportClosed, error: Exception | None = None) -> None:
        """Ends the session for good; ``error``: what ended it, for those waiting out an
        outage (None: a normal close)."""
        if self._closed is None:
            self._closed = closed
            self.stats.closed_at = time.monotonic()
            self._fail_image_waiters(connection_error(closed, "the session ended"))
            outage, self._outage = self._outage, None
            if outage is not None and not outage.done():
                if error is None:
                    outage.set_result(None)
                else:
                    outage.set_exception(error)
                    outage.exception()  # nobody need be waiting: do not log it as lost
            cause: Exception | None = error
            if cause is None and not closed.ok:
                cause = connection_error(closed, "the connection to Fishjam was lost")
            self._set_state("closed", cause)

    def _fail_image_waiters(self, error: AgentConnectionError) -> None:
        for waiter in self._image_waiters.values():
            if not waiter.done():
                waiter.set_exception(error)
                waiter.exception()  # its request may have ended first: not "lost"
        self._image_waiters.clear()

    def _lost(self, transport: Transport, closed: TransportClosed) -> None:
        """``transport`` closed: reconnect if it was abnormal and the policy allows,
        otherwise end the session."""
        if transport is not self._transport or self._closed is not None:
            return  # an older connection, or the session already ended
        if self._outage is not None:
            return  # already reconnecting
        policy = self.agent._reconnect_policy
        if policy is None or self._closing or closed.code not in RECONNECT_CLOSE_CODES:
            self._end(closed)
            return
        loop = asyncio.get_running_loop()
        self._outage = loop.create_future()
        drop = self._drop = connection_error(closed, "the connection to Fishjam was lost")
        self._fail_image_waiters(
            connection_error(closed, "the connection was lost; the image request was not re-sent")
        )
        logger.warning(
            "agent %s: %s; reconnecting (budget %g s)", self.agent.id, drop, policy.budget
        )
        self._set_state("reconnecting", drop)
        self._reconnector = loop.create_task(self._reconnect(closed, loop.time()))

    async def _reconnect(self, cause: TransportClosed, since: float) -> None:
        """The outage: reconnect, then hand the new connection to everyone waiting."""
        policy = self.agent._reconnect_policy
        assert policy is not None
        stats = self.stats
        attempts = stats.reconnect_attempts
        try:
            transport, first = await reopen(
                self.agent, policy, cause, stats, lambda: list(self._tracks.values())
            )
        except Exception as error:  # AgentError; a token_provider's TypeError
            logger.warning("agent %s: gave up reconnecting: %s", self.agent.id, error)
            code = getattr(error, "code", None) or cause.code
            self._end(TransportClosed(code, getattr(error, "reason", ""), False), error)
            return
        # disconnect() cancels this task; it never gets here once it was called
        self._transport = transport
        if first is not None:
            self._backlog.append(first)
        stats.reconnects += 1
        for track in self._tracks.values():
            track._connection_replaced()
        logger.info(
            "agent %s: reconnected after %.3f s (%d attempts, %d tracks re-added)",
            self.agent.id,
            asyncio.get_running_loop().time() - since,
            stats.reconnect_attempts - attempts,
            len(self._tracks),
        )
        outage, self._outage = self._outage, None
        self._drop = None
        self._set_state("connected", None)
        if outage is not None and not outage.done():
            outage.set_result(None)

    async def _through_outage(self, after_drop: AfterDrop) -> bool:
        """Before sending while reconnecting or closed: True to send now, False to skip.

        Raises:
            AgentConnectionError: the session is closed, or ``after_drop`` is "fail"
                and it reconnects.
            AgentAuthError: the reconnection was refused while waiting.
        """
        outage = self._outage
        if outage is not None:
            if after_drop == "fail":
                assert self._drop is not None
                raise AgentConnectionError(
                    f"{self._drop}; reconnecting", self._drop.code, self._drop.reason
                )
            if after_drop == "skip":
                return False
            await asyncio.shield(outage)
        if self._closed is not None:
            raise self._closed_error()
        return True

    async def _connected(self) -> None:
        """Waits out a reconnection in progress.

        Raises:
            AgentConnectionError, AgentAuthError: as :meth:`_through_outage`.
        """
        await self._through_outage("resend")

    def _forget_track(self, track: OutgoingTrack) -> None:
        """``track`` is being removed: a reconnection no longer re-adds it.

        Raises:
            AgentConnectionError: the session is closed.
        """
        if self._closed is not None:
            raise self._closed_error()
        self._tracks.pop(track.id, None)

    def _closed_error(self) -> AgentConnectionError:
        assert self._closed is not None
        return connection_error(self._closed, "the session is closed")

    # -- sending -----------------------------------------------------------------

    async def _send(
        self, frame: Buffer | list[memoryview], after_drop: AfterDrop = "resend"
    ) -> None:
        """Sends one frame, or a list of frames in as few writes as the transport allows.

        The one way out of the session: tracks send through it too. While the session
        reconnects it waits; ``after_drop`` says what becomes of the frame then.

        Raises:
            AgentConnectionError: the session is closed, or the connection was lost
                and not restored.
            AgentAuthError: the server refused the token on reconnection.
        """
        stats = self.stats
        while True:
            if (self._outage is not None or self._closed is not None) and not (
                await self._through_outage(after_drop)
            ):
                return
            transport = self._transport
            try:
                if isinstance(frame, list):
                    await transport.send_many(frame)
                    stats.messages_sent += len(frame)
                    stats.bytes_sent += sum(part.nbytes for part in frame)
                    return
                await transport.send(frame)
            except TransportClosed as closed:
                self._lost(transport, closed)
                continue  # ended, or reconnecting: the check above decides
            stats.messages_sent += 1
            stats.bytes_sent += len(frame)  # type: ignore[arg-type]
            return

    async def add_track(self, options: Any) -> OutgoingTrack:
        """Adds an outgoing audio track.

        Args:
            options: An :class:`OutgoingAudioTrackOptions`, or any object with
                ``encoding``, ``sample_rate``, ``channels`` and ``metadata``
                attributes (the plain SDK's options objects work as they are).

        Returns:
            The new track; send audio with :meth:`OutgoingTrack.send_chunk`.

        Raises:
            ValueError: unsupported encoding, sample rate or channel count.
            TypeError: metadata that is not JSON-encodable.
            AgentConnectionError: the session is closed.
        """
        params = track_params(options)
        track = OutgoingTrack(uuid.uuid4().hex, self, options, params=params)
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
            TimeoutError: no image came within ``timeout`` seconds.
            AgentConnectionError: the session ended first, or the connection dropped
                (the request is not re-sent after a reconnection).
        """
        if track_id in self._image_waiters:
            raise AgentError(f"an image of track {track_id} is already being requested")
        waiter: asyncio.Future[IncomingTrackImage] = asyncio.get_running_loop().create_future()
        self._image_waiters[track_id] = waiter
        try:
            await self.capture_image(track_id)
            async with asyncio.timeout(timeout):
                return await self._await_image(waiter)
        finally:
            if self._image_waiters.get(track_id) is waiter:
                del self._image_waiters[track_id]

    async def _await_image(self, waiter: asyncio.Future[IncomingTrackImage]) -> IncomingTrackImage:
        lock = self._read_lock
        while not waiter.done():
            if len(self._backlog) >= MAX_BACKLOG:
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
                message = await self._read_message()
                if message is not None:
                    self._backlog.append(message)
            except TransportClosed as closed:
                # _end() has failed the waiter with an AgentConnectionError; receive()
                # learns of the close from self._closed
                if not waiter.done():
                    raise connection_error(closed, "the session ended") from None
            finally:
                lock.release()
        return waiter.result()

    # -- receiving ---------------------------------------------------------------

    async def _read_message(self) -> IncomingAgentMessage | None:
        """Reads a frame; the message in it for the application, or None: try again.

        Raises:
            TransportClosed: the connection ended.
        """
        if self._closed is not None:
            raise self._closed
        transport = self._transport
        try:
            frame = await transport.recv()
        except TransportClosed as closed:
            self._lost(transport, closed)  # ends the session, or starts reconnecting
            raise
        return self._accept(frame)

    def _accept(self, frame: bytes) -> IncomingAgentMessage | None:
        """Decodes a frame read; the message in it for the application, or None."""
        stats = self.stats
        stats.messages_received += 1
        stats.bytes_received += len(frame)
        try:
            message = _codec.decode_response(frame)
        except AgentProtocolError as exc:
            stats.frames_skipped += 1
            logger.warning("skipped a malformed frame from Fishjam (%d bytes): %s", len(frame), exc)
            return None
        if type(message) is IncomingTrackData:
            return message
        if type(message) is IncomingTrackImage:
            waiter = self._image_waiters.pop(message.track_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
                return None
            return message
        return None  # authenticated again, or a kind this version does not know

    async def receive(self) -> AsyncIterator[IncomingAgentMessage]:
        """Iterates over the messages Fishjam sends the agent.

        Yields :class:`IncomingTrackData` (peers' audio) and :class:`IncomingTrackImage`
        (answers to :meth:`capture_image`). Frames that fail to decode are skipped,
        counted in ``stats.frames_skipped`` and logged at WARNING.

        Unlike the plain SDK, the iteration simply ends when the server closes the
        connection normally (see :attr:`close_code` and :attr:`close_reason`). After
        an abnormal end it waits while the session reconnects, then carries on.

        Raises:
            AgentConnectionError: the connection ended abnormally (``.code``,
                ``.reason``) and was not restored (reconnection off, or its budget
                spent).
            AgentAuthError: the server refused the token on reconnection.
        """
        lock = self._read_lock
        backlog = self._backlog
        while True:
            if backlog:
                yield backlog.popleft()
                continue
            if not lock.try_acquire():
                await lock.acquire()  # request_image is reading
                if backlog:
                    # it read (and set aside) messages while we waited
                    lock.release()
                    continue
            lost: TransportClosed | None = None
            try:
                message = await self._read_message()
            except TransportClosed as closed:
                lost = closed
            finally:
                lock.release()
            if lost is None:
                if message is not None:
                    yield message
            elif self._outage is not None:
                await asyncio.shield(self._outage)  # back, or raises what ended it
            elif self._closed is None:
                continue  # already reconnected
            elif lost.ok:
                return
            else:
                raise connection_error(lost, "the connection to Fishjam was lost")

    async def disconnect(self) -> None:
        """Ends the session by closing the connection normally.

        A :meth:`receive` loop in progress then ends cleanly. While reconnecting, it
        stops the attempts (at once) and ends the session with code 1000.
        """
        self._closing = True
        reconnector = self._reconnector
        if reconnector is not None and not reconnector.done():
            reconnector.cancel()
            await asyncio.wait((reconnector,))
        transport = self._transport
        await transport.close()
        if self._outage is not None:
            self._end(TransportClosed(1000, "", True))
            return
        code = transport.close_code or 1000
        self._end(TransportClosed(code, transport.close_reason, code in NORMAL_CLOSE_CODES))
