"""Stub of the native per-frame listener (src_ext/picows_listener.pyx): the same class
as fishjam_fast.transport._picows_frames_py.FrameListener."""

from fishjam_fast.transport._picows_frames_py import FrameListener as FrameListener

NATIVE: bool
