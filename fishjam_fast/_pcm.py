"""Chooses the PCM16 kernels: the native extension, or the NumPy reference.

Set ``FISHJAM_FAST_NO_EXTENSIONS=1`` to force the NumPy path (as aiohttp's
``AIOHTTP_NO_EXTENSIONS``). ``NATIVE`` tells which one was loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._env import NO_EXTENSIONS

if TYPE_CHECKING:
    from ._pcm_py import NATIVE, frame_pcm16, pcm16_bytes, pcm16_into, pcm16_to_float32
elif NO_EXTENSIONS:
    from ._pcm_py import NATIVE, frame_pcm16, pcm16_bytes, pcm16_into, pcm16_to_float32
else:
    try:
        # explicit names: an extension missing any of them is not used
        from ._ext import frame_pcm16, pcm16_bytes, pcm16_into, pcm16_to_float32
    except ImportError:
        from ._pcm_py import NATIVE, frame_pcm16, pcm16_bytes, pcm16_into, pcm16_to_float32
    else:
        NATIVE = True

__all__ = ["NATIVE", "frame_pcm16", "pcm16_bytes", "pcm16_into", "pcm16_to_float32"]
