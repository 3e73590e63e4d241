"""Audio in windows: peers' audio a window at a time, and a window of audio sent at once.

``session.on_audio(callback, window_ms=100)`` and ``async for window in
session.audio(window_ms=100)`` hand peers' audio on in windows: a list of
:class:`TrackAudio`, one per peer track heard in the window. The audio is copied once,
natively, from the frame where the transport read it into a per-track ring of NumPy
int16 (``src_ext/windows.pyx``); the session's socket is read about once per window
(``SO_RCVLOWAT``), not once per 20 ms chunk. ``track.send_pcm_nowait(samples)``
sends a window of audio as consecutive 20 ms ``track_data`` frames, each the bytes
``send_chunk`` would make.

Needs the native extension (every install from source or wheel builds it; the
pure-Python build raises :class:`~fishjam_fast.errors.AgentError` here).
"""

from __future__ import annotations

import asyncio
import sys
import time
import weakref
from collections import deque
from collections.abc import Callable
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from . import _codec, _pcm
from . import _native as _native_module
from ._core.connection import DECLINED
from ._core.reconnect import connection_error
from ._options import CHANNEL_COUNTS, PCM16_SAMPLE_RATES
from .errors import AgentError, AgentWouldBlockError

# the compiled extension, or None in the pure-Python build (windows refuse there)
_ext: Any = _native_module.EXT

if TYPE_CHECKING:
    from .session import AgentSession
    from .track import OutgoingTrack

__all__ = ["AudioStream", "AudioWindows", "TrackAudio", "Window"]

DEFAULT_WINDOW_MS = 100
MIN_WINDOW_MS = 10
MAX_WINDOW_MS = 2000
DEFAULT_MAX_BUFFERED_MS = 1000
"""Audio a track's ring holds (whole windows, at least two): beyond it the oldest
undelivered window is dropped and counted (``AudioWindows.overflow_frames``)."""
DEFAULT_MAX_TRACKS = 32
"""Peer tracks one session assembles at once; a further one replaces a track with
nothing pending, or its audio is dropped and counted (``refused_tracks``)."""


class TrackAudio:
    """One peer track's audio in one window.

    Attributes:
        peer_id: The peer whose track this is.
        track_id: The track's id.
        sample_rate: Samples per second (the rate given to ``on_audio``/``audio``).
        pcm: int16 samples, shape ``(samples,)`` (mono) or ``(samples, channels)``,
            always a whole window long. From ``on_audio``: a **view** of the track's
            ring buffer, valid only during the callback (``pcm.copy()`` to keep it;
            do not write into it). From ``audio()``: an owned copy.
        start: The window's start in seconds on the session's clock (seconds since
            the windows were started): the previous window's start plus the window
            length while the audio runs on; the arrival of its first chunk after a gap.
        missing: Samples (per channel) at the end of ``pcm`` that did not arrive and
            are zeros: the peer stopped mid-window. ``pcm[:len(pcm) - missing]`` is
            exactly the audio that came, and the windows of a track, so cut, are the
            concatenation of its chunks.
    """

    __slots__ = ("missing", "pcm", "peer_id", "sample_rate", "start", "track_id")

    def __init__(
        self,
        peer_id: str,
        track_id: str,
        sample_rate: int,
        pcm: npt.NDArray[np.int16],
        start: float,
        missing: int,
    ) -> None:
        self.peer_id = peer_id
        self.track_id = track_id
        self.sample_rate = sample_rate
        self.pcm = pcm
        self.start = start
        self.missing = missing

    @property
    def received(self) -> npt.NDArray[np.int16]:
        """The samples that arrived (a view of ``pcm`` without the missing tail)."""
        return self.pcm[: len(self.pcm) - self.missing]

    def __repr__(self) -> str:
        return (
            f"TrackAudio(peer_id={self.peer_id!r}, track_id={self.track_id!r}, "
            f"sample_rate={self.sample_rate}, samples={len(self.pcm)}, "
            f"start={self.start:.3f}, missing={self.missing})"
        )


Window = list[TrackAudio]
"""One window: a :class:`TrackAudio` for every peer track heard in it."""


def _native() -> Any:
    if _ext is not None:
        return _ext
    if not _codec.NATIVE:
        raise AgentError(
            "audio windows need fishjam_fast's native extension, which is not loaded "
            f"(the pure-Python build): {_codec.BUILD_HINT}"
        )
    return _ext


def _window_frames(window_ms: object, sample_rate: object, channels: object) -> int:
    """Validates the options; the sample frames of one window."""
    if isinstance(window_ms, bool) or not isinstance(window_ms, int | float):
        raise TypeError(f"window_ms must be a number of milliseconds, not {window_ms!r}")
    if not MIN_WINDOW_MS <= window_ms <= MAX_WINDOW_MS:
        raise ValueError(
            f"window_ms must be between {MIN_WINDOW_MS} and {MAX_WINDOW_MS}, got {window_ms}"
        )
    if sample_rate not in PCM16_SAMPLE_RATES:
        raise ValueError(
            f"unsupported sample rate {sample_rate!r}: peers' audio reaches agents at one "
            f"of {PCM16_SAMPLE_RATES} Hz (the agent's audio_sample_rate)"
        )
    if channels not in CHANNEL_COUNTS:
        raise ValueError(f"unsupported channel count {channels!r}: use 1 (mono) or 2 (stereo)")
    frames = sample_rate * window_ms / 1000
    if frames != int(frames):
        raise ValueError(
            f"window_ms={window_ms} is not a whole number of samples at {sample_rate} Hz"
        )
    return int(frames)


class AudioWindows:
    """The windows of one session: what ``on_audio`` returns (``audio()`` holds one).

    Counters (live): ``windows`` handed on, ``chunks`` taken, ``overflow_frames``
    (samples dropped because a ring was full), ``missing_frames`` (zeros padded where a
    peer stopped), ``refused_chunks`` (chunks not whole PCM16 sample frames),
    ``refused_tracks`` (chunks of tracks beyond ``max_tracks``), ``forced_reads``
    (times the ticker read a socket before a window's bytes were in).
    """

    def __init__(
        self,
        session: AgentSession,
        deliver: Callable[[Window], object],
        window_ms: float,
        sample_rate: int,
        channels: int,
        max_buffered_ms: float,
        max_tracks: int,
        coalesce: bool,
    ) -> None:
        window = _window_frames(window_ms, sample_rate, channels)
        if isinstance(max_tracks, bool) or not isinstance(max_tracks, int) or max_tracks < 1:
            raise ValueError(f"max_tracks must be a positive int, got {max_tracks!r}")
        if not isinstance(max_buffered_ms, int | float) or not max_buffered_ms > 0:
            raise ValueError(f"max_buffered_ms must be positive, got {max_buffered_ms!r}")
        if sys.byteorder != "little":  # the ring holds the wire's little-endian samples
            raise AgentError("audio windows need a little-endian machine")
        ext = _native()
        loop = asyncio.get_running_loop()
        slots = max(2, -(-int(max_buffered_ms) // int(window_ms)))
        self.session = session
        self._assembler = ext._WindowAssembler(
            loop, TrackAudio, sample_rate, channels, window, slots,
            max_tracks, time.monotonic(), coalesce,
        )  # fmt: skip
        self._assembler.deliver = deliver
        # the ticker follows the session core (its declared closed and transport fields)
        self._assembler.session = session._conn
        self._ended: Callable[[], object] | None = None
        self.window_ms = window_ms
        self.sample_rate = sample_rate
        self.channels = channels

    def _start(self) -> None:
        self._assembler._attach(self.session._conn.transport)
        _ticker(asyncio.get_running_loop()).add(self)

    def stop(self) -> None:
        """Stops the windows: audio goes to ``receive()`` again (or ``on_track_data``)."""
        assembler = self._assembler
        if assembler.closed:
            return
        assembler.stop()
        conn = self.session._conn
        if conn.windows is assembler:
            conn.windows = None
            if conn.on_track_data is _windows_reader:
                conn.on_track_data = None
        if getattr(self.session, "_audio_windows", None) is self:
            self.session._audio_windows = None
        _ticker(asyncio.get_running_loop()).remove(self)
        if self._ended is not None:
            self._ended()

    def __getattr__(self, name: str) -> int:
        if name in _COUNTERS:
            return int(getattr(self._assembler, name))
        raise AttributeError(name)

    @property
    def windows(self) -> int:
        """Windows handed on."""
        return int(self._assembler.windows_delivered)

    @property
    def tracks(self) -> int:
        """Peer tracks held now."""
        return int(self._assembler.track_count())


_COUNTERS = frozenset(
    {"chunks", "overflow_frames", "missing_frames", "refused_chunks", "refused_tracks",
     "forced_reads", "lowat"}
)  # fmt: skip


def _windows_reader(message: Any) -> None:
    """Stands as ``on_track_data`` while windows are on: the websockets transport's
    reader task runs while a callback is set (the rings take the audio before it)."""


def on_audio(
    session: AgentSession,
    callback: Callable[[Window], object] | None,
    window_ms: float = DEFAULT_WINDOW_MS,
    *,
    sample_rate: int = 16000,
    channels: int = 1,
    max_buffered_ms: float = DEFAULT_MAX_BUFFERED_MS,
    max_tracks: int = DEFAULT_MAX_TRACKS,
    coalesce: bool = True,
) -> AudioWindows | None:
    """``AgentSession.on_audio`` (documented there)."""
    current: AudioWindows | None = getattr(session, "_audio_windows", None)
    if callback is None:
        if current is not None:
            current.stop()
        return None
    if not callable(callback):
        raise TypeError(f"on_audio takes a callable or None, not {type(callback).__name__}")
    if current is not None:
        raise AgentError(
            "this session already hands audio on in windows (on_audio or audio()); "
            "stop those first (on_audio(None), or end the audio() loop)"
        )
    windows = AudioWindows(
        session, callback, window_ms, sample_rate, channels, max_buffered_ms, max_tracks,
        coalesce,
    )  # fmt: skip
    _install(session, windows)
    return windows


def _install(session: AgentSession, windows: AudioWindows) -> None:
    conn = session._conn
    if conn.closed is not None:
        raise session._closed_error()
    session._audio_windows = windows  # type: ignore[attr-defined]
    conn.windows = windows._assembler
    conn.on_track_data = _windows_reader  # (on_audio replaces on_track_data)
    windows._start()


class AudioStream:
    """``session.audio()``: an async iterator of windows whose audio is owned.

    Windows wait here until read, at most ``max_buffered_ms`` of them; when the loop
    does not keep up, the oldest are dropped (``dropped_windows``). The iteration ends
    when the session closes normally, or raises ``AgentConnectionError`` when it ended
    otherwise (as ``receive()``). Leaving an ``async for`` does not stop the windows
    (audio keeps going to them, not to ``receive()``): ``await stream.aclose()``, or
    ``async with session.audio() as stream:``, which stops them at its end.
    """

    def __init__(self, session: AgentSession, window_ms: float, **options: Any) -> None:
        self.windows = AudioWindows(session, self._put, window_ms, **options)
        self._pending: deque[Window] = deque()
        self._max_pending = max(2, int(options["max_buffered_ms"] // window_ms))
        self._waiter: asyncio.Future[None] | None = None
        self._done = False
        self.dropped_windows = 0
        self.windows._ended = self._end
        _install(session, self.windows)

    def _put(self, items: Window) -> None:
        for item in items:  # owned: the ring's slot is reused after this call
            item.pcm = item.pcm.copy()
        if len(self._pending) >= self._max_pending:
            self._pending.popleft()
            self.dropped_windows += 1
        self._pending.append(items)
        self._wake()

    def _end(self) -> None:
        self._done = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> AudioStream:
        return self

    async def __anext__(self) -> Window:
        while True:
            if self._pending:
                return self._pending.popleft()
            if self._done:
                session = self.windows.session
                ended = session._conn.closed
                if ended is not None and not ended.ok:
                    raise connection_error(ended, "the connection to Fishjam was lost")
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter  # a cancellation loses nothing: windows stay queued
            finally:
                self._waiter = None

    async def aclose(self) -> None:
        """Stops the windows (audio goes to ``receive()`` again)."""
        self.windows.stop()

    async def __aenter__(self) -> AudioStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.windows.stop()


def audio(
    session: AgentSession,
    window_ms: float = DEFAULT_WINDOW_MS,
    *,
    sample_rate: int = 16000,
    channels: int = 1,
    max_buffered_ms: float = DEFAULT_MAX_BUFFERED_MS,
    max_tracks: int = DEFAULT_MAX_TRACKS,
    coalesce: bool = True,
) -> AudioStream:
    """``AgentSession.audio`` (documented there)."""
    if getattr(session, "_audio_windows", None) is not None:
        raise AgentError(
            "this session already hands audio on in windows (on_audio or audio()); "
            "stop those first (on_audio(None), or end the audio() loop)"
        )
    return AudioStream(
        session, window_ms, sample_rate=sample_rate, channels=channels,
        max_buffered_ms=max_buffered_ms, max_tracks=max_tracks, coalesce=coalesce,
    )  # fmt: skip


# -- the ticker: one timer per loop for all windowed sessions ------------------------


class _Ticker:
    """Pads windows whose peer stopped and forces reads the low-water mark holds back,
    for every windowed session of one loop, every ``min(window / 4, 20 ms)``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._assemblers: list[Any] = []
        self._owners: dict[int, AudioWindows] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._period = 0.02

    def add(self, windows: AudioWindows) -> None:
        assembler = windows._assembler
        self._assemblers.append(assembler)
        self._owners[id(assembler)] = windows
        self._period = min(a.tick_s for a in self._assemblers)
        if self._handle is None:
            self._handle = self._loop.call_later(self._period, self._run)

    def remove(self, windows: AudioWindows) -> None:
        assembler = windows._assembler
        if self._owners.pop(id(assembler), None) is None:
            return
        self._assemblers.remove(assembler)
        if self._assemblers:
            self._period = min(a.tick_s for a in self._assemblers)
        elif self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _run(self) -> None:
        self._handle = None
        ended = _native()._windows_tick(self._assemblers, time.monotonic())
        for assembler in ended or ():
            self._owners[id(assembler)].stop()
        if self._assemblers and self._handle is None:
            self._handle = self._loop.call_later(self._period, self._run)


_tickers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Ticker] = (
    weakref.WeakKeyDictionary()
)


def _ticker(loop: asyncio.AbstractEventLoop) -> _Ticker:
    ticker = _tickers.get(loop)
    if ticker is None:
        ticker = _tickers[loop] = _Ticker(loop)
    return ticker


# -- sending a window ------------------------------------------------------------------


def send_pcm_nowait(track: OutgoingTrack, samples: Any, chunk_ms: int = 20) -> float:
    """``OutgoingTrack.send_pcm_nowait`` (documented there)."""
    session = track.session
    conn = session._conn
    sender = track._sender
    if (
        _ext is not None
        and not (sender.paced or sender.removed)
        and conn.transport.takes_client_frames
        and not conn.transport.writing_paused
    ):
        # int16 or bytes on an unpaced track, on picows: validated, framed and masked
        # by one native call into one buffer, which the session core writes to the
        # socket at once and counts (an echo's every window comes here); None:
        # declined, nothing done, the path below
        framed = _ext._frame_window(
            sender.encoder, sender.frame_bytes, sender.seconds_per_byte, samples, chunk_ms
        )
        if framed is not None:
            frames, count, size, seconds = framed
            now = time.monotonic()
            if conn.write_client_frames(frames, count, size) != DECLINED:
                sender.clock.add(seconds, now)
                return float(seconds)
    track._check_not_removed()
    params = track._params
    if not params.is_pcm16:
        raise TypeError("send_pcm_nowait sends PCM16 samples; send Opus packets with send_chunk")
    if isinstance(chunk_ms, bool) or not isinstance(chunk_ms, int) or not 10 <= chunk_ms <= 1000:
        raise ValueError(f"chunk_ms must be an int from 10 to 1000, got {chunk_ms!r}")
    _native()
    rate = params.sample_rate
    per_chunk = rate * chunk_ms // 1000
    # validated and framed before anything is sent (raises as send_chunk does)
    buffer, offsets = _pcm.frame_pcm16(track.id, samples, params.channels, per_chunk)
    count = len(offsets) - 1
    if count == 0:
        return 0.0
    sample_frames = _sample_frames(samples, params.channels)
    seconds = sample_frames / rate
    session._check_now("send_pcm")  # not open, or the write buffer is full: raises
    now = time.monotonic()
    clock = track._clock
    limit = track._max_queued
    if limit is not None and clock.wait_before(seconds, limit, now) > 0.0:
        raise AgentWouldBlockError(
            f"sending {seconds:.3f} s now would queue more than max_queued={limit:g} s; "
            "nothing was sent: send_pcm waits for room"
        )
    # picows: every frame masked into one buffer, handed to the socket in one write
    if conn.transport.takes_client_frames and (
        conn.write_client_frames(
            _native()._ws_client_frames(buffer, offsets), count, int(offsets[-1])
        )
        != DECLINED
    ):
        clock.add(seconds, now)
        return seconds
    # elsewhere (websockets) one frame per chunk, written back to back by the session's
    # one send (never waiting), counted as send_chunk counts them
    view = buffer.data
    stats = session.stats
    before = stats.messages_sent
    try:
        session._send([view[start:end] for start, end in pairwise(offsets.tolist())], "now",
                      waiting="send_pcm")  # fmt: skip
    except AgentError:
        written = stats.messages_sent - before
        if written:  # what went out plays: the clock counts it
            clock.add(min(written * per_chunk, sample_frames) / rate, now)
        raise
    clock.add(seconds, now)
    return seconds


def _sample_frames(samples: Any, channels: int) -> int:
    if isinstance(samples, np.ndarray):
        return int(samples.shape[0] if samples.ndim == 2 else samples.size // channels)
    return memoryview(samples).nbytes // (2 * channels)
