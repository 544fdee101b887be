"""Continual learning: keep what earlier tasks taught while learning new ones.

A network trained on task after task overwrites the parameters the earlier
tasks relied on — *catastrophic forgetting* (McCloskey & Cohen 1989). Three
families of remedies, one file each:

* regularisation — :class:`EWC` (elastic weight consolidation) anchors the
  parameters the Fisher information marks as important;
* rehearsal — :class:`ReservoirBuffer` keeps a uniform sample of the past
  to mix into new batches (experience replay);
* architecture — :class:`ProgressiveNetwork` adds a column of parameters per
  task and freezes the old ones, so nothing is forgotten.

The benchmarks (:func:`split_mnist1d`, :func:`permuted_mnist1d`), the loop
(:func:`train_sequence`) and the metrics of Lopez-Paz & Ranzato (2017) —
the accuracy matrix R, :func:`average_accuracy`, :func:`backward_transfer`,
:func:`forward_transfer` — make the methods comparable.
"""
from .benchmarks import Task, permuted_mnist1d, split_mnist1d
from .ewc import EWC
from .experiment import run
from .metrics import average_accuracy, backward_transfer, forward_transfer, plot_accuracy_matrix
from .progressive import ProgressiveNetwork
from .replay import ReservoirBuffer
from .sequence import METHODS, SETTINGS, mlp, train_sequence

__all__ = ["Task", "split_mnist1d", "permuted_mnist1d", "EWC", "ReservoirBuffer", "ProgressiveNetwork",
           "average_accuracy", "backward_transfer", "forward_transfer", "plot_accuracy_matrix", "METHODS",
           "SETTINGS", "mlp", "train_sequence", "run"]
