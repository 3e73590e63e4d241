# cython: language_level=3
"""fishjam_fast._ext: the one native module.

Like uvloop's loop.pyx and asyncpg's pgproto.pyx, it is a single extension unit that
includes small files, each with one job and its declarations in a .pxd beside it;
fishjam_fast/_ext.pxd, the module's declarations, includes those .pxd files:

    buffer    read cursor (rcur_*) and exact-size writers (wbuf_*); every read checked
    codec     AgentRequest encoders, AgentResponse decoder
    notifications  the ServerMessage decoder (server notifications, webhooks)
    pcm       PCM16 packing kernels
    windows   audio windows: per-track rings, coalesced reads (on_audio)
"""

cimport cython
cimport numpy as cnp

from operator import index as operator_index

from numpy import dtype as np_dtype, frombuffer as np_frombuffer

from fishjam_fast.enums import TRACK_TYPES, TrackType
from fishjam_fast.errors import AgentProtocolError

cnp.import_array()

NATIVE = True
# what this module exports: NAMES in fishjam_fast/_codec.py (tests/test_build.py checks)

include "buffer.pyx"
include "codec.pyx"
include "notifications.pyx"

include "pcm.pyx"

# audio windows: the per-track rings of on_audio (fishjam_fast/windows.py)
include "windows.pyx"
