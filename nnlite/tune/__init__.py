"""Meta-parameters: choosing hyperparameters by search.

Parameters are learned by gradient descent; hyperparameters (learning rate,
weight decay, width) are set before training. Choosing them is itself a
procedure with settings of its own, the *meta-parameters*: which values each
hyperparameter may take (the **search space**), how much training the search
may spend (the **budget**), and, for early stopping of bad trials, how
aggressively to cut (the **halving rate** ``eta``). This module holds three
such procedures, all seeded and reproducible:

* :func:`random_search` (Bergstra & Bengio, 2012, "Random Search for
  Hyper-Parameter Optimization"): draw ``num_samples`` configurations from the
  space and train each fully. When only a few hyperparameters matter, random
  points cover each of them far better than a grid of the same size.
* :func:`successive_halving` (Jamieson & Talwalkar, 2016): train many
  configurations on a small budget (a few epochs), keep the best ``1/eta``,
  give the survivors ``eta`` times the budget, repeat. Most of the compute
  goes to the promising configurations.
* :func:`hyperband` (Li et al., 2017, "Hyperband"): successive halving bets
  that a short run predicts a long one; Hyperband hedges that bet by running
  several brackets, from many configurations on a small budget to a few on
  the full budget.

A search space is a dict from hyperparameter names to domains —
:func:`uniform`, :func:`loguniform`, :func:`randint`, :func:`choice` (Ray
Tune's names) — or to fixed values. The objective is a user function
``objective(config) -> float`` (random search) or
``objective(config, budget) -> float`` (the halving methods), lower is better
unless ``mode="max"``; it may also return a dict, read at ``metric``.
:func:`recipe_objective` makes an objective from one of ``nnlite train``'s
recipes. Every search returns a :class:`SearchResult`: its trials, the best
one, and a printable :meth:`~SearchResult.table`. ``nnlite/tune/experiment.py`` is the
experiment behind ``nnlite train digits-tune``.
"""
from .results import SearchResult, Trial  # noqa: F401
from .search import hyperband, random_search, recipe_objective, successive_halving  # noqa: F401
from .space import choice, loguniform, randint, sample_config, uniform  # noqa: F401

__all__ = ["uniform", "loguniform", "randint", "choice", "sample_config", "Trial", "SearchResult",
           "random_search", "successive_halving", "hyperband", "recipe_objective"]
