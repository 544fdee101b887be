"""Task sequences built from MNIST-1D: split (new classes per task) and permuted (new inputs per task).

* **Split MNIST-1D** — the ten classes in five tasks of two, {0, 1}, {2, 3},
  ... In the *task-incremental* setting the learner is told which task an
  example comes from and only has to choose between that task's two classes;
  in the *class-incremental* setting it must choose among every class seen so
  far, which is much harder (van de Ven & Tolias 2019, "Three scenarios for
  continual learning").
* **Permuted MNIST-1D** — every task is the full ten-class problem with the 40
  inputs in a fixed random order of its own (the *domain-incremental* setting:
  same labels, new input distribution; Goodfellow et al. 2013).
"""
from collections import namedtuple

import numpy as np

from .._kernels.checks import is_int
from ..data import MNIST1D, TensorDataset

__all__ = ["Task", "split_mnist1d", "permuted_mnist1d"]

Task = namedtuple("Task", ["train", "test", "classes", "permutation"])
Task.__doc__ = """One task of a sequence: TensorDatasets ``train`` and ``test`` of (x, y, task id),
the ``classes`` it uses (the labels keep their original numbers) and the input ``permutation`` (or None)."""


def _check_train_size(train_size, what):
    if train_size is not None and (not is_int(train_size) or train_size < 1):
        raise ValueError(f"{what}: train_size must be a positive integer or None, got {train_size!r}")


def _with_task_id(x, y, task_id):
    return TensorDataset(x, y, np.full(len(y), task_id, np.int64))


def split_mnist1d(num_tasks=5, train_size=None):
    """MNIST-1D split into ``num_tasks`` tasks of ``10 // num_tasks`` consecutive classes each.

    ``train_size`` keeps the first that many training examples of each task
    (None: all, about 800 per task of two classes).
    """
    if not is_int(num_tasks) or num_tasks < 1 or 10 % num_tasks:
        raise ValueError(f"split_mnist1d: num_tasks must be an integer dividing the 10 classes, got {num_tasks!r}")
    _check_train_size(train_size, "split_mnist1d")
    (x, y), (x_test, y_test) = MNIST1D(train=True).arrays, MNIST1D(train=False).arrays
    width = 10 // num_tasks
    tasks = []
    for t in range(num_tasks):
        classes = tuple(range(t * width, (t + 1) * width))
        train, test = np.isin(y, classes), np.isin(y_test, classes)
        keep = np.flatnonzero(train)[:train_size]
        tasks.append(Task(_with_task_id(x[keep], y[keep], t), _with_task_id(x_test[test], y_test[test], t),
                          classes, None))
    return tasks


def permuted_mnist1d(num_tasks=5, seed=0, train_size=None):
    """``num_tasks`` copies of MNIST-1D, each with its inputs shuffled by its own fixed permutation.

    The first task keeps the original order; ``seed`` draws the others.
    """
    if not is_int(num_tasks) or num_tasks < 1:
        raise ValueError(f"permuted_mnist1d: num_tasks must be an integer >= 1, got {num_tasks!r}")
    _check_train_size(train_size, "permuted_mnist1d")
    (x, y), (x_test, y_test) = MNIST1D(train=True).arrays, MNIST1D(train=False).arrays
    rng = np.random.default_rng(seed)
    tasks = []
    for t in range(num_tasks):
        order = np.arange(x.shape[1]) if t == 0 else rng.permutation(x.shape[1])
        keep = slice(None, train_size)
        tasks.append(Task(_with_task_id(x[keep][:, order], y[keep], t), _with_task_id(x_test[:, order], y_test, t),
                          tuple(range(10)), order))
    return tasks
