# The element type of a kernel, chosen at run time in one way (inline: compiled into each module).
#
# Every loop is written once, on Cython's fused type ``floating`` (float or double), and
# Cython compiles one copy per type. A ``def`` wrapper, after its checks, makes the one
# run-time choice between the copies, in this shape:
#
#     if t == cnp.NPY_FLOAT:
#         _run(<float*>data(y), xc, ...)
#     else:
#         _run(<double*>data(y), xc, ...)
#
# The first pointer, cast, picks the copy; inside it the other arrays' pointers are
# taken as the same type with ``data_as(y, xc)``. Where many kernels share one loop
# signature the choice is made once for all of them, in the same shape: the recurrent
# steps cast an array of pointers (_rnn.pyx, _step), the activations and row softmaxes
# hand both copies of their loop to one helper (_map/_zip, _rows_map/_rows_zip). Three
# wrappers still cast every pointer at the call (conv2d_backward_bias, cross_entropy_forward
# and cross_entropy_backward): written as runners, they moved unchanged loops of their module to
# code addresses where those measured 5-8% slower (the same instructions, placed
# differently). A loop never branches on the dtype: ``if floating is float`` inside a fused
# function is decided by the compiler, once per copy.
cimport numpy as cnp
from cython cimport floating


cdef inline void* data(object arr):
    """The data pointer of an ndarray, NULL for None (an optional argument left out)."""
    return NULL if arr is None else cnp.PyArray_DATA(<cnp.ndarray>arr)


cdef inline cnp.ndarray empty_like(cnp.ndarray x, int t):
    """A new C-ordered array of x's shape and type number ``t``."""
    return cnp.PyArray_EMPTY(cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x), t, 0)


cdef inline floating* data_as(floating* like, object arr):
    """``arr``'s data pointer as the element type of ``like`` (NULL for None)."""
    return <floating*>data(arr)


cdef inline int type_of(floating* p) noexcept nogil:
    """The NumPy type number of the element type a fused copy was compiled for."""
    if floating is float:
        return cnp.NPY_FLOAT
    else:
        return cnp.NPY_DOUBLE
