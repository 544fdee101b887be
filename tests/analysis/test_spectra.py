"""Quality metrics against closed forms and numpy.linalg."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.analysis import (as_matrix, condition_number, effective_rank, eigenvalues, quality_metrics,
                             singular_values, spectral_norm, stable_rank)


def _orthogonal(n, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q


def test_orthogonal_matrix_has_condition_number_one_and_full_effective_rank():
    Q = _orthogonal(7, 0)
    assert condition_number(Q) == pytest.approx(1.0, rel=1e-12)
    assert effective_rank(Q) == pytest.approx(7.0, rel=1e-12)
    assert stable_rank(Q) == pytest.approx(7.0, rel=1e-12)


def test_rank_k_matrix_with_equal_singular_values_has_effective_rank_k():
    U, V = _orthogonal(9, 1)[:, :3], _orthogonal(6, 2)[:, :3]
    W = 2.5 * U @ V.T                       # singular values 2.5, 2.5, 2.5, 0, 0, 0
    assert effective_rank(W) == pytest.approx(3.0, rel=1e-9)
    assert condition_number(W) > 1e12 or condition_number(W) == float("inf")
    # Unequal singular values give fewer effective dimensions than the rank.
    assert effective_rank(U @ np.diag([10.0, 1.0, 0.1]) @ V.T) < 3


def test_spectral_norm_and_stable_rank_against_numpy_linalg():
    W = np.random.default_rng(3).standard_normal((5, 8))
    assert spectral_norm(W) == pytest.approx(np.linalg.norm(W, 2), rel=1e-12)
    assert stable_rank(W) == pytest.approx(np.linalg.norm(W, "fro") ** 2 / np.linalg.norm(W, 2) ** 2, rel=1e-12)
    np.testing.assert_allclose(singular_values(W), np.linalg.svd(W, compute_uv=False), rtol=1e-12)
    assert condition_number(W) == pytest.approx(np.linalg.cond(W), rel=1e-10)


def test_convolution_weights_are_read_as_filters_by_unrolled_window():
    conv = nn.Conv2d(3, 4, (2, 5))
    M = as_matrix(conv.weight)
    assert M.shape == (4, 3 * 2 * 5)
    np.testing.assert_array_equal(M[1], conv.weight.data[1].ravel())
    with pytest.raises(ValueError, match=r"at least 2 dimensions, got shape \(4,\)"):
        as_matrix(conv.bias)


def test_eigenvalues_of_square_matrices_largest_modulus_first():
    A = np.diag([0.5, -3.0, 2.0])
    np.testing.assert_allclose(eigenvalues(A), [-3.0, 2.0, 0.5])
    R = np.array([[0.0, -1.0], [1.0, 0.0]])   # a rotation: eigenvalues ±i
    np.testing.assert_allclose(np.sort_complex(eigenvalues(R)), [-1j, 1j], atol=1e-12)
    # the same rotation with entries that a tolerance would call symmetric (a layer decayed to ~0)
    np.testing.assert_allclose(np.sort_complex(eigenvalues(1e-9 * R)), [-1e-9j, 1e-9j], rtol=1e-12)
    with pytest.raises(ValueError, match="square"):
        eigenvalues(np.ones((2, 3)))


def test_quality_metrics_of_a_model_and_of_a_state_dict_agree():
    nl.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6, 3))
    by_model = quality_metrics(model)
    assert set(by_model) == {"0.weight", "3.weight"}
    by_dict = quality_metrics(model.state_dict())
    assert set(by_dict) == set(by_model)
    assert by_model["3.weight"]["spectral_norm"] == pytest.approx(np.linalg.norm(model[3].weight.data, 2), rel=1e-6)
    assert by_model["0.weight"]["matrix_shape"] == (4, 3)
