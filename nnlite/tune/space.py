"""The search space: the values each hyperparameter may take (Ray Tune's names)."""
import math

import numpy as np

from .._kernels.checks import real_number

__all__ = ["Domain", "uniform", "loguniform", "randint", "choice", "sample_config"]


class Domain:
    """The values one hyperparameter may take; ``sample(rng)`` draws one."""

    def sample(self, rng):
        raise NotImplementedError(f"{type(self).__name__} must define sample(rng)")


class _Uniform(Domain):
    def __init__(self, low, high, log):
        name = "loguniform" if log else "uniform"
        real_number(name, "low", low), real_number(name, "high", high)
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
        bounds = (real_number("randint", "low", low), real_number("randint", "high", high))
        if not (all(math.isfinite(b) and int(b) == b for b in bounds) and bounds[0] < bounds[1]):
            raise ValueError(f"randint: expected integers low < high, got low={low}, high={high}")
        self.low, self.high = int(low), int(high)

    def sample(self, rng):
        return int(rng.integers(self.low, self.high))

    def __repr__(self):
        return f"randint({self.low}, {self.high})"


class _Choice(Domain):
    def __init__(self, categories):
        if isinstance(categories, str):   # list("adam") would be four one-letter categories
            raise TypeError(f"choice: expected a list of categories, got the string {categories!r}")
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
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"sample_config: expected rng to be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return {name: value.sample(rng) if isinstance(value, Domain) else value for name, value in space.items()}
