"""Differentiable operations, grouped by theme, and the Tensor methods that call them.

This is the one place where :class:`~nnlite.tensor.Tensor` learns its operator
methods (``x + y``, ``x.sum()``, ``x.reshape(...)``): tensor.py cannot import
the ops (they import Tensor), so the ops attach themselves here.
"""
import numpy as np

from ..tensor import Tensor
from . import arithmetic, compare, indexing, inplace, linalg, piecewise, pointwise, reduction, shape, softmax
from .arithmetic import abs, add, div, mul, neg, pow, square, sub  # noqa: A004
from .compare import (allclose, clamp, clip, eq, equal, ge, gt, isfinite, isnan, le, logical_and,
                      logical_not, logical_or, lt, masked_fill, maximum, minimum, ne, sign, where)
from .creation import (arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like,
                       linspace, ones, ones_like, rand, rand_like, randint, randn, randn_like,
                       randperm, zeros, zeros_like)
from .indexing import gather, index_select, narrow, one_hot
from .linalg import bmm, dot, matmul, mm, outer
from .piecewise import hardsigmoid, hardswish, hardtanh, leaky_relu, relu6
from .pointwise import (cos, elu, erf, exp, gelu, log, logsigmoid, mish, relu, rsqrt, selu, sigmoid,
                        silu, sin, softplus, softsign, sqrt, tanh)
from .reduction import (amax, amin, argmax, argmin, logsumexp, max, mean, min, norm, std, sum,
                        var)
from .shape import (broadcast_to, cast, cat, chunk, clone, concat, contiguous, expand, expand_as,
                    flatten, movedim, permute, reshape, split, squeeze, stack, t, transpose,
                    unflatten, unsqueeze, view)
from .softmax import log_softmax, softmax

# The names ``from nnlite.ops import *`` (and so ``import nnlite``) exports: the operations,
# not the theme modules or NumPy (``nl.shape`` would otherwise be this package's shape.py).
__all__ = ["abs", "add", "allclose", "amax", "amin", "arange", "argmax", "argmin", "as_tensor",
           "bmm", "broadcast_to", "cast", "cat", "chunk", "clamp", "clip", "clone", "concat",
           "contiguous", "cos", "div", "dot", "elu", "empty", "empty_like", "eq", "equal", "erf", "exp",
           "expand", "expand_as", "eye", "flatten", "from_numpy", "full", "full_like", "gather",
           "ge", "gelu", "gt", "hardsigmoid", "hardswish", "hardtanh", "index_select", "isfinite", "isnan", "le",
           "leaky_relu", "linspace", "log", "log_softmax", "logical_and", "logical_not", "logical_or", "logsigmoid",
           "logsumexp", "lt",
           "masked_fill", "matmul", "max", "maximum", "mean", "min", "minimum", "mish", "mm", "movedim",
           "mul", "narrow", "ne", "neg", "one_hot", "ones", "ones_like", "outer", "permute", "pow",
           "rand", "rand_like", "randint", "randn", "randn_like", "randperm", "relu", "relu6", "reshape",
           "rsqrt", "selu", "sigmoid", "sign", "silu", "sin", "softmax", "softplus", "softsign", "split", "sqrt",
           "square", "squeeze", "stack", "std", "sub", "sum", "t", "tanh", "transpose",
           "unflatten", "unsqueeze", "var", "view", "where", "zeros", "zeros_like"]


def _swap(f):
    return lambda a, b: f(b, a)


def _to(self, *args, dtype=None, **kwargs):
    """``x.to(nl.float64)``; device arguments ('cpu') are accepted and ignored."""
    for a in args:
        if a is not None and not (isinstance(a, str) and a == "cpu"):
            dtype = a
    return self if dtype is None else cast(self, dtype)


def _install():
    T = Tensor
    methods = {
        "__add__": add, "__radd__": _swap(add), "__sub__": sub, "__rsub__": _swap(sub),
        "__mul__": mul, "__rmul__": _swap(mul), "__truediv__": div, "__rtruediv__": _swap(div),
        "__pow__": pow, "__rpow__": _swap(pow), "__neg__": neg, "__abs__": abs,
        "__matmul__": matmul, "__rmatmul__": _swap(matmul), "__getitem__": indexing.getitem,
        "__setitem__": inplace.setitem,
        "__eq__": eq, "__ne__": ne, "__lt__": lt, "__le__": le, "__gt__": gt, "__ge__": ge,
        "__iadd__": inplace.add_, "__isub__": inplace.sub_, "__imul__": inplace.mul_,
        "__itruediv__": inplace.div_, "__invert__": logical_not,
        "__and__": logical_and, "__or__": logical_or,
        "add": add, "sub": sub, "mul": mul, "div": div, "pow": pow, "neg": neg, "abs": abs,
        "square": square, "exp": exp, "log": log, "sqrt": sqrt, "rsqrt": rsqrt, "sin": sin,
        "cos": cos, "tanh": tanh, "sigmoid": sigmoid, "relu": relu, "gelu": gelu, "silu": silu,
        "softplus": softplus, "erf": erf, "maximum": maximum, "minimum": minimum, "clamp": clamp,
        "clip": clamp, "eq": eq, "ne": ne, "lt": lt, "le": le, "gt": gt, "ge": ge,
        "isfinite": isfinite, "isnan": isnan, "sign": sign,
        "matmul": matmul, "mm": mm, "bmm": bmm, "dot": dot,
        "sum": sum, "mean": mean, "var": var, "std": std, "max": max, "min": min, "amax": amax,
        "amin": amin, "argmax": argmax, "argmin": argmin, "logsumexp": logsumexp, "norm": norm,
        "reshape": reshape, "view": view, "flatten": flatten, "unflatten": unflatten,
        "squeeze": squeeze, "unsqueeze": unsqueeze, "permute": permute, "transpose": transpose,
        "t": t, "expand": expand, "expand_as": expand_as, "broadcast_to": broadcast_to,
        "contiguous": contiguous, "clone": clone, "split": split, "chunk": chunk,
        "movedim": movedim, "narrow": narrow, "index_select": index_select, "gather": gather,
        "masked_fill": masked_fill, "softmax": softmax, "log_softmax": log_softmax,
        "add_": inplace.add_, "sub_": inplace.sub_, "mul_": inplace.mul_, "div_": inplace.div_,
        "pow_": inplace.pow_, "neg_": inplace.neg_, "clamp_": inplace.clamp_,
        "zero_": inplace.zero_, "fill_": inplace.fill_, "copy_": inplace.copy_,
        "uniform_": inplace.uniform_, "normal_": inplace.normal_,
        "to": _to, "type_as": lambda self, other: cast(self, other.dtype),
        "float": lambda self: cast(self, np.float32), "double": lambda self: cast(self, np.float64),
        "long": lambda self: cast(self, np.int64), "int": lambda self: cast(self, np.int32),
        "bool": lambda self: cast(self, np.bool_),
    }
    for name, fn in methods.items():
        setattr(T, name, fn)
    T.T = property(lambda self: permute(self, tuple(range(self.ndim - 1, -1, -1))))
    T.mT = property(lambda self: transpose(self, -2, -1))


_install()
