"""Curvature of the loss: Hessian-vector products, Hutchinson's trace, top eigenvalues.

The Hessian H = ∇²L(θ) of the mean loss over the data has as many rows as the
model has parameters, far too many to form. Everything here uses only its
product with a vector, which costs about two backward passes (Pearlmutter
1994, "Fast exact multiplication by the Hessian"):

    H v = ∇_θ ( ∇_θ L(θ) · v )

The inner gradient is taken with ``nl.grad(..., create_graph=True)`` so that it
is itself differentiable; the outer ``nl.grad`` then differentiates the scalar
``g · v``. The graph of the inner gradient of every batch is built once and
kept for the whole call, so many products cost one extra backward pass each.

* **Trace** (Hutchinson 1989): for random v with E[v vᵀ] = I, E[vᵀ H v] = tr H.
  Rademacher probes (entries ±1) give the smallest variance among such
  distributions: Var = 2 Σ_{i≠j} H_ij².
* **Top eigenvalues**: the Lanczos iteration (Lanczos 1950) builds an
  orthonormal basis Q of the Krylov space span{v, Hv, H²v, ...}, in which H
  is a small tridiagonal matrix T = Qᵀ H Q; the largest eigenvalues of T
  converge quickly to the largest eigenvalues of H. The basis is
  re-orthogonalised at every step, so after n steps on an n-parameter model the
  result is exact. Yao et al. (2020, "PyHessian") use the same tools to study
  trained networks; a large top eigenvalue means a sharp minimum.
"""
import numpy as np

from .._kernels.checks import is_int
from ..autograd import grad
from ..ops import sum as ops_sum
from ..tensor import Tensor
from ._batches import as_batch_list, batch_size, buffers_kept, numpy_generator, trainable_parameters

__all__ = ["hessian_vector_product", "hessian_trace", "hessian_top_eigenvalues"]


class _Hessian:
    """H v for flat float64 vectors v, H the Hessian of the sample-mean loss over ``batches``."""

    def __init__(self, model, loss_fn, batches):
        self.named = trainable_parameters(model)
        self.params = [p for _, p in self.named]
        self.sizes = [int(np.prod(p.shape)) for p in self.params]
        self.dim = sum(self.sizes)
        pairs = as_batch_list(batches)
        total = sum(batch_size(x) for x, _ in pairs)
        self.batches = []   # (weight n_b / N, gradients with their graph)
        for input, target in pairs:
            with buffers_kept(model):
                loss = loss_fn(model(input), target)
            grads = grad(loss, self.params, create_graph=True, allow_unused=True)
            self.batches.append((batch_size(input) / total, grads))

    def split(self, flat):
        out, start = [], 0
        for p, n in zip(self.params, self.sizes):
            out.append(flat[start:start + n].reshape(p.shape))
            start += n
        return out

    def __call__(self, v):
        result = np.zeros(self.dim, np.float64)
        pieces = [Tensor(piece.astype(p.dtype)) for piece, p in zip(self.split(v), self.params)]
        for weight, grads in self.batches:
            dot = None
            for g, piece in zip(grads, pieces):
                if g is not None and g.requires_grad:
                    term = ops_sum(g * piece)
                    dot = term if dot is None else dot + term
            if dot is None:   # the loss is linear in every parameter: no curvature
                continue
            hv = grad(dot, self.params, retain_graph=True, allow_unused=True)
            result += weight * np.concatenate([np.zeros(n) if h is None else h.data.ravel().astype(np.float64)
                                               for h, n in zip(hv, self.sizes)])
        return result


def hessian_vector_product(model, loss_fn, batches, vector):
    """H v for ``vector`` given as ``{name: Tensor}`` (every trainable parameter); returns the same form.

    H is the Hessian of the loss averaged over all samples of ``batches``.
    """
    if not hasattr(vector, "items"):
        raise TypeError(f"hessian_vector_product: expected vector as a mapping {{name: Tensor}}, "
                        f"got {type(vector).__name__}")
    hessian = _Hessian(model, loss_fn, batches)
    missing = [name for name, _ in hessian.named if name not in vector]
    if missing:
        raise KeyError(f"hessian_vector_product: vector has no entry for {missing}")
    pieces = [np.asarray(vector[name].data if isinstance(vector[name], Tensor) else vector[name], np.float64)
              for name, _ in hessian.named]
    # Entries of the right total length but other shapes (a transposed weight) would be split silently.
    for (name, p), piece in zip(hessian.named, pieces):
        if piece.shape != tuple(p.shape):
            raise ValueError(f"hessian_vector_product: vector[{name!r}] must have the parameter's shape "
                             f"{tuple(p.shape)}, got {piece.shape}")
    flat = np.concatenate([piece.ravel() for piece in pieces])
    return {name: Tensor(piece.astype(p.dtype))
            for (name, p), piece in zip(hessian.named, hessian.split(hessian(flat)))}


def hessian_trace(model, loss_fn, batches, n_probes=100, generator=None):
    """Hutchinson's estimate of tr H, the sum of the loss's second derivatives ∂²L/∂θ_i².

    tr H ≈ (1/m) Σ_k v_kᵀ H v_k with m = ``n_probes`` Rademacher vectors v_k
    (entries ±1 with equal probability) drawn from ``generator`` (the global
    generator by default). The standard error shrinks as 1/√m. Returns a float.
    """
    if not is_int(n_probes) or n_probes < 1:
        raise ValueError(f"hessian_trace: n_probes must be a positive integer, got {n_probes!r}")
    rng = numpy_generator(generator, "hessian_trace")
    hessian = _Hessian(model, loss_fn, batches)
    total = 0.0
    for _ in range(n_probes):
        v = rng.choice((-1.0, 1.0), size=hessian.dim)
        total += float(v @ hessian(v))
    return total / n_probes


def hessian_top_eigenvalues(model, loss_fn, batches, k=1, iters=100, tol=1e-10, generator=None,
                            return_eigenvectors=False):
    """The ``k`` largest eigenvalues of the Hessian of the loss, largest first (Lanczos iteration).

    Runs at most ``iters`` Lanczos steps (never more than the number of
    parameters, at which point the answer is exact), each one Hessian-vector
    product, starting from a random unit vector drawn from ``generator``; it
    stops early when the Krylov space stops growing (relative residual below
    ``tol``). Returns a float64 NumPy array of k eigenvalues; with
    ``return_eigenvectors=True`` also a list of k ``{name: Tensor}``
    eigenvectors of unit length. More steps sharpen the smaller of the k.
    """
    if not is_int(iters) or iters < 1:
        raise ValueError(f"hessian_top_eigenvalues: iters must be a positive integer, got {iters!r}")
    if not tol >= 0:
        raise ValueError(f"hessian_top_eigenvalues: tol must be >= 0, got {tol}")
    rng = numpy_generator(generator, "hessian_top_eigenvalues")
    hessian = _Hessian(model, loss_fn, batches)
    if not is_int(k) or not 1 <= k <= hessian.dim:
        raise ValueError(f"hessian_top_eigenvalues: k must be an integer between 1 and the number of parameters "
                         f"({hessian.dim}), got {k!r}")
    steps = min(max(int(iters), k), hessian.dim)
    q = rng.standard_normal(hessian.dim)
    q /= np.linalg.norm(q)
    basis, alphas, betas = [], [], []
    for j in range(steps):
        basis.append(q)
        w = hessian(q)
        alpha = float(w @ q)
        w = w - alpha * q - (betas[-1] * basis[-2] if j > 0 else 0.0)
        Q = np.array(basis)
        for _ in range(2):   # full re-orthogonalisation, twice is enough (Parlett's rule)
            w -= Q.T @ (Q @ w)
        alphas.append(alpha)
        beta = float(np.linalg.norm(w))
        if j == steps - 1 or beta <= tol * max(1.0, abs(alpha)):
            break
        betas.append(beta)
        q = w / beta
    T = np.diag(alphas) + np.diag(betas[:len(alphas) - 1], 1) + np.diag(betas[:len(alphas) - 1], -1)
    values, vectors = np.linalg.eigh(T)
    order = np.argsort(values)[::-1][:k]
    if len(order) < k:
        raise RuntimeError(f"hessian_top_eigenvalues: the Krylov space of the start vector has only "
                           f"{len(order)} dimensions, fewer than k={k}; try another generator seed")
    top = values[order]
    if not return_eigenvectors:
        return top
    Q = np.array(basis)
    eigvecs = []
    for i in order:
        flat = Q.T @ vectors[:, i]
        flat /= np.linalg.norm(flat)
        eigvecs.append({name: Tensor(piece.astype(p.dtype))
                        for (name, p), piece in zip(hessian.named, hessian.split(flat))})
    return top, eigvecs
