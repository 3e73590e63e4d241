"""Options of an outgoing track, and their validation into codec parameters."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from .enums import TrackEncoding

PCM16_SAMPLE_RATES = (16000, 24000)
OPUS_SAMPLE_RATES = (0, 8000, 12000, 16000, 24000, 48000)
CHANNEL_COUNTS = (1, 2)

MAX_METADATA_BYTES = 1024 * 1024
"""Largest track metadata, as JSON text (bytes of UTF-8), that ``add_track`` sends.

The metadata travels in one WebSocket frame, and a server closes the connection
(1009) on a frame larger than it accepts; the local server (``fishjam_fast.local``)
accepts 4 MiB by default. 1 MiB leaves room for the rest of the frame and for servers
configured tighter, and is far more than track metadata needs: larger metadata is
refused with ``ValueError`` before anything is sent.
"""


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
class TrackParams:
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


def track_params(options: Any) -> TrackParams:
    """Validates an options object (ours, the plain SDK's, or any look-alike).

    Raises:
        TypeError: a field has the wrong type, or the metadata is not JSON-encodable.
        ValueError: an unsupported encoding, sample rate or channel count; metadata
            holding NaN or infinity (not JSON), or larger than
            :data:`MAX_METADATA_BYTES` as JSON.
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
    return TrackParams(int(encoding), int(sample_rate), int(channels), _metadata_json(metadata))


def _metadata_json(metadata: Any) -> str:
    """The metadata as strict JSON text, as the plain SDK writes it (``json.dumps``)."""
    try:
        text = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        try:
            json.dumps(metadata)
        except (TypeError, ValueError):
            raise TypeError(f"track metadata must be JSON-encodable: {exc}") from None
        raise ValueError(
            "track metadata holds NaN or Infinity, which are not JSON "
            "(a server cannot parse them): replace them, e.g. with null or a string"
        ) from None
    size = len(text)  # ensure_ascii (the default): one byte per character
    if size > MAX_METADATA_BYTES:
        raise ValueError(
            f"track metadata is {size} bytes as JSON; at most {MAX_METADATA_BYTES} "
            "(MAX_METADATA_BYTES) fit in one frame"
        )
    return text
