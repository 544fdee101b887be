# distutils: extra_compile_args = -fno-math-errno
"""Optimizer update loops: one in-place call per flat buffer (a whole parameter arena).

Each loop applies torch.optim's single-tensor (foreach=False) update element by
element, with torch's order of operations and with every hyperparameter first
rounded to the buffer's dtype, so float64 trajectories follow torch's and equal
bit for bit the plain NumPy rules in the optimizer classes (``SGD.update``,
``Adam.update``, ...), which the twins in ``reference/_optim.py`` run after their
checks. Elements are independent, so splitting them across threads cannot change a
single bit.
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport pow
from libc.stdint cimport INT64_MAX

from nnlite._kernels._checks cimport (flag as _flag, hyperparameter as _hyper, integer as _integer,
                                      real_number as _real_number, separate)
from nnlite._kernels._dtype cimport data, data_as
from nnlite._kernels._fastmath cimport _sqrt
from nnlite._kernels._threads cimport threads_for

import numpy as np

from nnlite._kernels import checks as _checks_py

cnp.import_array()


__all__ = ["sgd_step", "adagrad_step", "rmsprop_step", "adam_step"]

cdef str STEP = _checks_py.STEP   # what a step count is, in its errors

# ------------------------------------------------------------- validation -----

cdef int _check_buffers(str kernel, list named, Py_ssize_t n_updated) except -1:
    """``named`` holds (name, array or None); the first ``n_updated`` are written in place."""
    cdef object first_name = None
    cdef cnp.ndarray first = None
    cdef cnp.ndarray a
    cdef Py_ssize_t i
    for i in range(len(named)):
        name, obj = named[i]
        if obj is None:
            if i == 0 or i == len(named) - 1:
                raise TypeError(f"{kernel}: {name} must be a NumPy array, got NoneType")
            continue
        if not isinstance(obj, cnp.ndarray):
            raise TypeError(f"{kernel}: {name} must be a NumPy array, got {type(obj).__name__}")
        a = <cnp.ndarray>obj
        if cnp.PyArray_TYPE(a) != cnp.NPY_FLOAT and cnp.PyArray_TYPE(a) != cnp.NPY_DOUBLE:
            raise TypeError(f"{kernel}: {name} must be float32 or float64, got {a.dtype}")
        if cnp.PyArray_ISBYTESWAPPED(a):
            _checks_py.native(kernel, name, a)
        if cnp.PyArray_NDIM(a) != 1:
            raise ValueError(f"{kernel}: {name} must be a flat 1-D buffer, got shape {obj.shape}")
        if first is None:
            first_name, first = name, a
        elif cnp.PyArray_TYPE(a) != cnp.PyArray_TYPE(first):
            raise TypeError(f"{kernel}: all buffers must share one dtype; "
                            f"{first_name} is {first.dtype} but {name} is {a.dtype}")
        elif cnp.PyArray_DIM(a, 0) != cnp.PyArray_DIM(first, 0):
            raise ValueError(f"{kernel}: {name} has {cnp.PyArray_DIM(a, 0)} elements but "
                             f"{first_name} has {cnp.PyArray_DIM(first, 0)}")
        if i < n_updated and not (cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISWRITEABLE(a)):
            _checks_py.in_place(kernel, name, obj)
    separate(kernel, named)   # no two buffers share memory
    return 0


# The scalar arguments are plain objects, each read into a C variable of its own (``lr`` into
# ``lr_``) by the checks of _checks.pxd: a float or an int in range at once, anything else through
# checks.py. A typed ``double lr`` would be converted by Cython before the first line, in Cython's
# words when it cannot be. They are checked in the order the twins check them.


# -------------------------------------------------------------------- SGD -----

# Each loop body is an inline per-element function. Flags that decide which buffers
# are touched are literal constants at each call site, so the compiler builds one
# branch-free, vectorisable loop per case; the other flags are arithmetic selects
# (maximize multiplies by -1, which is exact).

cdef inline void _sgd_element(floating* param, floating* grad, floating* buf, Py_ssize_t i,
                              floating sign, floating neg_lr, floating mom,
                              floating one_minus_dampening, floating wd, bint decay,
                              bint use_momentum, bint first_step, bint nesterov) noexcept nogil:
    cdef floating g = grad[i] * sign
    cdef floating b
    g = g + wd * param[i] if decay else g
    if use_momentum:
        b = g if first_step else buf[i] * mom + one_minus_dampening * g
        buf[i] = b
        g = g + mom * b if nesterov else b
    param[i] = param[i] + neg_lr * g


cdef void _sgd_loop(floating* param, object grad_, object buf_, double lr, double momentum,
                    double dampening, bint nesterov, double weight_decay, bint maximize,
                    bint first_step) noexcept:
    cdef floating* grad = data_as(param, grad_)
    cdef floating* buf = data_as(param, buf_)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>grad_)
    cdef floating sign = -1 if maximize else 1
    cdef floating neg_lr = <floating>(-lr)
    cdef floating mom = <floating>momentum
    cdef floating omd = <floating>(1 - dampening)
    cdef floating wd = <floating>weight_decay
    cdef bint decay = weight_decay != 0
    cdef Py_ssize_t i
    cdef int nt = threads_for(n)
    with nogil:
        if momentum == 0:
            for i in prange(n, num_threads=nt, schedule="static"):
                _sgd_element(param, grad, buf, i, sign, neg_lr, mom, omd, wd, decay, False, False,
                             False)
        elif first_step:
            for i in prange(n, num_threads=nt, schedule="static"):
                _sgd_element(param, grad, buf, i, sign, neg_lr, mom, omd, wd, decay, True, True,
                             nesterov)
        else:
            for i in prange(n, num_threads=nt, schedule="static"):
                _sgd_element(param, grad, buf, i, sign, neg_lr, mom, omd, wd, decay, True, False,
                             nesterov)


def sgd_step(param, grad, momentum_buffer, lr, momentum, dampening, nesterov, weight_decay, maximize,
             first_step):
    """SGD with optional momentum (heavy-ball or Nesterov) and L2 weight decay, in place.

    ``momentum_buffer`` is None when momentum == 0 (and ignored if given then).
    """
    kernel = "sgd_step"
    cdef double momentum_ = _hyper(kernel, momentum, "momentum")   # it decides which buffers are read
    cdef bint use_momentum = momentum_ != 0
    buf = momentum_buffer if use_momentum else None
    _check_buffers(kernel, [("param", param), ("momentum_buffer", buf), ("grad", grad)], 2)
    cdef double lr_ = _hyper(kernel, lr, "lr")
    cdef double weight_decay_ = _hyper(kernel, weight_decay, "weight_decay")
    cdef double dampening_ = _real_number(kernel, dampening, "dampening")
    cdef bint nesterov_ = _flag(kernel, nesterov, "nesterov")
    cdef bint maximize_ = _flag(kernel, maximize, "maximize")
    cdef bint first_step_ = _flag(kernel, first_step, "first_step")
    if nesterov_ and (momentum_ <= 0 or dampening_ != 0):
        raise ValueError(f"{kernel}: Nesterov momentum requires a momentum and zero dampening "
                         f"(got momentum={momentum_!r}, dampening={dampening_!r})")
    if use_momentum and buf is None:
        raise ValueError(f"{kernel}: momentum={momentum_!r} needs a momentum_buffer")
    g = np.ascontiguousarray(grad)
    # the one float/double choice of this step: _sgd_loop is written once, on `floating`
    if cnp.PyArray_TYPE(<cnp.ndarray>param) == cnp.NPY_FLOAT:
        _sgd_loop(<float*>data(param), g, buf, lr_, momentum_, dampening_, nesterov_, weight_decay_,
                  maximize_, first_step_)
    else:
        _sgd_loop(<double*>data(param), g, buf, lr_, momentum_, dampening_, nesterov_, weight_decay_,
                  maximize_, first_step_)


# ---------------------------------------------------------------- Adagrad -----

cdef void _adagrad_loop(floating* param, object grad_, object state_sum_, double clr,
                        double weight_decay, double eps, bint maximize) noexcept:
    cdef floating* grad = data_as(param, grad_)
    cdef floating* state_sum = data_as(param, state_sum_)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>grad_)
    cdef floating sign = -1 if maximize else 1
    cdef floating neg_clr = <floating>(-clr)
    cdef floating wd = <floating>weight_decay
    cdef floating eps_ = <floating>eps
    cdef bint decay = weight_decay != 0
    cdef floating g, s
    cdef Py_ssize_t i
    for i in prange(n, nogil=True, num_threads=threads_for(n), schedule="static"):
        g = grad[i] * sign
        g = g + wd * param[i] if decay else g
        s = state_sum[i] + g * g
        state_sum[i] = s
        param[i] = param[i] + neg_clr * g / (_sqrt(s) + eps_)


def adagrad_step(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize):
    """Adagrad: accumulate squared gradients, divide the step by their root, in place."""
    kernel = "adagrad_step"
    _check_buffers(kernel, [("param", param), ("state_sum", state_sum), ("grad", grad)], 2)
    if state_sum is None:
        raise ValueError(f"{kernel}: state_sum is required")
    cdef long long k = _integer(kernel, step, "step", 1, INT64_MAX, STEP)
    cdef double lr_ = _hyper(kernel, lr, "lr")
    cdef double lr_decay_ = _hyper(kernel, lr_decay, "lr_decay")
    cdef double weight_decay_ = _hyper(kernel, weight_decay, "weight_decay")
    cdef double eps_ = _hyper(kernel, eps, "eps")
    cdef bint maximize_ = _flag(kernel, maximize, "maximize")
    cdef double clr = lr_ / (1 + <double>(k - 1) * lr_decay_)
    g = np.ascontiguousarray(grad)
    # the one float/double choice of this step: _adagrad_loop is written once, on `floating`
    if cnp.PyArray_TYPE(<cnp.ndarray>param) == cnp.NPY_FLOAT:
        _adagrad_loop(<float*>data(param), g, state_sum, clr, weight_decay_, eps_, maximize_)
    else:
        _adagrad_loop(<double*>data(param), g, state_sum, clr, weight_decay_, eps_, maximize_)


# ---------------------------------------------------------------- RMSprop -----

cdef inline void _rmsprop_element(floating* param, floating* grad, floating* square_avg,
                                  floating* grad_avg, floating* buf, Py_ssize_t i, floating sign,
                                  floating neg_lr, floating alpha, floating one_minus_alpha,
                                  floating eps, floating wd, floating mom, floating one_minus_w,
                                  bint w_small, bint decay, bint centered,
                                  bint use_momentum) noexcept nogil:
    cdef floating g = grad[i] * sign
    cdef floating sq, ga0, ga, avg, b
    g = g + wd * param[i] if decay else g
    sq = square_avg[i] * alpha + one_minus_alpha * g * g
    square_avg[i] = sq
    if centered:
        # grad_avg.lerp_(grad, 1 - alpha), torch's scalar rule
        ga0 = grad_avg[i]
        ga = ga0 + one_minus_alpha * (g - ga0) if w_small else g - (g - ga0) * one_minus_w
        grad_avg[i] = ga
        avg = _sqrt(sq - ga * ga)
    else:
        avg = _sqrt(sq)
    avg = avg + eps
    if use_momentum:
        b = buf[i] * mom + g / avg
        buf[i] = b
        param[i] = param[i] + neg_lr * b
    else:
        param[i] = param[i] + neg_lr * g / avg


cdef void _rmsprop_loop(floating* param, object grad_, object square_avg_, object grad_avg_,
                        object buf_, double lr, double alpha, double eps, double weight_decay,
                        double momentum, bint centered, bint maximize) noexcept:
    cdef floating* grad = data_as(param, grad_)
    cdef floating* square_avg = data_as(param, square_avg_)
    cdef floating* grad_avg = data_as(param, grad_avg_)
    cdef floating* buf = data_as(param, buf_)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>grad_)
    cdef floating sign = -1 if maximize else 1
    cdef floating neg_lr = <floating>(-lr)
    cdef floating alpha_ = <floating>alpha
    cdef floating oma = <floating>(1 - alpha)
    cdef floating eps_ = <floating>eps
    cdef floating wd = <floating>weight_decay
    cdef floating mom = <floating>momentum
    # the lerp weight is 1 - alpha, rounded to the buffer's dtype; its complement likewise
    cdef floating omw = <floating>1 - oma
    cdef bint w_small = (oma if oma >= 0 else -oma) < <floating>0.5
    cdef bint decay = weight_decay != 0
    cdef Py_ssize_t i
    cdef int nt = threads_for(n)
    with nogil:
        if centered and momentum > 0:
            for i in prange(n, num_threads=nt, schedule="static"):
                _rmsprop_element(param, grad, square_avg, grad_avg, buf, i, sign, neg_lr, alpha_,
                                 oma, eps_, wd, mom, omw, w_small, decay, True, True)
        elif centered:
            for i in prange(n, num_threads=nt, schedule="static"):
                _rmsprop_element(param, grad, square_avg, grad_avg, buf, i, sign, neg_lr, alpha_,
                                 oma, eps_, wd, mom, omw, w_small, decay, True, False)
        elif momentum > 0:
            for i in prange(n, num_threads=nt, schedule="static"):
                _rmsprop_element(param, grad, square_avg, grad_avg, buf, i, sign, neg_lr, alpha_,
                                 oma, eps_, wd, mom, omw, w_small, decay, False, True)
        else:
            for i in prange(n, num_threads=nt, schedule="static"):
                _rmsprop_element(param, grad, square_avg, grad_avg, buf, i, sign, neg_lr, alpha_,
                                 oma, eps_, wd, mom, omw, w_small, decay, False, False)


def rmsprop_step(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, weight_decay,
                 momentum, centered, maximize):
    """RMSprop: divide by a running root-mean-square of gradients (optionally centred), in place."""
    kernel = "rmsprop_step"
    cdef double momentum_ = _hyper(kernel, momentum, "momentum")   # these two decide which
    cdef bint centered_ = _flag(kernel, centered, "centered")      # buffers are read
    cdef bint use_momentum = momentum_ > 0
    ga = grad_avg if centered_ else None
    buf = momentum_buffer if use_momentum else None
    _check_buffers(kernel, [("param", param), ("square_avg", square_avg), ("grad_avg", ga),
                            ("momentum_buffer", buf), ("grad", grad)], 4)
    if square_avg is None:
        raise ValueError(f"{kernel}: square_avg is required")
    cdef double lr_ = _hyper(kernel, lr, "lr")
    cdef double eps_ = _hyper(kernel, eps, "eps")
    cdef double weight_decay_ = _hyper(kernel, weight_decay, "weight_decay")
    cdef double alpha_ = _hyper(kernel, alpha, "alpha")
    cdef bint maximize_ = _flag(kernel, maximize, "maximize")
    if centered_ and ga is None:
        raise ValueError(f"{kernel}: centered=True needs a grad_avg buffer")
    if use_momentum and buf is None:
        raise ValueError(f"{kernel}: momentum={momentum_!r} needs a momentum_buffer")
    g = np.ascontiguousarray(grad)
    # the one float/double choice of this step: _rmsprop_loop is written once, on `floating`
    if cnp.PyArray_TYPE(<cnp.ndarray>param) == cnp.NPY_FLOAT:
        _rmsprop_loop(<float*>data(param), g, square_avg, ga, buf, lr_, alpha_, eps_, weight_decay_,
                      momentum_, centered_, maximize_)
    else:
        _rmsprop_loop(<double*>data(param), g, square_avg, ga, buf, lr_, alpha_, eps_, weight_decay_,
                      momentum_, centered_, maximize_)


# ------------------------------------------------------------ Adam, AdamW -----

cdef inline void _adam_element(floating* param, floating* grad, floating* exp_avg,
                               floating* exp_avg_sq, floating* max_exp_avg_sq, Py_ssize_t i,
                               floating sign, floating decay_factor, floating wd, bint coupled,
                               floating w, floating one_minus_w, bint w_small, floating beta2,
                               floating one_minus_beta2, floating bc2_sqrt, floating eps,
                               floating neg_step_size, bint amsgrad) noexcept nogil:
    cdef floating g = grad[i] * sign
    # AdamW's decoupled decay multiplies param first (decay_factor is 1 otherwise: exact)
    cdef floating p = param[i] * decay_factor
    cdef floating m0, m, v, vmax
    g = g + wd * p if coupled else g
    # exp_avg.lerp_(grad, 1 - beta1), torch's scalar rule
    m0 = exp_avg[i]
    m = m0 + w * (g - m0) if w_small else g - (g - m0) * one_minus_w
    exp_avg[i] = m
    v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g
    exp_avg_sq[i] = v
    if amsgrad:
        vmax = max_exp_avg_sq[i]
        vmax = v if (v > vmax) | (v != v) else vmax  # like torch.maximum, NaN wins
        max_exp_avg_sq[i] = vmax
        v = vmax
    param[i] = p + neg_step_size * m / (_sqrt(v) / bc2_sqrt + eps)


cdef void _adam_loop(floating* param, object grad_, object exp_avg_, object exp_avg_sq_,
                     object max_exp_avg_sq_, double lr, double beta1, double beta2, double eps,
                     double weight_decay, bint decoupled_weight_decay, bint amsgrad, bint maximize,
                     double step_size, double bias_correction2_sqrt) noexcept:
    cdef floating* grad = data_as(param, grad_)
    cdef floating* exp_avg = data_as(param, exp_avg_)
    cdef floating* exp_avg_sq = data_as(param, exp_avg_sq_)
    cdef floating* max_exp_avg_sq = data_as(param, max_exp_avg_sq_)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>grad_)
    cdef floating sign = -1 if maximize else 1
    cdef bint decoupled = weight_decay != 0 and decoupled_weight_decay
    cdef bint coupled = weight_decay != 0 and not decoupled_weight_decay
    cdef floating decay_factor = <floating>(1 - lr * weight_decay) if decoupled else 1
    cdef floating wd = <floating>weight_decay
    cdef floating w = <floating>(1 - beta1)
    cdef floating omw = <floating>1 - w
    cdef bint w_small = (w if w >= 0 else -w) < <floating>0.5
    cdef floating beta2_ = <floating>beta2
    cdef floating omb2 = <floating>(1 - beta2)
    cdef floating bc2 = <floating>bias_correction2_sqrt
    cdef floating eps_ = <floating>eps
    cdef floating nss = <floating>(-step_size)
    cdef Py_ssize_t i
    cdef int nt = threads_for(n)
    with nogil:
        if amsgrad:
            for i in prange(n, num_threads=nt, schedule="static"):
                _adam_element(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, i, sign,
                              decay_factor, wd, coupled, w, omw, w_small, beta2_, omb2, bc2, eps_,
                              nss, True)
        else:
            for i in prange(n, num_threads=nt, schedule="static"):
                _adam_element(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, i, sign,
                              decay_factor, wd, coupled, w, omw, w_small, beta2_, omb2, bc2, eps_,
                              nss, False)


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
              weight_decay, decoupled_weight_decay, amsgrad, maximize):
    """Adam (L2 decay added to the gradient) or AdamW (decoupled decay), in place.

    ``m = lerp(m, g, 1 - beta1)``; ``v = beta2 v + (1 - beta2) g²``;
    ``param -= lr / (1 - beta1**step) * m / (sqrt(v) / sqrt(1 - beta2**step) + eps)``.
    """
    kernel = "adam_step"
    cdef bint amsgrad_ = _flag(kernel, amsgrad, "amsgrad")   # it decides which buffers are read
    vmax = max_exp_avg_sq if amsgrad_ else None
    _check_buffers(kernel, [("param", param), ("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq),
                            ("max_exp_avg_sq", vmax), ("grad", grad)], 4)
    if exp_avg is None or exp_avg_sq is None:
        raise ValueError(f"{kernel}: exp_avg and exp_avg_sq are required")
    cdef long long k = _integer(kernel, step, "step", 1, INT64_MAX, STEP)
    cdef double lr_ = _hyper(kernel, lr, "lr")
    cdef double eps_ = _hyper(kernel, eps, "eps")
    cdef double beta1_ = _hyper(kernel, beta1, "beta1", 1.0)
    cdef double beta2_ = _hyper(kernel, beta2, "beta2", 1.0)
    cdef double weight_decay_ = _hyper(kernel, weight_decay, "weight_decay")
    cdef bint decoupled_ = _flag(kernel, decoupled_weight_decay, "decoupled_weight_decay")
    cdef bint maximize_ = _flag(kernel, maximize, "maximize")
    if amsgrad_ and vmax is None:
        raise ValueError(f"{kernel}: amsgrad=True needs a max_exp_avg_sq buffer")
    # Bias corrections once per call, with the same libm pow as Python's float ** int.
    cdef double bias_correction1 = 1 - pow(beta1_, <double>k)
    cdef double bias_correction2 = 1 - pow(beta2_, <double>k)
    cdef double step_size = lr_ / bias_correction1
    cdef double bias_correction2_sqrt = pow(bias_correction2, 0.5)
    g = np.ascontiguousarray(grad)
    # the one float/double choice of this step: _adam_loop is written once, on `floating`
    if cnp.PyArray_TYPE(<cnp.ndarray>param) == cnp.NPY_FLOAT:
        _adam_loop(<float*>data(param), g, exp_avg, exp_avg_sq, vmax, lr_, beta1_, beta2_, eps_,
                   weight_decay_, decoupled_, amsgrad_, maximize_, step_size,
                   bias_correction2_sqrt)
    else:
        _adam_loop(<double*>data(param), g, exp_avg, exp_avg_sq, vmax, lr_, beta1_, beta2_, eps_,
                   weight_decay_, decoupled_, amsgrad_, maximize_, step_size,
                   bias_correction2_sqrt)
