r"""Convergence and divergence: knowing when training has stopped improving, or broken.

**Divergence.** With a learning rate above :math:`2/\lambda_{max}` (the largest
eigenvalue of the loss's Hessian) gradient descent overshoots along the
sharpest direction by more each step, the loss grows geometrically and soon
overflows to inf, then NaN. Once one parameter is NaN, every parameter that
its gradient reaches becomes NaN at the next step, so the *first* non-finite
parameter points at where the trouble started. :class:`DivergenceGuard`
catches this, stops :func:`~nnlite.train.fit` and puts back the last
parameters that gave a finite, non-exploding loss.

**Plateaus.** A loss that has improved by less than a small relative amount
for a number of epochs has converged — or is stuck, and a smaller learning
rate may move it on (:class:`~nnlite.optim.lr_scheduler.ReduceLROnPlateau`),
or it is time to stop (:class:`~nnlite.train.EarlyStopping`).
:func:`find_plateau` and :class:`PlateauDetector` only detect; they change nothing.
"""
import copy
import math

import numpy as np

from .._kernels.checks import is_int, real_number
from ..train import Callback
from ._snapshot import restore, snapshot

__all__ = ["DivergenceGuard", "PlateauDetector", "find_plateau"]


class DivergenceGuard(Callback):
    """Stop training when the loss diverges and restore the last good parameters.

    Divergence is a batch loss that is NaN or infinite, one greater than
    ``factor`` times the lowest batch loss seen so far, or a parameter that
    became non-finite in an optimizer step. The guard then

    1. sets ``state.stop_training``, which ends :func:`~nnlite.train.fit` after
       the current batch (no further step is taken);
    2. writes back the parameters, buffers and optimizer state of the last
       good point — taken after a step whose next batch loss was healthy (or
       at the start of training) — bit for bit, and drops the gradients;
    3. fills ``report``: ``step``, ``reason``, ``loss``, ``first_nonfinite``
       (the parameters that went non-finite first, in ``named_parameters()``
       order; empty if none did before the loss did) and ``restored_step``.

    Keeping the last good point costs one copy of the model and optimizer
    state per ``every_n_steps`` steps.
    """

    def __init__(self, factor=10.0, every_n_steps=1):
        if not real_number("DivergenceGuard", "factor", factor) > 1:
            raise ValueError(f"DivergenceGuard: factor must be > 1, got {factor}")
        if not is_int(every_n_steps) or every_n_steps < 1:
            raise ValueError(f"DivergenceGuard: every_n_steps must be an integer >= 1, got {every_n_steps!r}")
        self.factor, self.every_n_steps = float(factor), int(every_n_steps)
        self.best_loss = math.inf
        self.report = None
        self._good = self._candidate = None

    @property
    def diverged(self):
        return self.report is not None

    def _take(self, state):
        return {"step": state.step, "model": snapshot(state.model),
                "optimizer": copy.deepcopy(state.optimizer.state_dict())}

    def on_fit_start(self, state):
        self._good = self._take(state)
        self._candidate = None

    def on_batch_end(self, state):
        if self.diverged:
            return
        loss = state.batch_loss
        if not math.isfinite(loss):
            self._stop(state, f"the loss is {loss}", loss)
        elif loss > self.factor * self.best_loss and self.best_loss > 0:
            self._stop(state, f"the loss {loss:.4g} rose past {self.factor:g} x the lowest loss "
                              f"{self.best_loss:.4g}", loss)
        else:
            self.best_loss = min(self.best_loss, loss)
            if self._candidate is not None:  # the parameters before this batch were good
                self._good, self._candidate = self._candidate, None

    def on_step_end(self, state):
        if self.diverged:
            return
        bad = [name for name, p in state.model.named_parameters() if not np.isfinite(p.data).all()]
        if bad:
            self._stop(state, "a parameter became non-finite in the optimizer step", state.batch_loss, bad)
        elif state.step % self.every_n_steps == 0:
            self._candidate = self._take(state)

    def _stop(self, state, reason, loss, bad=()):
        state.stop_training = True
        restore(state.model, self._good["model"])
        state.optimizer.load_state_dict(copy.deepcopy(self._good["optimizer"]))
        state.model.zero_grad()
        self.report = {"step": state.step, "reason": reason, "loss": loss, "first_nonfinite": list(bad),
                       "restored_step": self._good["step"]}

    def on_fit_end(self, state):
        if self.diverged:
            state.history["diverged"] = self.report


def find_plateau(values, patience=5, rel_tol=1e-3, mode="min"):
    """The first index at which ``values`` has not improved for ``patience`` values, or None.

    An improvement is a value better than the best so far by more than
    ``rel_tol`` times the best's magnitude (``mode="min"`` for losses, ``"max"`` for accuracies).

    >>> find_plateau([1.0, 0.5, 0.3, 0.2999, 0.2999, 0.3], patience=3)
    5
    """
    if mode not in ("min", "max"):
        raise ValueError(f"find_plateau: mode must be 'min' or 'max', got {mode!r}")
    if not is_int(patience) or patience < 1:
        raise ValueError(f"find_plateau: patience must be an integer >= 1, got {patience!r}")
    if not real_number("find_plateau", "rel_tol", rel_tol) >= 0:
        raise ValueError(f"find_plateau: rel_tol must be >= 0, got {rel_tol}")
    sign = 1.0 if mode == "min" else -1.0
    best, wait = None, 0
    for i, v in enumerate(values):
        v = sign * float(v)
        if best is None or v < best - rel_tol * abs(best):
            best, wait = v, 0
        else:
            wait += 1
            if wait >= patience:
                return i
    return None


class PlateauDetector(Callback):
    """Note the epochs at which ``monitor`` (a key of the epoch logs) reaches a plateau.

    Uses :func:`find_plateau` on the metric's values since the last plateau;
    ``plateaus`` lists the 0-based epochs, also written to ``fit``'s history
    as ``"plateaus"`` at the end. Training goes on unchanged.
    """

    def __init__(self, monitor="val_loss", patience=5, rel_tol=1e-3, mode="auto"):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"PlateauDetector: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if not is_int(patience) or patience < 1:
            raise ValueError(f"PlateauDetector: patience must be an integer >= 1, got {patience!r}")
        if not real_number("PlateauDetector", "rel_tol", rel_tol) >= 0:
            raise ValueError(f"PlateauDetector: rel_tol must be >= 0, got {rel_tol}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.monitor, self.patience, self.rel_tol, self.mode = monitor, patience, rel_tol, mode
        self.plateaus, self._since = [], []

    def on_epoch_end(self, state, logs):
        if self.monitor not in logs:
            raise KeyError(f"PlateauDetector: no metric {self.monitor!r} this epoch; have {sorted(logs)}")
        self._since.append(logs[self.monitor])
        if find_plateau(self._since, self.patience, self.rel_tol, self.mode) is not None:
            self.plateaus.append(state.epoch)
            self._since = [logs[self.monitor]]

    def on_fit_end(self, state):
        state.history["plateaus"] = list(self.plateaus)
