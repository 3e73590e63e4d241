# cython: language_level=3
"""fishjam_fast._ext: the one native module.

Like uvloop's loop.pyx and asyncpg's pgproto.pyx, it is a single extension unit that
includes small files, each with one job and its declarations in a .pxd beside it:

    buffer   read cursor and write buffer (every read bounds-checked)
    codec    AgentRequest encoder, AgentResponse decoder
    pcm      PCM16 packing kernels
"""

include "pcm.pyx"
