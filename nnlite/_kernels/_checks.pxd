# Argument checks shared by the compiled kernel wrappers (inline: compiled into each module).
#
# The rules and the wording of every error live in ``checks.py``, which the NumPy
# twins call. These are the same checks on the fast path; when one fails it calls
# the matching ``checks`` function, so a compiled kernel and its twin raise the
# same exception with the same message.
cimport numpy as cnp
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from libc.math cimport INFINITY, isfinite
from libc.stdint cimport INT64_MAX, INT64_MIN


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


cdef extern from *:
    """
    /* The slow paths of the scalar checks below: checks.<check>(args...) with the result as a
       C value, or the error it raised (-1 returned). Written in C so that they stay out of line
       (a Cython function called once is inlined into its caller, which then is not inlined). */
    #if defined(__GNUC__) || defined(__clang__)
    #define NNL_SLOW static __attribute__((noinline, cold, unused))
    #else
    #define NNL_SLOW static
    #endif
    #include <stdarg.h>

    static PyObject *nnl_checks_module = NULL;

    NNL_SLOW PyObject *nnl_check(const char *check, const char *format, ...) {
        PyObject *fn, *args, *result;
        va_list va;
        if (nnl_checks_module == NULL) {
            nnl_checks_module = PyImport_ImportModule("nnlite._kernels.checks");
            if (nnl_checks_module == NULL) return NULL;
        }
        fn = PyObject_GetAttrString(nnl_checks_module, check);
        if (fn == NULL) return NULL;
        va_start(va, format);
        args = Py_VaBuildValue(format, va);
        va_end(va);
        if (args == NULL) { Py_DECREF(fn); return NULL; }
        result = PyObject_CallObject(fn, args);
        Py_DECREF(fn);
        Py_DECREF(args);
        return result;
    }

    NNL_SLOW double nnl_as_double(PyObject *result) {
        double v;
        if (result == NULL) return -1;
        v = PyFloat_AsDouble(result);
        Py_DECREF(result);
        return v;
    }

    NNL_SLOW double nnl_real_number_slow(PyObject *op, PyObject *value, PyObject *name) {
        return nnl_as_double(nnl_check("real_number", "(OOO)", op, name, value));
    }

    NNL_SLOW double nnl_real_in_slow(PyObject *op, PyObject *value, PyObject *name, double low, double high,
                                     int low_open, int high_open) {
        return nnl_as_double(nnl_check("real_in", "(OOOddii)", op, name, value, low, high, low_open,
                                       high_open));
    }

    NNL_SLOW double nnl_float32_slow(PyObject *op, PyObject *value, PyObject *name, int positive) {
        return nnl_as_double(nnl_check("float32_number", "(OOOi)", op, name, value, positive));
    }

    NNL_SLOW double nnl_hyperparameter_slow(PyObject *op, PyObject *value, PyObject *name) {
        return nnl_as_double(nnl_check("hyperparameter", "(OOO)", op, name, value));
    }

    NNL_SLOW long long nnl_integer_slow(PyObject *op, PyObject *value, PyObject *name, long long low,
                                        long long high, PyObject *what) {
        long long v;
        PyObject *result = nnl_check("integer", "(OOOLLO)", op, name, value, low, high, what);
        if (result == NULL) return -1;
        v = PyLong_AsLongLong(result);
        Py_DECREF(result);
        return v;
    }

    NNL_SLOW int nnl_flag_slow(PyObject *op, PyObject *value, PyObject *name) {
        int v;
        PyObject *result = nnl_check("flag", "(OOO)", op, name, value);
        if (result == NULL) return -1;
        v = PyObject_IsTrue(result);
        Py_DECREF(result);
        return v;
    }
    """
    double nnl_real_number_slow(object op, object value, object name) except? -1
    double nnl_real_in_slow(object op, object value, object name, double low, double high, bint low_open,
                            bint high_open) except? -1
    double nnl_float32_slow(object op, object value, object name, bint positive) except? -1
    double nnl_hyperparameter_slow(object op, object value, object name) except? -1
    long long nnl_integer_slow(object op, object value, object name, long long low, long long high,
                               object what) except? -1
    bint nnl_flag_slow(object op, object value, object name) except -1


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


# ---- scalar arguments: checks.real_number, real_in, hyperparameter, integer and flag ----
# A scalar parameter of a kernel is a plain ``object``, never a typed C parameter: Cython
# would convert that before the wrapper's first line, and word its own error ("must be real
# number, not str", "an integer is required"), or take a float for an int. Each check below
# takes the common spelling (a Python float or int, True or False) in a few instructions and
# hands anything else to its ``checks`` function (``nnl_*_slow`` above), which raises the error both
# backends give or returns the value of an unusual but valid spelling (a NumPy scalar, a
# Fraction). The slow paths are functions of their own, so that the compiler inlines the
# fast ones: a check of a float costs a type test and a comparison.

cdef inline bint _as_double(object value, double* out) noexcept:
    """A Python float (np.float64 too) or an int that fits in a long long, as a double;
    False for anything else (without an error)."""
    cdef long long i
    cdef int overflow = 0
    if isinstance(value, float):
        out[0] = PyFloat_AS_DOUBLE(value)
        return True
    if type(value) is int:
        i = PyLong_AsLongLongAndOverflow(value, &overflow)
        if overflow == 0:
            out[0] = <double>i
            return True
    return False


cdef inline double real_number(str op, object value, str name) except? -1:
    """checks.real_number: a Python float or int directly, anything else through it."""
    cdef double v
    if _as_double(value, &v):
        return v
    return nnl_real_number_slow(op, value, name)


cdef inline double real_in(str op, object value, str name, double low=-INFINITY, double high=INFINITY,
                           bint low_open=False, bint high_open=False) except? -1:
    """checks.real_in: a real number between ``low`` and ``high`` (NaN never is)."""
    cdef double v
    if _as_double(value, &v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high):
        return v
    return nnl_real_in_slow(op, value, name, low, high, low_open, high_open)


cdef inline float float32_number(str op, object value, str name, bint positive=False) except? -1:
    """checks.float32_number: a real number finite as a float32 (and > 0 there, if ``positive``)."""
    cdef float f
    if isinstance(value, float):
        f = <float>PyFloat_AS_DOUBLE(value)
        if isfinite(f) and (f > 0 or not positive):
            return f
    return <float>nnl_float32_slow(op, value, name, positive)


cdef inline double hyperparameter(str op, object value, str name, double below=INFINITY) except? -1:
    """checks.hyperparameter: a real number >= 0 and below ``below`` (its HYPERPARAMETERS entry)."""
    cdef double v
    if _as_double(value, &v) and v >= 0 and v < below:
        return v
    return nnl_hyperparameter_slow(op, value, name)


cdef inline long long integer(str op, object value, str name, long long low=INT64_MIN,
                              long long high=INT64_MAX, str what=None) except? -1:
    """checks.integer: an int (not a bool, not a float) in [low, high]."""
    cdef long long v
    cdef int overflow = 0
    if type(value) is int:
        v = PyLong_AsLongLongAndOverflow(value, &overflow)
        if overflow == 0 and low <= v <= high:
            return v
    return nnl_integer_slow(op, value, name, low, high, what)


cdef inline bint flag(str op, object value, str name) except -1:
    """checks.flag: True or False (a NumPy bool, 0 or 1 through checks.flag)."""
    if value is True:
        return True
    if value is False:
        return False
    return nnl_flag_slow(op, value, name)


cdef extern from *:
    """
    NNL_SLOW double nnl_quantity_slow(PyObject *op, PyObject *value, PyObject *name, double low,
                                      double high) {
        return nnl_as_double(nnl_check("quantity", "(OOOdd)", op, name, value, low, high));
    }
    """
    double nnl_quantity_slow(object op, object value, object name, double low, double high) except? -1


cdef inline double quantity(str op, object value, str name, double low=0, double high=INFINITY) except? -1:
    """checks.quantity: a real number in [low, high] that is not a bool (an eps, a momentum)."""
    cdef double v
    if _as_double(value, &v) and v >= low and v <= high:
        return v
    return nnl_quantity_slow(op, value, name, low, high)


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
