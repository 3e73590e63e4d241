"""fishjam_fast: a native-accelerated, drop-in replacement for ``fishjam.agent``."""

from __future__ import annotations

from ._codec import NATIVE, IncomingTrackData, IncomingTrackImage, Track
from .enums import TrackEncoding, TrackType
from .errors import AgentAuthError, AgentConnectionError, AgentError, AgentProtocolError

__version__ = "0.1.0"

__all__ = [
    "NATIVE",
    "AgentAuthError",
    "AgentConnectionError",
    "AgentError",
    "AgentProtocolError",
    "IncomingTrackData",
    "IncomingTrackImage",
    "Track",
    "TrackEncoding",
    "TrackType",
]
