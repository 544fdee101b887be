"""Differentiable operations, grouped by theme, and the Tensor methods that call them.

This is the one place where :class:`~nnlite.tensor.Tensor` learns its operator
methods (``x + y``, ``x.sum()``, ``x.reshape(...)``): tensor.py cannot import
the ops (they import Tensor), so the ops attach themselves here.
"""
import numpy as np

from ..tensor import Tensor, bfloat16_dtype
from . import (arithmetic, compare, elementary, elementwise_choice, indexing, inplace, linalg, ordering, piecewise,
               pointwise, promotion, reduction, rounding, scan, shape, softmax, structure, trigonometric)
from .arithmetic import (abs, add, addcdiv, addcmul, div, lerp, mul, nan_to_num, neg, positive, pow,  # noqa: A004
                         square, sub)
from .compare import (allclose, eq, equal, ge, gt, isfinite, isnan, le, logical_and, logical_not, logical_or,
                      logical_xor, lt, ne, sign)
from .elementwise_choice import clamp, clip, masked_fill, maximum, minimum, where
from .bitwise import bitwise_and, bitwise_not, bitwise_or, bitwise_xor
from .creation import (arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like,
                       linspace, ones, ones_like, rand, rand_like, randint, randn, randn_like,
                       randperm, zeros, zeros_like)
from .elementary import exp2, expm1, log1p, log2, log10, logaddexp, logaddexp2, logit, xlogy
from .einsum import einsum
from .indexing import gather, index_select, narrow, one_hot
from .selection import index_add, masked_select, nonzero, repeat_interleave, scatter_add, take_along_dim
from .linalg import bmm, dot, kron, matmul, mm, outer, tensordot
from .ordering import argsort, flip, fliplr, flipud, kthvalue, roll, sort, topk
from .piecewise import hardsigmoid, hardswish, hardtanh, leaky_relu, relu6
from .pointwise import (cos, elu, erf, exp, gelu, log, logsigmoid, mish, reciprocal, relu, rsqrt, selu, sigmoid,
                        silu, sin, softplus, softsign, sqrt, tanh)
from .promotion import promote_types, result_type
from .all_any import all, any  # noqa: A004
from .extrema import amax, amin, argmax, argmin, max, min  # noqa: A004
from .logsumexp import logsumexp
from .product import prod
from .sums import mean, sum  # noqa: A004
from .variance import std, var
from .vector_norm import norm
from .rounding import ceil, fix, floor, floor_divide, fmod, frac, remainder, round, trunc  # noqa: A004
from .scan import cummax, cummin, cumprod, cumsum, logcumsumexp
from .broadcasting import broadcast_to, expand, expand_as
from .casting import cast
from .concatenation import cat, concat, stack
from .copies import clone, contiguous
from .permutation import movedim, permute, t, transpose
from .shape import flatten, reshape, squeeze, unflatten, unsqueeze, view
from .splitting import chunk, split
from .softmax import log_softmax, softmax
from .structure import diag, diag_embed, diagonal, trace, tril, triu
from .trigonometric import acos, arccos, arcsin, arctan, arctan2, asin, atan, atan2, deg2rad, hypot, rad2deg, sinc, tan
from .hyperbolic import acosh, arccosh, arcsinh, arctanh, asinh, atanh, cosh, sinh

# The names ``from nnlite.ops import *`` (and so ``import nnlite``) exports: the operations,
# not the theme modules or NumPy (``nl.shape`` would otherwise be this package's shape.py).
__all__ = ["abs", "acos", "acosh", "add", "addcdiv", "addcmul", "all", "allclose", "amax", "amin", "any",
           "arange", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh", "argmax",
           "argmin", "argsort", "as_tensor", "asin", "asinh", "atan", "atan2", "atanh", "bitwise_and",
           "bitwise_not", "bitwise_or", "bitwise_xor", "bmm",
           "broadcast_to", "cast", "cat", "ceil", "chunk", "clamp", "clip", "clone", "concat", "contiguous",
           "cos", "cosh", "cummax", "cummin", "cumprod", "cumsum", "deg2rad", "diag", "diag_embed",
           "diagonal", "div", "dot", "einsum", "elu", "empty", "empty_like", "eq", "equal", "erf", "exp",
           "exp2", "expand", "expand_as", "expm1", "eye", "fix", "flatten", "flip", "fliplr", "flipud",
           "floor", "floor_divide", "fmod", "frac", "from_numpy", "full", "full_like", "gather", "ge",
           "gelu", "gt", "hardsigmoid", "hardswish", "hardtanh", "hypot", "index_add", "index_select",
           "isfinite", "isnan", "kron", "kthvalue", "le", "leaky_relu", "lerp", "linspace", "log", "log10",
           "log1p", "log2", "log_softmax", "logaddexp", "logaddexp2", "logcumsumexp", "logical_and",
           "logical_not", "logical_or", "logical_xor", "logit", "logsigmoid", "logsumexp", "lt", "masked_fill",
           "masked_select", "matmul", "max", "maximum", "mean", "min", "minimum", "mish", "mm", "movedim",
           "mul", "nan_to_num", "narrow", "ne", "neg", "nonzero", "norm", "one_hot", "ones", "ones_like", "outer",
           "permute", "positive", "pow", "prod", "promote_types", "rad2deg", "rand", "rand_like", "randint", "randn",
           "randn_like", "randperm", "relu", "relu6", "remainder", "repeat_interleave", "reshape", "result_type",
           "roll", "reciprocal", "round", "rsqrt", "scatter_add", "selu", "sigmoid", "sign", "silu", "sin", "sinc",
           "sinh", "softmax", "softplus", "softsign", "sort", "split", "sqrt", "square", "squeeze", "stack", "std",
           "sub", "sum", "t", "take_along_dim", "tan", "tanh", "tensordot", "topk", "trace", "transpose",
           "tril", "triu", "trunc", "unflatten", "unsqueeze", "var", "view", "where", "xlogy", "zeros",
           "zeros_like"]


def _swap(f):
    return lambda a, b: f(b, a)


def _flip(self, *args, dims=None):
    """``x.flip(0, 1)``, ``x.flip((0, 1))`` or ``x.flip(dims=(0, 1))``, as PyTorch's method takes each."""
    if dims is None:
        dims = args[0] if len(args) == 1 else args
    elif args:
        raise TypeError("flip: give dims positionally or as dims=, not both")
    return flip(self, dims)


def _split(self, split_size, dim=0):
    """``x.split(2, dim=1)``: the method names its size ``split_size``, as PyTorch's does."""
    return split(self, split_size, dim)


def _to(self, *args, dtype=None, device=None, non_blocking=False, copy=False):
    """``x.to(nl.float64)``, ``x.to(other)``, ``x.to("cpu", copy=True)``.

    nnlite computes on the CPU, so device "cpu" is accepted and changes nothing;
    another device is refused rather than ignored. ``copy=True`` returns a new
    tensor (differentiable, like ``clone``) even when nothing needs converting.
    """
    for a in args:
        if isinstance(a, str) and a == "cpu":
            continue
        if a is not None:
            dtype = a
    if device is not None and str(device) != "cpu":
        raise ValueError(f"to: nnlite computes on the CPU only; expected device 'cpu', got {device!r}")
    out = self if dtype is None else cast(self, dtype)
    return clone(out) if copy and out is self else out


def _install():
    T = Tensor
    methods = {
        "__add__": add, "__radd__": _swap(add), "__sub__": sub, "__rsub__": _swap(sub),
        "__mul__": mul, "__rmul__": _swap(mul), "__truediv__": div, "__rtruediv__": _swap(div),
        "__pow__": pow, "__rpow__": _swap(pow), "__neg__": neg, "__pos__": positive, "__abs__": abs,
        "__matmul__": matmul, "__rmatmul__": _swap(matmul), "__getitem__": indexing.getitem,
        "__setitem__": inplace.setitem,
        "__eq__": eq, "__ne__": ne, "__lt__": lt, "__le__": le, "__gt__": gt, "__ge__": ge,
        "__iadd__": inplace.add_, "__isub__": inplace.sub_, "__imul__": inplace.mul_,
        "__itruediv__": inplace.div_, "__ifloordiv__": inplace.floor_divide_, "__imod__": inplace.remainder_,
        "__ipow__": inplace.pow_, "__iand__": inplace.bitwise_and_, "__ior__": inplace.bitwise_or_,
        "__ixor__": inplace.bitwise_xor_, "__invert__": bitwise_not,
        "__and__": bitwise_and, "__or__": bitwise_or, "__xor__": bitwise_xor,
        "__rand__": _swap(bitwise_and), "__ror__": _swap(bitwise_or), "__rxor__": _swap(bitwise_xor),
        "__mod__": remainder, "__rmod__": _swap(remainder),
        "bitwise_and": bitwise_and, "bitwise_or": bitwise_or, "bitwise_xor": bitwise_xor,
        "bitwise_not": bitwise_not, "logical_and": logical_and, "logical_or": logical_or,
        "logical_xor": logical_xor, "logical_not": logical_not,
        "__floordiv__": floor_divide, "__rfloordiv__": _swap(floor_divide),
        "add": add, "sub": sub, "mul": mul, "div": div, "pow": pow, "neg": neg, "abs": abs,
        "square": square, "exp": exp, "log": log, "sqrt": sqrt, "rsqrt": rsqrt, "reciprocal": reciprocal, "sin": sin,
        "cos": cos, "tanh": tanh, "sigmoid": sigmoid, "relu": relu, "gelu": gelu, "silu": silu,
        "softplus": softplus, "erf": erf, "maximum": maximum, "minimum": minimum, "clamp": clamp,
        "clip": clamp, "eq": eq, "ne": ne, "lt": lt, "le": le, "gt": gt, "ge": ge,
        "isfinite": isfinite, "isnan": isnan, "sign": sign,
        "log1p": log1p, "expm1": expm1, "log2": log2, "log10": log10, "exp2": exp2, "tan": tan,
        "asin": asin, "acos": acos, "atan": atan, "sinh": sinh, "cosh": cosh, "asinh": asinh,
        "acosh": acosh, "atanh": atanh, "arcsin": asin, "arccos": acos, "arctan": atan,
        "arcsinh": asinh, "arccosh": acosh, "arctanh": atanh, "atan2": atan2, "arctan2": atan2,
        "hypot": hypot, "logaddexp": logaddexp, "logaddexp2": logaddexp2, "xlogy": xlogy,
        "logit": logit, "sinc": sinc, "deg2rad": deg2rad, "rad2deg": rad2deg,
        "floor": floor, "ceil": ceil, "round": round, "trunc": trunc, "fix": trunc, "frac": frac,
        "remainder": remainder, "fmod": fmod, "floor_divide": floor_divide, "lerp": lerp, "addcmul": addcmul,
        "addcdiv": addcdiv,
        "nan_to_num": nan_to_num,
        "matmul": matmul, "mm": mm, "bmm": bmm, "dot": dot,
        "sum": sum, "mean": mean, "var": var, "std": std, "max": max, "min": min, "amax": amax,
        "amin": amin, "argmax": argmax, "argmin": argmin, "logsumexp": logsumexp, "norm": norm,
        "prod": prod, "all": all, "any": any, "cumsum": cumsum, "cumprod": cumprod,
        "logcumsumexp": logcumsumexp, "cummax": cummax, "cummin": cummin,
        "sort": sort, "argsort": argsort, "topk": topk, "kthvalue": kthvalue, "flip": _flip,
        "fliplr": fliplr, "flipud": flipud, "roll": roll, "tril": tril, "triu": triu, "diagonal": diagonal,
        "diag": diag, "diag_embed": diag_embed, "trace": trace, "kron": kron,
        "repeat_interleave": repeat_interleave, "take_along_dim": take_along_dim,
        "masked_select": masked_select, "nonzero": nonzero, "scatter_add": scatter_add, "index_add": index_add,
        "reshape": reshape, "view": view, "flatten": flatten, "unflatten": unflatten,
        "squeeze": squeeze, "unsqueeze": unsqueeze, "permute": permute, "transpose": transpose,
        "t": t, "expand": expand, "expand_as": expand_as, "broadcast_to": broadcast_to,
        "contiguous": contiguous, "clone": clone, "split": _split, "chunk": chunk,
        "movedim": movedim, "narrow": narrow, "index_select": index_select, "gather": gather,
        "masked_fill": masked_fill, "softmax": softmax, "log_softmax": log_softmax,
        "add_": inplace.add_, "sub_": inplace.sub_, "mul_": inplace.mul_, "div_": inplace.div_,
        "pow_": inplace.pow_, "neg_": inplace.neg_, "clamp_": inplace.clamp_,
        "floor_divide_": inplace.floor_divide_, "remainder_": inplace.remainder_, "fmod_": inplace.fmod_,
        "bitwise_and_": inplace.bitwise_and_, "bitwise_or_": inplace.bitwise_or_,
        "bitwise_xor_": inplace.bitwise_xor_,
        "zero_": inplace.zero_, "fill_": inplace.fill_, "copy_": inplace.copy_,
        "uniform_": inplace.uniform_, "normal_": inplace.normal_,
        "addcmul_": inplace.addcmul_, "addcdiv_": inplace.addcdiv_, "lerp_": inplace.lerp_,
        "abs_": inplace.abs_, "sqrt_": inplace.sqrt_, "exp_": inplace.exp_, "log_": inplace.log_,
        "sigmoid_": inplace.sigmoid_, "tanh_": inplace.tanh_, "floor_": inplace.floor_, "ceil_": inplace.ceil_,
        "round_": inplace.round_, "trunc_": inplace.trunc_, "frac_": inplace.frac_, "relu_": inplace.relu_,
        "square_": inplace.square_, "rsqrt_": inplace.rsqrt_, "reciprocal_": inplace.reciprocal_,
        "sin_": inplace.sin_, "cos_": inplace.cos_, "erf_": inplace.erf_, "expm1_": inplace.expm1_,
        "log1p_": inplace.log1p_, "sign_": inplace.sign_,
        "to": _to, "type_as": lambda self, other: cast(self, other.dtype),
        "float": lambda self: cast(self, np.float32), "double": lambda self: cast(self, np.float64),
        "half": lambda self: cast(self, np.float16), "bfloat16": lambda self: cast(self, bfloat16_dtype()),
        "long": lambda self: cast(self, np.int64), "int": lambda self: cast(self, np.int32),
        "bool": lambda self: cast(self, np.bool_),
    }
    for name, fn in methods.items():
        setattr(T, name, fn)
    T.T = property(lambda self: permute(self, tuple(range(self.ndim - 1, -1, -1))))
    T.mT = property(lambda self: transpose(self, -2, -1))


_install()
