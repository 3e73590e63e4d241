"""The one decision between the compiled extension ``_ext`` and the pure-Python
reference, and the names each selector takes from the chosen side.

Set ``FISHJAM_FAST_NO_EXTENSIONS=1`` to force the pure-Python side (as aiohttp's
``AIOHTTP_NO_EXTENSIONS``); :data:`NATIVE` tells which side was loaded. When the
extension is missing and not switched off on purpose, importing warns
(:class:`~fishjam_fast.errors.NativeExtensionWarning`): the fallback works, but several
times slower.

The selectors, each over its layer (lowest first): ``_pcm`` (PCM16 kernels),
``_codec`` (the agent protocol's codec, beside the message classes of ``_messages``),
``_notifications`` (the ServerMessage decoder). (The session core, ``_core.connection``,
and the message classes, ``_messages``, are one source each, compiled in Cython's
pure-Python mode: no selector.) Importing only this module and the extension, this one
sits below all of them.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import warnings
from pathlib import Path
from types import ModuleType

from ._env import NO_EXTENSIONS
from .errors import NativeExtensionWarning

MESSAGE_NAMES = (
    "Authenticated",
    "IncomingTrackData",
    "IncomingTrackImage",
    "Track",
    "UnknownResponse",
)
"""Decoded message classes: not selected, both builds take them from ``_messages`` (one
source, compiled where the extension is), so ``_ext`` does not define them."""

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

NOTIFICATION_NAMES = ("decode_server_message",)
"""The ServerMessage decoder (``_notifications_py`` in the fallback: google.protobuf)."""

NAMES = CODEC_NAMES + PCM_NAMES + NOTIFICATION_NAMES
"""Everything either implementation exports, besides the ``NATIVE`` flag."""

BUILD_HINT = (
    "reinstall with a C compiler and the Python headers present "
    "(FISHJAM_FAST_REQUIRE_EXTENSION=1 pip install --force-reinstall --no-binary "
    "fishjam-fast fishjam-fast makes a failed build an error), or set "
    "FISHJAM_FAST_NO_EXTENSIONS=1 to choose the pure-Python code on purpose"
)


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
    if "partially initialized" in str(error) or (
        isinstance(error, ModuleNotFoundError) and error.name == "fishjam_fast._ext"
    ):
        what = f"no compiled fishjam_fast._ext in {package}"
    else:
        what = str(error)
    return (
        f"fishjam_fast runs without its native extension ({what}): the pure-Python "
        f"codec and NumPy kernels work, but performance is degraded. To build it, "
        f"{BUILD_HINT}"
    )


def _load() -> ModuleType | None:
    """The extension, or None (the fallback: on purpose, or with a warning).

    A build that lacks one of :data:`NAMES` (a stale one) counts as missing.
    """
    if NO_EXTENSIONS:
        return None
    try:
        # by name: the compiled module is not a source file the layering check reads
        _ext = importlib.import_module(f"{__package__}._ext")
        missing = [name for name in NAMES if not hasattr(_ext, name)]
        if missing:
            raise ImportError(f"fishjam_fast._ext lacks {', '.join(missing)} (a stale build?)")
    except ImportError as exc:
        warnings.warn(
            missing_extension_message(Path(__file__).resolve().parent, exc) + ".",
            NativeExtensionWarning,
            stacklevel=4,
        )
        return None
    return _ext


EXT = _load()
"""The compiled extension if it is used, else None."""

NATIVE = EXT is not None
"""True when the compiled extension is used."""


def take(names: tuple[str, ...], *fallback: ModuleType) -> dict[str, object]:
    """``names`` from the extension if it is used, else from the ``fallback`` modules."""
    if EXT is not None:
        return {name: getattr(EXT, name) for name in names}
    exported: dict[str, object] = {}
    for module in fallback:
        exported.update(vars(module))
    return {name: exported[name] for name in names}
