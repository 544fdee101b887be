"""The sinusoid few-shot regression benchmark of Finn et al. (2017), "Model-Agnostic Meta-Learning".

Each *task* is a sine wave :math:`y = A \\sin(x - \\varphi)` with amplitude
:math:`A \\sim U[0.1, 5]` and phase :math:`\\varphi \\sim U[0, \\pi]`; inputs are
drawn from :math:`x \\sim U[-5, 5]`. A learner sees K points of a new wave (the
*support* set, K = 5 or 10: "K-shot") and must predict the wave everywhere (the
*query* set). The paper's regressor is a 1-40-40-1 ReLU network
(:func:`~nnlite.meta.sinusoid_mlp`).

:class:`SinusoidTasks` draws whole meta-batches at once, as arrays with a
leading task dimension, so that :func:`~nnlite.meta.task_batched_call` can adapt all the
tasks of a batch in one pass (one copy of the parameters per task).
"""
from collections import namedtuple

import numpy as np

from .. import nn
from ..tensor import Tensor

__all__ = ["TaskBatch", "SinusoidTasks", "sinusoid_mlp", "task_batched_call"]

TaskBatch = namedtuple("TaskBatch", ["support_x", "support_y", "query_x", "query_y", "amplitude", "phase"])
TaskBatch.__doc__ = """A meta-batch of T tasks: Tensors of shape (T, K, 1) for the support set and
(T, Q, 1) for the query set, and each task's ``amplitude`` and ``phase`` (NumPy arrays of shape (T,))."""


class SinusoidTasks:
    """Sampler of sinusoid regression tasks with the paper's ranges.

    >>> tasks = SinusoidTasks(shots=10, seed=0)
    >>> batch = tasks.sample(25)
    >>> batch.support_x.shape, batch.query_x.shape
    ((25, 10, 1), (25, 10, 1))
    """

    def __init__(self, shots=10, query=None, amplitude=(0.1, 5.0), phase=(0.0, np.pi), x_range=(-5.0, 5.0),
                 seed=0, dtype=np.float32):
        if shots < 1:
            raise ValueError(f"SinusoidTasks: shots must be >= 1, got {shots}")
        for what, (low, high) in (("amplitude", amplitude), ("phase", phase), ("x_range", x_range)):
            if not low <= high:
                raise ValueError(f"SinusoidTasks: {what} must be a (low, high) range with low <= high, "
                                 f"got {(low, high)}")
        self.shots, self.query = int(shots), int(query or shots)
        self.amplitude, self.phase, self.x_range = amplitude, phase, x_range
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":   # integer points would round the sine curve away
            raise TypeError(f"SinusoidTasks: dtype must be a floating dtype, got {self.dtype}")
        self.rng = np.random.default_rng(seed)

    def _points(self, amplitude, phase, n):
        x = self.rng.uniform(*self.x_range, size=(len(amplitude), n, 1))
        y = amplitude[:, None, None] * np.sin(x - phase[:, None, None])
        return Tensor(x.astype(self.dtype)), Tensor(y.astype(self.dtype))

    def sample(self, num_tasks):
        """``num_tasks`` new waves, each with its own support and query points."""
        if isinstance(num_tasks, bool) or int(num_tasks) != num_tasks or num_tasks < 1:
            raise ValueError(f"SinusoidTasks.sample: num_tasks must be a positive integer, got {num_tasks!r}")
        amplitude = self.rng.uniform(*self.amplitude, size=num_tasks)
        phase = self.rng.uniform(*self.phase, size=num_tasks)
        support_x, support_y = self._points(amplitude, phase, self.shots)
        query_x, query_y = self._points(amplitude, phase, self.query)
        return TaskBatch(support_x, support_y, query_x, query_y, amplitude, phase)

    def curve(self, batch, num=100):
        """Each task's true wave on ``num`` evenly spaced inputs: x (num,) and y (T, num)."""
        x = np.linspace(*self.x_range, num)
        return x, batch.amplitude[:, None] * np.sin(x[None, :] - batch.phase[:, None])


def sinusoid_mlp(hidden=40):
    """The paper's regressor: ``Linear(1, hidden) - ReLU - Linear(hidden, hidden) - ReLU - Linear(hidden, 1)``."""
    return nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))


def task_batched_call(model, parameters, x):
    """Run a ``Sequential`` of Linear layers and activations with one parameter copy per task.

    ``parameters`` maps the model's names to tensors with a leading task
    dimension T (``weight`` (T, out, in), ``bias`` (T, out)); ``x`` is
    (T, N, in). Task t's rows meet only task t's weights, so this equals running
    :func:`nnlite.func.functional_call` once per task — in one pass, which is
    what makes a meta-batch of 25 tasks cheap. A tensor without the task
    dimension is shared by every task.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"task_batched_call: expected an nn.Sequential, got {type(model).__name__}")
    known = {name for name, _ in model.named_parameters()}
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ValueError(f"task_batched_call: the model has no parameters {unknown}; it has {sorted(known)}")
    h = x
    for name, layer in model.named_children():
        if isinstance(layer, nn.Linear):
            weight = parameters.get(f"{name}.weight", layer.weight)
            bias = parameters.get(f"{name}.bias", layer.bias)
            h = h @ weight.transpose(-1, -2)
            if bias is not None:
                h = h + (bias.unsqueeze(-2) if bias.ndim == 2 else bias)
        elif isinstance(layer, (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU)):
            h = layer(h)
        else:
            raise TypeError(f"task_batched_call: layer {name!r} is a {type(layer).__name__}; "
                            "only Linear layers and elementwise activations can be task-batched")
    return h
