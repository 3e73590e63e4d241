"""The one selector of native or fallback code: the compiled extension ``_ext``, or the
pure-Python reference (``_messages_py``, ``_codec_py``, ``_pcm_py``, ``_session_py``,
``_notifications_py``).

Both export exactly :data:`NAMES` (tests/test_build.py checks it), so choosing is
taking those names from one side. Set ``FISHJAM_FAST_NO_EXTENSIONS=1`` to force the
pure-Python side (as aiohttp's ``AIOHTTP_NO_EXTENSIONS``); ``NATIVE`` tells which side
was loaded. When the extension is missing and not switched off on purpose, importing
warns (:class:`~fishjam_fast.errors.NativeExtensionWarning`): the fallback works, but
several times slower.

``fishjam_fast._pcm`` names the PCM16 kernels of this same choice.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ._env import NO_EXTENSIONS
from .errors import NativeExtensionWarning

MESSAGE_NAMES = (
    "Authenticated",
    "IncomingTrackData",
    "IncomingTrackImage",
    "Track",
    "UnknownResponse",
)
"""Decoded message classes (``_messages_py`` in the fallback)."""

CODEC_NAMES = (
    "TrackDataEncoder",
    "decode_response",
    "encode_add_track",
    "encode_auth_request",
    "encode_capture_image",
    "encode_interrupt_track",
    "encode_remove_track",
    "encode_track_data",
    "frame_track_data",
)
"""Protobuf encoders and the decoder (``_codec_py`` in the fallback)."""

PCM_NAMES = ("frame_pcm16", "pcm16_bytes", "pcm16_into", "pcm16_to_float32")
"""PCM16 kernels (``_pcm_py`` in the fallback)."""

SESSION_NAMES = (
    "Dispatcher",
    "PlayoutClock",
    "TrackSender",
    "accept_frame",
    "read_message",
    "receive_messages",
    "send_chunk_now",
    "write_now",
)
"""The per-message path of a session (``_session_py`` and ``_playout`` in the fallback)."""

NOTIFICATION_NAMES = ("decode_server_message",)
"""The ServerMessage decoder (``_notifications_py`` in the fallback: google.protobuf)."""

NAMES = MESSAGE_NAMES + CODEC_NAMES + PCM_NAMES + SESSION_NAMES + NOTIFICATION_NAMES
"""Everything either implementation exports, besides the ``NATIVE`` flag."""

BUILD_HINT = (
    "reinstall with a C compiler and the Python headers present "
    "(FISHJAM_FAST_REQUIRE_EXTENSION=1 pip install --force-reinstall --no-binary "
    "fishjam-fast fishjam-fast makes a failed build an error), or set "
    "FISHJAM_FAST_NO_EXTENSIONS=1 to choose the pure-Python code on purpose"
)


def _fallback() -> dict[str, Any]:
    from . import _codec_py, _messages_py, _notifications_py, _pcm_py, _playout, _session_py

    exported = {
        **vars(_messages_py),
        **vars(_codec_py),
        **vars(_pcm_py),
        **vars(_playout),
        **vars(_session_py),
        **vars(_notifications_py),
    }
    return {name: exported[name] for name in NAMES}


def _native() -> dict[str, Any]:
    """The extension's names.

    Raises:
        ImportError: no extension, or one that lacks a name (a stale build).
    """
    from . import _ext

    missing = [name for name in NAMES if not hasattr(_ext, name)]
    if missing:
        raise ImportError(f"fishjam_fast._ext lacks {', '.join(missing)} (a stale build?)")
    return {name: getattr(_ext, name) for name in NAMES}


def _select() -> tuple[bool, dict[str, Any]]:
    if NO_EXTENSIONS:
        return False, _fallback()
    try:
        return True, _native()
    except ImportError as exc:
        warnings.warn(
            f"fishjam_fast runs without its native extension ({exc}): the pure-Python "
            f"codec and NumPy kernels work, but performance is degraded. To build it, "
            f"{BUILD_HINT}.",
            NativeExtensionWarning,
            stacklevel=3,
        )
        return False, _fallback()


if TYPE_CHECKING:
    # the stub types both sides alike (NATIVE included)
    from ._ext import *  # noqa: F403
else:
    NATIVE, _selected = _select()
    globals().update(_selected)
    del _selected

__all__ = ["NATIVE", *NAMES]
