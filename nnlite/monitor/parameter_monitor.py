r"""Per-parameter statistics recorded while :func:`nnlite.train.fit` trains.

For every parameter :math:`\theta` and every recorded optimizer step, with
:math:`\theta^-` the values just before the step, :math:`\theta^+` just after
and :math:`\theta^{(0)}` the values when training started:

* ``norm`` :math:`\lVert\theta^+\rVert` and ``grad_norm`` :math:`\lVert g\rVert`;
* ``update_ratio`` :math:`\lVert\theta^+ - \theta^-\rVert / \lVert\theta^-\rVert`.
  A rule of thumb from Karpathy's CS231n notes: around :math:`10^{-3}` is
  healthy; :math:`10^{-1}` and the learning rate is too high for that
  parameter, :math:`10^{-5}` and it barely learns;
* ``sign_flips``: the fraction of entries whose sign the step changed — many
  flips mean the parameter oscillates around zero;
* ``distance_from_init`` :math:`\lVert\theta^+ - \theta^{(0)}\rVert`: how far
  training has carried the parameter (large networks often move very little).

All norms are Euclidean over the whole tensor, in float64.
"""
import numpy as np

from .._kernels.checks import is_int
from ..train import Callback

__all__ = ["ParameterMonitor", "STATISTICS", "gradient_flow"]

STATISTICS = ("norm", "grad_norm", "update_ratio", "sign_flips", "distance_from_init")


def _norm(a):
    a = a.astype(np.float64, copy=False).ravel()
    return float(np.sqrt(a @ a))


class ParameterMonitor(Callback):
    """Record :data:`STATISTICS` for every parameter every ``every_n_steps`` optimizer steps.

    ``records`` holds the full record: ``records["step"]`` the steps and
    ``records[stat][name]`` one value per recorded step. At the end of each
    epoch the epoch's mean of each statistic (its last value for ``norm`` and
    ``distance_from_init``) goes into ``fit``'s history under
    ``"<stat>/<name>"``, and, with a ``logger``
    (:class:`~nnlite.monitor.TensorBoardLogger`), every recorded value is
    written as the scalar ``<stat>/<name>``.

    >>> import nnlite as nl
    >>> model = nl.nn.Linear(3, 2)
    >>> data = [(nl.randn(4, 3), nl.randn(4, 2))] * 5
    >>> monitor = nl.monitor.ParameterMonitor()
    >>> history = nl.train.fit(model, nl.nn.functional.mse_loss, nl.optim.SGD(model.parameters(), lr=0.1),
    ...                        data, epochs=2, callbacks=[monitor], progress=False)
    >>> len(monitor.records["step"]), len(history["update_ratio/weight"])
    (10, 2)
    """

    def __init__(self, every_n_steps=1, logger=None, names=None):
        if not is_int(every_n_steps) or every_n_steps < 1:
            raise ValueError(f"ParameterMonitor: every_n_steps must be an integer >= 1, got {every_n_steps!r}")
        self.every_n_steps, self.logger = int(every_n_steps), logger
        if isinstance(names, str):
            names = [names]   # one name, not a sequence of one-letter names
        self.names = None if names is None else list(names)
        self.records = {"step": []}
        self._init, self._before, self._grad_norms = {}, {}, {}
        self._epoch_start = 0

    def _params(self, model):
        for name, p in model.named_parameters():
            if p.requires_grad and (self.names is None or name in self.names):
                yield name, p

    def on_fit_start(self, state):
        # A misspelt name would otherwise leave its statistics silently empty.
        trainable = [name for name, p in state.model.named_parameters() if p.requires_grad]
        unknown = [name for name in self.names or () if name not in trainable]
        if unknown:
            raise ValueError(f"ParameterMonitor: the model has no trainable parameters named {unknown}; "
                             f"expected names from {trainable[:6]}")
        self._init = {name: p.data.astype(np.float64) for name, p in self._params(state.model)}
        for stat in STATISTICS:
            self.records.setdefault(stat, {name: [] for name in self._init})

    def on_epoch_start(self, state):
        self._epoch_start = len(self.records["step"])

    def on_batch_end(self, state):
        # Called after backward; with gradient accumulation the last batch before the step wins.
        if (state.step + 1) % self.every_n_steps:
            return
        self._before, self._grad_norms = {}, {}
        for name, p in self._params(state.model):
            self._before[name] = p.data.astype(np.float64)
            self._grad_norms[name] = _norm(p.grad.data) if p.grad is not None else 0.0

    def on_step_end(self, state):
        if not self._before or state.step % self.every_n_steps:
            return
        self.records["step"].append(state.step)
        for name, p in self._params(state.model):
            after, before = p.data.astype(np.float64), self._before[name]
            values = {"norm": _norm(after), "grad_norm": self._grad_norms[name],
                      "update_ratio": _norm(after - before) / max(_norm(before), 1e-12),
                      "sign_flips": float(np.mean(np.sign(after) != np.sign(before))) if after.size else 0.0,
                      "distance_from_init": _norm(after - self._init[name])}
            for stat, value in values.items():
                self.records[stat][name].append(value)
                if self.logger is not None:
                    self.logger.add_scalar(f"{stat}/{name}", value, state.step)
        self._before = {}

    def on_epoch_end(self, state, logs):
        first = self._epoch_start
        if len(self.records["step"]) == first:
            return
        for stat in STATISTICS:
            for name, values in self.records[stat].items():
                epoch = values[first:]
                summary = epoch[-1] if stat in ("norm", "distance_from_init") else float(np.mean(epoch))
                state.history.setdefault(f"{stat}/{name}", []).append(summary)

    def as_arrays(self, stat):
        """``records[stat]`` as one array per parameter name."""
        if stat not in STATISTICS:
            raise KeyError(f"ParameterMonitor: no statistic {stat!r}; have {STATISTICS}")
        return {name: np.array(values) for name, values in self.records[stat].items()}


def gradient_flow(named_parameters, weights_only=True):
    """Mean and largest ``|grad|`` of each parameter that has a gradient, in order: how gradients reach each layer.

    Returns ``{"names": [...], "mean_abs": array, "max_abs": array}``; with
    ``weights_only`` biases and other 1-D parameters are left out, as in the
    usual gradient-flow plot (:func:`nnlite.plot.gradient_flow`). A mean that
    falls by orders of magnitude towards the first layers is a vanishing gradient.
    """
    from ..nn.module import Module
    if isinstance(named_parameters, Module) or not hasattr(named_parameters, "__iter__"):
        raise TypeError(f"gradient_flow: expected (name, parameter) pairs such as model.named_parameters(), "
                        f"got {type(named_parameters).__name__}")
    names, means, maxes = [], [], []
    for name, p in named_parameters:
        if p.grad is None or (weights_only and p.ndim <= 1):
            continue
        g = np.abs(p.grad.data.astype(np.float64))
        names.append(name)
        means.append(float(g.mean()))
        maxes.append(float(g.max()))
    return {"names": names, "mean_abs": np.array(means), "max_abs": np.array(maxes)}
