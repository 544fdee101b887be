"""Quality metrics of a weight matrix, read from its singular values.

Every metric here looks at a 2-D matrix W of shape (m, n) through its singular
values σ_1 ≥ σ_2 ≥ ... ≥ σ_r ≥ 0 (r = min(m, n)), the stretch factors of the
linear map x ↦ W x. A convolution's weight (C_out, C_in/groups, kh[, kw]) is
read as the matrix (C_out, C_in/groups · kh · kw): each row is one filter
unrolled, the matrix im2col multiplies the input patches by. An embedding
table (num_embeddings, dim) is already a matrix.

* spectral norm ‖W‖₂ = σ_1, the largest factor by which the layer can stretch
  an input; it bounds the layer's Lipschitz constant (Miyato et al., 2018,
  "Spectral normalization for generative adversarial networks").
* condition number κ = σ_1 / σ_r, how unevenly the layer stretches; a large κ
  makes the layer nearly lose directions and the problem ill-conditioned
  (Golub & Van Loan, "Matrix Computations", §2.6).
* effective rank (Roy & Vetterli, 2007, "The effective rank: a measure of
  effective dimensionality"): with p_i = σ_i / Σ_j σ_j, erank = exp(−Σ_i p_i
  ln p_i), a real number between 1 and r that counts how many directions the
  layer really uses.
* stable rank ‖W‖_F² / ‖W‖₂² = Σ σ_i² / σ_1² (Rudelson & Vershynin, 2007),
  a rank that small singular values cannot inflate.
"""
import numpy as np

from ..tensor import Tensor

__all__ = ["as_matrix", "singular_values", "spectral_norm", "condition_number", "effective_rank", "stable_rank",
           "eigenvalues", "quality_metrics"]


def as_matrix(weight):
    """``weight`` as a float64 NumPy matrix; ≥3-D weights (convolutions) become (out, in·kh·kw)."""
    a = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
    if a.ndim < 2:
        raise ValueError(f"as_matrix: expected a weight with at least 2 dimensions, got shape {tuple(a.shape)}")
    if a.size == 0:
        raise ValueError(f"as_matrix: the weight is empty (shape {tuple(a.shape)})")
    if not np.isfinite(a).all():
        raise ValueError(f"as_matrix: expected a finite weight, got NaN or inf in a weight of shape {tuple(a.shape)}")
    return a.reshape(a.shape[0], -1).astype(np.float64)


def singular_values(weight):
    """σ_1 ≥ ... ≥ σ_r of ``as_matrix(weight)``, a float64 array.

    >>> import numpy as np
    >>> singular_values(np.diag([3.0, -1.0, 2.0]))
    array([3., 2., 1.])
    """
    return np.linalg.svd(as_matrix(weight), compute_uv=False)


def spectral_norm(weight):
    """‖W‖₂ = σ_1, the largest singular value (a float; Miyato et al., 2018).

    >>> import numpy as np
    >>> spectral_norm(np.diag([3.0, 1.0]))
    3.0
    """
    return float(singular_values(weight)[0])


def condition_number(weight):
    """κ(W) = σ_1 / σ_r (a float; ``inf`` for a rank-deficient matrix).

    >>> import numpy as np
    >>> condition_number(np.diag([3.0, 0.5])), condition_number(np.diag([1.0, 0.0]))
    (6.0, inf)
    """
    s = singular_values(weight)
    return float(s[0] / s[-1]) if s[-1] > 0 else float("inf")


def effective_rank(weight):
    """exp of the Shannon entropy of the normalised singular values (Roy & Vetterli, 2007).

    Equals k for a matrix with k equal non-zero singular values, so n for an
    orthogonal n × n matrix; 0 for the zero matrix.

    >>> import numpy as np
    >>> round(effective_rank(np.eye(4)), 6)
    4.0
    """
    s = singular_values(weight)
    if s.sum() == 0:
        return 0.0
    p = s / s.sum()
    p = p[p > 0]   # 0 · ln 0 = 0
    return float(np.exp(-(p * np.log(p)).sum()))


def stable_rank(weight):
    """‖W‖_F² / ‖W‖₂² = Σ σ_i² / σ_1² (a float between 1 and the rank; 0 for the zero matrix).

    From Rudelson & Vershynin (2007). One large and three small singular values
    give a stable rank near 1, where the plain rank says 4:

    >>> import numpy as np
    >>> stable_rank(np.diag([10.0, 1.0, 1.0, 1.0]))
    1.03
    """
    s = singular_values(weight)
    return float((s ** 2).sum() / s[0] ** 2) if s[0] > 0 else 0.0


def eigenvalues(weight):
    """Eigenvalues of a square weight matrix, largest modulus first.

    The eigen-spectrum describes a map applied to its own output (a recurrent
    weight, a residual branch): components along eigenvectors with ``|λ| > 1`` grow
    at each application and those with ``|λ| < 1`` fade. Real for a symmetric
    matrix, complex in general.
    """
    W = as_matrix(weight)
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"eigenvalues: expected a square matrix, got shape {W.shape}")
    # Exactly symmetric only: eigvalsh reads one triangle, and allclose's absolute tolerance would
    # call any matrix of entries below 1e-8 symmetric (a rotation's ±i·s came back as ±s).
    values = np.linalg.eigvalsh(W) if np.array_equal(W, W.T) else np.linalg.eigvals(W)
    return values[np.argsort(-np.abs(values), kind="stable")]


def _weights(source):
    """(name, array) of every matrix-shaped weight of a Module or a {name: tensor} mapping."""
    if hasattr(source, "named_parameters"):
        return [(name, p.data) for name, p in source.named_parameters()
                if p.ndim >= 2 and p.kind in ("weight", "embedding")]
    if not hasattr(source, "items"):
        raise TypeError(f"quality_metrics: expected a Module or a mapping of names to weights, "
                        f"got {type(source).__name__}")
    return [(name, t.data if isinstance(t, Tensor) else np.asarray(t)) for name, t in source.items()
            if np.ndim(t.data if isinstance(t, Tensor) else t) >= 2]


def quality_metrics(source):
    """``{name: {shape, matrix_shape, spectral_norm, condition_number, effective_rank, stable_rank}}``.

    ``source`` is a Module (its parameters of kind weight or embedding with at
    least 2 dimensions) or a mapping of names to tensors or arrays (every
    entry with at least 2 dimensions, e.g. a loaded state dict).
    """
    out = {}
    for name, a in _weights(source):
        if a.size == 0:
            continue
        W = as_matrix(a)
        s = np.linalg.svd(W, compute_uv=False)
        out[name] = {"shape": tuple(a.shape), "matrix_shape": W.shape, "spectral_norm": float(s[0]),
                     "condition_number": condition_number(W), "effective_rank": effective_rank(W),
                     "stable_rank": stable_rank(W)}
    return out
