"""Input frame assembly: each peer's Fishjam chunks -> frames of the size the pipeline takes.

The one place where incoming audio is resampled and cut: the input feeds it each
peer's audio a window at a time (``session.on_audio``; whole frames long) or, in the
pure-Python build, per chunk. Nothing
here imports pipecat, so it is tested and typed without it.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from .. import pcm
from .._resample import check_rate

if TYPE_CHECKING:
    from typing_extensions import Buffer

MIN_FRAME_MS = 10
MAX_FRAME_MS = 1000


def resample_pcm16(resampler: pcm.Resampler, data: Buffer) -> bytes:
    """Resamples a piece of a PCM16 stream through float32.

    soxr dithers int16 output with random noise (two runs differ in the last bit);
    float output is deterministic, and the conversion back rounds and clips natively.

    Args:
        resampler: The stream's resampler (its state carries to the next piece).
        data: PCM16 little-endian, ``resampler.channels`` interleaved.

    Returns:
        PCM16 bytes at the resampler's output rate (possibly empty: soxr's latency).
    """
    out = resampler.push(pcm.pcm16_to_float32(data, resampler.channels))
    return pcm.to_pcm16(out, resampler.channels) if len(out) else b""


class _PeerStream:
    """One peer's state: its resampler (None when the rates agree) and the bytes short
    of a whole frame (always fewer than one frame: the bound of this buffer)."""

    __slots__ = ("carry", "resampler")

    def __init__(self, resampler: pcm.Resampler | None) -> None:
        self.resampler = resampler
        self.carry = bytearray()


class FrameAssembler:
    """Cuts each peer's mono PCM16 chunks into frames of ``frame_ms`` at ``output_rate``.

    A peer's audio is resampled (soxr, streaming, one filter per peer so that people
    talking at once are not mixed in its state) when ``input_rate`` differs, then cut
    into whole frames; what is short of a frame waits for the peer's next chunk. Chunks
    that already are one frame at the right rate pass through without a copy.

    Args:
        input_rate: The rate Fishjam delivers the agent's audio at (16000 or 24000).
        output_rate: The pipeline's input rate in Hz.
        frame_ms: Milliseconds per frame (10 to 1000; a whole number of samples at
            ``output_rate``).

    Raises:
        TypeError, ValueError: a rate or ``frame_ms`` is not an int in its range.
    """

    __slots__ = ("_frame_bytes", "_peers", "frame_ms", "input_rate", "output_rate")

    def __init__(self, input_rate: int, output_rate: int, frame_ms: int = 20) -> None:
        input_rate = check_rate("input_rate", input_rate)
        output_rate = check_rate("output_rate", output_rate)
        if not isinstance(frame_ms, int) or isinstance(frame_ms, bool):
            raise TypeError(f"frame_ms must be an int, not {type(frame_ms).__name__}")
        if not MIN_FRAME_MS <= frame_ms <= MAX_FRAME_MS:
            raise ValueError(
                f"frame_ms must be between {MIN_FRAME_MS} and {MAX_FRAME_MS}, got {frame_ms}"
            )
        if output_rate * frame_ms % 1000:
            raise ValueError(
                f"frame_ms={frame_ms} is not a whole number of samples at {output_rate} Hz"
            )
        self.input_rate = input_rate
        self.output_rate = output_rate
        self.frame_ms = frame_ms
        self._frame_bytes = output_rate * frame_ms // 1000 * 2
        self._peers: dict[str, _PeerStream] = {}

    @property
    def frame_bytes(self) -> int:
        """Bytes in one frame (mono PCM16)."""
        return self._frame_bytes

    @property
    def peers(self) -> list[str]:
        """The peers heard so far and not forgotten, in the order first heard."""
        return list(self._peers)

    def push(self, peer_id: str, data: Buffer) -> list[bytes]:
        """Feeds one chunk of ``peer_id``'s audio; returns the frames it completed.

        Args:
            peer_id: The peer whose audio ``data`` is.
            data: Mono PCM16 at ``input_rate``, whole samples (as Fishjam sends).

        Returns:
            Whole frames, oldest first (possibly none). Each is new ``bytes``.
        """
        stream = self._peers.get(peer_id)
        if stream is None:
            resampler = None
            if self.input_rate != self.output_rate:
                resampler = pcm.Resampler(self.input_rate, self.output_rate, quality="high")
            stream = self._peers[peer_id] = _PeerStream(resampler)
        size = self._frame_bytes
        carry = stream.carry
        if stream.resampler is None:
            if not carry and len(memoryview(data)) == size:  # the common case: as it came
                return [bytes(data)]
            carry += data
        else:
            carry += resample_pcm16(stream.resampler, data)
        whole = len(carry) // size * size
        if not whole:
            return []
        frames = [bytes(carry[start : start + size]) for start in range(0, whole, size)]
        del carry[:whole]
        return frames

    def forget(self, peer_id: str) -> None:
        """Drops a peer's state (it left): its partial frame and resampler."""
        self._peers.pop(peer_id, None)

    def reset(self) -> None:
        """Drops every peer's state."""
        self._peers.clear()


class FrameMixer:
    """Mixes the peers' frames (all of one size and rate) into one stream, as they come.

    A mixed frame is made once every peer being mixed has a frame waiting, so the mix
    keeps the pace of the peers' streams; a peer that stops sending holds it back
    until another has ``max_wait_frames`` waiting, and is then left out until its audio
    comes again (pipecat's LiveKit transport mixes the same way). So no peer has more
    than ``max_wait_frames`` waiting: the bound of this buffer. One peer alone passes
    through unchanged; several are summed with saturation to int16.

    Args:
        max_wait_frames: Frames another peer may have waiting before a silent peer is
            left out (at least 1).

    Raises:
        ValueError: ``max_wait_frames`` is below 1.
    """

    __slots__ = ("_max_wait", "_queues")

    def __init__(self, max_wait_frames: int = 3) -> None:
        if max_wait_frames < 1:
            raise ValueError(f"max_wait_frames must be at least 1, got {max_wait_frames}")
        self._max_wait = max_wait_frames
        self._queues: dict[str, deque[bytes]] = {}

    def add(self, peer_id: str, frames: list[bytes]) -> list[bytes]:
        """Adds a peer's frames; returns the mixed frames they complete, oldest first."""
        queue = self._queues.get(peer_id)
        if queue is None:
            queue = self._queues[peer_id] = deque()
        queue.extend(frames)
        queues = self._queues
        mixed: list[bytes] = []
        while queues:
            if not all(queues.values()):
                if all(len(q) < self._max_wait for q in queues.values()):
                    break
                for silent in [p for p, q in queues.items() if not q]:
                    del queues[silent]
            mixed.append(_mix([q.popleft() for q in queues.values()]))
        return mixed

    def forget(self, peer_id: str) -> None:
        """Drops a peer (it left) and its waiting frames."""
        self._queues.pop(peer_id, None)


def _mix(frames: list[bytes]) -> bytes:
    if len(frames) == 1:
        return frames[0]
    total = np.zeros(len(frames[0]) // 2, np.int32)
    for frame in frames:
        total += np.frombuffer(frame, "<i2")
    return np.clip(total, -32768, 32767).astype("<i2").tobytes()
