"""Datasets that need no download: MNIST-1D, scikit-learn's digits, bundled text.

* :class:`MNIST1D` — Greydanus's 1-D analogue of MNIST (40 numbers per
  example, 10 classes, 4000 train / 1000 test), *generated* here with the
  ``mnist1d`` package's own generator and its published arguments, then
  cached as ``.npz`` under the user cache directory.
* :class:`Digits` — the 8x8 handwritten digits that scikit-learn ships.
* :func:`load_text` / :class:`CharDataset` — a public-domain play bundled
  with nnlite, for character-level language models.
"""
import functools
import hashlib
import importlib
import json
import os
import random as _pyrandom
import tempfile
from importlib import resources

import numpy as np

from .._kernels.checks import is_int
from ..tensor import Tensor
from .dataset import Dataset, TensorDataset

__all__ = ["MNIST1D", "Digits", "CharDataset", "CharVocab", "load_text", "available_texts",
           "cache_dir", "require"]


def require(module, purpose):
    """Import an optional package, or fail with the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        # Only the package itself being absent means "install it"; a module it fails to
        # import, or an import cut short (a Ctrl-C), is reported as what it is.
        parts = module.split(".")
        if e.name not in {".".join(parts[:i]) for i in range(1, len(parts) + 1)}:
            raise
        raise ImportError(f"{purpose} needs the optional package {parts[0]!r}: "
                          f'pip install "nnlite[data]"') from None


def cache_dir():
    """Where generated datasets are kept: $NNLITE_CACHE, else $XDG_CACHE_HOME/nnlite, else ~/.cache/nnlite."""
    root = os.environ.get("NNLITE_CACHE")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "nnlite")
    os.makedirs(root, exist_ok=True)
    return root


def _save_npz_atomic(path, arrays):
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# ------------------------------------------------------------------ MNIST-1D --
def _mnist1d_arrays(args=None):
    """The MNIST-1D arrays for ``args`` (a dict; the published defaults when None)."""
    if args is not None and not isinstance(args, dict):
        raise TypeError(f"MNIST1D: args must be a dict of dataset arguments or None, got {type(args).__name__}")
    mnist1d_data = require("mnist1d.data", "MNIST1D")
    published = mnist1d_data.get_dataset_args(as_dict=True)
    settings = {k: v for k, v in published.items() if k != "url"}
    settings.update(args or {})
    unknown = sorted(set(settings) - set(published))
    if unknown:
        raise ValueError(f"MNIST1D: unknown dataset arguments {unknown}; known: {sorted(published)}")
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir(), f"mnist1d-{key}.npz")
    if os.path.exists(path):
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in ("x", "y", "x_test", "y_test")}
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is regenerated below
    # make_dataset reseeds NumPy's and Python's global generators; put them back afterwards.
    np_state, py_state = np.random.get_state(), _pyrandom.getstate()
    try:
        data = mnist1d_data.make_dataset(args=_ObjectView(settings))
    finally:
        np.random.set_state(np_state)
        _pyrandom.setstate(py_state)
    arrays = {"x": data["x"].astype(np.float32), "y": data["y"].astype(np.int64),
              "x_test": data["x_test"].astype(np.float32), "y_test": data["y_test"].astype(np.int64)}
    _save_npz_atomic(path, arrays)
    return arrays


def _positive_int(owner, name, value):
    """``value`` as an int, or a ValueError naming ``owner``'s argument (bools and floats refused)."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return int(value)


class _ObjectView:
    def __init__(self, d):
        self.__dict__ = dict(d)


class MNIST1D(TensorDataset):
    """MNIST-1D: x float32 (N, 40), y int64 (N,); 4000 train and 1000 test examples.

    Generated on first use with ``mnist1d.data.make_dataset`` and the
    published ``get_dataset_args()`` (override any of them with ``args``),
    then read from the cache. Reference test accuracies for the published
    setups: logistic regression ~32%, MLP ~68%, CNN ~94%.
    """

    def __init__(self, train=True, args=None):
        arrays = _mnist1d_arrays(args)
        x, y = (arrays["x"], arrays["y"]) if train else (arrays["x_test"], arrays["y_test"])
        super().__init__(x, y)
        self.classes = list(range(10))


# -------------------------------------------------------------------- digits --
@functools.lru_cache(maxsize=1)
def _digits_arrays():
    bunch = require("sklearn.datasets", "Digits").load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    x.flags.writeable = False  # shared between datasets: nobody may change it in place
    y = bunch.target.astype(np.int64)
    y.flags.writeable = False
    return x, y


class Digits(TensorDataset):
    """scikit-learn's 1797 handwritten digits, 8x8 pixels scaled to [0, 1].

    ``flatten=True`` gives x of shape (N, 64), else (N, 1, 8, 8). The test
    set is a fixed random ``test_size`` fraction of the examples (seeded by
    ``split_seed``), so every run trains and tests on the same examples.
    """

    def __init__(self, train=True, flatten=True, test_size=0.2, split_seed=0):
        if isinstance(test_size, bool) or not isinstance(test_size, (float, int, np.floating, np.integer)) \
                or not 0 < test_size < 1:
            raise ValueError(f"Digits: test_size must be a fraction in (0, 1), got {test_size!r}")
        if not is_int(split_seed) or split_seed < 0:
            raise ValueError(f"Digits: split_seed must be a non-negative int, got {split_seed!r}")
        x, y = _digits_arrays()
        n_test = int(round(len(y) * test_size))
        if not 0 < n_test < len(y):   # a fraction so small (or so near 1) that one side would be empty
            raise ValueError(f"Digits: test_size={test_size} leaves {n_test} of {len(y)} examples for "
                             f"testing; both sides need at least one")
        perm = np.random.Generator(np.random.PCG64(split_seed)).permutation(len(y))
        idx = perm[n_test:] if train else perm[:n_test]
        x = x[idx] if flatten else x[idx].reshape(-1, 1, 8, 8)
        super().__init__(np.ascontiguousarray(x), y[idx])
        self.classes = list(range(10))


# ---------------------------------------------------------------------- text --
def available_texts():
    """Names of the texts bundled with nnlite."""
    folder = resources.files("nnlite.data") / "text"
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".txt"))


def load_text(name="hamlet"):
    """A bundled public-domain text as one string (see nnlite/data/text/README.md)."""
    names = available_texts()
    if name not in names:
        raise ValueError(f"load_text: no bundled text {name!r}; available: {names}")
    return (resources.files("nnlite.data") / "text" / f"{name}.txt").read_text(encoding="utf-8")


class CharVocab:
    """Characters <-> integer ids, in sorted order of the characters of a text."""

    def __init__(self, text):
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, text):
        try:
            return np.fromiter((self.index[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError as e:
            raise ValueError(f"CharVocab.encode: character {e.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids):
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= len(self.chars)):
            raise ValueError(f"CharVocab.decode: ids must be ints in [0, {len(self.chars)}), got "
                             f"{ids.dtype} values in [{ids.min()}, {ids.max()}]")
        return "".join(self.chars[int(i)] for i in ids)


class CharDataset(Dataset):
    """Next-character prediction: example i is ``(ids[s:s+block_size], ids[s+1:s+block_size+1])``, s = i*stride.

    With ``stride=1`` every position starts an example (a 150 KB text gives
    150 thousand overlapping windows); a larger stride gives fewer, less
    overlapping windows per epoch.
    """

    def __init__(self, ids, block_size, stride=1):
        given = np.asarray(ids)
        if given.size and given.dtype.kind not in "iu":   # a cast would cut 1.7 to 1 unnoticed
            raise TypeError(f"CharDataset: ids must be integer character ids (CharVocab.encode gives "
                            f"them), got dtype {given.dtype}")
        ids = given.astype(np.int64).reshape(-1)
        block_size = _positive_int("CharDataset", "block_size", block_size)
        stride = _positive_int("CharDataset", "stride", stride)
        if len(ids) < block_size + 1:
            raise ValueError(f"CharDataset: need at least block_size + 1 characters, got "
                             f"block_size={block_size} and {len(ids)} characters")
        self.ids = ids
        self.block_size, self.stride = block_size, stride
        # Every window of block_size + 1 characters, as a view (no copy of the text).
        self._windows = np.lib.stride_tricks.sliding_window_view(ids, block_size + 1)[::stride]

    def __len__(self):
        return len(self._windows)

    def __getitem__(self, index):
        w = self._windows[index]
        return Tensor._make(w[:-1].copy(), None), Tensor._make(w[1:].copy(), None)

    def _gather(self, indices):
        w = self._windows[np.asarray(indices)]
        return Tensor._make(np.ascontiguousarray(w[:, :-1]), None), Tensor._make(np.ascontiguousarray(w[:, 1:]), None)
