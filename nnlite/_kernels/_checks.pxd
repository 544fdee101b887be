# Argument checks shared by the kernel wrappers (inline: compiled into each module).
cimport numpy as cnp


cdef inline int float_type(str op, object arr, str name) except -1:
    """The NumPy type number of a float32/float64 array; else a TypeError naming op and argument."""
    if not cnp.PyArray_Check(arr):
        raise TypeError(f"{op}: {name} must be a numpy.ndarray, got {type(arr).__name__}")
    cdef int t = cnp.PyArray_TYPE(<cnp.ndarray>arr)
    if t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64:
        raise TypeError(f"{op}: {name} must be float32 or float64, got {arr.dtype}")
    return t


cdef inline cnp.ndarray c_contiguous(object arr):
    """``arr`` itself when C-contiguous, else a contiguous copy (loops read raw pointers)."""
    if cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>arr):
        return <cnp.ndarray>arr
    return cnp.PyArray_GETCONTIGUOUS(<cnp.ndarray>arr)
