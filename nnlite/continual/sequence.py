"""Training one model on a sequence of tasks, and the accuracy matrix it leaves behind.

:func:`train_sequence` is the whole experiment for one method: for each task
in turn it trains on that task's data only (what makes forgetting possible),
then tests on every task, filling row ``i`` of ``R``. The methods differ in
a few lines of the inner loop:

* ``"naive"`` — plain fine-tuning from task to task: catastrophic forgetting;
* ``"ewc"`` / ``"online_ewc"`` — the loss gets :meth:`EWC.penalty`; after each
  task the Fisher diagonal is taken on some of its training examples;
* ``"replay"`` — each batch is joined by as many examples drawn from a
  :class:`ReservoirBuffer` of everything seen before;
* ``"progressive"`` — a new :class:`ProgressiveNetwork` column per task.

The ``setting`` says which outputs may answer: ``"task"`` (task-incremental:
only the example's task's classes, so the task identity is given),
``"class"`` (class-incremental: all ten classes) or ``"domain"`` (permuted
inputs, same ten classes). Progressive networks pick their column by task,
so they need the task identity: ``"task"`` or ``"domain"`` with known task;
a task not learnt yet (R's upper triangle) is answered by the newest column.
"""
import numpy as np

from .. import nn, optim
from ..autograd import no_grad
from ..data import DataLoader
from ..nn import functional as F
from ..ops.concatenation import cat
from ..random import Generator, manual_seed
from ..tensor import Tensor
from .ewc import EWC
from .metrics import average_accuracy, backward_transfer, forward_transfer
from .progressive import ProgressiveNetwork
from .replay import ReservoirBuffer

__all__ = ["METHODS", "SETTINGS", "mlp", "train_sequence"]

METHODS = ("naive", "ewc", "online_ewc", "replay", "progressive")
SETTINGS = ("task", "class", "domain")
NUM_CLASSES = 10


def mlp(input_size=40, hidden_sizes=(100, 100), num_outputs=NUM_CLASSES):
    """The learner of the non-progressive methods: an MLP with ReLU, one shared output layer."""
    sizes = (input_size, *hidden_sizes)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], num_outputs))


def _mask(logits, task_ids, tasks, setting):
    """Push the logits of classes the setting rules out to -1e9, so softmax and argmax ignore them."""
    if setting != "task":
        return logits
    allowed = np.zeros(logits.shape, bool)
    for row, t in enumerate(np.asarray(task_ids)):
        allowed[row, list(tasks[int(t)].classes)] = True
    return logits + Tensor(np.where(allowed, 0.0, -1e9).astype(logits.dtype))


def _accuracy(forward, task, tasks, setting, column):
    x, y, task_ids = task.test.tensors
    with no_grad():
        logits = _mask(forward(x, column), task_ids.data, tasks, setting)
    return float(np.mean(logits.data.argmax(axis=1) == y.data))


def train_sequence(method, tasks, *, setting="task", epochs=5, lr=3e-3, batch_size=32, hidden_sizes=(100, 100),
                   ewc_lambda=1000.0, decay_factor=0.9, buffer_size=200, fisher_samples=200, seed=0):
    """Train ``method`` on ``tasks`` in order; return ``{"R", "acc", "bwt", "fwt", "baseline", "parameters"}``.

    ``R[i][j]`` is the test accuracy on task j after training on task i;
    ``baseline`` the accuracies of the untrained model (for FWT);
    ``parameters`` the model's parameter count after each task (its growth).
    """
    if method not in METHODS:
        raise ValueError(f"train_sequence: method must be one of {METHODS}, got {method!r}")
    if setting not in SETTINGS:
        raise ValueError(f"train_sequence: setting must be one of {SETTINGS}, got {setting!r}")
    if method == "progressive" and setting == "class":
        raise ValueError("train_sequence: progressive networks choose a column by task, which the "
                         "class-incremental setting does not give; use setting='task' or 'domain'")
    if not tasks:
        raise ValueError("train_sequence: expected at least one Task (e.g. from split_mnist1d), got none")
    manual_seed(seed)
    generator = Generator(seed)
    input_size = tasks[0].train.arrays[0].shape[1]
    if method == "progressive":
        model = ProgressiveNetwork(input_size, hidden_sizes, NUM_CLASSES)
        model.add_column()
        forward = model
    else:
        model = mlp(input_size, hidden_sizes)
        forward = lambda x, column: model(x)  # noqa: E731  (one signature for both kinds of model)
    ewc = EWC(model, ewc_lambda, mode="online", decay_factor=decay_factor) if method == "online_ewc" \
        else EWC(model, ewc_lambda) if method == "ewc" else None
    buffer = ReservoirBuffer(buffer_size, generator) if method == "replay" else None

    baseline = [_accuracy(forward, task, tasks, setting, 0) for task in tasks]
    R, parameters = np.zeros((len(tasks), len(tasks))), []
    for i, task in enumerate(tasks):
        if method == "progressive" and i > 0:
            model.add_column()
        opt = optim.Adam(model.parameters(trainable_only=True), lr=lr)
        loader = DataLoader(task.train, batch_size=batch_size, shuffle=True, generator=generator)
        for epoch in range(epochs):
            for x, y, task_ids in loader:
                if buffer is not None and epoch == 0:
                    fresh = (x, y, task_ids)
                if buffer is not None and len(buffer):      # rehearse: old examples join the batch
                    old_x, old_y, old_ids = buffer.sample(batch_size)
                    x, y, task_ids = cat([x, old_x]), cat([y, old_y]), cat([task_ids, old_ids])
                loss = F.cross_entropy(_mask(forward(x, i), task_ids.data, tasks, setting), y)
                if ewc is not None:
                    loss = loss + ewc.penalty()
                opt.zero_grad()
                loss.backward()
                opt.step()
                if buffer is not None and epoch == 0:      # each example is offered once
                    buffer.add(*fresh)
        if ewc is not None:
            x, y, task_ids = (t[:fisher_samples] for t in task.train.tensors)
            ids = task_ids.data[:1]
            ewc.consolidate(lambda out, target: F.cross_entropy(_mask(out, np.repeat(ids, len(target.data)),
                                                                      tasks, setting), target), (x, y))
        for j, other in enumerate(tasks):
            R[i, j] = _accuracy(forward, other, tasks, setting, min(j, i) if method == "progressive" else i)
        parameters.append(model.num_parameters())
    return {"R": R.tolist(), "acc": average_accuracy(R), "bwt": backward_transfer(R),
            "fwt": forward_transfer(R, baseline), "baseline": baseline, "parameters": parameters}
