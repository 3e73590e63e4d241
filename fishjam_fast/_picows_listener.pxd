# Declarations of fishjam_fast._picows_listener (src_ext/picows_listener.pyx).
#
# Cython pairs a .pxd with a module by its qualified name, as fishjam_fast/_ext.pxd for
# fishjam_fast._ext: without this file the listener's fields and cpdef methods were
# not declared, so every `self._field` was a dictionary lookup and `self._ws.send(...)`
# a Python method call (with the message type boxed each time). It includes the
# declarations beside the .pyx, found through setup.py's Cython include path.

include "picows_listener.pxd"
