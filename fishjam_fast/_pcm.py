"""The PCM16 kernels of the implementation :mod:`._native` chose (native, or the NumPy
reference ``_pcm_py``): this module only names them for ``pcm.py`` and the codec."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._native import NATIVE, PCM_NAMES, take

if TYPE_CHECKING:
    from ._ext import frame_pcm16 as frame_pcm16
    from ._ext import pcm16_bytes as pcm16_bytes
    from ._ext import pcm16_into as pcm16_into
    from ._ext import pcm16_to_float32 as pcm16_to_float32
else:
    from . import _pcm_py

    globals().update(take(PCM_NAMES, _pcm_py))

__all__ = ["NATIVE", "frame_pcm16", "pcm16_bytes", "pcm16_into", "pcm16_to_float32"]
