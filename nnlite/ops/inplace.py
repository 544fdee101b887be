"""In-place operations: ``add_``, ``mul_``, ``zero_``, ``copy_``, ``x[key] = v``, ``+=``...

Each bumps the tensor's version counter, so a backward that saved the old values
notices and refuses (instead of silently using the new ones). Under ``no_grad``
(updating parameters, initialising) they are plain NumPy writes. With autograd
recording, the result is computed out of place, written into the same memory,
and the tensor's history is moved to the new operation, as PyTorch does.
"""
import numpy as np

from ..autograd import Function, is_grad_enabled, no_grad
from ..random import _gen
from ..tensor import Tensor
from . import arithmetic, compare
from .indexing import GetItem, _convert_key
from .shape import cast, sum_to


def _check_leaf(x, op):
    if x.requires_grad and x._ctx is None and is_grad_enabled():
        raise RuntimeError(f"{op}: a leaf tensor that requires grad is being used in an in-place "
                           "operation; wrap the update in `with nl.no_grad():`")


def _records(x, others):
    return is_grad_enabled() and (x.requires_grad or any(
        isinstance(o, Tensor) and o.requires_grad for o in others))


def _write(x, values):
    if values.shape != x.shape:
        values = np.broadcast_to(values, x.shape) if np.broadcast_shapes(values.shape, x.shape) == x.shape \
            else None
        if values is None:
            raise RuntimeError(f"in-place operation: result shape does not match the tensor's shape {x.shape}")
    np.copyto(x.data, values, casting="unsafe")


def _rebase(x, op, fn, *others, **options):
    """Apply ``fn(old_x, *others)`` and make x hold (and be the result of) it."""
    _check_leaf(x, op)
    if _records(x, others):
        old = Tensor._make(x.data, x._ctx)
        old.requires_grad, old._version = x.requires_grad, x._version
        result = fn(old, *others, **options)
        _write(x, result.data)
        x._ctx, x.requires_grad = result._ctx, True
    else:
        raw = [o.data if isinstance(o, Tensor) else o for o in others]
        _write(x, fn(Tensor._make(x.data, None), *raw, **options).data)
    x._bump_version()
    return x


def add_(x, other, alpha=1):
    if not _records(x, (other,)):
        _check_leaf(x, "add_")
        o = other.data if isinstance(other, Tensor) else other
        np.add(x.data, o if alpha == 1 else o * alpha, out=x.data, casting="unsafe")
        x._bump_version()
        return x
    return _rebase(x, "add_", arithmetic.add, other, alpha=alpha)


def sub_(x, other, alpha=1):
    return add_(x, other, alpha=-alpha)


def mul_(x, other):
    if not _records(x, (other,)):
        _check_leaf(x, "mul_")
        np.multiply(x.data, other.data if isinstance(other, Tensor) else other, out=x.data, casting="unsafe")
        x._bump_version()
        return x
    return _rebase(x, "mul_", arithmetic.mul, other)


def div_(x, other):
    return _rebase(x, "div_", arithmetic.div, other)


def pow_(x, other):
    return _rebase(x, "pow_", arithmetic.pow, other)


def clamp_(x, min=None, max=None):  # noqa: A002
    return _rebase(x, "clamp_", compare.clamp, min, max)


def neg_(x):
    return _rebase(x, "neg_", arithmetic.neg)


def zero_(x):
    return fill_(x, 0)


def fill_(x, value):
    _check_leaf(x, "fill_")
    v = value.data if isinstance(value, Tensor) else value
    if _records(x, (value,)):
        return _rebase(x, "fill_", lambda old, val: Fill.apply(old, val), value)
    x.data[...] = v
    x._bump_version()
    return x


class Fill(Function):
    saves_inputs = False

    def forward(self, a, value):
        return np.full_like(a, value)

    def backward(self, grad):
        return None, (grad.sum() if isinstance(self.inputs[1], Tensor) else None)


def copy_(x, src):
    """Copy ``src`` (broadcast to x's shape) into x."""
    _check_leaf(x, "copy_")
    if _records(x, (src,)):
        return _rebase(x, "copy_", lambda old, s: CopyFrom.apply(old, s), src)
    s = src.data if isinstance(src, Tensor) else np.asarray(src)
    try:
        np.copyto(x.data, np.broadcast_to(s, x.shape), casting="unsafe")
    except ValueError:
        raise RuntimeError(f"copy_: source of shape {np.shape(s)} cannot be broadcast to {x.shape}") from None
    x._bump_version()
    return x


class CopyFrom(Function):
    saves_inputs = False

    def forward(self, a, src):
        self.src_shape = np.shape(src)
        return np.broadcast_to(src, a.shape).astype(a.dtype)

    def backward(self, grad):
        src = self.inputs[1]
        return None, (cast(sum_to(grad, self.src_shape), src.dtype) if isinstance(src, Tensor) else None)


class IndexPut(Function):
    """x with ``value`` written at ``key``: grad to x is zero there; grad to value is grad[key]."""
    saves_inputs = False

    def forward(self, a, value, key):
        self.key, self.value_shape = key, np.shape(value)
        out = a.copy()
        out[key] = value
        return out

    def backward(self, grad):
        mask = np.ones(grad.shape, dtype=grad.dtype)
        mask[self.key] = 0
        g_value = None
        if isinstance(self.inputs[1], Tensor):
            g_value = sum_to(GetItem.apply(grad, self.key), self.value_shape)
        return grad * Tensor._make(mask, None), g_value, None


def setitem(x, key, value):
    key = _convert_key(key)
    _check_leaf(x, "__setitem__")
    if _records(x, (value,)):
        return _rebase(x, "__setitem__", lambda old, v: IndexPut.apply(old, v, key), value)
    x.data[key] = value.data if isinstance(value, Tensor) else value
    x._bump_version()
    return x


def uniform_(x, a=0.0, b=1.0, generator=None):
    with no_grad():
        return copy_(x, _gen(generator).uniform(a, b, size=x.shape).astype(x.dtype))


def normal_(x, mean=0.0, std=1.0, generator=None):
    with no_grad():
        return copy_(x, (_gen(generator).standard_normal(x.shape) * std + mean).astype(x.dtype))

