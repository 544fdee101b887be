"""Elastic weight consolidation: anchor the parameters that mattered for earlier tasks.

Kirkpatrick et al. (2017, "Overcoming catastrophic forgetting in neural
networks") treat what was learnt on task A as a prior for task B. Its
Laplace approximation is a Gaussian around A's solution θ*_A whose precision is
the diagonal of the Fisher information F, so training on B minimises

.. math::

    L(θ) = L_B(θ) + \\frac{λ}{2} \\sum_i F_i (θ_i - θ^*_{A,i})^2 ,
    \\qquad \\frac{∂}{∂θ_i}\\,\\frac{λ}{2} F_i (θ_i - θ^*_i)^2 = λ F_i (θ_i - θ^*_i).

A parameter the old task was sensitive to (large F_i) sits in a stiff
spring; one it did not care about (F_i ≈ 0) is free to move. After each task,
:meth:`EWC.consolidate` computes F with :func:`nnlite.analysis.fisher_diagonal`
and stores a copy of θ.

``mode="separate"`` keeps one penalty per finished task (the paper's
formulation; memory grows with the tasks). ``mode="online"`` (Schwarz et al.
2018, "Progress & Compress") keeps one: F ← γ F + F_new and θ* ← θ, with
``decay_factor`` γ ≤ 1 letting old tasks fade.
"""
import numpy as np

from ..tensor import Tensor

__all__ = ["EWC"]


class EWC:
    """The EWC penalty for ``model``: ``ewc.penalty()`` is added to each new task's loss.

    >>> import nnlite as nl
    >>> model = nl.nn.Linear(3, 2)
    >>> ewc = EWC(model, ewc_lambda=10.0)
    >>> ewc.penalty().item()          # nothing consolidated yet
    0.0
    >>> ewc.consolidate(nl.nn.functional.cross_entropy, (nl.randn(6, 3), nl.tensor([0, 1] * 3)))
    >>> ewc.penalty().item()          # θ still equals θ*
    0.0
    """

    def __init__(self, model, ewc_lambda, mode="separate", decay_factor=None):
        if mode not in ("separate", "online"):
            raise ValueError(f"EWC: mode must be 'separate' or 'online', got {mode!r}")
        if mode == "online" and decay_factor is None:
            decay_factor = 1.0
        if decay_factor is not None and not 0.0 <= decay_factor <= 1.0:
            raise ValueError(f"EWC: decay_factor must be in [0, 1], got {decay_factor}")
        if mode == "separate" and decay_factor is not None:
            raise ValueError("EWC: decay_factor is for mode='online'")
        if not 0 <= ewc_lambda < float("inf"):
            raise ValueError(f"EWC: ewc_lambda must be a finite number >= 0, got {ewc_lambda}")
        from ..nn._checks import require_module
        require_module(model, "EWC")
        self.model, self.ewc_lambda, self.mode, self.decay_factor = model, float(ewc_lambda), mode, decay_factor
        self.anchors = []   # per consolidation: ({name: Fisher diagonal}, {name: θ*}), NumPy arrays

    def consolidate(self, loss_fn, batches):
        """Compute the Fisher diagonal of ``loss_fn`` on ``batches`` at the current θ and anchor θ there."""
        from ..analysis import fisher_diagonal
        from ..analysis._batches import modes_kept
        with modes_kept(self.model):
            self.model.eval()
            fisher = {name: f.data.copy() for name, f in fisher_diagonal(self.model, loss_fn, batches).items()}
        if self.mode == "online" and self.anchors:
            # Over the parameters of either Fisher: one trainable only now starts from its new
            # Fisher, one frozen since keeps its decayed old one (its anchor must not be lost).
            old_fisher, _ = self.anchors.pop()
            fisher = {name: self.decay_factor * old_fisher.get(name, 0.0) + fisher.get(name, 0.0)
                      for name in {**fisher, **old_fisher}}
        optimum = {name: p.data.copy() for name, p in self.model.named_parameters() if name in fisher}
        self.anchors.append((fisher, optimum))

    def penalty(self):
        """λ/2 Σ_tasks Σ_i F_i (θ_i − θ*_i)², differentiable with respect to the model's parameters."""
        params = dict(self.model.named_parameters())
        total = None
        for fisher, optimum in self.anchors:
            for name, f in fisher.items():
                p = params[name]
                term = (Tensor(f) * (p - Tensor(optimum[name])) ** 2).sum()
                total = term if total is None else total + term
        if total is None:   # nothing consolidated yet: a zero in the parameters' dtype
            dtype = next((p.dtype for p in params.values()), np.float32)
            return Tensor(np.zeros((), dtype))
        return total * (self.ewc_lambda / 2)

    def importance(self):
        """The summed Fisher diagonal over the anchors, ``{name: array}`` (what protects each weight)."""
        out = {}
        for fisher, _ in self.anchors:
            for name, f in fisher.items():
                out[name] = out.get(name, 0.0) + f
        return out
