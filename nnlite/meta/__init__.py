"""Meta-learning: learning to learn with parameters.

* :class:`MAML` — an initialisation that adapts in a few gradient steps, with
  the true second-order meta-gradient or its first-order approximation;
* :class:`Reptile` — the same goal without meta-gradients;
* :class:`MetaSGD` — MAML that also learns a per-parameter inner learning rate
  (Parameters of kind ``"meta"``);
* :class:`HyperNetwork` — parameter generation: a network that outputs another
  network's weights from a task embedding;
* :class:`SinusoidTasks` — the few-shot sinusoid regression benchmark, and
  :func:`pretrain`, its multi-task baseline.

The ``maml-sinusoid`` experiment (``nnlite train maml-sinusoid``) is
:func:`nnlite.meta.experiment.run`.
"""
from .baseline import pretrain
from .hypernetwork import HyperNetwork
from .maml import MAML, InnerLoop
from .metasgd import MetaSGD
from .reptile import Reptile
from .sinusoid import SinusoidTasks, TaskBatch, sinusoid_mlp, task_batched_call

__all__ = ["InnerLoop", "MAML", "MetaSGD", "Reptile", "HyperNetwork", "SinusoidTasks", "TaskBatch",
           "sinusoid_mlp", "task_batched_call", "pretrain"]
