"""Chooses the codec: the native extension, or the google.protobuf fallback.

Set ``FISHJAM_FAST_NO_EXTENSIONS=1`` to force the pure-Python path (as aiohttp's
``AIOHTTP_NO_EXTENSIONS``). ``NATIVE`` tells which one was loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._env import NO_EXTENSIONS

if TYPE_CHECKING:
    from ._codec_py import (
        NATIVE,
        TrackDataEncoder,
        decode_response,
        encode_add_track,
        encode_auth_request,
        encode_capture_image,
        encode_interrupt_track,
        encode_remove_track,
        encode_track_data,
        frame_track_data,
    )
    from ._messages_py import (
        Authenticated,
        IncomingTrackData,
        IncomingTrackImage,
        Track,
        UnknownResponse,
    )
elif NO_EXTENSIONS:
    from ._codec_py import *  # noqa: F403
    from ._messages_py import *  # noqa: F403
else:
    try:
        # explicit names: an extension missing any of them is not used
        from ._ext import (
            NATIVE,
            Authenticated,
            IncomingTrackData,
            IncomingTrackImage,
            Track,
            TrackDataEncoder,
            UnknownResponse,
            decode_response,
            encode_add_track,
            encode_auth_request,
            encode_capture_image,
            encode_interrupt_track,
            encode_remove_track,
            encode_track_data,
            frame_track_data,
        )
    except ImportError:
        from ._codec_py import *  # noqa: F403
        from ._messages_py import *  # noqa: F403

__all__ = [
    "NATIVE",
    "Authenticated",
    "IncomingTrackData",
    "IncomingTrackImage",
    "Track",
    "TrackDataEncoder",
    "UnknownResponse",
    "decode_response",
    "encode_add_track",
    "encode_auth_request",
    "encode_capture_image",
    "encode_interrupt_track",
    "encode_remove_track",
    "encode_track_data",
    "frame_track_data",
]
