"""Neural architecture search: learning the structure that holds the parameters.

* :class:`SearchNetwork`, :class:`MixedOp`, :class:`BilevelSearch` — DARTS:
  every edge blends candidate operations with the softmax of *architecture
  parameters* (Parameters of kind ``"architecture"``), learned on validation
  data while the weights learn on training data (first or second order);
* :func:`derive_genotype`, :class:`DerivedNetwork` — the discrete cell by the
  paper's rule, retrained from scratch;
* :class:`LatencyTable` — per-operation latencies measured with nnlite's
  kernels, for hardware-aware search;
* :func:`net2wider`, :func:`net2deeper`, :func:`progressive_search` — growing a
  model with function-preserving transformations.

The ``darts-mnist1d`` experiment is :func:`nnlite.nas.experiment.run`.
"""
from .darts import BilevelSearch, DerivedNetwork, Genotype, SearchCell, SearchNetwork, derive_genotype
from .latency import LatencyTable, measure_latency
from .operations import PRIMITIVES, MixedOp, make_operation
from .progressive import net2deeper, net2wider, progressive_search
from .search import accuracy, darts_search, genotype_latency, mnist1d_search_split, train_from_scratch

__all__ = ["PRIMITIVES", "MixedOp", "make_operation", "SearchCell", "SearchNetwork", "BilevelSearch", "Genotype",
           "derive_genotype", "DerivedNetwork", "LatencyTable", "measure_latency", "net2wider", "net2deeper",
           "progressive_search", "mnist1d_search_split", "darts_search", "train_from_scratch", "genotype_latency",
           "accuracy"]
