"""Resizing feature maps: ``interpolate`` (the ``Upsample`` layers are in ``nnlite/nn/upsampling.py``).

Resizing is separable: each spatial axis is resized on its own, one after the
other, and every output position along an axis reads from a *source
coordinate* on the input axis. Everything PyTorch users know about
``interpolate`` is in how that coordinate is computed:

* ``align_corners=True`` maps the first and last output positions onto the first
  and last input positions: ``src = dst * (in - 1) / (out - 1)``.
* ``align_corners=False`` treats positions as the centres of pixels of width
  ``in / out`` (or ``1 / scale_factor`` when a scale factor is given and not
  recomputed): ``src = (dst + 0.5) * scale - 0.5``, clamped at 0.
* 'nearest' takes ``floor(dst * scale)`` (which favours the left/top),
  'nearest-exact' ``floor((dst + 0.5) * scale)`` (the pixel centre), in
  float32 as PyTorch's kernels do, except on 3-D and 5-D float64 input with
  a ``size``, where PyTorch's result is the exact fraction's floor
  (``dst * in // out``). Where a source coordinate falls within float rounding
  of a pixel edge, PyTorch's 3-D and 5-D kernels can still pick the
  neighbouring pixel for 'nearest-exact' in float32 or with a
  ``scale_factor`` (5 of 3,500 size pairs up to 40 -> 90 in float32).

'nearest' and 'nearest-exact' then copy input rows (an ``index_select``);
'linear', 'bilinear' and 'trilinear' take a weighted sum of the two rows that
surround the source coordinate, ``(1 - t) * x[i0] + t * x[i1]``. Both are
gathers and weighted sums of differentiable operations: the gradient
scatter-adds back to the rows that were read, and it has a gradient itself.
'area' is adaptive average pooling.
"""
import math
import numbers

import numpy as np

from .._kernels.checks import is_int
from ..autograd import constant
from .adaptive_pool import adaptive_avg_pool1d, adaptive_avg_pool2d
from .indexing import index_select

__all__ = ["interpolate"]

# the input rank each interpolating mode needs: (N, C) and its spatial dims
_LINEAR_RANK = {"linear": 3, "bilinear": 4, "trilinear": 5}
_NOT_INTERPOLATING = ("nearest", "nearest-exact", "area")


# ------------------------------------------------------- source coordinates ---

def _nearest_sources(in_size, out_size, scale, exact, four_d, dtype):
    """Input position read by each output position for 'nearest' (or 'nearest-exact').

    PyTorch's kernel for 4-D input takes two shortcuts for 'nearest', which the
    3-D and 5-D ones do not (an output as long as the input copies it, and one
    twice as long repeats each position, whatever the scale factor says), and
    computes in float32, where the others compute in the input's precision.
    """
    if four_d and not exact and out_size == in_size:
        return np.arange(out_size)
    if four_d and not exact and out_size == 2 * in_size:
        return np.arange(out_size) // 2
    if not four_d and not scale and dtype == np.float64:
        # PyTorch's 3-D and 5-D kernels in double precision round as exact fractions do:
        # floor(dst * in / out), and floor((dst + 1/2) * in / out) for 'nearest-exact'
        dst = np.arange(out_size)
        src = (2 * dst + 1) * in_size // (2 * out_size) if exact else dst * in_size // out_size
        return np.minimum(src, in_size - 1)
    real = np.float32
    step = real(1.0 / scale) if scale else real(in_size) / real(out_size)
    dst = np.arange(out_size, dtype=real)
    if not exact:
        src = dst * step
    elif four_d:
        src = (dst + real(0.5)) * step
    else:   # the 3-D and 5-D kernels' order of operations, rounding included
        src = step * (dst + real(0.5)) - real(0.5) + real(0.5)
    return np.minimum(np.floor(src).astype(np.int64), in_size - 1)


def _linear_sources(in_size, out_size, scale, align_corners, dtype):
    """(i0, i1, t): each output position is ``(1 - t) * x[i0] + t * x[i1]``."""
    one = dtype.type(1)
    if align_corners:
        step = dtype.type(in_size - 1) / dtype.type(out_size - 1) if out_size > 1 else dtype.type(0)
        src = np.arange(out_size, dtype=dtype) * step
    else:
        step = dtype.type(1.0 / scale) if scale else dtype.type(in_size) / dtype.type(out_size)
        src = np.maximum((np.arange(out_size, dtype=dtype) + dtype.type(0.5)) * step - dtype.type(0.5), 0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    t = np.clip(src - i0, 0, one).astype(dtype)
    i1 = np.where(i0 < in_size - 1, i0 + 1, i0)
    return i0, i1, t


def _resize_axis(x, axis, out_size, scale, mode, align_corners):
    in_size = x.shape[axis]
    if mode in ("nearest", "nearest-exact"):
        return index_select(x, axis, _nearest_sources(in_size, out_size, scale, mode == "nearest-exact",
                                                          x.ndim == 4, x.dtype))
    if out_size == in_size:
        return x   # PyTorch's linear kernels copy an axis that keeps its size, whatever the scale factor
    i0, i1, t = _linear_sources(in_size, out_size, scale, align_corners, np.dtype(x.dtype))
    along = (out_size,) + (1,) * (x.ndim - axis - 1)    # the weights broadcast along this axis
    left = index_select(x, axis, i0) * constant((1 - t).reshape(along))
    return left + index_select(x, axis, i1) * constant(t.reshape(along))


# ------------------------------------------------------------- the function ---

def _spatial(name, value, dims, check):
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims
    if len(values) != dims:
        raise ValueError(f"interpolate: the input has {dims} spatial dims, so {name} must be one value or "
                         f"{dims}, got {value!r}")
    return tuple(check(v) for v in values)


def _size(v):
    if not is_int(v) or v < 1:
        raise ValueError(f"interpolate: size entries must be ints >= 1, got {v!r}")
    return int(v)


def _scale(v):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 < v < math.inf:
        raise ValueError(f"interpolate: scale_factor entries must be positive finite numbers, got {v!r}")
    return float(v)


def _check_mode(input, mode, align_corners, antialias):
    modes = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "area")
    if mode in ("bicubic", "lanczos"):
        raise NotImplementedError(f"interpolate: mode={mode!r} is not implemented in nnlite; "
                                  f"implemented modes: {', '.join(modes)}")
    if mode not in modes:
        raise ValueError(f"interpolate: mode must be one of {', '.join(map(repr, modes))}, got {mode!r}")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True (a low-pass filter before downsampling) is not "
                                  "implemented in nnlite; pass antialias=False")
    if mode in _NOT_INTERPOLATING and align_corners is not None:
        raise ValueError(f"interpolate: align_corners can only be set with the interpolating modes 'linear', "
                         f"'bilinear' and 'trilinear', got align_corners={align_corners} with mode={mode!r}")
    if input.ndim not in (3, 4, 5):
        raise ValueError(f"interpolate: expected a 3-D, 4-D or 5-D input (N, C, *spatial), got shape "
                         f"{tuple(input.shape)}")
    if mode in _LINEAR_RANK and input.ndim != _LINEAR_RANK[mode]:
        raise ValueError(f"interpolate: mode={mode!r} needs a {_LINEAR_RANK[mode]}-D input, got shape "
                         f"{tuple(input.shape)}")
    if mode == "area" and input.ndim == 5:
        raise NotImplementedError("interpolate: mode='area' of a 5-D input (adaptive_avg_pool3d) is not "
                                  "implemented in nnlite")
    if min(input.shape[2:]) < 1:
        raise ValueError(f"interpolate: the spatial dims must be non-empty, got shape {tuple(input.shape)}")


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize the spatial dims of (N, C, L), (N, C, H, W) or (N, C, D, H, W) input.

    Give exactly one of ``size`` (the output's spatial size: an int or one per
    spatial dim) and ``scale_factor`` (a number or one per dim; the output size
    is ``floor(in * scale_factor)``). Modes: 'nearest', 'nearest-exact',
    'linear' (3-D), 'bilinear' (4-D), 'trilinear' (5-D) and 'area' (3-D, 4-D).
    Source coordinates are PyTorch's (see :mod:`nnlite.ops.interpolate`): with a
    scale factor, ``1 / scale_factor`` is the step between output positions,
    unless ``recompute_scale_factor=True`` asks for ``in / out``, the step that
    ``size`` gives. 'bicubic' and ``antialias=True`` are not implemented.

    The outputs are PyTorch's in every mode (up to the near-tie rounding the
    module describes, for 3-D and 5-D 'nearest-exact' input with a scale factor),
    and so are the gradients, but for one case: for 3-D and 5-D 'nearest' input
    with a scale factor that gives an
    output as long as the input, or twice as long, PyTorch's backward takes a
    shortcut its forward does not, and its gradient is not that of its output.
    nnlite's gradient is always the derivative of the output.

    >>> import nnlite as nl
    >>> x = nl.tensor([[[0.0, 1.0]]])
    >>> interpolate(x, scale_factor=2, mode="nearest").data.tolist()
    [[[0.0, 0.0, 1.0, 1.0]]]
    >>> interpolate(x, size=4, mode="linear").data.tolist()
    [[[0.0, 0.25, 0.75, 1.0]]]
    >>> [round(v, 4) for v in interpolate(x, size=4, mode="linear", align_corners=True).data.ravel().tolist()]
    [0.0, 0.3333, 0.6667, 1.0]
    """
    _check_mode(input, mode, align_corners, antialias)
    dims = input.ndim - 2
    spatial = tuple(input.shape[2:])
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor, got "
                         + ("both" if size is not None else "neither"))
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("interpolate: recompute_scale_factor=True is only meaningful with a scale_factor, "
                             "not with an explicit size")
        out, scales = _spatial("size", size, dims, _size), (None,) * dims
    else:
        scales = _spatial("scale_factor", scale_factor, dims, _scale)
        out = tuple(math.floor(n * s) for n, s in zip(spatial, scales))
        if min(out) < 1:
            raise ValueError(f"interpolate: scale_factor {scale_factor!r} makes an empty output "
                             f"{out} from spatial size {spatial}")
        if recompute_scale_factor or mode == "area":
            scales = (None,) * dims
    if mode == "area":
        return (adaptive_avg_pool1d if dims == 1 else adaptive_avg_pool2d)(input, out)
    x = input
    for axis, (n, s) in enumerate(zip(out, scales), start=2):
        x = _resize_axis(x, axis, n, s, mode, bool(align_corners))
    return x
