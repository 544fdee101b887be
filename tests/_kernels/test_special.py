"""erf, erfc, the normal CDF and its inverse (nnlite/_kernels/special.py), checked without SciPy."""
import math

import numpy as np
import pytest

from nnlite._kernels import special


@pytest.mark.parametrize("name", ["erf", "erfc"])
def test_erf_and_erfc_are_the_c_library_functions_on_every_element(name, rng):
    ours, scalar = getattr(special, name), getattr(math, name)
    x = np.concatenate([rng.standard_normal(999) * 4, [0.0, -0.0, 30.0, -30.0, np.inf, -np.inf]])
    expected = np.array([scalar(v) for v in x])
    assert ours(x).tobytes() == expected.tobytes()
    assert np.isnan(ours(np.array([np.nan]))).all()


@pytest.mark.parametrize("name", ["erf", "erfc"])
def test_erf_keeps_shape_and_float_dtype_rounding_once_from_float64(name, rng):
    f, scalar = getattr(special, name), getattr(math, name)
    x32 = rng.standard_normal((4, 6)).astype(np.float32)[:, ::2]          # not contiguous
    y = f(x32)
    assert y.dtype == np.float32 and y.shape == (4, 3)
    expected = np.array([[scalar(float(v)) for v in row] for row in x32], np.float64)
    assert y.tobytes() == expected.astype(np.float32).tobytes()
    assert f(np.zeros((0, 3), np.float32)).shape == (0, 3)
    assert f(np.float64(0.5)).shape == () and float(f(0.5)) == scalar(0.5)
    assert f(np.array([1, 2])).dtype == np.float64                          # integers: float64


def test_ndtr_is_the_normal_cdf_with_its_symmetry_and_tails():
    x = np.linspace(-8, 8, 161)
    phi = special.ndtr(x)
    expected = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(phi, expected, rtol=0, atol=2e-16)
    np.testing.assert_allclose(phi + special.ndtr(-x), 1.0, rtol=0, atol=4e-16)
    # Far in the lower tail the CDF keeps its relative accuracy (1 + erf would round to 0).
    tail = special.ndtr(np.array([-20.0, -30.0]))
    asymptotic = np.array([math.exp(-v * v / 2) / (-v * math.sqrt(2 * math.pi))
                           * (1 - 1 / v**2 + 3 / v**4 - 15 / v**6) for v in (-20.0, -30.0)])
    np.testing.assert_allclose(tail, asymptotic, rtol=1e-7)


def test_ndtri_inverts_ndtr_to_float64_rounding(rng):
    centre = rng.uniform(0.0, 1.0, 20000)
    lower_tail = 10.0 ** -rng.uniform(2, 300, 2000)
    # In the tail Phi's relative change per relative change of x is about x**2 (up to
    # ~1400 at p = 1e-300), so one rounding of x shows there as ~1e-13 in Phi.
    for p, rtol in ((centre, 2e-14), (lower_tail, 1e-12)):
        back = special.ndtr(special.ndtri(p))
        np.testing.assert_allclose(back, p, rtol=rtol, atol=0)
    # The 97.5% point of the standard normal, the textbook 1.959963984540054.
    assert abs(float(special.ndtri(0.975)) - 1.959963984540054) < 1e-15
    p = rng.uniform(0.0, 0.5, 1000)
    np.testing.assert_allclose(special.ndtri(1 - p), -special.ndtri(p), rtol=1e-9)


def test_ndtri_edges():
    x = special.ndtri(np.array([0.0, 1.0, 0.5, -0.1, 1.1, np.nan]))
    assert x[0] == -np.inf and x[1] == np.inf and x[2] == 0.0
    assert np.isnan(x[3:]).all()
    assert special.ndtri(np.zeros((0, 2))).shape == (0, 2)


def test_ndtri_against_an_arbitrary_precision_oracle(rng):
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    p = np.concatenate([rng.uniform(0, 1, 200), 10.0 ** -rng.uniform(2, 250, 100)])
    ours = special.ndtri(p)
    exact = np.array([float(mpmath.findroot(lambda t: mpmath.ncdf(t) - mpmath.mpf(v), x))
                      for v, x in zip(p, ours)])
    np.testing.assert_allclose(ours, exact, rtol=1e-14, atol=1e-15)
