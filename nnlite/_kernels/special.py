r"""Special functions for the readable layer and the twins: erf, erfc, the normal CDF and its inverse.

A helper, not a kernel (no row in ``table.py``): the twins in
``reference/_elementwise.py`` (GELU, and ``erf_forward``, the twin of the
kernel behind ``nl.erf``) and ``nnlite.nn.init`` (``trunc_normal_``) import
it. NumPy has no ``erf``, and nnlite does not need SciPy at run time, so the
few special functions it uses live here, at the lowest layer. One of them
mirrors compiled code: :func:`erf_float32` is the twin of ``nnl_erff``, the
kernels' float32 erf.

* :func:`erf` and :func:`erfc` evaluate the C library's ``erf``/``erfc`` (Python's
  :func:`math.erf`, accurate to about an ulp) on every element in
  float64, then round to the input's dtype when it is float32 (any other
  input gives float64). That is one Python call per element
  (0.1-0.3 µs); the compiled kernels compute erf in C and never come here.
  For float64 they call the same libm ``erf``, so :func:`erf` is their twin
  bit for bit.
* :func:`erf_float32` is the twin of the kernels' float32 erf (``nnl_erff`` in
  ``_fastmath.h``, behind ``K.erf_forward`` and GELU): the same polynomial
  steps, in float32 NumPy and in the same order, so equal to it bit for bit;
  within 1.06 ulp of erf over every float32.
* :func:`ndtr` is the standard normal CDF :math:`\Phi(x) = \tfrac12 \operatorname{erfc}(-x/\sqrt2)`,
  accurate in relative terms far into the lower tail.
* :func:`ndtri` is :math:`\Phi^{-1}(p)`: Acklam's rational approximation
  (relative error below 1.2e-9) refined by one Halley step on :func:`ndtr`,
  which brings it to float64 rounding: typically 1e-16 relative, up to ~1e-14
  just around :math:`p = 1/2`, where the rounding of ``p`` itself dominates.
"""
import math

import numpy as np

__all__ = ["erf", "erf_float32", "erfc", "ndtr", "ndtri"]


def _elementwise(scalar_function, x):
    """``scalar_function`` on every element of ``x`` in float64, returned in ``x``'s float dtype."""
    x = np.asarray(x)
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    values = np.fromiter(map(scalar_function, x.astype(np.float64, copy=False).ravel().tolist()),
                         dtype=np.float64, count=x.size)
    return values.reshape(x.shape).astype(dtype, copy=False)


def erf(x):
    r""":math:`\operatorname{erf}(x) = \frac{2}{\sqrt\pi}\int_0^x e^{-t^2}\,dt`, elementwise.

    >>> erf([0.0, 1.0]).tolist()
    [0.0, 0.8427007929497149]
    """
    return _elementwise(math.erf, x)


# nnl_erff's coefficients (_fastmath.h): S(s) = erf(z)/z - 1 with s = z^2 below _ERF_SPLIT,
# highest power first; R(u) = log erfc(_ERF_SPLIT + u) from there to _ERF_TOP, lowest first.
_ERF_SMALL = (-6.5226818e-4, 5.0844280e-3, -2.6821297e-2, 1.1283151e-1, -3.7612608e-1, 1.2837917e-1)
_ERF_LARGE = (-1.3841528e+0, -2.3274617e+0, -8.1749332e-1, -4.9737368e-2, 1.1853923e-2, -2.0961408e-3,
              1.8471517e-4, 4.2544402e-6)
_ERF_SPLIT, _ERF_TOP = 0.8125, 3.9375


def erf_float32(x):
    r"""erf of a float32 array by the float32 steps of the compiled kernels, bit for bit.

    Two pieces (``nnl_erff`` in ``_fastmath.h`` explains the fits and the order
    of the operations), both computed for every element and one picked:

    .. math::
        \operatorname{erf}(x) = \operatorname{sign}(x)\begin{cases}
            z + z\,S(z^2) & z = |x| < 0.8125 \\
            1 - \exp R(\min(z, 3.9375) - 0.8125) & \text{otherwise}
        \end{cases}

    Within 1.06 ulp of erf (in float64) over every float32; NaN stays NaN.

    >>> erf_float32(np.array([0.0, 0.5, 4.0], np.float32)).tolist()
    [0.0, 0.5204998850822449, 1.0]
    """
    f = np.float32
    x = np.asarray(x, dtype=f)
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        z = np.abs(x)
        s = z * z
        p = np.full_like(s, f(_ERF_SMALL[0]))
        for c in _ERF_SMALL[1:]:      # Horner's rule, one multiply and one add per coefficient
            p = p * s + f(c)
        small = z + z * p
        u = np.where(z < f(_ERF_TOP), z, f(_ERF_TOP)) - f(_ERF_SPLIT)
        u2 = u * u
        u4 = u2 * u2
        c = [f(v) for v in _ERF_LARGE]
        t = (c[2] + c[3] * u) + (c[4] + c[5] * u) * u2 + (c[6] + c[7] * u) * u4
        r = c[0] + (c[1] + t * u) * u
        large = f(1) - _exp_float32_normal(r)
        magnitude = np.where(z < f(_ERF_SPLIT), small, large)
        return np.where(np.isnan(x), x, np.copysign(magnitude, x))


def _exp_float32_normal(x):
    """exp of float32 ``x`` in (-87, 0] by the steps of the kernels' ``nnl_expf_normal``, bit for bit.

    x = n ln 2 + r with |r| <= ln(2)/2; exp(r) = 1 + r + r^2 P(r) with Cephes'
    degree-5 P, by Estrin's scheme; times 2^n made from exponent bits.
    """
    f = np.float32
    n = (x * f(1.44269504088896341) + f(12582912.0)) - f(12582912.0)   # 1.5 * 2^23: rounds to an integer
    r = x - n * f(0.693359375)          # ln 2 in two parts: this product is exact
    r = r - n * f(-2.12194440e-4)
    r2 = r * r
    q0 = f(5.0000001201e-1) + f(1.6666665459e-1) * r
    q1 = f(4.1665795894e-2) + f(8.3334519073e-3) * r
    q2 = f(1.3981999507e-3) + f(1.9875691500e-4) * r
    p = q0 + (q1 + q2 * r2) * r2
    p = p * r2 + r + f(1)
    return p * ((n.astype(np.int32) + 127).astype(np.uint32) << np.uint32(23)).view(f)


def erfc(x):
    r""":math:`1 - \operatorname{erf}(x)`, elementwise, without the cancellation for large ``x``."""
    return _elementwise(math.erfc, x)


def ndtr(x):
    r"""The standard normal CDF :math:`\Phi(x)`, elementwise, in float64.

    >>> float(ndtr(0.0)), float(ndtr(-30.0)) > 0   # 1 + erf(-30 / sqrt 2) would round to 0
    (0.5, True)
    """
    return 0.5 * erfc(-np.asarray(x, dtype=np.float64) / math.sqrt(2.0))


# Acklam's coefficients: x = Phi^-1(p) as a rational function of q = p - 1/2 in the
# centre, and of r = sqrt(-2 log p) in the two tails (P. J. Acklam, "An algorithm
# for computing the inverse normal cumulative distribution function", 2003).
_CENTRE_NUMERATOR = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                     1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_CENTRE_DENOMINATOR = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                       6.680131188771972e+01, -1.328068155288572e+01, 1.0)
_TAIL_NUMERATOR = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                   -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_TAIL_DENOMINATOR = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                     3.754408661907416e+00, 1.0)
_TAIL_BELOW = 0.02425    # p below this (or above 1 - this) uses the tail formula


def _polynomial(coefficients, x):
    """Horner's rule, highest power first."""
    result = np.zeros_like(x)
    for c in coefficients:
        result = result * x + c
    return result


def ndtri(p):
    r"""The inverse of the standard normal CDF, :math:`\Phi^{-1}(p)`, elementwise, in float64.

    ``ndtri(0)`` is ``-inf``, ``ndtri(1)`` is ``inf``, and ``p`` outside [0, 1] gives NaN.

    >>> round(float(ndtri(0.975)), 10)
    1.9599639845
    """
    p = np.asarray(p, dtype=np.float64)
    flat = p.ravel()
    out = np.empty(flat.shape)
    # Blocks small enough that the dozen temporaries of a block stay in cache.
    for start in range(0, flat.size, _BLOCK):
        out[start:start + _BLOCK] = _ndtri_block(flat[start:start + _BLOCK])
    return out.reshape(p.shape)


_BLOCK = 1 << 14


def _ndtri_block(p):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Acklam's starting point: the centre formula, or the tail formula on the
        # nearer tail (odd symmetry: Phi^-1(1 - p) = -Phi^-1(p)).
        q = p - 0.5
        x = q * _polynomial(_CENTRE_NUMERATOR, q * q) / _polynomial(_CENTRE_DENOMINATOR, q * q)
        tail = ~(np.abs(q) <= 0.5 - _TAIL_BELOW)          # NaN counts as tail: it stays NaN
        if tail.any():
            r = np.sqrt(-2.0 * np.log(np.minimum(p[tail], 1.0 - p[tail])))
            x_tail = _polynomial(_TAIL_NUMERATOR, r) / _polynomial(_TAIL_DENOMINATOR, r)
            x[tail] = np.where(q[tail] < 0, x_tail, -x_tail)
        # One Halley step on f(x) = Phi(x) - p, with f' = phi(x) and f'' = -x phi(x).
        u = (ndtr(x) - p) * math.sqrt(2.0 * math.pi) * np.exp(0.5 * x * x)
        refined = x - u / (1.0 + 0.5 * x * u)
        x = np.where(np.isfinite(refined), refined, x)
        x[p == 0.0] = -np.inf
        x[p == 1.0] = np.inf
        x[(p < 0.0) | (p > 1.0)] = np.nan
        return x
