"""Checkpoints and weight files: safetensors underneath, never pickle.

* :func:`save_checkpoint` / :func:`load_checkpoint`: model, optimizer,
  scheduler, data-loader position, random state, step and user data in one
  file, written atomically and checksummed, so training resumes bit for bit.
* :func:`save_state_dict` / :func:`load_state_dict`: plain weights with the
  ``state_dict`` keys, interchangeable with PyTorch's safetensors files.
* :func:`read_checkpoint`: what a file holds, without a model.

A damaged or foreign file raises a subclass of :class:`CheckpointError` that
names the problem (see :mod:`nnlite.io.errors`).

A training loop that can be stopped at any moment::

    manager = nl.io.CheckpointManager("runs/mlp", keep_last=3)
    manager.load_latest(model=model, optimizer=opt, scheduler=sched, dataloader=loader)
    for x, y in loader:
        ...
        manager.save(step, model=model, optimizer=opt, scheduler=sched, dataloader=loader)

Weights for (or from) PyTorch::

    nl.save_state_dict(model.state_dict(), "mlp.safetensors")
    torch_model.load_state_dict(safetensors.torch.load_file("mlp.safetensors"))
"""
from .checkpoint import CheckpointManager, load_checkpoint, save_checkpoint  # noqa: F401
from .reader import Checkpoint, read_checkpoint  # noqa: F401
from .rotation import list_checkpoints, rotate  # noqa: F401
from .weights import load_state_dict, save_state_dict  # noqa: F401
from .errors import *  # noqa: F401,F403
from .errors import __all__ as _errors_all
from .migrations import FORMAT_VERSION  # noqa: F401
from .card import card_markdown, card_of, model_card  # noqa: F401
from .parameter_diff import ParameterDiff, diff  # noqa: F401
from .live_update import LineageError, hot_swap  # noqa: F401

__all__ = ["save_checkpoint", "load_checkpoint", "save_state_dict", "load_state_dict", "read_checkpoint",
           "Checkpoint", "CheckpointManager", "list_checkpoints", "rotate", "FORMAT_VERSION"] + _errors_all
__all__ += ["model_card", "card_of", "card_markdown", "diff", "ParameterDiff", "hot_swap", "LineageError"]
