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

import importlib.machinery
import warnings
from pathlib import Path
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


def _source_checkout(package: Path) -> Path | None:
    """The repository root when ``package`` is the source tree's ``fishjam_fast``
    folder (``src_ext/`` beside it) holding no compiled ``_ext``, else None."""
    root = package.parent
    if not (root / "src_ext" / "_ext.pyx").is_file():
        return None
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    if any((package / f"_ext{suffix}").exists() for suffix in suffixes):
        return None  # built in place: a stale build, which the ImportError names
    return root


def missing_extension_message(package: Path, error: ImportError) -> str:
    """What the warning of a missing extension says: what happened and the fix.

    A script run from the repository root imports the source tree (its folder comes
    first on ``sys.path``), where nothing was compiled: Python then reports the missing
    module as a "circular import" (``from . import _ext`` in a package still being
    initialized), which is not what happened.
    """
    root = _source_checkout(package)
    if root is not None:
        return (
            f"fishjam_fast was imported from its source checkout ({package}), not from "
            f"the installed package, and no native extension was built there (a script "
            f"run from the repository root imports this folder first): the pure-Python "
            f"codec and NumPy kernels run instead, several times slower. Build the "
            f"extension in place: cd {root} && python setup.py build_ext --inplace "
            f"(or pip install -e .), or run the script from another directory so that "
            f"the installed fishjam_fast is imported"
        )
    if "partially initialized" in str(error):
        what = f"no compiled fishjam_fast._ext in {package}"
    else:
        what = str(error)
    return (
        f"fishjam_fast runs without its native extension ({what}): the pure-Python "
        f"codec and NumPy kernels work, but performance is degraded. To build it, "
        f"{BUILD_HINT}"
    )


def _select() -> tuple[bool, dict[str, Any]]:
    if NO_EXTENSIONS:
        return False, _fallback()
    try:
        return True, _native()
    except ImportError as exc:
        warnings.warn(
            missing_extension_message(Path(__file__).resolve().parent, exc) + ".",
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
