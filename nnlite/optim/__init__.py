"""Optimizers, learning-rate schedules and the contiguous parameter arena (``nnlite.optim``).

Making an optimizer moves its parameters into aligned flat buffers
(:mod:`nnlite.optim.arena`); each ``step()`` is then one fused kernel call per
param group and dtype. ``optimizer.memory_report()`` shows where the bytes go.
"""
from . import arena, lr_scheduler  # noqa: F401
from .adagrad import Adagrad  # noqa: F401
from .adam import Adam, AdamW  # noqa: F401
from .arena import build_arena  # noqa: F401
from .memory import memory_report  # noqa: F401
from .optimizer import Optimizer, param_groups_by_kind  # noqa: F401
from .rmsprop import RMSprop  # noqa: F401
from .sgd import SGD  # noqa: F401

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "build_arena",
           "memory_report", "param_groups_by_kind", "lr_scheduler"]
