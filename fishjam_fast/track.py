"""An agent's outgoing audio track: audio in, ``track_data`` frames out.

Besides sending, a PCM16 track keeps a playout clock (``_core.playout``): the client's model
of the server playing the track in real time, which gives ``queued_duration``,
``wait_for_playout()``, the seconds an ``interrupt()`` dropped, and pacing
(``max_queued``). ``send_pcm`` keeps the stream state of ``_core.pcm_stream`` (resampler,
short-chunk carry) across calls.
"""

from __future__ import annotations

import asyncio
import math
import time
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from . import _codec, _pcm, _pcm_py, pcm
from . import windows as _windows  # audio windows: send_pcm_nowait
from ._core.connection import WRITTEN, WRITTEN_FULL, TrackSender
from ._core.pcm_stream import PcmStream
from ._core.playout import PlayoutClock
from ._options import TrackParams, track_params
from ._resample import check_rate
from .enums import TrackType
from .errors import AgentError, AgentWouldBlockError

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from .session import AgentSession


class OutgoingTrack:
    """An outgoing audio track of an agent, created by :meth:`AgentSession.add_track`.

    Playout clock: Fishjam plays a PCM16 agent track in real time from the arrival of
    its audio (a chunk sent while audio is queued plays after it), and an interrupt
    drops what is queued. The track models that from what it sent:
    :attr:`queued_duration`, :meth:`wait_for_playout`, and the seconds
    :meth:`interrupt` returns. With ``max_queued`` (see
    :meth:`AgentSession.add_track`) sending waits so that no more than that is queued.

    On Opus tracks the client cannot know how long a packet plays, so the clock stays
    empty: :attr:`queued_duration` is 0.0, :meth:`wait_for_playout` returns at once,
    :meth:`interrupt` returns 0.0 (it still drops what the server holds), and
    ``max_queued`` is refused.

    Attributes:
        id: The global identifier of the track (a fresh ``uuid4().hex``).
        session: The session the track belongs to.
        options: The options the track was created with.
    """

    __slots__ = (
        "_clock",
        "_conn",
        "_interrupts",
        "_max_queued",
        "_params",
        "_send",
        "_sender",
        "_sleepers",
        "_stream",
        "id",
        "options",
        "session",
    )

    def __init__(
        self,
        id: str,
        session: AgentSession,
        options: Any,
        *,
        params: TrackParams | None = None,
        max_queued: float | None = None,
    ) -> None:
        """Made by :meth:`AgentSession.add_track`, which validated ``options`` into
        ``params`` (validated here when not given) and ``max_queued``."""
        if params is None:
            params = track_params(options)
        self._max_queued = _check_max_queued(max_queued, params.is_pcm16)
        self.id = id
        self.session = session
        self.options = options
        self._params = params
        # the session's one way out: frames go through it, closed or not
        self._send = session._send
        # the session core, whose send_chunk sends a plain chunk in one call
        self._conn = session._conn
        # what sending needs of the track, kept in one place, which the session core's
        # chunk shortcut reads (C fields when compiled): the encoder; the bytes of a
        # sample frame (PCM16 chunks must hold whole ones; Opus packets are opaque: 1);
        # playout seconds per PCM16 byte (0 for Opus: its clock never moves); the clock
        self._clock = PlayoutClock()  # (the sender's, named here for the track's own use)
        self._sender = TrackSender(
            _codec.TrackDataEncoder(id),
            params.frame_bytes if params.is_pcm16 else 1,
            1.0 / (params.frame_bytes * params.sample_rate) if params.is_pcm16 else 0.0,
            self._clock,
            self._max_queued is not None,
        )
        self._interrupts = 0  # bumped when the queue is dropped: ends wait_for_playout()
        # pacing waits and wait_for_playout(), woken early by interrupt() and remove()
        self._sleepers: set[asyncio.Future[None]] = set()
        self._stream: PcmStream | None = None  # send_pcm's stream state, made on need

    def __repr__(self) -> str:
        return f"OutgoingTrack(id={self.id!r}, options={self.options!r})"

    @property
    def removed(self) -> bool:
        """True once the track was removed with :meth:`remove`."""
        return bool(self._sender.removed)

    @property
    def max_queued(self) -> float | None:
        """The pacing bound in seconds (see :meth:`AgentSession.add_track`), or None."""
        return self._max_queued

    @property
    def queued_duration(self) -> float:
        """Seconds of audio sent and not yet played (0.0 when idle, and on Opus tracks).

        The client's model of the server's queue: audio plays in real time from its
        arrival, behind what is queued; :meth:`interrupt` empties it.
        """
        return self._clock.queued(time.monotonic())

    async def wait_for_playout(self) -> None:
        """Waits until everything sent so far has played.

        Returns at once when nothing is queued (and on Opus tracks), and as soon as
        the queue is dropped (:meth:`interrupt`, :meth:`remove`, or a reconnection:
        the server lost what it held). Audio sent while waiting is not waited for.
        Cancelling it (``asyncio.timeout()`` for a deadline) has no side effects.
        """
        target = self._clock.ends_at
        interrupts = self._interrupts
        while self._interrupts == interrupts and not self.removed:
            left = target - time.monotonic()
            if left <= 0.0:
                return
            await self._sleep(left)

    async def _sleep(self, delay: float) -> None:
        """Sleeps ``delay`` seconds, or until :meth:`interrupt` or :meth:`remove`."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        handle = loop.call_later(delay, _wake, waiter)
        sleepers = self._sleepers
        sleepers.add(waiter)
        try:
            await waiter
        finally:
            handle.cancel()
            sleepers.discard(waiter)

    def _wake_sleepers(self) -> None:
        for waiter in self._sleepers:
            _wake(waiter)

    async def _pace(self, seconds: float) -> None:
        """Waits until ``seconds`` more audio fits under ``max_queued``.

        A blocked sender sleeps until there is room for a quarter of ``max_queued``
        more (``PlayoutClock.refill_wait``): one timer per few chunks, not per chunk.
        """
        clock = self._clock
        limit = self._max_queued
        assert limit is not None
        while (wait := clock.refill_wait(seconds, limit, time.monotonic())) > 0.0:
            await self._sleep(wait)
            self._check_not_removed()

    def _check_not_removed(self) -> None:
        if self.removed:
            raise AgentError(f"track {self.id} was removed; add a new track to send audio")

    async def send_chunk(self, data: Buffer) -> None:
        """Sends a chunk of audio on this track.

        Peers in the agent's room hear it once the server plays it. Waits while the
        connection's write buffer is full (flow control), so a fast producer cannot
        grow memory without bound; on a track with ``max_queued``, also while sending
        it would queue more than that (pacing). Cancelling the wait sends nothing.
        While the session reconnects it waits too: the chunk goes out on the new
        connection, after the track was re-added.

        Args:
            data: Raw audio: a bytes-like object (bytes, bytearray, memoryview or a
                contiguous buffer). For PCM16 tracks its length must be a multiple
                of ``2 * channels`` bytes. PCM16 tracks also take NumPy arrays,
                converted and framed in one native pass (see :mod:`fishjam_fast.pcm`):
                int16 (either byte order), or float32/float64 in [-1, 1]; shape
                ``(n,)`` (mono, or interleaved) or ``(n, channels)``; any strides.

        Raises:
            TypeError: ``data`` is neither bytes-like nor an accepted NumPy array.
            ValueError: ``data`` does not hold whole PCM16 sample frames, its shape
                does not match the track's channels, or it is float audio beyond 2.0
                in magnitude (int16-range data: scale it, ``x / 32768``), infinite
                or NaN.
            AgentError: the track was removed.
            AgentConnectionError: the session is closed, or the connection was lost.
        """
        # a plain bytes chunk on an open connection: framed, clocked, written and counted
        # by one call of the session core (C calls when compiled); anything else (or a
        # connection not open) takes the path below, which does the same, waits or raises
        result = self._conn.send_chunk(self._sender, data, False)
        if result == WRITTEN:
            return
        if result == WRITTEN_FULL:
            await self.session._drain()
            return
        self._check_not_removed()
        frame, seconds = self._frame_chunk(data)
        if seconds:
            if self._max_queued is not None:
                await self._pace(seconds)
            # counted when handed to the transport, which writes it before any wait
            self._clock.add(seconds, time.monotonic())
        await self._send(frame)

    def send_chunk_nowait(self, data: Buffer) -> None:
        """Sends a chunk of audio now, without waiting; for ``on_track_data`` callbacks.

        Takes what :meth:`send_chunk` takes and sends the same frame, written to the
        socket before it returns. Where ``send_chunk`` would wait, it raises instead
        and sends nothing: a full write buffer or pacing (:class:`AgentWouldBlockError`),
        a reconnection in progress (:class:`AgentConnectionError`). A plain ``bytes``
        chunk is framed and written by one native call.

        Args:
            data: Raw audio, as :meth:`send_chunk`.

        Raises:
            TypeError, ValueError: as :meth:`send_chunk`.
            AgentError: the track was removed.
            AgentWouldBlockError: the connection's write buffer is above its high-water
                mark, or the chunk would queue more than ``max_queued``.
            AgentConnectionError: the session is closed, or reconnecting.
        """
        result = self._conn.send_chunk(self._sender, data, True)
        if result == WRITTEN or result == WRITTEN_FULL:
            return
        # nothing was done: the general path, which raises where it must
        self._check_not_removed()
        frame, seconds = self._frame_chunk(data)
        session = self.session
        session._check_now("send_chunk")  # not open, or the write buffer is full: raises
        now = time.monotonic()
        limit = self._max_queued
        if seconds and limit is not None and self._clock.wait_before(seconds, limit, now) > 0.0:
            raise AgentWouldBlockError(
                f"sending {seconds:.3f} s now would queue more than max_queued={limit:g} s; "
                "nothing was sent: send_chunk waits for room"
            )
        self._send(frame, "now")  # (never waits: nothing to await)
        if seconds:
            self._clock.add(seconds, now)

    # audio windows: a window of audio at once (fishjam_fast/windows.py)
    def send_pcm_nowait(self, samples: Buffer | npt.NDArray[Any], chunk_ms: int = 20) -> float:
        """Sends a window of audio now, as consecutive ``chunk_ms`` frames; for
        ``on_audio`` callbacks.

        Each frame holds the bytes ``send_chunk`` would send for that piece (the last
        one what is left), all written before it returns. Where ``send_pcm`` would
        wait it raises instead and sends nothing: a full write buffer, or more than
        ``max_queued`` queued on the playout clock.

        Args:
            samples: PCM16 bytes (whole sample frames), or a NumPy array as
                :meth:`send_chunk` takes (int16, or float in [-1, 1]; ``(n,)`` or
                ``(n, channels)``), at the track's rate.
            chunk_ms: Milliseconds per frame (20, as Fishjam's own chunks).

        Returns:
            The seconds of audio sent.

        Raises:
            TypeError, ValueError: as :meth:`send_chunk`; an Opus track.
            AgentError: the track was removed.
            AgentWouldBlockError: the write buffer is full, or ``max_queued`` would
                be exceeded.
            AgentConnectionError: the session is closed, or reconnecting.
        """
        return _windows.send_pcm_nowait(self, samples, chunk_ms)

    def _frame_chunk(self, data: Buffer) -> tuple[Buffer, float]:
        """The ``track_data`` frame of one chunk, and the seconds of audio it holds.

        Raises:
            TypeError, ValueError: as :meth:`send_chunk`.
        """
        sender = self._sender
        if isinstance(data, np.ndarray):
            frame: Buffer = self._frame_array(data)
            size = 2 * data.size  # PCM16 bytes (validated by _frame_array)
        else:
            frame_bytes = sender.frame_bytes
            size = 0
            if frame_bytes != 1:
                size = _payload_size(data)
                if size % frame_bytes:
                    layout = "mono" if frame_bytes == 2 else "stereo"
                    raise ValueError(
                        f"a PCM16 {layout} chunk must be a multiple of {frame_bytes} bytes "
                        f"(whole 16-bit samples for every channel), got {size} bytes"
                    )
            frame = sender.encoder.encode(data)
        return frame, size * sender.seconds_per_byte

    def _frame_array(self, samples: npt.NDArray[Any]) -> memoryview:
        """One track_data frame holding all of ``samples`` as PCM16."""
        params = self._params
        if not params.is_pcm16:
            raise TypeError(
                "NumPy arrays are PCM samples, for PCM16 tracks only; send Opus packets as bytes"
            )
        # samples.size per chunk is at least all of them: one frame
        buffer, offsets = pcm._frame_samples(
            self.id, samples, params.channels, max(1, samples.size)
        )
        if len(offsets) == 1:  # no samples: an empty chunk, as b"" would send
            return memoryview(self._sender.encoder.encode(b""))
        return buffer.data

    async def send_pcm(
        self,
        samples: Buffer | npt.NDArray[Any],
        chunk_ms: int = 20,
        *,
        sample_rate: int | None = None,
        final: bool = True,
    ) -> int:
        """Sends a stretch of audio as chunks of ``chunk_ms`` each, resampled if need be.

        Converts and frames the chunks in one native pass into one buffer, 10 s of
        audio at a time (longer input is framed piece by piece as it goes out, so
        memory does not grow with its length), then hands the frames to the transport
        in as few writes as it allows (flow control as :meth:`send_chunk`). The server
        plays the chunks in real time from its queue.

        On a track with ``max_queued`` the chunks go out as room frees (a few at a
        time, without blocking the event loop); cancelling the call stops there: what
        was sent counts in ``stats`` and the playout clock, the rest is not sent, and
        the stream state below is dropped.

        Streams: ``final=False`` marks one piece of a longer stream. The resampler's
        state and the samples short of a whole chunk are carried into the next call,
        so pieces of any size give whole ``chunk_ms`` chunks and, together, the same
        samples one call would have sent. ``final=True`` (the default) ends the
        stream: the resampler is flushed and a short last chunk is sent as it is (no
        padding). :meth:`interrupt` drops the stream's state. An exception (bad
        samples) drops it too, having sent nothing of that call.

        If the connection drops while the frames are being written, the session
        reconnects and all of this call's frames are sent again on the new connection
        (the server discarded what it held of them with the old one).

        Args:
            samples: PCM16 bytes, or a NumPy array as :meth:`send_chunk` takes.
            chunk_ms: Milliseconds of audio per chunk; at the track's sample rate it
                must be a whole number of samples.
            sample_rate: The rate of ``samples`` in Hz (1000 to 768000); when it
                differs from the track's, the audio is resampled (soxr, high quality).
                ``None``: the track's rate. A stream keeps one rate until it ends.
            final: Whether this call ends the stream (see above).

        Returns:
            The number of chunks sent.

        Raises:
            TypeError, ValueError: as :meth:`send_chunk`; a bad ``chunk_ms`` or
                ``sample_rate``; a ``sample_rate`` other than the open stream's.
            AgentError: the track was removed.
            AgentConnectionError: the session is closed, or the connection was lost.
        """
        self._check_not_removed()
        params = self._params
        if not params.is_pcm16:
            raise TypeError("send_pcm is for PCM16 tracks; send Opus packets with send_chunk")
        rate, channels = params.sample_rate, params.channels
        per_chunk = pcm._samples_per_chunk(rate, chunk_ms)
        if sample_rate is not None:
            sample_rate = check_rate("sample_rate", sample_rate)
        stream = self._stream
        if final and sample_rate in (None, rate) and (stream is None or not stream.open):
            # one whole stretch at the track's rate: frame it as it is
            prepared, _ = pcm._prepare(samples, channels)
            blocks = [prepared]
        else:
            if stream is None:
                stream = self._stream = PcmStream(rate, channels)
            try:
                blocks = stream.blocks(samples, per_chunk, sample_rate, final)
            except BaseException:
                stream.reset()
                raise
        # framed lazily, _BATCH_CHUNKS chunks at a time: memory does not grow with the
        # input's length (an hour of audio was framed whole before: +155 MB). Every
        # piece is checked before anything is sent, so bad samples still send nothing
        try:
            pieces = [piece for block in blocks for piece in _pieces(block, channels, per_chunk)]
            first = _frames(self.id, pieces[0], channels, per_chunk) if pieces else []
        except BaseException:
            if stream is not None:
                stream.reset()
            raise
        sample_frames = sum(_frame_count(piece, channels) for piece in pieces)
        if not sample_frames:
            return 0
        chunk_s = per_chunk / rate
        if self._max_queued is None:
            self._clock.add(sample_frames / rate, time.monotonic())
        sent = 0
        for index, piece in enumerate(pieces):
            frames = first if index == 0 else _frames(self.id, piece, channels, per_chunk)
            if not frames:
                continue
            if self._max_queued is None:
                await self._send(frames)
            else:
                piece_frames = _frame_count(piece, channels)
                last_s = (piece_frames - (len(frames) - 1) * per_chunk) / rate
                try:
                    await self._send_paced(frames, chunk_s, last_s)
                except asyncio.CancelledError:
                    if self._stream is not None:
                        self._stream.reset()  # the rest of this piece is gone: start anew
                    raise
            sent += len(frames)
        return sent

    async def _send_paced(self, frames: list[memoryview], chunk_s: float, last_s: float) -> None:
        """Sends ``frames`` (``chunk_s`` each, the last ``last_s``) as room frees."""
        clock = self._clock
        limit = self._max_queued
        assert limit is not None
        count = len(frames)
        sent = 0
        while sent < count:
            self._check_not_removed()  # removed while the previous batch went out
            seconds = chunk_s if sent < count - 1 else last_s
            await self._pace(seconds)
            # as many whole chunks as fit now (at least the one _pace made room for)
            room = limit - clock.queued(time.monotonic())
            end = min(count, sent + max(1, int(room / chunk_s + 1e-9)))
            seconds = (end - sent) * chunk_s if end < count else (end - sent - 1) * chunk_s + last_s
            clock.add(seconds, time.monotonic())
            await self._send(frames[sent:end])
            sent = end

    async def interrupt(self) -> float:
        """Interrupts the track: the server drops the audio it holds for it.

        Audio sent after the interrupt plays normally. The playout clock is empty
        afterwards, :meth:`wait_for_playout` calls in progress return, paced sends
        waiting for room go on at once, and ``send_pcm``'s stream state (resampler,
        carried samples) is dropped. Sends in progress are not cancelled: cancel the
        task that sends first.

        Returns:
            The seconds of queued audio it dropped (0.0 on Opus tracks).

        Raises:
            AgentError: the track was removed.
            AgentConnectionError: the session is closed, or the connection was lost.
        """
        self._check_not_removed()
        dropped = self._forget_queued()
        # after a drop nothing is queued on the server: no need to repeat it there
        await self._send(_codec.encode_interrupt_track(self.id), "skip")
        return dropped

    def _forget_queued(self) -> float:
        """The server no longer holds this track's audio (interrupt, reconnection):
        empties the playout clock, ends ``wait_for_playout()`` calls, wakes paced
        sends and drops ``send_pcm``'s stream state. Returns the seconds dropped."""
        dropped = self._clock.clear(time.monotonic())
        self._interrupts += 1
        if self._stream is not None:
            self._stream.reset()
        self._wake_sleepers()
        return dropped

    async def remove(self) -> None:
        """Removes the track from the room (``RemoveTrack``; the plain SDK lacks it).

        Sending on the track afterwards raises :class:`AgentError`; removing it again
        does nothing. The server drops what it held: the playout clock is emptied.

        Raises:
            AgentConnectionError: the session is closed, or the connection was lost.
        """
        if self.removed:
            return
        self.session._forget_track(self)  # not re-added by a reconnection from now on
        self._sender.removed = True
        self._clock.clear(time.monotonic())
        self._wake_sleepers()
        await self._send(_codec.encode_remove_track(self.id), "skip")

    def _add_track_frame(self) -> bytes:
        """The ``add_track`` request announcing this track: sent when it is added, and
        again on every new connection after a reconnection, before any of its audio."""
        params = self._params
        return _codec.encode_add_track(
            self.id,
            params.metadata_json,
            params.encoding,
            params.sample_rate,
            params.channels,
            TrackType.TRACK_TYPE_AUDIO,
        )

    def _connection_replaced(self) -> None:
        """Called by the session once it re-added this track on a new connection, before
        any audio is sent on it. The audio the server held for the track was dropped with
        the old connection: the playout clock starts again from empty, as after an
        interrupt (sends that waited out the reconnection were counted when handed over
        and go out right after this: the clock under-counts them, never over-counts)."""
        self._forget_queued()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


_BATCH_CHUNKS = 500
"""Chunks ``send_pcm`` frames at a time (10 s of 20 ms chunks): longer input is framed
piece by piece as it is sent."""


def _frames(track_id: str, block: Any, channels: int, per_chunk: int) -> list[memoryview]:
    """``block`` framed as ``track_data`` messages, one view per frame."""
    buffer, offsets = _pcm.frame_pcm16(track_id, block, channels, per_chunk)
    view = buffer.data
    return [view[start:end] for start, end in pairwise(offsets.tolist())]


def _pieces(block: Any, channels: int, per_chunk: int) -> list[Any]:
    """``block`` cut into views of at most ``_BATCH_CHUNKS`` whole chunks (the last
    what is left), float samples checked as ``frame_pcm16`` checks them, so that a
    bad value raises before anything is sent. A block that is small, or that
    ``frame_pcm16`` would refuse as a whole (odd bytes, a ragged interleaving), is
    returned whole: it raises there, at once."""
    step = _BATCH_CHUNKS * per_chunk  # sample frames per piece
    if isinstance(block, np.ndarray):
        if block.ndim == 2:
            count, width = block.shape[0], 1
        elif block.ndim == 1 and block.size % channels == 0:
            count, width = block.size // channels, channels
        else:
            return [block]
        if count <= step:
            return [block]
        pieces = [block[start * width : (start + step) * width] for start in range(0, count, step)]
        if block.dtype.kind == "f":
            for piece in pieces:
                with np.errstate(invalid="ignore"):
                    if not np.all(np.abs(piece) <= _pcm_py.FLOAT_LIMIT):
                        raise ValueError(_pcm_py._float_refusal(block))
        return pieces
    try:
        view = memoryview(block)
    except TypeError:
        return [block]
    if not view.c_contiguous or view.nbytes % (2 * channels):
        return [block]
    view = view.cast("B") if (view.format != "B" or view.ndim != 1) else view
    size = step * 2 * channels
    if view.nbytes <= size:
        return [block]
    return [view[start : start + size] for start in range(0, view.nbytes, size)]


def _frame_count(block: Any, channels: int) -> int:
    """Sample frames in a block ``frame_pcm16`` took (an array, or PCM16 bytes)."""
    if isinstance(block, np.ndarray):
        return block.shape[0] if block.ndim == 2 else block.size // channels
    return memoryview(block).nbytes // (2 * channels)


def _check_max_queued(max_queued: object, is_pcm16: bool) -> float | None:
    """Validates ``add_track``'s ``max_queued``: None, or positive finite seconds."""
    if max_queued is None:
        return None
    if isinstance(max_queued, bool) or not isinstance(max_queued, int | float):
        raise TypeError(f"max_queued must be seconds (a float) or None, not {max_queued!r}")
    if not (math.isfinite(max_queued) and max_queued > 0):
        raise ValueError(f"max_queued must be a positive number of seconds, got {max_queued}")
    if not is_pcm16:
        raise ValueError(
            "max_queued paces PCM16 tracks only: the client cannot tell how long an Opus "
            "packet plays"
        )
    return float(max_queued)


def _payload_size(data: object) -> int:
    if type(data) is bytes:  # the usual chunk: no memoryview (nor a Union made per call)
        return len(data)
    if isinstance(data, bytearray):
        return len(data)
    try:
        return memoryview(data).nbytes  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            "audio data must be a bytes-like object (bytes, bytearray, memoryview), "
            f"not {type(data).__name__}"
        ) from None
