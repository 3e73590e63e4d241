"""Decoded AgentResponse contents, pure-Python flavour.

The native extension defines the same classes in Cython (``src_ext/messages.pyx``);
``fishjam_fast._codec`` picks one set. Both compare by value, support keyword
``match`` patterns and attribute access like the plain SDK's betterproto classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .enums import TrackType


@dataclass(slots=True)
class Track:
    """A peer's track: ``id``, ``type`` (TrackType, or an int the enum lacks) and
    ``metadata`` (JSON text)."""

    id: str = ""
    type: TrackType | int = TrackType.TRACK_TYPE_UNSPECIFIED
    metadata: str = ""


@dataclass(slots=True)
class IncomingTrackData:
    """A chunk of a peer's track: PCM16 little-endian audio for audio tracks.

    Attributes:
        peer_id: The peer whose track this is.
        track: The track the chunk belongs to.
        data: The chunk (an owned ``bytes`` object).
    """

    peer_id: str = ""
    track: Track = field(default_factory=Track)
    data: bytes = b""

    @property
    def pcm(self) -> npt.NDArray[np.int16]:
        """The chunk as PCM16 samples: a read-only int16 VIEW of :attr:`data` (no copy),
        shape ``(samples,)`` (channels interleaved).

        Raises:
            ValueError: ``data`` has an odd number of bytes.
        """
        # imported here: fishjam_fast.pcm imports the selector, which imports this module
        from .pcm import incoming_pcm_view

        return incoming_pcm_view(self.data)

    def samples(self) -> npt.NDArray[np.float32]:
        """The chunk as float32 samples in [-1, 1): a NEW array (``pcm / 32768``).

        Raises:
            ValueError: ``data`` has an odd number of bytes.
        """
        from .pcm import incoming_samples

        return incoming_samples(self.data)


@dataclass(slots=True)
class IncomingTrackImage:
    """An image captured from a track, answering ``capture_image``.

    Attributes:
        track_id: The track the image was captured from.
        content_type: The image's MIME type, e.g. ``image/jpeg``.
        data: The encoded image (an owned ``bytes`` object).
    """

    track_id: str = ""
    content_type: str = ""
    data: bytes = b""


@dataclass(slots=True)
class Authenticated:
    """The server accepted the agent's token."""


@dataclass(slots=True)
class UnknownResponse:
    """An AgentResponse whose content this version does not know (a newer server).

    Attributes:
        field_number: The unknown oneof member's field number; 0 for an empty message.
    """

    field_number: int = 0
