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
one, and a printable :meth:`~SearchResult.table`. :func:`run` is the
experiment behind ``nnlite train digits-tune``.
"""
import math

import numpy as np

__all__ = ["uniform", "loguniform", "randint", "choice", "sample_config", "Trial", "SearchResult",
           "random_search", "successive_halving", "hyperband", "recipe_objective"]


# ------------------------------------------------------------ search space --

class Domain:
    """The values one hyperparameter may take; ``sample(rng)`` draws one."""

    def sample(self, rng):
        raise NotImplementedError


class _Uniform(Domain):
    def __init__(self, low, high, log):
        name = "loguniform" if log else "uniform"
        if not (math.isfinite(low) and math.isfinite(high) and low < high) or (log and low <= 0):
            need = "0 < low < high" if log else "low < high"
            raise ValueError(f"{name}: expected {need}, got low={low}, high={high}")
        self.low, self.high, self.log = float(low), float(high), log

    def sample(self, rng):
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def __repr__(self):
        return f"{'loguniform' if self.log else 'uniform'}({self.low:g}, {self.high:g})"


class _RandInt(Domain):
    def __init__(self, low, high):
        if not (int(low) == low and int(high) == high and low < high):
            raise ValueError(f"randint: expected integers low < high, got low={low}, high={high}")
        self.low, self.high = int(low), int(high)

    def sample(self, rng):
        return int(rng.integers(self.low, self.high))

    def __repr__(self):
        return f"randint({self.low}, {self.high})"


class _Choice(Domain):
    def __init__(self, categories):
        self.categories = list(categories)
        if not self.categories:
            raise ValueError("choice: expected at least one category, got none")

    def sample(self, rng):
        return self.categories[int(rng.integers(len(self.categories)))]

    def __repr__(self):
        return f"choice({self.categories!r})"


def uniform(low, high):
    """A float drawn uniformly from [low, high)."""
    return _Uniform(low, high, log=False)


def loguniform(low, high):
    """A positive float whose logarithm is uniform: each factor of 10 is equally likely.

    The right domain for scale parameters such as the learning rate or the
    weight decay, whose useful values span orders of magnitude.
    """
    return _Uniform(low, high, log=True)


def randint(low, high):
    """An integer drawn uniformly from low, ..., high - 1 (``high`` excluded, as in NumPy)."""
    return _RandInt(low, high)


def choice(categories):
    """One of ``categories``, each equally likely."""
    return _Choice(categories)


def sample_config(space, rng):
    """One configuration: a value drawn from each domain of ``space`` (fixed values copied), in key order."""
    if not isinstance(space, dict):
        raise TypeError(f"search space: expected a dict of name -> domain, got {type(space).__name__}")
    return {name: value.sample(rng) if isinstance(value, Domain) else value for name, value in space.items()}


# ------------------------------------------------------------------ results --

class Trial:
    """One configuration and what it scored: ``history`` holds ``(budget, score)`` per evaluation."""

    def __init__(self, trial_id, config):
        self.trial_id, self.config, self.history = trial_id, config, []

    @property
    def score(self):
        """The score at the largest budget this trial reached."""
        return self.history[-1][1] if self.history else None

    @property
    def budget(self):
        return self.history[-1][0] if self.history else None

    def __repr__(self):
        return f"Trial({self.trial_id}, {self.config}, score={self.score}, budget={self.budget})"


def _format(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class SearchResult:
    """The trials of one search, best first by :attr:`best`; ``mode`` says whether lower or higher wins.

    ``total_budget`` is the sum of the budgets of all evaluations (for random
    search, one per trial): the cost of the search in the objective's units.
    """

    def __init__(self, trials, mode, method, meta):
        self.trials, self.mode, self.method, self.meta = list(trials), mode, method, dict(meta)

    def _key(self, trial):
        # Trials that reached a larger budget rank first: their score is the better-informed one.
        score = trial.score
        if score is None or not math.isfinite(score):
            score = math.inf
        elif self.mode == "max":
            score = -score
        return (-(trial.budget or 0), score, trial.trial_id)

    def ranked(self):
        """Trials from best to worst (largest budget reached first, then by score)."""
        return sorted(self.trials, key=self._key)

    @property
    def best(self):
        return self.ranked()[0]

    @property
    def best_config(self):
        return dict(self.best.config)

    @property
    def total_budget(self):
        return float(sum(b for t in self.trials for b, _ in t.history))

    def __len__(self):
        return len(self.trials)

    def __iter__(self):
        return iter(self.trials)

    def table(self, top=None):
        """The trials as an aligned text table, best first (``top``: only the first ``top`` rows)."""
        names = list(self.trials[0].config) if self.trials else []
        header = ["trial", *names, "budget", "score"]
        rows = [[str(t.trial_id), *(_format(t.config[n]) for n in names), _format(t.budget), _format(t.score)]
                for t in self.ranked()[:top]]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [header, *rows]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def to_dict(self):
        """JSON-able: the method, its meta-parameters, every trial's config and history, the best trial."""
        return {"method": self.method, "mode": self.mode, "meta": self.meta,
                "trials": [{"trial_id": t.trial_id, "config": t.config, "history": [list(h) for h in t.history]}
                           for t in self.trials],
                "best": {"trial_id": self.best.trial_id, "config": self.best_config, "score": self.best.score}}

    def __repr__(self):
        return f"SearchResult({self.method}, {len(self.trials)} trials, best={self.best!r})"


# ------------------------------------------------------------------ searches --

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

    >>> res = random_search(lambda c: (c["x"] - 2) ** 2, {"x": uniform(0, 5)}, 40, seed=0)
    >>> abs(res.best_config["x"] - 2) < 0.2
    True
    """
    _check_mode(mode)
    if int(num_samples) < 1:
        raise ValueError(f"random_search: num_samples must be >= 1, got {num_samples}")
    rng = np.random.default_rng(seed)
    trials = [Trial(i, sample_config(space, rng)) for i in range(int(num_samples))]
    for t in trials:
        value = objective(dict(t.config)) if budget is None else objective(dict(t.config), budget)
        t.history.append((1 if budget is None else budget, _score(value, metric, "random_search")))
    meta = {"num_samples": int(num_samples), "budget": budget, "seed": seed}
    return SearchResult(trials, mode, "random_search", meta)


def _rungs(min_budget, max_budget, eta):
    """Budgets min_budget * eta**i, capped at max_budget (the last rung is max_budget)."""
    budgets, b = [], float(min_budget)
    while b < max_budget * (1 - 1e-9):
        budgets.append(b)
        b *= eta
    budgets.append(float(max_budget))
    return budgets


def _check_budgets(min_budget, max_budget, eta, where):
    if not (min_budget > 0 and max_budget >= min_budget):
        raise ValueError(f"{where}: expected 0 < min_budget <= max_budget, got min_budget={min_budget}, "
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

    >>> res = successive_halving(lambda c, b: (c["x"] - 2) ** 2 + 1 / b, {"x": uniform(0, 5)}, 27,
    ...                          min_budget=1, max_budget=9, eta=3, seed=0)
    >>> [len([t for t in res if t.budget == b]) for b in (1, 3, 9)]
    [18, 6, 3]
    """
    _check_mode(mode)
    _check_budgets(min_budget, max_budget, eta, "successive_halving")
    if int(num_samples) < 1:
        raise ValueError(f"successive_halving: num_samples must be >= 1, got {num_samples}")
    rng = np.random.default_rng(seed)
    trials = [Trial(i, sample_config(space, rng)) for i in range(int(num_samples))]
    _halve(objective, trials, _rungs(min_budget, max_budget, eta), eta, mode, metric, "successive_halving")
    meta = {"num_samples": int(num_samples), "min_budget": min_budget, "max_budget": max_budget, "eta": eta,
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
    from . import recipes

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


# --------------------------------------------------------------- experiment --

def _digits_search_problem(seed):
    """The digits training split cut into train (1000) and validation (438) examples; the test split kept apart."""
    from . import nn, optim
    from .autograd import no_grad
    from .data import DataLoader, Digits
    from .nn import functional as F
    from .random import manual_seed

    x, y = next(iter(DataLoader(Digits(train=True), batch_size=2000)))
    test_x, test_y = next(iter(DataLoader(Digits(train=False), batch_size=2000)))
    train_x, train_y, val_x, val_y = x[:1000], y[:1000], x[1000:], y[1000:]

    def train(config, epochs):
        manual_seed(seed)
        model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        opt = optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9, weight_decay=config["weight_decay"])
        order = np.random.default_rng(seed)
        for _ in range(int(epochs)):
            perm = order.permutation(len(train_y))
            for i in range(0, len(perm), 100):
                opt.zero_grad()
                F.cross_entropy(model(train_x[perm[i:i + 100]]), train_y[perm[i:i + 100]]).backward()
                opt.step()
        with no_grad():
            val_loss = float(F.cross_entropy(model(val_x), val_y).data)
            test_accuracy = float((model(test_x).data.argmax(1) == test_y.data).mean())
        return {"val_loss": val_loss if math.isfinite(val_loss) else 10.0, "test_accuracy": test_accuracy}

    return train


def run(*, seed, epochs=None, progress=True):
    """``nnlite train digits-tune``: successive halving against random search at the same budget.

    A two-layer MLP on scikit-learn's digits; the search space is
    ``lr ~ loguniform(1e-4, 3)``, ``weight_decay ~ loguniform(1e-6, 0.1)``;
    configurations are scored by the loss on a validation split. Successive
    halving starts 27 configurations at 1 epoch with ``eta = 3`` up to
    ``epochs`` (9 by default); random search trains as many configurations for
    ``epochs`` each as the same total budget allows. The test accuracy of each
    search's best configuration is measured once, after the search.
    """
    max_budget = int(epochs or 9)
    train = _digits_search_problem(seed)
    space = {"lr": loguniform(1e-4, 3.0), "weight_decay": loguniform(1e-6, 1e-1)}

    def objective(config, budget):
        return train(config, budget)["val_loss"]

    halving = successive_halving(objective, space, 27, min_budget=1, max_budget=max_budget, eta=3, seed=seed)
    num_random = max(1, int(halving.total_budget // max_budget))
    random = random_search(objective, space, num_random, budget=max_budget, seed=seed + 1)
    results = {}
    for name, res in (("successive_halving", halving), ("random_search", random)):
        final = train(res.best_config, max_budget)
        results[name] = {"configurations": len(res), "total_budget": res.total_budget,
                         "best_config": res.best_config, "best_val_loss": res.best.score,
                         "test_accuracy": final["test_accuracy"], "table": res.table(top=10),
                         "search": res.to_dict()}
        if progress:
            print(f"{name}:\n{results[name]['table']}")
    h, r = results["successive_halving"], results["random_search"]
    summary = (f"digits MLP, lr and weight decay, {h['total_budget']:.0f} epochs each: successive halving "
               f"({h['configurations']} configurations) best validation loss {h['best_val_loss']:.3f}, test "
               f"accuracy {h['test_accuracy']:.1%}; random search ({r['configurations']}) "
               f"{r['best_val_loss']:.3f}, {r['test_accuracy']:.1%}")
    return {"experiment": "digits-tune", "seed": seed, "max_budget": max_budget, **results, "summary": summary}
