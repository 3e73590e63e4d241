# Declarations of the message layer (included by _ext.pyx before messages.pyx).

from cpython.dict cimport PyDict_SetItemString
from cpython.object cimport PyObject, PyTypeObject


cdef extern from "Python.h":
    # the member-descriptor API (what __slots__ uses); see messages.pyx
    ctypedef struct PyMemberDef:
        const char *name
        int type
        Py_ssize_t offset
        int flags
        const char *doc
    object PyDescr_NewMember(PyTypeObject *type, PyMemberDef *member)
    void PyType_Modified(PyTypeObject *type)
    ctypedef struct FjTypeObject "PyTypeObject":
        PyObject *tp_dict

cdef extern from "structmember.h":
    int T_OBJECT_EX   # an object field; AttributeError if NULL (never, see messages.pyx)
