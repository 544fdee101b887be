"""Hessian-vector products, Hutchinson's trace and Lanczos eigenvalues against closed forms and NumPy."""
import numpy as np

import nnlite as nl
from nnlite import nn
from nnlite.analysis import hessian_top_eigenvalues, hessian_trace, hessian_vector_product
from nnlite.nn import functional as F


class Quadratic(nn.Module):
    """L(w) = ½ wᵀ A w: its Hessian is A wherever w is."""

    def __init__(self, A):
        super().__init__()
        self.A = nl.tensor(A)
        self.w = nn.Parameter(nl.tensor(np.random.default_rng(0).standard_normal(len(A))))

    def forward(self, x):
        return self.w


def _quadratic_loss(A):
    At = nl.tensor(A)
    return lambda w, target: 0.5 * nl.sum(w * nl.matmul(At, w))


def _spd(n, seed):
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((n, n))
    return B @ B.T / n + np.diag(rng.random(n))


def _dummy_batch():
    return (nl.zeros(1, 1, dtype=nl.float64), nl.zeros(1, dtype=nl.float64))


def test_hessian_vector_product_of_a_quadratic_is_A_v():
    A = _spd(6, 1)
    v = np.arange(6.0)
    hv = hessian_vector_product(Quadratic(A), _quadratic_loss(A), _dummy_batch(), {"w": nl.tensor(v)})
    np.testing.assert_allclose(hv["w"].numpy(), A @ v, rtol=1e-12)


def test_hutchinson_trace_is_within_five_percent_with_500_probes():
    A = _spd(30, 2)
    estimate = hessian_trace(Quadratic(A), _quadratic_loss(A), _dummy_batch(), n_probes=500,
                             generator=nl.Generator(0))
    assert abs(estimate - np.trace(A)) < 0.05 * np.trace(A)


def test_top_eigenvalues_of_a_quadratic_match_eigvalsh():
    A = _spd(12, 3)
    top = hessian_top_eigenvalues(Quadratic(A), _quadratic_loss(A), _dummy_batch(), k=3, generator=nl.Generator(1))
    np.testing.assert_allclose(top, np.sort(np.linalg.eigvalsh(A))[::-1][:3], rtol=1e-9)


def test_top_eigenvalues_of_a_network_match_eigvalsh_of_its_full_hessian():
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    rng = np.random.default_rng(4)
    batches = [(nl.tensor(rng.standard_normal((7, 3))), nl.tensor(rng.integers(0, 2, 7))),
               (nl.tensor(rng.standard_normal((5, 3))), nl.tensor(rng.integers(0, 2, 5)))]
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [int(np.prod(s)) for s in shapes]
    dim = sum(sizes)

    def column(i):
        e = np.zeros(dim)
        e[i] = 1
        pieces = np.split(e, np.cumsum(sizes)[:-1])
        hv = hessian_vector_product(model, F.cross_entropy, batches,
                                    {n: nl.tensor(p.reshape(s)) for n, p, s in zip(names, pieces, shapes)})
        return np.concatenate([hv[n].numpy().ravel() for n in names])

    H = np.stack([column(i) for i in range(dim)], 1)
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    top, vectors = hessian_top_eigenvalues(model, F.cross_entropy, batches, k=2, generator=nl.Generator(2),
                                           return_eigenvectors=True)
    np.testing.assert_allclose(top, np.sort(np.linalg.eigvalsh(H))[::-1][:2], rtol=1e-8)
    v = np.concatenate([vectors[0][n].numpy().ravel() for n in names])
    np.testing.assert_allclose(H @ v, top[0] * v, atol=1e-8)


def test_hessian_against_torch_on_a_small_cnn():
    torch = __import__("pytest").importorskip("torch")
    nl.manual_seed(1)
    model = nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6, 3)).double()
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((4, 1, 8)), rng.integers(0, 3, 4)
    params = [torch.tensor(p.data, requires_grad=True) for p in model.parameters()]

    def loss(*ps):
        h = torch.relu(torch.nn.functional.conv1d(torch.tensor(x), ps[0], ps[1]))
        return torch.nn.functional.cross_entropy(torch.nn.functional.linear(h.flatten(1), ps[2], ps[3]),
                                                 torch.tensor(y))
    blocks = torch.autograd.functional.hessian(loss, tuple(params))
    sizes = [p.numel() for p in params]
    H = np.block([[blocks[i][j].reshape(sizes[i], sizes[j]).numpy() for j in range(4)] for i in range(4)])
    top = hessian_top_eigenvalues(model, F.cross_entropy, (nl.tensor(x), nl.tensor(y)), k=1,
                                  generator=nl.Generator(0))
    np.testing.assert_allclose(top[0], np.linalg.eigvalsh(H)[-1], rtol=1e-8)
    trace = hessian_trace(model, F.cross_entropy, (nl.tensor(x), nl.tensor(y)), n_probes=400,
                          generator=nl.Generator(3))
    # Rademacher probes: Var(vᵀHv) = 2 Σ_{i≠j} H_ij², so the mean of 400 is within 4 standard errors.
    off_diagonal = H - np.diag(np.diag(H))
    standard_error = np.sqrt(2 * (off_diagonal ** 2).sum() / 400)
    assert abs(trace - np.trace(H)) < 4 * standard_error
