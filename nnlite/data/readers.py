"""Readers for data files a user brings: MNIST-format IDX, NumPy ``.npz``, CSV.

IDX is the format of the original MNIST files (``train-images-idx3-ubyte``):

====== ===========================================================
bytes  meaning
====== ===========================================================
0-1    zero
2      element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
       0x0D float32, 0x0E float64
3      number of dimensions ``ndim``
4...   ``ndim`` sizes, each a big-endian uint32
then   the elements, big-endian, row-major
====== ===========================================================

The readers check every field and say what was wrong, because a truncated
download otherwise shows up much later as a mysteriously bad model.
"""
import gzip
import os

import numpy as np

from .._kernels.checks import is_int
from .dataset import TensorDataset

__all__ = ["read_idx", "load_npz", "load_csv", "MNIST"]

IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":  # the gzip magic, whatever the file is called
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"{path}: looks gzipped but does not decompress ({e})") from None
    return raw


def read_idx(path):
    """Read an IDX file (gzipped or not) into a NumPy array of its native dtype (uint8 for MNIST)."""
    raw = _read_bytes(path)
    name = os.fspath(path)
    if len(raw) < 4:
        raise ValueError(f"{name}: not an IDX file (only {len(raw)} bytes; the header needs 4)")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{name}: not an IDX file (magic number starts with bytes "
                         f"{raw[0]:#04x} {raw[1]:#04x}, expected 0x00 0x00)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"{c:#04x}" for c in IDX_TYPES)
        raise ValueError(f"{name}: unknown IDX element type {code:#04x} (expected one of {known})")
    if ndim == 0:
        raise ValueError(f"{name}: IDX header says 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{name}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions need {header})")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{name}: IDX header promises shape {shape} of {dtype.name} "
                         f"({expected} bytes of data) but the file holds {len(raw) - header}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def load_npz(path, keys=None):
    """The arrays of a ``.npz`` file as a dict (``allow_pickle`` stays off: no code runs)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: a single .npy array, not a .npz archive of named arrays")
    with archive:
        names = list(archive.files)
        wanted = names if keys is None else list(keys)
        missing = [k for k in wanted if k not in names]
        if missing:
            raise KeyError(f"{path}: no array named {', '.join(map(repr, missing))} (the file has {names})")
        return {k: archive[k] for k in wanted}


def load_csv(path, delimiter=",", skip_header=None, label_column=None, dtype=np.float32):
    """A numeric CSV file as an array, or ``(features, labels)`` with ``label_column``.

    ``skip_header=None`` skips a first line that is not numeric. Labels come
    back as int64 (class indices), features as ``dtype``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, encoding="utf-8") as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip()]
    if skip_header is None:
        skip_header = bool(lines) and not _is_numeric_row(lines[0], delimiter)
    rows = lines[1:] if skip_header else lines
    if not rows:
        raise ValueError(f"{path}: no data rows")
    table = []
    for lineno, line in enumerate(rows, start=2 if skip_header else 1):
        cells = line.split(delimiter)
        try:
            table.append([float(c) for c in cells])
        except ValueError:
            raise ValueError(f"{path}, line {lineno}: non-numeric value in {line!r:.80}") from None
        if len(cells) != len(table[0]):
            raise ValueError(f"{path}, line {lineno}: {len(cells)} columns, the first row has {len(table[0])}")
    data = np.asarray(table, dtype=np.float64)
    if label_column is None:
        return data.astype(dtype)
    ncol = data.shape[1]
    if not is_int(label_column):
        raise TypeError(f"{path}: label_column must be an int, got {label_column!r}")
    if not -ncol <= label_column < ncol:
        raise IndexError(f"{path}: label_column {label_column} out of range for {ncol} columns")
    labels = data[:, label_column]
    if not (np.isfinite(labels).all() and np.array_equal(labels, np.round(labels))):
        raise ValueError(f"{path}: label column {label_column} holds non-integer values")
    features = np.delete(data, label_column % ncol, axis=1)
    return features.astype(dtype), labels.astype(np.int64)


def _is_numeric_row(line, delimiter):
    try:
        [float(c) for c in line.split(delimiter)]
        return True
    except ValueError:
        return False


class MNIST(TensorDataset):
    """The MNIST files you already have, read from ``root`` (nnlite never downloads them).

    Looks for ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` (or
    ``t10k-...`` for ``train=False``), with or without ``.gz``. Images become
    float32 in [0, 1] of shape (N, 1, 28, 28); labels int64.
    """

    def __init__(self, root, train=True):
        prefix = "train" if train else "t10k"
        images = read_idx(self._find(root, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(self._find(root, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1:
            raise ValueError(f"MNIST: expected images of 3 dims and labels of 1, got {images.shape} "
                             f"and {labels.shape}")
        if len(images) != len(labels):
            raise ValueError(f"MNIST: {len(images)} images but {len(labels)} labels in {root}")
        super().__init__((images[:, None] / np.float32(255)).astype(np.float32), labels.astype(np.int64))

    @staticmethod
    def _find(root, stem):
        for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
            path = os.path.join(os.fspath(root), name)
            if os.path.isfile(path):
                return path
        raise FileNotFoundError(f"MNIST: no {stem}[.gz] in {root}")
