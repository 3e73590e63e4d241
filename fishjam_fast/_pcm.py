"""The PCM16 kernels of the implementation ``fishjam_fast._codec`` selected (native or
the NumPy reference ``_pcm_py``): this module only names them for ``pcm.py``."""

from __future__ import annotations

from ._codec import NATIVE, frame_pcm16, pcm16_bytes, pcm16_into, pcm16_to_float32

__all__ = ["NATIVE", "frame_pcm16", "pcm16_bytes", "pcm16_into", "pcm16_to_float32"]
