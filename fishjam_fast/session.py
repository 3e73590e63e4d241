"""An agent's live connection: AgentSession, its outgoing tracks, and their options.

The names, signatures and wire traffic are those of the plain SDK's ``fishjam.agent``;
the differences are documented on each method (clean end of ``receive()``, typed
errors, validation before sending, flow control, ``remove_track``, ``request_image``,
``stats``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from . import _codec, _pcm, pcm
from ._codec import IncomingTrackData, IncomingTrackImage
from ._transport import NORMAL_CLOSE_CODES, Transport, TransportClosed
from .enums import TrackEncoding, TrackType
from .errors import AgentConnectionError, AgentError, AgentProtocolError

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from .agent import Agent

logger = logging.getLogger("fishjam_fast")

IncomingAgentMessage = IncomingTrackData | IncomingTrackImage

PCM16_SAMPLE_RATES = (16000, 24000)
OPUS_SAMPLE_RATES = (0, 8000, 12000, 16000, 24000, 48000)
CHANNEL_COUNTS = (1, 2)

MAX_BACKLOG = 1024
"""Messages ``request_image`` may set aside for ``receive()`` while it reads itself."""


@dataclass
class OutgoingAudioTrackOptions:
    """Parameters of an outgoing audio track (as the plain SDK's).

    Attributes:
        encoding: The encoding of the audio source. Defaults to UNSPECIFIED, which the
            server treats as raw 16-bit PCM.
        sample_rate: The sample rate of the audio source: 16000 or 24000 for PCM16.
            Defaults to 16000.
        channels: 1 (mono) or 2 (stereo, interleaved). Defaults to 1.
        metadata: Custom metadata for the track. Must be JSON-encodable.
    """

    encoding: TrackEncoding = TrackEncoding.TRACK_ENCODING_UNSPECIFIED
    sample_rate: Literal[16000, 24000] = 16000
    channels: Literal[1, 2] = 1
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class _TrackParams:
    """Validated codec parameters of a track, read off any options object."""

    encoding: int
    sample_rate: int
    channels: int
    metadata_json: str

    @property
    def is_pcm16(self) -> bool:
        return self.encoding in (
            TrackEncoding.TRACK_ENCODING_UNSPECIFIED,
            TrackEncoding.TRACK_ENCODING_PCM16,
        )

    @property
    def frame_bytes(self) -> int:
        """Bytes of one PCM16 sample frame (all channels)."""
        return 2 * self.channels


def _track_params(options: Any) -> _TrackParams:
    """Validates an options object (ours, the plain SDK's, or any look-alike).

    Raises:
        TypeError: a field has the wrong type, or the metadata is not JSON-encodable.
        ValueError: an unsupported encoding, sample rate or channel count.
    """
    encoding = getattr(options, "encoding", TrackEncoding.TRACK_ENCODING_UNSPECIFIED)
    sample_rate = getattr(options, "sample_rate", 16000)
    channels = getattr(options, "channels", 1)
    metadata = getattr(options, "metadata", None)
    for name, value in (
        ("encoding", encoding),
        ("sample_rate", sample_rate),
        ("channels", channels),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    try:
        encoding = TrackEncoding(int(encoding))
    except ValueError:
        allowed = ", ".join(e.name for e in TrackEncoding)
        raise ValueError(f"unsupported encoding {encoding!r}: use one of {allowed}") from None
    if encoding == TrackEncoding.TRACK_ENCODING_OPUS:
        if sample_rate not in OPUS_SAMPLE_RATES:
            raise ValueError(
                f"unsupported Opus sample rate {sample_rate}: use one of {OPUS_SAMPLE_RATES}"
            )
    elif sample_rate not in PCM16_SAMPLE_RATES:
        raise ValueError(
            f"unsupported PCM16 sample rate {sample_rate} Hz: "
            f"Fishjam takes {PCM16_SAMPLE_RATES[0]} or {PCM16_SAMPLE_RATES[1]} Hz"
        )
    if channels not in CHANNEL_COUNTS:
        raise ValueError(f"unsupported channel count {channels}: use 1 (mono) or 2 (stereo)")
    try:
        metadata_json = json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"track metadata must be JSON-encodable: {exc}") from None
    return _TrackParams(int(encoding), int(sample_rate), int(channels), metadata_json)


class OutgoingTrack:
    """An outgoing audio track of an agent, created by :meth:`AgentSession.add_track`.

    Attributes:
        id: The global identifier of the track (a fresh ``uuid4().hex``).
        session: The session the track belongs to.
        options: The options the track was created with.
    """

    __slots__ = ("_encoder", "_frame_bytes", "_params", "_removed", "id", "options", "session")

    def __init__(self, id: str, session: AgentSession, options: Any) -> None:
        params = _track_params(options)
        self.id = id
        self.session = session
        self.options = options
        self._params = params
        self._encoder = _codec.TrackDataEncoder(id)
        # PCM16 chunks must hold whole sample frames; Opus packets are opaque
        self._frame_bytes = params.frame_bytes if params.is_pcm16 else 1
        self._removed = False

    def __repr__(self) -> str:
        return f"OutgoingTrack(id={self.id!r}, options={self.options!r})"

    @property
    def removed(self) -> bool:
        """True once the track was removed with :meth:`remove`."""
        return self._removed

    async def send_chunk(self, data: Buffer) -> None:
        """Sends a chunk of audio on this track.

        Peers in the agent's room hear it once the server plays it. Waits while the
        connection's write buffer is full (flow control), so a fast producer cannot
        grow memory without bound.

        Args:
            data: Raw audio: a bytes-like object (bytes, bytearray, memoryview or a
                contiguous buffer). For PCM16 tracks its length must be a multiple
                of ``2 * channels`` bytes. PCM16 tracks also take NumPy arrays,
                converted and framed in one native pass (see :mod:`fishjam_fast.pcm`):
                int16 (either byte order), or float32/float64 in [-1, 1]; shape
                ``(n,)`` (mono, or interleaved) or ``(n, channels)``; any strides.

        Raises:
            TypeError: ``data`` is neither bytes-like nor an accepted NumPy array.
            ValueError: ``data`` does not hold whole PCM16 sample frames, or its
                shape does not match the track's channels.
            AgentError: the track was removed.
            AgentConnectionError: the session is closed.
        """
        if self._removed:
            raise AgentError(f"track {self.id} was removed; add a new track to send audio")
        if isinstance(data, np.ndarray):
            await self.session._send(self._frame_array(data))
            return
        frame_bytes = self._frame_bytes
        if frame_bytes != 1:
            size = _payload_size(data)
            if size % frame_bytes:
                layout = "mono" if frame_bytes == 2 else "stereo"
                raise ValueError(
                    f"a PCM16 {layout} chunk must be a multiple of {frame_bytes} bytes "
                    f"(whole 16-bit samples for every channel), got {size} bytes"
                )
        frame = self._encoder.encode(data)
        # session._send() inlined: one coroutine less per chunk
        session = self.session
        if session._closed is not None:
            raise session._closed_error()
        try:
            await session._transport.send(frame)
        except TransportClosed as closed:
            session._end(closed)
            raise session._closed_error() from None
        stats = session.stats
        stats.messages_sent += 1
        stats.bytes_sent += len(frame)

    def _frame_array(self, samples: npt.NDArray[Any]) -> memoryview:
        """One track_data frame holding all of ``samples`` as PCM16."""
        params = self._params
        if not params.is_pcm16:
            raise TypeError(
                "NumPy arrays are PCM samples, for PCM16 tracks only; send Opus packets as bytes"
            )
        prepared, _ = pcm._prepare(samples, params.channels)
        per_chunk = max(1, prepared.size // params.channels)
        buffer, offsets = _pcm.frame_pcm16(self.id, prepared, params.channels, per_chunk)
        if len(offsets) == 1:  # no samples: an empty chunk, as b"" would send
            return memoryview(self._encoder.encode(b""))
        return buffer.data

    async def send_pcm(self, samples: Buffer | npt.NDArray[Any], chunk_ms: int = 20) -> int:
        """Sends a long stretch of audio as chunks of ``chunk_ms`` each.

        Converts and frames every chunk in one native pass into one buffer, then hands
        the frames to the transport in as few writes as it allows (flow control as
        :meth:`send_chunk`). A short last chunk is sent as it is: no padding, no
        truncation. The server plays the chunks in real time from its queue.

        Args:
            samples: PCM16 bytes, or a NumPy array as :meth:`send_chunk` takes.
            chunk_ms: Milliseconds of audio per chunk; at the track's sample rate it
                must be a whole number of samples.

        Returns:
            The number of chunks sent.

        Raises:
            TypeError, ValueError: as :meth:`send_chunk`, or a bad ``chunk_ms``.
            AgentError: the track was removed.
            AgentConnectionError: the session is closed.
        """
        if self._removed:
            raise AgentError(f"track {self.id} was removed; add a new track to send audio")
        params = self._params
        if not params.is_pcm16:
            raise TypeError("send_pcm is for PCM16 tracks; send Opus packets with send_chunk")
        buffer, offsets = pcm.frame_pcm(
            self.id, samples, params.sample_rate, params.channels, chunk_ms
        )
        view = buffer.data
        bounds = offsets.tolist()
        frames = [view[start:end] for start, end in pairwise(bounds)]
        await self.session._send_many(frames)
        return len(frames)

    async def interrupt(self) -> None:
        """Interrupts the track.

        Audio sent but not yet played is dropped by the server; audio sent after the
        interrupt plays normally.

        Raises:
            AgentError: the track was removed.
            AgentConnectionError: the session is closed.
        """
        if self._removed:
            raise AgentError(f"track {self.id} was removed; add a new track to send audio")
        await self.session._send(_codec.encode_interrupt_track(self.id))

    async def remove(self) -> None:
        """Removes the track from the room (``RemoveTrack``; the plain SDK lacks it).

        Sending on the track afterwards raises :class:`AgentError`; removing it again
        does nothing.

        Raises:
            AgentConnectionError: the session is closed.
        """
        await self.session.remove_track(self)


def _payload_size(data: object) -> int:
    if isinstance(data, bytes | bytearray):
        return len(data)
    try:
        return memoryview(data).nbytes  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            "audio data must be a bytes-like object (bytes, bytearray, memoryview), "
            f"not {type(data).__name__}"
        ) from None


@dataclass
class SessionStats:
    """Traffic counters of one session.

    Attributes:
        messages_sent: Frames sent, authentication included.
        bytes_sent: Bytes of those frames (protobuf, before WebSocket framing).
        messages_received: Frames received, malformed ones included.
        bytes_received: Bytes of those frames.
        frames_skipped: Received frames that failed to decode and were skipped.
        connected_at: ``time.monotonic()`` when the session was authenticated.
        closed_at: ``time.monotonic()`` when the session ended, or None.
    """

    messages_sent: int = 0
    bytes_sent: int = 0
    messages_received: int = 0
    bytes_received: int = 0
    frames_skipped: int = 0
    connected_at: float = 0.0
    closed_at: float | None = None

    @property
    def connected_seconds(self) -> float:
        """How long the session has been (or was) connected."""
        end = self.closed_at if self.closed_at is not None else time.monotonic()
        return end - self.connected_at


class _ReadLock:
    """asyncio.Lock's semantics (FIFO, no barging past waiters), plus a synchronous
    :meth:`try_acquire`: ``receive()`` takes it for every message, and ``async with
    asyncio.Lock()`` costs two coroutines each time."""

    __slots__ = ("_locked", "_waiters")

    def __init__(self) -> None:
        self._locked = False
        self._waiters: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        return self._locked

    def try_acquire(self) -> bool:
        """Takes the lock if it is free and nobody waits for it; False otherwise."""
        if self._locked or self._waiters:
            return False
        self._locked = True
        return True

    async def acquire(self) -> bool:
        if self.try_acquire():
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            try:
                await waiter
            finally:
                self._waiters.remove(waiter)
        except asyncio.CancelledError:
            if not self._locked:
                self._wake_up_first()
            raise
        self._locked = True
        return True

    def release(self) -> None:
        if not self._locked:
            raise RuntimeError("the read lock is not held")
        self._locked = False
        self._wake_up_first()

    def _wake_up_first(self) -> None:
        if self._waiters:
            waiter = self._waiters[0]
            if not waiter.done():
                waiter.set_result(None)


class AgentSession:
    """An authenticated connection of an agent to Fishjam.

    Obtained from ``async with agent.connect() as session``.

    Attributes:
        agent: The agent that opened the session.
    """

    def __init__(self, agent: Agent, transport: Transport) -> None:
        """Wraps an authenticated transport (done by :meth:`Agent.connect`)."""
        self.agent = agent
        self.stats = SessionStats(connected_at=time.monotonic())
        self._transport = transport
        self._closed: TransportClosed | None = None
        self._read_lock = _ReadLock()
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

    def _end(self, closed: TransportClosed) -> None:
        if self._closed is None:
            self._closed = closed
            self.stats.closed_at = time.monotonic()
            error = _connection_error(closed, "the session ended")
            for waiter in self._image_waiters.values():
                if not waiter.done():
                    waiter.set_exception(error)
            self._image_waiters.clear()

    def _closed_error(self) -> AgentConnectionError:
        assert self._closed is not None
        return _connection_error(self._closed, "the session is closed")

    # -- sending -----------------------------------------------------------------

    async def _send(self, frame: bytes | memoryview) -> None:
        if self._closed is not None:
            raise self._closed_error()
        try:
            await self._transport.send(frame)
        except TransportClosed as closed:
            self._end(closed)
            raise self._closed_error() from None
        stats = self.stats
        stats.messages_sent += 1
        stats.bytes_sent += len(frame)

    async def _send_many(self, frames: list[memoryview]) -> None:
        if self._closed is not None:
            raise self._closed_error()
        try:
            await self._transport.send_many(frames)
        except TransportClosed as closed:
            self._end(closed)
            raise self._closed_error() from None
        stats = self.stats
        stats.messages_sent += len(frames)
        stats.bytes_sent += sum(frame.nbytes for frame in frames)

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
        params = _track_params(options)
        track_id = uuid.uuid4().hex
        track = OutgoingTrack(track_id, self, options)
        await self._send(
            _codec.encode_add_track(
                track_id,
                params.metadata_json,
                params.encoding,
                params.sample_rate,
                params.channels,
                TrackType.TRACK_TYPE_AUDIO,
            )
        )
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
        if isinstance(track, OutgoingTrack) and track._removed:
            return
        track_id = track.id if isinstance(track, OutgoingTrack) else track
        await self._send(_codec.encode_remove_track(track_id))
        if isinstance(track, OutgoingTrack):
            track._removed = True

    async def capture_image(self, track_id: str) -> None:
        """Asks for an image of a peer's (video) track.

        The image arrives later as an :class:`IncomingTrackImage` from
        :meth:`receive`, as in the plain SDK. To await the image instead, use
        :meth:`request_image`.

        Raises:
            AgentConnectionError: the session is closed.
        """
        await self._send(_codec.encode_capture_image(track_id))

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
            AgentConnectionError: the session ended first.
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
                    raise _connection_error(closed, "the session ended") from None
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
        try:
            frame = await self._transport.recv()
        except TransportClosed as closed:
            self._end(closed)
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
        connection normally (see :attr:`close_code` and :attr:`close_reason`).

        Raises:
            AgentConnectionError: the connection ended abnormally (``.code``, ``.reason``).
        """
        lock = self._read_lock
        backlog = self._backlog
        transport = self._transport
        while True:
            if backlog:
                yield backlog.popleft()
                continue
            try:
                if not lock.try_acquire():
                    await lock.acquire()  # request_image is reading
                    if backlog:
                        # it read (and set aside) messages while we waited
                        lock.release()
                        continue
                # _read_message() inlined: one coroutine less per message
                try:
                    if self._closed is not None:
                        raise self._closed
                    frame = await transport.recv()
                finally:
                    lock.release()
            except TransportClosed as closed:
                self._end(closed)
                if closed.ok:
                    return
                raise _connection_error(closed, "the connection to Fishjam was lost") from None
            message = self._accept(frame)
            if message is not None:
                yield message

    async def disconnect(self) -> None:
        """Ends the session by closing the connection normally.

        A :meth:`receive` loop in progress then ends cleanly.
        """
        transport = self._transport
        await transport.close()
        code = transport.close_code or 1000
        self._end(TransportClosed(code, transport.close_reason, code in NORMAL_CLOSE_CODES))


def _connection_error(closed: TransportClosed, what: str) -> AgentConnectionError:
    reason = f": {closed.reason}" if closed.reason else ""
    return AgentConnectionError(f"{what} (code {closed.code}{reason})", closed.code, closed.reason)
