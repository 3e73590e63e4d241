"""The selector of the agent protocol's codec (and, named here too, the PCM16 kernels of
:mod:`._pcm`): the compiled extension ``_ext`` or the pure-Python reference
(``_codec_py``); :mod:`._native` decides which. The message classes are not selected:
both builds take them from :mod:`._messages` (one source, compiled where ``_ext`` is).

Both export exactly :data:`~._native.NAMES` (tests/test_build.py checks it), so choosing
is taking those names from one side. The ServerMessage decoder is selected in
:mod:`._notifications`; the session core (:mod:`._core.connection`) is one source, compiled
where the extension is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# not selected: one source for both builds (the compiled module where _ext is)
from ._messages import Authenticated as Authenticated
from ._messages import IncomingTrackData as IncomingTrackData
from ._messages import IncomingTrackImage as IncomingTrackImage
from ._messages import Track as Track
from ._messages import UnknownResponse as UnknownResponse
from ._native import (
    BUILD_HINT,
    CODEC_NAMES,
    MESSAGE_NAMES,
    NAMES,
    NATIVE,
    NOTIFICATION_NAMES,
    PCM_NAMES,
    missing_extension_message,
    take,
)

if TYPE_CHECKING:
    # the stub types both sides alike
    from ._ext import TrackDataEncoder as TrackDataEncoder
    from ._ext import decode_response as decode_response
    from ._ext import encode_add_track as encode_add_track
    from ._ext import encode_auth_request as encode_auth_request
    from ._ext import encode_capture_image as encode_capture_image
    from ._ext import encode_interrupt_track as encode_interrupt_track
    from ._ext import encode_remove_track as encode_remove_track
    from ._ext import encode_track_data as encode_track_data
    from ._ext import frame_track_data as frame_track_data
    from ._pcm import frame_pcm16 as frame_pcm16
    from ._pcm import pcm16_bytes as pcm16_bytes
    from ._pcm import pcm16_into as pcm16_into
    from ._pcm import pcm16_to_float32 as pcm16_to_float32
else:
    from . import _codec_py, _pcm

    globals().update(take(CODEC_NAMES, _codec_py))
    globals().update({name: getattr(_pcm, name) for name in PCM_NAMES})

__all__ = [
    "BUILD_HINT",
    "NAMES",
    "NATIVE",
    "NOTIFICATION_NAMES",
    "missing_extension_message",
    *MESSAGE_NAMES,
    *CODEC_NAMES,
    *PCM_NAMES,
]
