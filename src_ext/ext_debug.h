/* FJ_DEBUG: debug-only invariants of src_ext (see _ext.pxd). setup.py defines it as 1
   when FISHJAM_FAST_DEBUG=1; otherwise it is 0 and `if FJ_DEBUG:` code compiles away. */
#ifndef FISHJAM_FAST_EXT_DEBUG_H
#define FISHJAM_FAST_EXT_DEBUG_H

#ifndef FJ_DEBUG
#define FJ_DEBUG 0
#endif

#endif /* FISHJAM_FAST_EXT_DEBUG_H */
