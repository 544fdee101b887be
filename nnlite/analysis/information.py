"""Information content: the entropy of quantised weights and binned mutual information.

**Entropy of quantised weights** (Shannon, 1948). Round a weight tensor to
2^bits evenly spaced levels between its minimum and maximum, and let p_k be
the fraction of weights at level k. Then

    H = −Σ_k p_k log₂ p_k   bits per weight,

which is at most ``bits``. H is the size per weight an ideal entropy coder
(Huffman, as in Han et al., 2016, "Deep Compression") would reach at that
precision: a layer whose weights crowd around a few values holds less
information than its float32 storage suggests.

**Mutual information between a layer and the labels**, estimated by binning,
as in the "information plane" studies (Shwartz-Ziv & Tishby, 2017, "Opening
the black box of deep neural networks via information"). Each unit's
activation is cut into ``bins`` equal-width bins over the layer's range, a
sample's layer state T is the tuple of its units' bins, and

    I(T; Y) = H(T) + H(Y) − H(T, Y)

with the entropies of the empirical distributions, in bits.

Limits, which matter: the estimate is a property of the binning as much as of
the network. With N samples H(T) ≤ log₂ N, so a wide layer in which every
sample falls into its own cell gives I(T; Y) = H(Y) whatever it computes; the
value then only says that T identifies the sample. A deterministic network has
infinite true mutual information with continuous inputs, so only the binned
quantity is finite, and it changes with ``bins`` (Saxe et al., 2018, "On the
information bottleneck theory of deep learning"). Compare layers with the same
``bins`` and many more samples than occupied cells, and read the result as a
measure of how well the labels can be read off the coarse-grained state.
"""
import numpy as np

from .._kernels.checks import is_int
from ..tensor import Tensor

__all__ = ["entropy", "weight_entropy", "mutual_information", "unit_mutual_information"]


def _array(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def entropy(labels):
    """Shannon entropy in bits of the empirical distribution of ``labels`` (rows of a 2-D array are symbols).

    >>> entropy([0, 1, 0, 1])
    1.0
    """
    a = _array(labels)
    if a.ndim and len(a) == 0:
        raise ValueError(f"entropy: expected at least one label, got shape {a.shape}")
    a = a.reshape(len(a), -1) if a.ndim else a.reshape(1, 1)
    _, counts = np.unique(a, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def weight_entropy(weight, bits=8):
    """Bits per weight of ``weight`` rounded to 2^bits levels over its range (at most ``bits``).

    >>> import numpy as np
    >>> weight_entropy(np.array([-1.0, 1.0, -1.0, 1.0]))
    1.0
    """
    if not is_int(bits) or not 1 <= bits <= 24:   # 2^bits levels: a count
        raise ValueError(f"weight_entropy: bits must be an integer between 1 and 24, got {bits!r}")
    a = _array(weight).astype(np.float64).ravel()
    if a.size == 0:
        raise ValueError("weight_entropy: the weight is empty")
    if not np.isfinite(a).all():
        raise ValueError("weight_entropy: expected finite weights, got NaN or inf (they have no rounding level)")
    low, high = a.min(), a.max()
    if high == low:
        return 0.0
    levels = np.rint((a - low) / (high - low) * (2 ** bits - 1)).astype(np.int64)
    return entropy(levels)


def _binned(activations, bins):
    a = _array(activations).astype(np.float64)
    if a.ndim == 0 or len(a) == 0:
        raise ValueError(f"mutual_information: expected activations with at least one row, got shape {a.shape}")
    a = a.reshape(len(a), -1)
    if not np.isfinite(a).all():
        raise ValueError("mutual_information: expected finite activations, got NaN or inf (they fall in no bin)")
    low, high = a.min(), a.max()
    if high == low:
        return np.zeros(a.shape, np.int64)
    # Equal-width bins over the whole layer's range; the top edge goes into the last bin.
    return np.minimum(((a - low) / (high - low) * bins).astype(np.int64), bins - 1)


def mutual_information(activations, labels, bins=30):
    """I(T; Y) in bits between a layer's binned ``activations`` (N, ...) and integer ``labels`` (N,).

    Binning estimator; read the module docstring for its limits. The result
    lies between 0 and min(H(T), H(Y)).
    """
    if not is_int(bins) or bins < 1:
        raise ValueError(f"mutual_information: bins must be an integer >= 1, got {bins!r}")
    T = _binned(activations, bins)
    Y = _array(labels).reshape(-1)
    if len(T) != len(Y):
        raise ValueError(f"mutual_information: {len(T)} activation rows but {len(Y)} labels")
    joint = np.concatenate([T, Y[:, None].astype(np.int64)], 1)
    return max(0.0, entropy(T) + entropy(Y) - entropy(joint))


def unit_mutual_information(activations, labels, bins=10):
    """I(T_j; Y) in bits for each unit j of a layer on its own: a float64 array, one entry per unit.

    A single unit binned into ``bins`` cells has at most ``bins`` states, so
    with many samples per cell the estimate does not saturate the way a whole
    wide layer's does; its upward bias is roughly (bins − 1)(classes − 1) /
    (2 N ln 2) bits (Miller, 1955). It measures what each unit says about the
    labels alone, not what the units say together.
    """
    a = _array(activations)
    if a.ndim == 0 or len(a) == 0:
        raise ValueError(f"unit_mutual_information: expected activations with at least one row, got shape "
                         f"{a.shape}")
    a = a.reshape(len(a), -1)
    return np.array([mutual_information(a[:, j], labels, bins) for j in range(a.shape[1])])
