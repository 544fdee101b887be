"""Random number generation: one seeded generator makes every draw reproducible.

Initializers, dropout, shuffling and ``nl.rand*`` all draw from
:func:`default_generator` unless given a :class:`Generator`. ``nl.manual_seed(s)``
reseeds it, so the same seed builds the same model and the same training run.
The state is plain JSON-able data, so checkpoints can store and restore it.
"""
import numpy as np

from ._kernels.checks import is_int

__all__ = ["Generator", "manual_seed", "default_generator", "seed", "initial_seed", "get_rng_state", "set_rng_state"]


# The seed of a Generator made without one: PyTorch's, so that it too draws the same every run.
DEFAULT_SEED = 67280421310721


class Generator:
    """A seeded source of random numbers (NumPy's PCG64 underneath).

    Without a seed it starts from :data:`DEFAULT_SEED`, as ``torch.Generator()``
    does, so an unseeded generator is reproducible too. ``device`` is accepted
    as in PyTorch (``Generator(device="cpu")``); nnlite runs on the CPU only.
    """

    def __init__(self, seed=None, *, device="cpu"):
        if str(device) != "cpu":
            raise ValueError(f"Generator: nnlite draws on the CPU only; expected device='cpu', got {device!r}")
        self.device = "cpu"
        self.manual_seed(DEFAULT_SEED if seed is None else seed)

    def manual_seed(self, seed):
        """Reseed; any 64-bit seed, signed or not (a negative one counts modulo 2**64, as in PyTorch)."""
        if not is_int(seed):
            raise TypeError(f"manual_seed: expected an int, got {type(seed).__name__}")
        seed = int(seed)
        if not -2**63 <= seed < 2**64:
            raise ValueError(f"manual_seed: expected a seed in [-2**63, 2**64), got {seed}")
        self._seed = seed % 2**64
        self.np = np.random.Generator(np.random.PCG64(self._seed))
        return self

    def initial_seed(self):
        return self._seed

    def seed(self):
        """Reseed from fresh entropy (not reproducible); returns the seed used, as PyTorch's does."""
        s = int(np.random.SeedSequence().entropy % 2**64)
        self.manual_seed(s)
        return s

    def get_state(self):
        """A JSON-serialisable snapshot of the generator."""
        st = self.np.bit_generator.state
        return {"seed": self._seed, "bit_generator": st["bit_generator"],
                "state": {"state": int(st["state"]["state"]), "inc": int(st["state"]["inc"])},
                "has_uint32": int(st["has_uint32"]), "uinteger": int(st["uinteger"])}

    def set_state(self, state):
        try:
            self._seed = int(state["seed"])
            bg = np.random.PCG64()
            bg.state = {"bit_generator": state["bit_generator"], "state": dict(state["state"]),
                        "has_uint32": state["has_uint32"], "uinteger": state["uinteger"]}
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"set_state: not a generator state ({e})") from None
        self.np = np.random.Generator(bg)
        return self


_default = Generator(0)


def default_generator():
    return _default


def manual_seed(seed):
    """Reseed the global generator; returns it."""
    return _default.manual_seed(seed)


def seed():
    """Seed the global generator from fresh entropy; returns the seed used."""
    return _default.seed()


def initial_seed():
    """The seed the global generator was last seeded with."""
    return _default.initial_seed()


def get_rng_state():
    return _default.get_state()


def set_rng_state(state):
    _default.set_state(state)


def _gen(generator):
    """The NumPy generator behind ``generator`` (or the global one)."""
    if generator is None:
        return _default.np
    if not isinstance(generator, Generator):
        kind = type(generator)   # by module too: NumPy's generator is also called Generator
        name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        raise TypeError(f"generator must be an nl.Generator or None, got {name}")
    return generator.np
