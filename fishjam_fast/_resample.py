"""A streaming sample-rate converter on soxr (the SoX resampler library).

TTS engines produce 22050, 44100 or 48000 Hz; Fishjam's PCM16 tracks take 16000 or
24000. Linear interpolation aliases audibly; soxr is a band-limited resampler with
quality presets and a streaming API, the one pipecat and LiveKit use. Exported as
:class:`fishjam_fast.pcm.Resampler`; ``OutgoingTrack.send_pcm(sample_rate=...)`` keeps
one per track.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import soxr

from ._checks import check_int

__all__ = ["MAX_RATE", "MIN_RATE", "QUALITIES", "Quality", "Resampler"]

Quality = Literal["quick", "low", "medium", "high", "very_high"]

QUALITIES: dict[str, str] = {
    "quick": "QQ",
    "low": "LQ",
    "medium": "MQ",
    "high": "HQ",
    "very_high": "VHQ",
}
"""The quality presets (LiveKit's names) and soxr's names for them."""

MIN_RATE = 1000
"""The lowest sample rate a Resampler takes, in Hz."""
MAX_RATE = 768_000
"""The highest sample rate a Resampler takes, in Hz."""
MAX_CHANNELS = 64
"""The most channels a Resampler takes."""

_DTYPES = ("int16", "float32", "float64")


def check_rate(name: str, rate: object) -> int:
    """Validates a sample rate: an int in [MIN_RATE, MAX_RATE].

    Raises:
        TypeError: ``rate`` is not an int (bools are refused).
        ValueError: ``rate`` is out of range (0, negative, absurd).
    """
    value = check_int(name, rate, "an int (Hz)")
    if not MIN_RATE <= value <= MAX_RATE:
        raise ValueError(f"{name} must be between {MIN_RATE} and {MAX_RATE} Hz, got {value}")
    return value


class Resampler:
    """Converts a stream of audio from one sample rate to another, piece by piece.

    Pieces may have any length: the filter's state carries over from one :meth:`push`
    to the next, so the concatenated output equals soxr's for the whole stream.
    :meth:`flush` ends the stream (returns the filter's tail); the next :meth:`push`
    starts a new one.

    Samples are int16, float32 or float64 (floats in [-1, 1]), shape ``(n,)`` for mono
    (or ``channels`` interleaved values per frame) or ``(n, channels)``. The output has
    the dtype of the stream's first piece and the shape ``(m,)`` when ``channels`` is 1,
    else ``(m, channels)``; it is a new array (an owned copy).

    Args:
        input_rate: The input's sample rate, in Hz.
        output_rate: The output's sample rate, in Hz.
        channels: Interleaved channels (1 to 64).
        quality: ``"quick"``, ``"low"``, ``"medium"``, ``"high"`` (the default, soxr's
            HQ) or ``"very_high"``.

    Raises:
        TypeError: a rate or ``channels`` is not an int, or ``quality`` not a str.
        ValueError: a rate outside [1000, 768000] Hz, ``channels`` outside [1, 64],
            or an unknown ``quality``.
    """

    __slots__ = ("_dtype", "_quality", "_stream", "channels", "input_rate", "output_rate")

    def __init__(
        self,
        input_rate: int,
        output_rate: int,
        channels: int = 1,
        quality: Quality = "high",
    ) -> None:
        self.input_rate = check_rate("input_rate", input_rate)
        self.output_rate = check_rate("output_rate", output_rate)
        channels = check_int("channels", channels)
        if not 1 <= channels <= MAX_CHANNELS:
            raise ValueError(f"channels must be between 1 and {MAX_CHANNELS}, got {channels}")
        self.channels = channels
        if not isinstance(quality, str):
            raise TypeError(f"quality must be a str, got {type(quality).__name__}")
        if quality not in QUALITIES:
            raise ValueError(f"unknown quality {quality!r}: use one of {', '.join(QUALITIES)}")
        self._quality: Quality = quality
        self._stream: Any = None  # a soxr.ResampleStream while a stream is open
        self._dtype: np.dtype[Any] | None = None  # the open stream's dtype

    def __repr__(self) -> str:
        return (
            f"Resampler({self.input_rate}, {self.output_rate}, channels={self.channels}, "
            f"quality={self._quality!r})"
        )

    @property
    def quality(self) -> Quality:
        """The quality preset."""
        return self._quality

    @property
    def streaming(self) -> bool:
        """True between a :meth:`push` and the :meth:`flush` (or :meth:`reset`) ending it."""
        return self._stream is not None

    def push(self, samples: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Resamples the next piece of the stream.

        Args:
            samples: The piece (see the class docstring); may be empty.

        Returns:
            The output that is ready: a new array, possibly empty (the filter holds
            back a few milliseconds until more input or :meth:`flush` comes).

        Raises:
            TypeError: not a NumPy array of int16, float32 or float64, or a dtype other
                than the open stream's.
            ValueError: a shape that does not hold ``channels`` channels.
        """
        return self.process(samples, last=False)

    def flush(self) -> npt.NDArray[Any]:
        """Ends the stream: returns what the filter still holds (its tail).

        Returns:
            A new array (empty when no stream is open). The next :meth:`push` starts a
            new stream.
        """
        if self._stream is None:
            return self._shape(np.zeros(0, dtype=self._dtype or np.float32))
        return self.process(np.zeros(0, dtype=self._dtype), last=True)

    def reset(self) -> None:
        """Drops the open stream, its state and what it holds back, without output."""
        self._stream = None
        self._dtype = None

    def process(self, samples: npt.NDArray[Any], last: bool) -> npt.NDArray[Any]:
        """:meth:`push` (``last`` False) or push-then-:meth:`flush` in one call."""
        values = self._frames(samples)
        if self._stream is None:
            self._stream = soxr.ResampleStream(
                self.input_rate,
                self.output_rate,
                self.channels,
                dtype=values.dtype.name,
                quality=QUALITIES[self._quality],
            )
            self._dtype = values.dtype
        elif values.dtype != self._dtype:
            raise TypeError(
                f"this stream started with {self._dtype} samples, got {values.dtype}: "
                "convert them, or flush() to start a new stream"
            )
        try:
            out = self._stream.resample_chunk(values, last=last)
        finally:
            if last:
                self.reset()
        return self._shape(out)

    def _frames(self, samples: object) -> npt.NDArray[Any]:
        """``samples`` as soxr takes them: C-contiguous, native order, (n,) or (n, c)."""
        if not isinstance(samples, np.ndarray):
            raise TypeError(
                "samples must be a NumPy array of int16, float32 or float64, "
                f"got {type(samples).__name__}"
            )
        dtype = samples.dtype
        if dtype.kind not in "if" or dtype.newbyteorder("=").name not in _DTYPES:
            raise TypeError(f"samples must be int16, float32 or float64, got dtype {dtype}")
        channels = self.channels
        if samples.ndim == 2:
            if samples.shape[1] != channels:
                raise ValueError(
                    f"samples of shape {samples.shape} have {samples.shape[1]} channels, "
                    f"but this Resampler has channels={channels}"
                )
        elif samples.ndim == 1:
            if samples.size % channels:
                raise ValueError(
                    f"{samples.size} interleaved samples do not split into {channels} channels"
                )
            if channels > 1:
                samples = samples.reshape(-1, channels)
        else:
            raise ValueError(
                f"samples must have shape (n,) or (n, channels), got shape {samples.shape}"
            )
        return np.ascontiguousarray(samples, dtype=dtype.newbyteorder("="))

    def _shape(self, out: npt.NDArray[Any]) -> npt.NDArray[Any]:
        if self.channels == 1:
            return out.reshape(-1)
        return out.reshape(-1, self.channels)
