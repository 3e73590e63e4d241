"""Protocol enums, with the member names of the plain SDK's betterproto enums."""

from __future__ import annotations

from enum import IntEnum


class TrackType(IntEnum):
    """What kind of media a track carries (``fishjam.notifications.TrackType``)."""

    TRACK_TYPE_UNSPECIFIED = 0
    TRACK_TYPE_VIDEO = 1
    TRACK_TYPE_AUDIO = 2


class TrackEncoding(IntEnum):
    """How a track's media is encoded (``fishjam.notifications.TrackEncoding``).

    The server treats ``TRACK_ENCODING_UNSPECIFIED`` as PCM16.
    """

    TRACK_ENCODING_UNSPECIFIED = 0
    TRACK_ENCODING_PCM16 = 1
    TRACK_ENCODING_OPUS = 2


# Lookup tables for decoders: proto3 enums are open, so a number outside the table
# stays a plain int instead of raising.
TRACK_TYPES: tuple[TrackType, ...] = tuple(TrackType)
TRACK_ENCODINGS: tuple[TrackEncoding, ...] = tuple(TrackEncoding)


def track_type(value: int) -> TrackType | int:
    """Returns the TrackType member for ``value``, or ``value`` itself if unknown."""
    return TRACK_TYPES[value] if 0 <= value < len(TRACK_TYPES) else value
