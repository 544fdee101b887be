# The wrappers of the one-pass elementwise loops (inline: compiled into each module that
# cimports it, _elementwise.pyx and _activations.pyx).
#
# A loop is written once on the fused type ``floating``; its wrapper hands both copies
# (``_relu_fwd[float]``, ``_relu_fwd[double]``) to map or zip, which check the
# arguments, allocate the result and run the copy of the arguments' dtype.
cimport numpy as cnp

from nnlite._kernels._checks cimport c_contiguous, float_type, same_shape_floats
from nnlite._kernels._dtype cimport empty_like

ctypedef void (*map_f)(const float*, float*, Py_ssize_t) noexcept nogil
ctypedef void (*map_d)(const double*, double*, Py_ssize_t) noexcept nogil
ctypedef void (*zip_f)(const float*, const float*, float*, Py_ssize_t) noexcept nogil
ctypedef void (*zip_d)(const double*, const double*, double*, Py_ssize_t) noexcept nogil


cdef inline cnp.ndarray map(str op, object x, map_f loop_f, map_d loop_d):
    """y = loop(x), elementwise, on the float32 or float64 loop as x's dtype says."""
    cdef int t = float_type(op, x, "x")
    cdef cnp.ndarray xc = c_contiguous(x)
    cdef cnp.ndarray y = empty_like(xc, t)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xc)
    cdef void* px = cnp.PyArray_DATA(xc)
    cdef void* py = cnp.PyArray_DATA(y)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            loop_f(<const float*>px, <float*>py, n)
        else:
            loop_d(<const double*>px, <double*>py, n)
    return y


cdef inline cnp.ndarray zip(str op, object a, str name_a, object b, str name_b, zip_f loop_f,
                            zip_d loop_d):
    """out = loop(a, b), elementwise, for two arrays of one dtype and one shape."""
    cdef int t = same_shape_floats(op, a, name_a, b, name_b)
    cdef cnp.ndarray ac = c_contiguous(a), bc = c_contiguous(b)
    cdef cnp.ndarray out = empty_like(ac, t)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(ac)
    cdef void* pa = cnp.PyArray_DATA(ac)
    cdef void* pb = cnp.PyArray_DATA(bc)
    cdef void* po = cnp.PyArray_DATA(out)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            loop_f(<const float*>pa, <const float*>pb, <float*>po, n)
        else:
            loop_d(<const double*>pa, <const double*>pb, <double*>po, n)
    return out
