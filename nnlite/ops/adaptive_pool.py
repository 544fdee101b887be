"""Adaptive pooling: the mean or the maximum of each of ``output_size`` bins, whatever the input size.

Bin ``i`` of ``out`` over an axis of length ``L`` covers the positions
``floor(i * L / out)`` to ``ceil((i + 1) * L / out)`` (end excluded), PyTorch's
edges: the bins tile the axis, neighbours overlap by a position when ``out``
does not divide ``L``, and every bin holds at least one position.

Average pooling is a product with a constant (out, L) matrix per axis, whose
row i holds ``1 / (bin size)`` over bin i, so its gradient is matmul's.

For max pooling, forward finds, in NumPy, the flat index of each bin's winner in its ``H * W``
plane (the first maximum in row-major order; a bin holding a NaN picks its
last NaN, so the NaN propagates, as PyTorch's does) and reads the winners: a
gather. Backward scatter-adds the gradient to the winners (where bins overlap,
a position that wins two bins receives both), and that scatter's own backward
gathers again, so derivatives of every order follow. The winners are chosen by
the input, which marks its second derivative as zeros
(:func:`nnlite.autograd.chosen_by`), as for max pooling.
"""
import numpy as np

from .._kernels.checks import is_int
from ..autograd import Function, chosen_by, constant
from .conv import _check_pool
from .indexing import ScatterAdd
from .linalg import matmul
from .shape import reshape

__all__ = ["adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d"]


def _bin_edges(length, out):
    """(start, end) of each of ``out`` bins over ``length`` positions."""
    return [((i * length) // out, -(-((i + 1) * length) // out)) for i in range(out)]


def _winners(planes, out_h, out_w):
    """Flat index (in an H * W plane) of each bin's maximum, for planes of shape (P, H, W)."""
    count, height, width = planes.shape
    indices = np.empty((count, out_h, out_w), dtype=np.int64)
    for i, (h0, h1) in enumerate(_bin_edges(height, out_h)):
        for j, (w0, w1) in enumerate(_bin_edges(width, out_w)):
            window = planes[:, h0:h1, w0:w1].reshape(count, (h1 - h0) * (w1 - w0))
            best = np.argmax(window, axis=1)       # the first maximum (argmax stops at a NaN)
            nan = np.isnan(window)
            if nan.any():                          # PyTorch keeps the last NaN of a bin
                last_nan = window.shape[1] - 1 - np.argmax(nan[:, ::-1], axis=1)
                best = np.where(nan.any(axis=1), last_nan, best)
            rows, cols = np.divmod(best, w1 - w0)
            indices[:, i, j] = (h0 + rows) * width + (w0 + cols)
    return indices


class AdaptiveMaxPoolFunction(Function):
    """out[..., k] = flat[..., indices[..., k]]: each bin's winner, read from its flattened plane."""
    saves_inputs = False

    def forward(self, flat, indices):
        self.indices, self.shape = indices, flat.shape
        return np.take_along_axis(flat, indices, axis=-1)

    def backward(self, grad):
        spread = ScatterAdd.apply(grad, self.shape, len(self.shape) - 1, self.indices)
        return chosen_by(spread, self.inputs[0]), None


def _output_size(name, output_size, spatial):
    """``output_size`` (an int, or a tuple of ints) as a tuple of ints >= 0, one per spatial dim.

    With two spatial dims an entry may be None, "keep this size", as in PyTorch; a 1-D
    pooling has one size to give and takes no None. An output size of 0 gives an empty result.
    """
    allowed = "ints" if len(spatial) == 1 else "ints or None"
    shapes = "a tuple of one int" if len(spatial) == 1 else "a pair of ints, each of which may be None to keep that size"
    if isinstance(output_size, (tuple, list)):
        sizes = tuple(output_size)
        if len(sizes) != len(spatial):
            raise ValueError(f"{name}: output_size must be an int or {len(spatial)} of them, got {output_size!r}")
    elif is_int(output_size):
        sizes = (output_size,) * len(spatial)
    else:
        raise TypeError(f"{name}: output_size must be an int or {shapes}, "
                        f"got {type(output_size).__name__} {output_size!r}")
    result = []
    for size, keep in zip(sizes, spatial):
        if size is None and len(spatial) > 1:
            result.append(keep)
        elif not is_int(size):
            raise TypeError(f"{name}: output_size entries must be {allowed}, got {type(size).__name__} "
                            f"in {output_size!r}")
        elif size < 0:
            raise ValueError(f"{name}: output_size entries must be >= 0, got {output_size!r}")
        else:
            result.append(int(size))
    return tuple(result)


def _adaptive_max_pool(name, input, output_size, return_indices, spatial_dims):
    if input.ndim not in (spatial_dims + 1, spatial_dims + 2):
        raise ValueError(f"{name}: expected a {spatial_dims + 1}-D (unbatched) or {spatial_dims + 2}-D "
                         f"input, got shape {tuple(input.shape)}")
    spatial = tuple(input.shape[-spatial_dims:])
    if min(input.shape[-spatial_dims - 1:]) == 0:
        raise ValueError(f"{name}: input must be non-empty in every dim but the batch one, got shape "
                         f"{tuple(input.shape)}")
    out = _output_size(name, output_size, spatial)
    leading = tuple(input.shape[:-spatial_dims])
    height, width = (1,) + spatial if spatial_dims == 1 else spatial
    out_h, out_w = (1,) + out if spatial_dims == 1 else out
    planes = input.data.reshape((-1, height, width))
    indices = _winners(planes, out_h, out_w).reshape(leading + (out_h * out_w,))
    flat = reshape(input, leading + (height * width,))
    pooled = reshape(AdaptiveMaxPoolFunction.apply(flat, indices), leading + out)
    if not return_indices:
        return pooled
    return pooled, constant(indices.reshape(leading + out))


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Maximum over ``output_size`` bins along L of (N, C, L) or unbatched (C, L) input.

    Bin i covers ``[floor(i L / out), ceil((i + 1) L / out))``. With
    ``return_indices=True`` it also returns each maximum's position along L.

    >>> import nnlite as nl
    >>> adaptive_max_pool1d(nl.tensor([[[1.0, 3.0, 2.0, 5.0, 4.0]]]), 2).data.tolist()
    [[[3.0, 5.0]]]
    """
    return _adaptive_max_pool("adaptive_max_pool1d", input, output_size, return_indices, 1)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Maximum over an ``output_size`` grid of bins of (N, C, H, W) or unbatched (C, H, W) input.

    ``output_size`` is an int, a pair, or a pair with None for "keep that size".
    ``return_indices=True`` also returns each maximum's flat index in its
    ``H * W`` input plane, as PyTorch does.

    >>> import nnlite as nl
    >>> adaptive_max_pool2d(nl.randn(1, 4, 7, 9), (2, None)).shape
    (1, 4, 2, 9)
    """
    return _adaptive_max_pool("adaptive_max_pool2d", input, output_size, return_indices, 2)


# --------------------------------------------------------------- average ---

def _averaging_matrix(size, out, dtype):
    """(out, size) matrix whose row i averages bin i of ``size`` positions."""
    m = np.zeros((out, size), dtype=dtype)
    for i, (start, end) in enumerate(_bin_edges(size, out)):
        m[i, start:end] = 1.0 / (end - start)
    return m


def _average_sizes(name, input, output_size, spatial_dims):
    out = _output_size(name, output_size, tuple(input.shape[-spatial_dims:]))
    if min(input.shape[-spatial_dims:]) < 1:   # no positions to average (an output size of 0 is fine)
        raise ValueError(f"{name}: input must be non-empty in its spatial dims, got output_size={output_size}, "
                         f"input shape {tuple(input.shape)}")
    return out


class _BinMeansWhereInfinite(Function):
    """The pooled product, its values replaced by bin means taken bin by bin; gradient unchanged.

    The product with the averaging matrix multiplies every input by every row's
    weights, zeros included, so one infinite input makes ``inf * 0 = NaN`` in
    the bins that do not hold it. Those values are recomputed here by slicing;
    the derivative is still the averaging matrix's, so the gradient passes
    through untouched.
    """
    saves_inputs = False

    def forward(self, pooled, x, out_sizes):
        means = x
        for axis, out in zip(range(-len(out_sizes), 0), out_sizes):
            bins = [np.take(means, np.arange(start, end), axis=axis).mean(axis=axis)
                    for start, end in _bin_edges(means.shape[axis], out)]
            means = np.stack(bins, axis=axis)
        return means.astype(pooled.dtype, copy=False)

    def backward(self, grad):
        return grad, None, None


def _keep_infinities_in_their_bins(pooled, input, out_sizes):
    """``pooled``, or its bins recomputed one by one where the product gave NaN (an infinite input)."""
    if not np.isnan(pooled.data).any():
        return pooled
    with np.errstate(invalid="ignore"):   # a bin holding inf and -inf (or a NaN) is NaN, as in PyTorch
        return _BinMeansWhereInfinite.apply(pooled, input.data, out_sizes)


def adaptive_avg_pool1d(input, output_size):
    """Average over ``output_size`` bins along L of (N, C, L) or unbatched (C, L) input.

    An infinite input makes its own bins infinite and leaves the others finite, as in PyTorch.
    """
    _check_pool("adaptive_avg_pool1d", input, (2, 3))
    (out,) = _average_sizes("adaptive_avg_pool1d", input, output_size, 1)
    pooled = matmul(input, constant(_averaging_matrix(input.shape[-1], out, input.dtype).T))
    return _keep_infinities_in_their_bins(pooled, input, (out,))


def adaptive_avg_pool2d(input, output_size):
    """Average over an ``output_size`` grid of bins of (N, C, H, W) or (C, H, W) input; ``output_size``
    is an int, a pair, or a pair with None for "keep that size"."""
    _check_pool("adaptive_avg_pool2d", input, (3, 4))
    oh, ow = _average_sizes("adaptive_avg_pool2d", input, output_size, 2)
    h, w = input.shape[-2:]
    rows = constant(_averaging_matrix(h, oh, input.dtype))
    cols = constant(_averaging_matrix(w, ow, input.dtype).T)
    return _keep_infinities_in_their_bins(matmul(matmul(rows, input), cols), input, (oh, ow))
