"""The searches: random search, successive halving and Hyperband, and objectives made from recipes."""
import math

import numpy as np

from .results import SearchResult, Trial
from .._kernels.checks import real_number
from .space import sample_config

__all__ = ["random_search", "successive_halving", "hyperband", "recipe_objective"]


def _check_mode(mode):
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")


def _score(value, metric, where):
    if isinstance(value, dict):
        if metric is None or metric not in value:
            raise KeyError(f"{where}: the objective returned a dict with keys {sorted(value)}; "
                           f"pass metric= naming the one to optimise (got metric={metric!r})")
        value = value[metric]
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: the objective must return a number (or a dict with metric), "
                        f"got {type(value).__name__}") from None


def random_search(objective, space, num_samples, *, budget=None, seed=0, mode="min", metric=None):
    """Evaluate ``objective(config)`` on ``num_samples`` configurations drawn from ``space``.

    The same ``seed`` draws the same configurations. With ``budget`` given the
    objective is called as ``objective(config, budget)``, as the halving methods
    call it, and each trial's history is ``[(budget, score)]``; without, it is
    ``[(1, score)]`` (one full evaluation).

    >>> from nnlite.tune import uniform
    >>> res = random_search(lambda c: (c["x"] - 2) ** 2, {"x": uniform(0, 5)}, 40, seed=0)
    >>> abs(res.best_config["x"] - 2) < 0.2
    True
    """
    _check_mode(mode)
    num_samples = _check_num_samples(num_samples, "random_search")
    if budget is not None and not 0 < real_number("random_search", "budget", budget) < math.inf:
        raise ValueError(f"random_search: budget must be None or a finite number > 0, got {budget}")
    rng = np.random.default_rng(seed)
    trials = [Trial(i, sample_config(space, rng)) for i in range(num_samples)]
    for t in trials:
        value = objective(dict(t.config)) if budget is None else objective(dict(t.config), budget)
        t.history.append((1 if budget is None else budget, _score(value, metric, "random_search")))
    meta = {"num_samples": num_samples, "budget": budget, "seed": seed}
    return SearchResult(trials, mode, "random_search", meta)


def _check_num_samples(num_samples, where):
    # int(2.5) would quietly run two trials
    if isinstance(num_samples, bool) or int(num_samples) != num_samples or num_samples < 1:
        raise ValueError(f"{where}: num_samples must be a whole number >= 1, got {num_samples!r}")
    return int(num_samples)


def _rungs(min_budget, max_budget, eta):
    """Budgets min_budget * eta**i, capped at max_budget (the last rung is max_budget)."""
    budgets, b = [], float(min_budget)
    while b < max_budget * (1 - 1e-9):
        budgets.append(b)
        b *= eta
    budgets.append(float(max_budget))
    return budgets


def _check_budgets(min_budget, max_budget, eta, where):
    for what, value in (("min_budget", min_budget), ("max_budget", max_budget), ("eta", eta)):
        real_number(where, what, value)
    if not (min_budget > 0 and math.inf > max_budget >= min_budget):
        raise ValueError(f"{where}: expected 0 < min_budget <= max_budget < inf, got min_budget={min_budget}, "
                         f"max_budget={max_budget}")
    if not eta > 1:
        raise ValueError(f"{where}: the halving rate eta must be > 1, got {eta}")


def _as_budget(b):
    return int(round(b)) if abs(b - round(b)) < 1e-9 else b


def _halve(objective, trials, budgets, eta, mode, metric, where):
    """Run successive halving on ``trials`` over the rungs ``budgets``; return every trial."""
    alive = list(trials)
    for i, budget in enumerate(budgets):
        for t in alive:
            t.history.append((_as_budget(budget), _score(objective(dict(t.config), _as_budget(budget)),
                                                         metric, where)))
        if i == len(budgets) - 1:
            break
        keep = max(1, int(len(alive) // eta))
        sign = -1.0 if mode == "max" else 1.0
        alive = sorted(alive, key=lambda t: (sign * t.score if math.isfinite(t.score) else math.inf,
                                             t.trial_id))[:keep]
    return trials


def successive_halving(objective, space, num_samples, *, min_budget, max_budget, eta=3, seed=0, mode="min",
                       metric=None):
    """Draw ``num_samples`` configurations; evaluate, keep the best ``1/eta``, multiply the budget by ``eta``.

    ``objective(config, budget)`` trains with ``config`` for ``budget`` units
    (epochs, steps, examples) and returns the score. Rung ``i`` evaluates the
    survivors at ``min_budget * eta**i`` (the last rung at ``max_budget``).
    The objective is called afresh at each rung (no warm start), so the cost
    is the sum of the budgets in every trial's history: :attr:`SearchResult.total_budget`.

    >>> from nnlite.tune import uniform
    >>> res = successive_halving(lambda c, b: (c["x"] - 2) ** 2 + 1 / b, {"x": uniform(0, 5)}, 27,
    ...                          min_budget=1, max_budget=9, eta=3, seed=0)
    >>> [len([t for t in res if t.budget == b]) for b in (1, 3, 9)]
    [18, 6, 3]
    """
    _check_mode(mode)
    _check_budgets(min_budget, max_budget, eta, "successive_halving")
    num_samples = _check_num_samples(num_samples, "successive_halving")
    rng = np.random.default_rng(seed)
    trials = [Trial(i, sample_config(space, rng)) for i in range(num_samples)]
    _halve(objective, trials, _rungs(min_budget, max_budget, eta), eta, mode, metric, "successive_halving")
    meta = {"num_samples": num_samples, "min_budget": min_budget, "max_budget": max_budget, "eta": eta,
            "seed": seed}
    return SearchResult(trials, mode, "successive_halving", meta)


def hyperband(objective, space, *, min_budget, max_budget, eta=3, seed=0, mode="min", metric=None):
    """Successive halving in several brackets, from many short trials to a few full ones (Li et al., 2017).

    With ``s_max = floor(log_eta(max_budget / min_budget))``, bracket ``s``
    (``s_max`` down to 0) starts ``ceil((s_max + 1) / (s + 1) * eta**s)``
    configurations at budget ``max_budget * eta**-s``. Bracket 0 is plain
    random search at the full budget. Returns all trials of all brackets;
    ``Trial.history`` shows how far each got.
    """
    _check_mode(mode)
    _check_budgets(min_budget, max_budget, eta, "hyperband")
    s_max = int(math.floor(math.log(max_budget / min_budget) / math.log(eta) + 1e-9))
    rng = np.random.default_rng(seed)
    trials, brackets = [], []
    for s in range(s_max, -1, -1):
        n = int(math.ceil((s_max + 1) / (s + 1) * eta ** s))
        start = max_budget * eta ** (-s)
        bracket = [Trial(len(trials) + i, sample_config(space, rng)) for i in range(n)]
        _halve(objective, bracket, _rungs(start, max_budget, eta), eta, mode, metric, "hyperband")
        trials += bracket
        brackets.append({"s": s, "num_samples": n, "min_budget": _as_budget(start)})
    meta = {"min_budget": min_budget, "max_budget": max_budget, "eta": eta, "seed": seed, "brackets": brackets}
    return SearchResult(trials, mode, "hyperband", meta)


# ------------------------------------------------------------------ recipes --

def recipe_objective(name, metric="test_loss", seed=0):
    """``objective(config, budget=None)`` that trains recipe ``name`` of ``nnlite train`` and returns ``metric``.

    ``config`` may set ``lr``, ``batch_size`` and ``weight_decay`` (written
    into the recipe's optimizer); ``budget`` is the number of epochs (None:
    the recipe's default). Every trial starts from the same ``seed``.
    The recipes measure on their test split: a search that selects on it
    reports an optimistic score. Report a final number on data the search
    never saw.
    """
    from .. import recipes

    # Named now, so a typo fails before the search starts rather than inside its first trial.
    if name not in recipes.RECIPES:
        raise ValueError(f"recipe_objective: unknown recipe {name!r}; expected one of {sorted(recipes.RECIPES)}")
    allowed = {"lr", "batch_size", "weight_decay"}

    def objective(config, budget=None):
        extra = set(config) - allowed
        if extra:
            raise ValueError(f"recipe_objective({name!r}): config keys must be among "
                             f"{sorted(allowed)}, got {sorted(extra)}")
        recipe = recipes.build(name, epochs=None if budget is None else int(budget), lr=config.get("lr"),
                               batch_size=config.get("batch_size"), seed=seed)
        if "weight_decay" in config:
            for group in recipe.optimizer.param_groups:
                group["weight_decay"] = float(config["weight_decay"])
        return recipes.run(recipe, progress=False)[metric]

    return objective
