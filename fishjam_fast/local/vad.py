"""Voice activity of a simulated speaker's track, from the audio it plays.

Fishjam runs a voice activity detector on each audio track and notifies SPEECH and
SILENCE (``VadNotification``). The local server models it with an energy threshold and
a hangover, per track, on the 20 ms chunks the speaker plays (at 16 kHz):

- a chunk is *loud* when its RMS level is at or above ``threshold_dbfs`` (default
  -45 dBFS: speech at a normal level is well above, digital silence and faint noise
  below);
- the track goes to SPEECH on the first loud chunk (one notification);
- it goes back to SILENCE after ``hangover`` consecutive quiet chunks (default 15, i.e.
  300 ms: the pauses between words do not end speech), and when the stream ends.

Changes only are notified, as the real server does; a track starts in silence.
"""

from __future__ import annotations

import math

import numpy as np

#: Chunks are loud at or above this RMS level (dB relative to full scale).
DEFAULT_THRESHOLD_DBFS = -45.0
#: Quiet chunks (20 ms each) before speech turns back into silence.
DEFAULT_HANGOVER = 15


def rms_dbfs(chunk: bytes) -> float:
    """The RMS level of PCM16 little-endian mono ``chunk`` in dBFS (-inf for silence)."""
    samples = np.frombuffer(chunk, dtype="<i2").astype(np.float64)
    if samples.size == 0:
        return -math.inf
    rms = math.sqrt(float(np.mean(samples * samples)))
    return 20.0 * math.log10(rms / 32768.0) if rms > 0 else -math.inf


def loud_chunks(chunks: list[bytes], threshold_dbfs: float = DEFAULT_THRESHOLD_DBFS) -> list[bool]:
    """Which of ``chunks`` (equal-sized PCM16 mono) are loud, computed in one vectorized
    pass: a speaker's stream is fixed, so the server classifies it once, not per chunk.

    Args:
        chunks: The chunks of one pass of a stream, all the same size.
        threshold_dbfs: The loudness threshold.

    Returns:
        One flag per chunk: RMS level at or above ``threshold_dbfs``.
    """
    if not chunks:
        return []
    samples = np.frombuffer(b"".join(chunks), dtype="<i2").astype(np.float64)
    mean_square = np.mean(samples.reshape(len(chunks), -1) ** 2, axis=1)
    limit = (32768.0 * 10.0 ** (threshold_dbfs / 20.0)) ** 2
    return [bool(x) for x in mean_square >= limit]


class VoiceActivity:
    """The SPEECH/SILENCE state of one track (see the module docstring)."""

    def __init__(
        self, threshold_dbfs: float = DEFAULT_THRESHOLD_DBFS, hangover: int = DEFAULT_HANGOVER
    ) -> None:
        """Args: threshold_dbfs: The loudness threshold. hangover: Quiet chunks before silence.

        Raises:
            ValueError: If ``hangover`` is below 1.
        """
        if hangover < 1:
            raise ValueError(f"hangover must be at least 1 chunk, got {hangover}")
        self.threshold_dbfs = threshold_dbfs
        self.hangover = hangover
        #: Whether the track is in speech now.
        self.speaking = False
        self._quiet = 0

    def update(self, chunk: bytes) -> bool | None:
        """Feed the next chunk.

        Args:
            chunk: 20 ms of PCM16 mono.

        Returns:
            True when speech starts, False when it ends, None when nothing changed.
        """
        return self.update_loud(rms_dbfs(chunk) >= self.threshold_dbfs)

    def update_loud(self, loud: bool) -> bool | None:
        """Feed the next chunk's classification (see :func:`loud_chunks`).

        Args:
            loud: Whether the chunk is at or above the threshold.

        Returns:
            As :meth:`update`.
        """
        if loud:
            self._quiet = 0
            if not self.speaking:
                self.speaking = True
                return True
            return None
        if self.speaking:
            self._quiet += 1
            if self._quiet >= self.hangover:
                self.speaking = False
                self._quiet = 0
                return False
        return None

    def end(self) -> bool | None:
        """The stream ended: False if it was in speech (now silence), else None."""
        self._quiet = 0
        if self.speaking:
            self.speaking = False
            return False
        return None
