"""The stream state of ``OutgoingTrack.send_pcm``: resampling and whole chunks across calls.

A TTS engine hands audio over in pieces of any size, at its own rate. ``send_pcm(...,
final=False)`` must turn each piece into whole ``chunk_ms`` chunks at the track's rate,
and the pieces together into the same samples one call would have sent. Two things
carry over from one call to the next: the resampler's filter state (soxr holds back a
few milliseconds), and the samples short of a whole chunk (the carry), kept as PCM16.

:meth:`PcmStream.blocks` turns a piece into at most two blocks for the framing kernel:
the carry completed to one chunk (small, converted here), then the rest of the piece as
it is, in whole chunks (the kernel converts and frames it in one pass, no copy here).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .. import _pcm, pcm
from .._resample import Resampler, check_rate

__all__ = ["PcmStream"]

_LE16 = np.dtype("<i2")


class PcmStream:
    """One track's stream of PCM pieces: the resampler and the carry between calls.

    Args:
        rate: The track's sample rate.
        channels: The track's channel count.
    """

    __slots__ = ("_carry", "_resampler", "channels", "rate")

    def __init__(self, rate: int, channels: int) -> None:
        self.rate = rate
        self.channels = channels
        self._resampler: Resampler | None = None
        # interleaved PCM16 values short of one chunk, sent before the next piece
        self._carry: npt.NDArray[np.int16] = np.zeros(0, dtype=_LE16)

    @property
    def carried_frames(self) -> int:
        """Sample frames held back for the next call (short of a whole chunk)."""
        return self._carry.size // self.channels

    @property
    def open(self) -> bool:
        """True while a stream is in progress: a carry, or a resampler holding state."""
        return bool(self._carry.size) or (self._resampler is not None and self._resampler.streaming)

    def reset(self) -> None:
        """Drops the carry and the resampler's state (an interrupt, an error)."""
        self._carry = self._carry[:0]
        if self._resampler is not None:
            self._resampler.reset()

    def blocks(
        self, samples: object, per_chunk: int, input_rate: int | None, final: bool
    ) -> list[Any]:
        """The next piece as blocks for ``frame_pcm16``, in order; updates the state.

        Every block but the last holds whole chunks of ``per_chunk`` sample frames; so
        does the last unless ``final``, which also flushes the resampler and sends the
        carry as a short chunk. On an exception the caller must :meth:`reset`.

        Raises:
            TypeError, ValueError: bad samples or ``input_rate``; a rate other than the
                open stream's.
        """
        prepared, _ = pcm._prepare(samples, self.channels)
        if isinstance(prepared, bytes | memoryview):
            prepared = np.frombuffer(prepared, dtype=_LE16)
        values = self._resample(prepared, input_rate, final)
        channels = self.channels
        count = values.shape[0] if values.ndim == 2 else values.size // channels
        carry = self._carry
        blocks: list[Any] = []
        start = 0
        if carry.size:
            # complete the carry to one chunk with the head of the piece (small: < 1 chunk)
            need = per_chunk - carry.size // channels
            if count < need and not final:
                self._carry = np.concatenate((carry, _as_le16(_frames(values, 0, count, channels))))
                return blocks
            start = min(need, count)
            head = _as_le16(_frames(values, 0, start, channels))
            blocks.append(np.concatenate((carry, head)))
        whole = count if final else start + (count - start) // per_chunk * per_chunk
        if whole > start:
            blocks.append(_frames(values, start, whole, channels))
        self._carry = _as_le16(_frames(values, whole, count, channels))
        return blocks

    def _resample(
        self, values: npt.NDArray[Any], input_rate: int | None, final: bool
    ) -> npt.NDArray[Any]:
        resampler = self._resampler
        if input_rate is None or input_rate == self.rate:
            if resampler is not None and resampler.streaming:
                raise ValueError(
                    f"a stream at sample_rate={resampler.input_rate} is in progress: keep "
                    "that rate until a call with final=True, or interrupt() the track"
                )
            return values
        input_rate = check_rate("sample_rate", input_rate)
        if resampler is None or resampler.input_rate != input_rate:
            if resampler is not None and resampler.streaming:
                raise ValueError(
                    f"a stream at sample_rate={resampler.input_rate} is in progress, got "
                    f"sample_rate={input_rate}: keep the rate until a call with final=True"
                )
            resampler = self._resampler = Resampler(input_rate, self.rate, self.channels)
        return resampler.process(values, last=final)


def _frames(values: npt.NDArray[Any], start: int, stop: int, channels: int) -> npt.NDArray[Any]:
    """Sample frames ``[start, stop)`` of ``(n, channels)`` or interleaved ``(n,)`` values."""
    if values.ndim == 2:
        return values[start:stop]
    return values[start * channels : stop * channels]


def _as_le16(values: npt.NDArray[Any]) -> npt.NDArray[np.int16]:
    """Values as interleaved PCM16 (a new 1-D array): the carry's form."""
    return np.frombuffer(_pcm.pcm16_bytes(values), dtype=_LE16)
