# Declarations of fishjam_fast._ext, the one native module (src_ext/_ext.pyx).
#
# Cython pairs a .pxd with a module by its qualified name: fishjam_fast._ext reads
# fishjam_fast/_ext.pxd (this file) before the code, as asyncpg's pgproto.pyx reads
# pgproto.pxd and uvloop's loop.pyx reads loop.pxd. Like theirs, it includes the
# declarations of each part from the .pxd beside that part's .pyx in src_ext/ (found
# through setup.py's Cython include path): C types and constants, the cdef classes
# with their fields, and prototypes of the cdef functions one part calls in another.
# Parts are listed bottom up.

cdef extern from "ext_debug.h":
    # 1 in a debug build (FISHJAM_FAST_DEBUG=1 at build time), else 0: the C compiler
    # drops every `if FJ_DEBUG:` block of a release build (asyncpg's PG_DEBUG)
    const bint FJ_DEBUG


include "buffer.pxd"     # read cursor (rcur_*), exact-size writers (wbuf_*)
# the decoded message classes and their C fields: one source, compiled from
# fishjam_fast/_messages.py (its augmenting .pxd); the decoder makes them with __new__
from fishjam_fast._messages cimport (
    Authenticated, IncomingTrackData, IncomingTrackImage, Track, UnknownResponse,
)
include "codec.pxd"      # AgentRequest keys; the track_data framing loop (frame_*)
include "notifications.pxd"  # the ServerMessage decoder's field kinds (NK_*)
include "pcm.pxd"        # PCM16 kernels (pcm_*)
include "windows.pxd"      # audio windows: per-track rings (_WindowAssembler)
