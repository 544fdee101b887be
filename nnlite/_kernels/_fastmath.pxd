# The scalar math of the elementwise, softmax, recurrent and optimizer loops, once for
# float and double (inline: compiled into each module that cimports it).
#
# float32 exp, tanh, sigmoid, erf and log1p (on [0, 1]) come from the straight-line C of _fastmath.h, so
# the loops that call them vectorise (a call into libm cannot); float64 uses libm.
# Each function is a choice the compiler makes per fused copy, not a run-time branch.
from cython cimport floating
from libc.math cimport erf, exp, log1p, sqrt, sqrtf, tanh


cdef extern from "_fastmath.h":
    float nnl_expf(float x) noexcept nogil
    float nnl_erff(float x) noexcept nogil
    float nnl_sigmoidf(float x) noexcept nogil
    float nnl_tanhf(float x) noexcept nogil
    float nnl_log1pf_unit(float e) noexcept nogil


cdef inline floating _exp(floating v) noexcept nogil:
    """exp(v); the float32 version expects v <= 0 (see nnl_expf)."""
    if floating is float:
        return nnl_expf(v)
    else:
        return exp(v)


cdef inline floating _tanh(floating v) noexcept nogil:
    if floating is float:
        return nnl_tanhf(v)
    else:
        return tanh(v)


cdef inline floating _erf(floating v) noexcept nogil:
    if floating is float:
        return nnl_erff(v)
    else:
        return erf(v)


cdef inline floating _sigmoid(floating v) noexcept nogil:
    """1 / (1 + exp(-v)), taking exp of -|v| only: exp(+large) would overflow to inf."""
    cdef floating e
    if floating is float:
        return nnl_sigmoidf(v)
    elif v >= 0:
        e = exp(-v)
        return 1 / (1 + e)
    else:
        e = exp(v)
        return e / (1 + e)


cdef inline floating _log1p_unit(floating v) noexcept nogil:
    """log1p(v) for 0 <= v <= 1 (the float32 version expects that range)."""
    if floating is float:
        return nnl_log1pf_unit(v)
    else:
        return log1p(v)


cdef inline floating _sqrt(floating v) noexcept nogil:
    if floating is float:
        return sqrtf(v)
    else:
        return sqrt(v)
