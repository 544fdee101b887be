# Argument checks shared by the compiled kernel wrappers (inline: compiled into each module).
#
# The rules and the wording of every error live in ``checks.py``, which the NumPy
# twins call. These are the same checks on the fast path; when one fails it calls
# the matching ``checks`` function, so a compiled kernel and its twin raise the
# same exception with the same message.
cimport numpy as cnp


cdef extern from *:
    """
    /* a * b into *out; 0 when the exact product does not fit in a Py_ssize_t. */
    static inline int nnl_mul_fits(Py_ssize_t a, Py_ssize_t b, Py_ssize_t *out) {
    #if defined(__GNUC__) || defined(__clang__)
        return !__builtin_mul_overflow(a, b, out);
    #else
        if (a != 0 && (b > PY_SSIZE_T_MAX / a || b < PY_SSIZE_T_MIN / a)) return 0;
        *out = a * b;
        return 1;
    #endif
    }
    """
    bint nnl_mul_fits(Py_ssize_t a, Py_ssize_t b, Py_ssize_t* out) noexcept nogil


cdef inline int float_type(str op, object arr, str name) except -1:
    """The NumPy type number of a float32/float64 array in the machine's byte order.

    A byte-swapped array has the same type number as a native one, but its raw
    bytes read as garbage in a C loop, so it is refused here (``checks.native``).
    """
    if not cnp.PyArray_Check(arr):
        raise TypeError(f"{op}: {name} must be a numpy.ndarray, got {type(arr).__name__}")
    cdef int t = cnp.PyArray_TYPE(<cnp.ndarray>arr)
    if t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64:
        raise TypeError(f"{op}: {name} must be float32 or float64, got {arr.dtype}")
    if cnp.PyArray_ISBYTESWAPPED(<cnp.ndarray>arr):
        from nnlite._kernels.checks import native
        native(op, name, arr)
    return t


cdef inline bint is_native_float(object arr):
    """True for a float32/float64 ndarray in the machine's byte order (no exception)."""
    if not cnp.PyArray_Check(arr):
        return False
    cdef int t = cnp.PyArray_TYPE(<cnp.ndarray>arr)
    return (t == cnp.NPY_FLOAT32 or t == cnp.NPY_FLOAT64) and not cnp.PyArray_ISBYTESWAPPED(<cnp.ndarray>arr)


cdef inline int index_array(str op, object arr, str name) except -1:
    """Refuse anything but an int64 ndarray in the machine's byte order."""
    if (not cnp.PyArray_Check(arr) or cnp.PyArray_TYPE(<cnp.ndarray>arr) != cnp.NPY_INT64
            or cnp.PyArray_ISBYTESWAPPED(<cnp.ndarray>arr)):
        from nnlite._kernels.checks import index_array as _index_array
        _index_array(op, name, arr)
    return 0


cdef inline double real_number(str op, object value, str name) except? -1:
    """checks.real_number: a Python float (or np.float64) directly, anything else through it."""
    if isinstance(value, float):
        return value
    from nnlite._kernels.checks import real_number as _real_number
    return _real_number(op, name, value)


cdef inline bint product_fits(Py_ssize_t* factors, int n):
    """True when the product of ``n`` non-negative ``factors`` fits in a Py_ssize_t."""
    cdef Py_ssize_t total = 1
    cdef int i
    for i in range(n):
        if not nnl_mul_fits(total, factors[i], &total):
            return False
    return True


cdef inline cnp.ndarray c_contiguous(object arr):
    """``arr`` itself when C-contiguous, else a contiguous copy (loops read raw pointers)."""
    if cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>arr):
        return <cnp.ndarray>arr
    return cnp.PyArray_GETCONTIGUOUS(<cnp.ndarray>arr)


# ---- the fast paths of checks.same_float, checks.int_pair and checks.shape4 -----
# Each returns False (or -1) where the well-formed common case does not apply; the
# caller then calls the Python check, which raises the error or normalises an unusual
# but valid spelling (a list for a tuple, a NumPy integer for an int).

cdef enum:
    INT_MAX_SIZE = 2147483647   # sizes above 2**31 - 1 take the exact Python path


cdef inline int same_float_type(str op, dict named) except -1:
    """The one float type number shared by all arrays in ``named`` (name -> array)."""
    cdef int first = -2
    cdef int t
    for a in named.values():
        t = -1
        if is_native_float(a):
            t = cnp.PyArray_TYPE(<cnp.ndarray>a)
        if t < 0 or (first != -2 and t != first):
            from nnlite._kernels.checks import same_float
            same_float(op, **named)
            raise TypeError(f"{op}: expected float32 or float64 arrays of one dtype")
        first = t
    return first


cdef inline bint int_pair(object value, Py_ssize_t minimum, Py_ssize_t* first,
                          Py_ssize_t* second):
    """A tuple of two ints in [minimum, 2**31), stored in first and second."""
    if type(value) is not tuple or len(<tuple>value) != 2:
        return False
    a = (<tuple>value)[0]
    b = (<tuple>value)[1]
    if (type(a) is not int or type(b) is not int or a < minimum or b < minimum
            or a > INT_MAX_SIZE or b > INT_MAX_SIZE):
        return False
    first[0] = a
    second[0] = b
    return True


cdef inline bint shape4_ok(tuple shape):
    """Four ints in [0, 2**31): sums and two-term products of them cannot overflow."""
    if len(shape) != 4:
        return False
    for v in shape:
        if type(v) is not int or v < 0 or v > INT_MAX_SIZE:
            return False
    return True


cdef inline bint _bounds_meet(cnp.ndarray a, cnp.ndarray b):
    """Whether the byte ranges spanned by a and b intersect (a cheap, conservative test)."""
    cdef char* lo[2]
    cdef char* hi[2]
    cdef cnp.ndarray arr
    cdef Py_ssize_t extent
    cdef int k, d
    for k in range(2):
        arr = a if k == 0 else b
        lo[k] = hi[k] = <char*>cnp.PyArray_DATA(arr)
        if cnp.PyArray_SIZE(arr) == 0:
            return False
        for d in range(cnp.PyArray_NDIM(arr)):
            extent = (cnp.PyArray_DIM(arr, d) - 1) * cnp.PyArray_STRIDE(arr, d)
            if extent < 0:
                lo[k] += extent
            else:
                hi[k] += extent
        hi[k] += cnp.PyArray_ITEMSIZE(arr)
    return lo[0] < hi[1] and lo[1] < hi[0]


cdef inline int separate(str op, list named, Py_ssize_t n_written=-1) except -1:
    """checks.separate's fast path for ndarrays: the first ``n_written`` arrays of
    ``named`` ((name, array or None) pairs; all of them by default) share no memory
    with any other. Arrays whose byte ranges do not meet are separate; where they
    meet, checks.separate decides exactly (np.shares_memory) and raises the error."""
    cdef Py_ssize_t i, j, n = len(named)
    if n_written < 0:
        n_written = n
    for i in range(n_written):
        a = (<tuple>named[i])[1]
        if a is None:
            continue
        for j in range(i + 1, n):
            b = (<tuple>named[j])[1]
            if b is not None and _bounds_meet(<cnp.ndarray>a, <cnp.ndarray>b):
                from nnlite._kernels.checks import separate as _separate
                _separate(op, named, written={(<tuple>named[k])[0] for k in range(n_written)})
    return 0


cdef inline int same_shape_floats(str op, object a, str name_a, object b, str name_b) except -1:
    """Two float arrays of one dtype and one shape (an elementwise kernel's operands);
    returns the dtype number."""
    cdef int t = float_type(op, a, name_a)
    if float_type(op, b, name_b) != t:
        raise TypeError(f"{op}: all operands must share one dtype, got {a.dtype} ({name_a}) "
                        f"and {b.dtype} ({name_b})")
    if a.shape != b.shape:
        raise ValueError(f"{op}: {name_b} must have the shape of {name_a} {a.shape}, got {b.shape}")
    return t
