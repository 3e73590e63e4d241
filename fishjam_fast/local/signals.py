"""Audio that simulated peers speak: generated signals, a spoken phrase, user arrays.

Everything here returns mono PCM16 as an owned NumPy ``int16`` array (never a view of
caller data). An :class:`AudioSource` renders itself once per sample rate, because agents
in one room may ask for 16000 or 24000 Hz output.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]

#: The chunk length Fishjam delivers peers' audio in.
CHUNK_SECONDS = 0.02


def _to_int16(signal: npt.NDArray[np.float64], amplitude: float) -> Samples:
    clipped = np.clip(signal * amplitude, -1.0, 1.0)
    return np.round(clipped * 32767.0).astype(np.int16)


def tone(frequency: float, seconds: float, sample_rate: int, amplitude: float = 0.5) -> Samples:
    """A sine tone.

    Args:
        frequency: Frequency in Hz.
        seconds: Duration.
        sample_rate: Samples per second.
        amplitude: Peak level, 0..1 of full scale.

    Returns:
        An owned int16 array of ``round(seconds * sample_rate)`` samples.
    """
    t = np.arange(round(seconds * sample_rate), dtype=np.float64) / sample_rate
    return _to_int16(np.sin(2.0 * np.pi * frequency * t), amplitude)


def chirp(
    f0: float, f1: float, seconds: float, sample_rate: int, amplitude: float = 0.5
) -> Samples:
    """A linear sweep from ``f0`` to ``f1`` Hz.

    Args:
        f0: Start frequency in Hz.
        f1: End frequency in Hz.
        seconds: Duration.
        sample_rate: Samples per second.
        amplitude: Peak level, 0..1 of full scale.

    Returns:
        An owned int16 array.
    """
    t = np.arange(round(seconds * sample_rate), dtype=np.float64) / sample_rate
    phase = 2.0 * np.pi * (f0 * t + (f1 - f0) * t * t / (2.0 * max(seconds, 1e-9)))
    return _to_int16(np.sin(phase), amplitude)


def noise(seconds: float, sample_rate: int, amplitude: float = 0.3, seed: int = 0) -> Samples:
    """Uniform white noise, reproducible from ``seed``.

    Args:
        seconds: Duration.
        sample_rate: Samples per second.
        amplitude: Peak level, 0..1 of full scale.
        seed: Seed of the generator.

    Returns:
        An owned int16 array.
    """
    rng = np.random.default_rng(seed)
    return _to_int16(rng.uniform(-1.0, 1.0, round(seconds * sample_rate)), amplitude)


def resample(samples: Samples, from_rate: int, to_rate: int) -> Samples:
    """Linear-interpolation resampling (good enough for test signals).

    Args:
        samples: Mono int16 samples.
        from_rate: Their sample rate.
        to_rate: The wanted rate.

    Returns:
        An owned int16 array (a copy even when the rates are equal).
    """
    if from_rate == to_rate or len(samples) == 0:
        return np.array(samples, dtype=np.int16, copy=True)
    n_out = round(len(samples) * to_rate / from_rate)
    x_out = np.arange(n_out, dtype=np.float64) * (from_rate / to_rate)
    out = np.interp(x_out, np.arange(len(samples), dtype=np.float64), samples.astype(np.float64))
    return np.round(out).astype(np.int16)


def _espeak(text: str) -> tuple[Samples, int] | None:
    exe = shutil.which("espeak-ng") or shutil.which("espeak")
    if exe is None:
        return None
    try:
        wav = subprocess.run(
            [exe, "--stdout", text], capture_output=True, check=True, timeout=30
        ).stdout
        with wave.open(io.BytesIO(wav)) as w:
            if w.getsampwidth() != 2:
                return None
            frames = w.readframes(w.getnframes())
            rate = w.getframerate()
            channels = w.getnchannels()
    except (OSError, subprocess.SubprocessError, wave.Error, EOFError):
        return None
    pcm = np.frombuffer(frames, dtype="<i2").astype(np.int16)
    if channels > 1:
        pcm = pcm[::channels].copy()
    return pcm, rate


def _speech_like(text: str, sample_rate: int) -> Samples:
    # One voiced "syllable" per word: a 120 Hz glottal buzz through two formants,
    # with a rise/fall envelope, separated by short pauses.
    words = text.split() or ["a"]
    rng = np.random.default_rng(len(text))
    parts: list[npt.NDArray[np.float64]] = []
    for _ in words:
        dur = 0.18 + 0.12 * rng.random()
        t = np.arange(round(dur * sample_rate), dtype=np.float64) / sample_rate
        f1, f2 = 500 + 300 * rng.random(), 1200 + 900 * rng.random()
        voiced = sum(
            np.sin(2 * np.pi * 120 * k * t)
            / k
            * (np.exp(-((120 * k - f1) ** 2) / 2e4) + 0.5 * np.exp(-((120 * k - f2) ** 2) / 4e4))
            for k in range(1, 25)
        )
        env = np.sin(np.pi * t / dur) ** 0.5
        parts.append(voiced * env)
        parts.append(np.zeros(round(0.06 * sample_rate)))
    signal = np.concatenate(parts)
    peak = float(np.max(np.abs(signal))) or 1.0
    return _to_int16(signal / peak, 0.6)


def speech(text: str, sample_rate: int) -> Samples:
    """A spoken phrase: ``espeak-ng`` when it is installed, else a speech-like signal.

    Args:
        text: The phrase.
        sample_rate: Samples per second of the result.

    Returns:
        An owned int16 array.
    """
    spoken = _espeak(text)
    if spoken is None:
        return _speech_like(text, sample_rate)
    pcm, rate = spoken
    return resample(pcm, rate, sample_rate)


class AudioSource:
    """What a speaking peer says, renderable at any sample rate.

    Build one with a class method (:meth:`from_array`, :meth:`tone`, :meth:`chirp`,
    :meth:`noise`, :meth:`speech`); :meth:`render` caches one owned array per rate.
    """

    def __init__(self, render: Callable[[int], Samples], description: str) -> None:
        """Wrap a rendering function.

        Args:
            render: Maps a sample rate to mono int16 samples at that rate.
            description: A short human-readable name (shown in reprs and logs).
        """
        self._render = render
        self.description = description
        self._cache: dict[int, Samples] = {}

    def __repr__(self) -> str:
        return f"AudioSource({self.description})"

    def render(self, sample_rate: int) -> Samples:
        """The samples at ``sample_rate`` (cached; treat the array as read-only).

        Args:
            sample_rate: Samples per second.

        Returns:
            The cached int16 array, flagged non-writeable.
        """
        out = self._cache.get(sample_rate)
        if out is None:
            out = np.ascontiguousarray(self._render(sample_rate), dtype=np.int16)
            if len(out) == 0:
                raise ValueError(f"{self.description} renders no samples")
            out.flags.writeable = False
            self._cache[sample_rate] = out
        return out

    @classmethod
    def from_array(cls, samples: npt.ArrayLike, sample_rate: int) -> AudioSource:
        """User samples (copied), resampled on demand to other rates.

        Args:
            samples: Mono int16 samples.
            sample_rate: Their sample rate.

        Returns:
            The source.
        """
        own = np.array(samples, dtype=np.int16, copy=True).reshape(-1)
        return cls(lambda rate: resample(own, sample_rate, rate), f"array@{sample_rate}")

    @classmethod
    def tone(cls, frequency: float = 440.0, seconds: float = 1.0) -> AudioSource:
        """See :func:`tone`."""
        return cls(lambda rate: tone(frequency, seconds, rate), f"tone {frequency} Hz")

    @classmethod
    def chirp(cls, f0: float = 200.0, f1: float = 4000.0, seconds: float = 1.0) -> AudioSource:
        """See :func:`chirp`."""
        return cls(lambda rate: chirp(f0, f1, seconds, rate), f"chirp {f0}-{f1} Hz")

    @classmethod
    def noise(cls, seconds: float = 1.0, seed: int = 0) -> AudioSource:
        """See :func:`noise`."""
        return cls(lambda rate: noise(seconds, rate, seed=seed), f"noise seed {seed}")

    @classmethod
    def speech(cls, text: str = "Hello from the local Fishjam server") -> AudioSource:
        """See :func:`speech`."""
        return cls(lambda rate: speech(text, rate), f"speech {text!r}")
