"""In-place operations: ``add_``, ``mul_``, ``zero_``, ``copy_``, ``x[key] = v``, ``+=``...

Each bumps the tensor's version counter, so a backward that saved the old values
notices and refuses (instead of silently using the new ones). Under ``no_grad``
(updating parameters, initialising) they are plain NumPy writes. With autograd
recording, the result is computed out of place, written into the same memory,
and the tensor's history is moved to the new operation, as PyTorch does.
Operations that read the tensor *before* the change keep its old history: their
gradient goes to the value they read (``skip = h + 1; relu_(h)`` does not mask
the skip's gradient), through the list of earlier histories the tensor keeps
(``autograd.moved``). An operation that saved the old values for its own
backward (``log_``, ``abs_``, a product) gets a copy of them first.

The result has the tensor's dtype, as in PyTorch: the operation is computed in the dtype
its operands promote to (:mod:`nnlite.ops.promotion`) and cast to the tensor's, which is
refused where PyTorch refuses it, for a float result into an integer or bool tensor
(``int_tensor += 0.5``, ``int_tensor /= 2``, ``int_tensor.exp_()``) and an integer result
into a bool one (``copy_``, ``fill_`` and ``x[key] = v`` convert any value, as PyTorch's
do). ``//=``, ``%=``, ``**=``, ``&=``, ``|=`` and ``^=`` change the tensor in place too
(``floor_divide_``, ``remainder_``, ``pow_``, ``bitwise_and_``...).

A view (``y[0]``, ``y.view(4)``, ``y.T``) shares memory with its base, so an
in-place change of the view changes the base too: the base's history becomes
"the old base with the view's region replaced by the new values"
(:class:`ViewScatter`), and the view's history becomes "that region of the new
base". ``y = x * 1; y[0].mul_(3)`` then sends 3 to the first row of ``x.grad``.

The in-place activations (``relu_``, ``silu_``, ``elu_``, ``leaky_relu_``,
``selu_``, ``hardtanh_``, ``relu6_``, ``hardsigmoid_``, ``hardswish_``, ``mish_``,
behind ``F.relu(x, inplace=True)``...) and ``F.dropout(x, inplace=True)`` are
:func:`apply_in_place` of their out-of-place operation.
"""
import numpy as np

import weakref

from ..autograd import Function, _refresh_view, _replay_view, _sequence, _stand_in, is_grad_enabled, moved, no_grad
from ..random import _gen
from ..tensor import Tensor
from . import arithmetic, bitwise, compare, elementary, elementwise_choice, piecewise, pointwise, rounding
from .index_keys import _convert_key, _region
from .indexing import GetItem
from .broadcasting import sum_to
from .casting import cast
from .opmath import half_pair, is_half
from .promotion import promoted_dtype, python_int_operands, writable_dtype


def inplace_flag(op, inplace):
    """``inplace`` itself, refused unless it is True or False (``F.selu(x, 1.0)`` meant something else)."""
    if not isinstance(inplace, (bool, np.bool_)):
        raise TypeError(f"{op}: inplace must be True or False, got {type(inplace).__name__} {inplace!r}")
    return inplace


def _check_in_place(x, op):
    """Refuse an in-place change that would be wrong: of read-only memory, or of a leaf that
    requires grad (or a view of one) while autograd records."""
    if not x.data.flags.writeable:
        # an expand()ed view, whose elements share memory (writing one would write them all),
        # or an array NumPy marks read-only
        raise RuntimeError(f"{op}: the tensor (shape {x.shape}) is a read-only view, as expand() and "
                           "broadcast views are; clone() it before changing it in place")
    if not is_grad_enabled():
        return
    if x.requires_grad and x._ctx is None:
        raise RuntimeError(f"{op}: a leaf tensor that requires grad is being used in an in-place "
                           "operation; wrap the update in `with nl.no_grad():`")
    base = x._base
    if base is not None and base.requires_grad and base._ctx is None:
        raise RuntimeError(f"{op}: a view of a leaf tensor that requires grad (shape {base.shape}) is "
                           "being used in an in-place operation; wrap the update in `with nl.no_grad():`")


def _records(x, others):
    if not is_grad_enabled():
        return False
    base = x._base
    records = x.requires_grad or any(isinstance(o, Tensor) and o.requires_grad for o in others)
    if base is not None:
        if x._view_version is None:
            if records or base.requires_grad:
                raise RuntimeError("in-place operation on a view made under no_grad, while gradients are "
                                   "recorded: the base's history cannot be rewritten through it; make the "
                                   "view again outside no_grad, or clone() it")
            return False
        if x._version[0] != x._view_version:
            _refresh_view(x)
        return True if base.requires_grad else records
    return records


def _write(x, values):
    if values.shape != x.shape:
        values = np.broadcast_to(values, x.shape) if np.broadcast_shapes(values.shape, x.shape) == x.shape \
            else None
        if values is None:
            raise RuntimeError(f"in-place operation: result shape does not match the tensor's shape {x.shape}")
    np.copyto(x.data, values, casting="unsafe")


def apply_in_place(x, op, fn, *others, **options):
    """Overwrite ``x`` with ``fn(x, *others)`` and return x, now the result of that operation.

    The in-place form of any out-of-place operation ``fn`` (``op`` names it in
    errors). ``fn`` is applied to a stand-in for x's old value, never to x itself:
    computing ``fn(x)`` and then copying it into x would make x an input of its
    own history, and backward would stop there.
    """
    _check_in_place(x, op)
    for o in others:   # a stale view among the operands takes its current history now, not inside fn
        if isinstance(o, Tensor) and o._base is not None and o._version[0] != o._view_version:
            _refresh_view(o)
    if _records(x, others):
        boundary = next(_sequence)   # operations recorded before this one read x's old value
        base = x._base
        if base is None:
            old = x_before = _stand_in(x)
        else:   # the view's old values, taken from the base's old history (not the base itself,
            old_base = _stand_in(base)   # whose history is about to change: that would be a loop)
            old, x_before = _replay_view(old_base, x._view_steps), _stand_in(x)
        # x (or its base) as an operand too (``y.add_(y)``) is read before the change: its old value
        others = tuple(old if o is x else old_base if base is not None and o is base else o for o in others)
        result = fn(old, *others, **options)
        writable_dtype(op, x, result.dtype)   # before anything changes
        node = result._ctx
        if node is not None and node.saves_inputs and any(t is old for t in node.inputs):
            # The operation kept x's old values for its backward (log, abs, a product): give them
            # their own memory and version before x is overwritten, as PyTorch keeps a copy.
            old.data, old._version = old.data.copy(), [old._version[0]]
            old._base = None   # its own memory now, no longer a view of x's base
        _write(x, result.data)
        if base is not None:
            new_base = ViewScatter.apply(old_base, result, _view_positions(base, x._view_steps))
            moved(base, boundary, old_base)
            base._ctx, base.requires_grad = new_base._ctx, True
            # The view is now "its region of the new base"; replaying its view operations says so.
            result = _replay_view(base, x._view_steps)
        moved(x, boundary, x_before)
        x._ctx, x.requires_grad = result._ctx, True
        x._bump_version()
        if x._ctx.save_output:
            # x (not the discarded ``result``) now holds the saved output.
            x._ctx._out, x._ctx._out_version = weakref.ref(x), x._version[0]
    else:
        raw = [Tensor._make(o.data, None) if isinstance(o, Tensor) else o for o in others]   # constants
        result = fn(Tensor._make(x.data, None), *raw, **options)
        writable_dtype(op, x, result.dtype)
        _write(x, result.data)
        # Nothing recorded: x keeps the history that made it, and the operation that saved
        # x as its output must see, from the bumped version, that x was changed since.
        x._bump_version()
    if x._base is not None:
        x._view_version = x._version[0]
    return x


def _view_positions(base, steps):
    """Flat (C-order) positions in ``base`` of each element of the view that ``steps`` make."""
    positions = np.arange(base.data.size).reshape(base.shape)
    for cls, rest, options in steps:
        positions = cls().forward(positions, *rest, **options)
    return positions


class ViewScatter(Function):
    """The base after an in-place change of one of its views: ``base`` with the region at
    ``positions`` replaced by ``values``. The values are already in the base's memory (the
    view shares it), so forward returns the base's array as it is.

    Gradient: to the old base, everything outside the region; to the values, the region.
    """
    saves_inputs = False

    def forward(self, base, values, positions):
        self.positions = positions
        return base

    def backward(self, grad):
        keep = np.ones(grad.shape, dtype=grad.dtype)
        keep.reshape(-1)[self.positions] = 0
        g_values = GetItem.apply(grad.reshape(-1), self.positions)
        return grad * Tensor._make(keep, None), g_values, None


def relu_(x):
    """x overwritten with ``relu(x)`` (``F.relu(x, inplace=True)``, ``nn.ReLU(inplace=True)``)."""
    return apply_in_place(x, "relu_", pointwise.relu)


def silu_(x):
    """x overwritten with ``silu(x)`` (``F.silu(x, inplace=True)``, ``nn.SiLU(inplace=True)``)."""
    # silu's backward reads its input, which the result is about to overwrite, so it is
    # given a copy to keep (PyTorch keeps one too); the result still lands in x itself.
    return apply_in_place(x, "silu_", lambda old: pointwise.silu(old.clone()))


def leaky_relu_(x, negative_slope=0.01):
    """x overwritten with ``leaky_relu(x, negative_slope)`` (``F.leaky_relu(x, inplace=True)``)."""
    return apply_in_place(x, "leaky_relu_", piecewise.leaky_relu, negative_slope)


def elu_(x, alpha=1.0):
    """x overwritten with ``elu(x, alpha)`` (``F.elu(x, inplace=True)``)."""
    return apply_in_place(x, "elu_", pointwise.elu, alpha)


def selu_(x):
    """x overwritten with ``selu(x)`` (``F.selu(x, inplace=True)``)."""
    return apply_in_place(x, "selu_", pointwise.selu)


def hardtanh_(x, min_val=-1.0, max_val=1.0):
    """x overwritten with ``hardtanh(x, min_val, max_val)`` (``F.hardtanh(x, inplace=True)``)."""
    return apply_in_place(x, "hardtanh_", piecewise.hardtanh, min_val, max_val)


def relu6_(x):
    """x overwritten with ``relu6(x)`` (``F.relu6(x, inplace=True)``, ``nn.ReLU6(inplace=True)``)."""
    return apply_in_place(x, "relu6_", piecewise.relu6)


def hardsigmoid_(x):
    """x overwritten with ``hardsigmoid(x)`` (``F.hardsigmoid(x, inplace=True)``)."""
    return apply_in_place(x, "hardsigmoid_", piecewise.hardsigmoid)


def hardswish_(x):
    """x overwritten with ``hardswish(x)`` (``F.hardswish(x, inplace=True)``)."""
    # hardswish's slope is read from the input, so backward keeps a copy of it, as silu_'s does
    return apply_in_place(x, "hardswish_", lambda old: piecewise.hardswish(old.clone()))


def mish_(x):
    """x overwritten with ``mish(x)`` (``F.mish(x, inplace=True)``, ``nn.Mish(inplace=True)``)."""
    return apply_in_place(x, "mish_", lambda old: pointwise.mish(old.clone()))


def add_(x, other, alpha=1):
    if not _records(x, (other,)) and not (alpha != 1 and half_pair(x, other)):
        _check_in_place(x, "add_")
        o = other.data if isinstance(other, Tensor) else other
        if alpha != 1:   # sub_ passes -alpha, the value PyTorch checks
            o = arithmetic.times_alpha("add_", x, o, alpha)
        _in_place_ufunc(np.add, "add_", x, o)
        return x
    return apply_in_place(x, "add_", arithmetic.add, other, alpha=alpha)


def sub_(x, other, alpha=1):
    if x.data.dtype.kind == "b":   # x + (-alpha) * other would be a logical or, as add_ gives for bools
        raise TypeError("sub_: subtraction of bool tensors is not supported (as in NumPy and PyTorch); "
                        "use ^ (logical_xor) for bools, or ~ (logical_not) to invert one")
    if alpha == 1 and not _records(x, (other,)):   # a parameter update: one subtraction
        _check_in_place(x, "sub_")
        _in_place_ufunc(np.subtract, "sub_", x, other.data if isinstance(other, Tensor) else other)
        return x
    return add_(x, other, alpha=-alpha)


def mul_(x, other):
    # (a float16 or bfloat16 x is multiplied as mul multiplies it: by a number kept in float32)
    if not _records(x, (other,)) and not (x.data.itemsize == 2 and is_half(x.data.dtype)):
        _check_in_place(x, "mul_")
        _in_place_ufunc(np.multiply, "mul_", x, other.data if isinstance(other, Tensor) else other)
        return x
    return apply_in_place(x, "mul_", arithmetic.mul, other)


def _in_place_ufunc(ufunc, op, x, other):
    """x overwritten with ``ufunc(x, other)`` computed as PyTorch computes it: in the promoted dtype,
    then cast to x's, and refused where a float result would go into an integer tensor.

    ``casting="no"`` makes NumPy refuse every operand it would first convert: the common case
    (``other`` of x's dtype, or a Python number NumPy reads in it) pays no Python-level check.
    """
    try:
        ufunc(x.data, other, out=x.data, casting="no")
    except (TypeError, OverflowError):
        other = python_int_operands(op, x, other)[1]   # a Python int in x's dtype, wrapped as in PyTorch
        dtype = writable_dtype(op, x, promoted_dtype(op, x, other))
        ufunc(x.data, other, out=x.data, dtype=dtype, casting="unsafe")
    x._bump_version()


def div_(x, other, *, rounding_mode=None):
    return apply_in_place(x, "div_", arithmetic.div, other, rounding_mode=rounding_mode)


def pow_(x, other):
    return apply_in_place(x, "pow_", arithmetic.pow, other)


def clamp_(x, min=None, max=None):  # noqa: A002
    return apply_in_place(x, "clamp_", elementwise_choice.clamp, min, max)


def neg_(x):
    return apply_in_place(x, "neg_", arithmetic.neg)


# The in-place forms that optimizers and update rules written PyTorch's way reach for
# (``exp_avg.lerp_(grad, 0.1)``, ``p.addcdiv_(m, v.sqrt(), value=-lr)``), each the
# out-of-place operation written back into x.

def addcmul_(x, tensor1, tensor2, value=1):
    return apply_in_place(x, "addcmul_", arithmetic.addcmul, tensor1, tensor2, value=value)


def addcdiv_(x, tensor1, tensor2, value=1):
    return apply_in_place(x, "addcdiv_", arithmetic.addcdiv, tensor1, tensor2, value=value)


def lerp_(x, end, weight):
    return apply_in_place(x, "lerp_", arithmetic.lerp, end, weight)


def _in_place(name, fn):
    """``name``, the in-place form of ``fn``: x overwritten with ``fn(x, ...)``, in x's dtype."""
    def op_(x, *others, **options):
        return apply_in_place(x, name, fn, *others, **options)
    op_.__name__ = op_.__qualname__ = name
    op_.__doc__ = f"x overwritten with ``{fn.__name__}(x, ...)``, in x's dtype."
    return op_


floor_divide_ = _in_place("floor_divide_", rounding.floor_divide)
remainder_ = _in_place("remainder_", rounding.remainder)
fmod_ = _in_place("fmod_", rounding.fmod)
bitwise_and_ = _in_place("bitwise_and_", bitwise.bitwise_and)
bitwise_or_ = _in_place("bitwise_or_", bitwise.bitwise_or)
bitwise_xor_ = _in_place("bitwise_xor_", bitwise.bitwise_xor)
abs_ = _in_place("abs_", arithmetic.abs)
sqrt_ = _in_place("sqrt_", pointwise.sqrt)
exp_ = _in_place("exp_", pointwise.exp)
log_ = _in_place("log_", pointwise.log)
sigmoid_ = _in_place("sigmoid_", pointwise.sigmoid)
tanh_ = _in_place("tanh_", pointwise.tanh)
floor_ = _in_place("floor_", rounding.floor)
ceil_ = _in_place("ceil_", rounding.ceil)
round_ = _in_place("round_", rounding.round)
trunc_ = _in_place("trunc_", rounding.trunc)
frac_ = _in_place("frac_", rounding.frac)
square_ = _in_place("square_", arithmetic.square)
rsqrt_ = _in_place("rsqrt_", pointwise.rsqrt)
reciprocal_ = _in_place("reciprocal_", pointwise.reciprocal)
sin_ = _in_place("sin_", pointwise.sin)
cos_ = _in_place("cos_", pointwise.cos)
erf_ = _in_place("erf_", pointwise.erf)
expm1_ = _in_place("expm1_", elementary.expm1)
log1p_ = _in_place("log1p_", elementary.log1p)
sign_ = _in_place("sign_", compare.sign)


def zero_(x):
    return fill_(x, 0)


def fill_(x, value):
    _check_in_place(x, "fill_")
    v = value.data if isinstance(value, Tensor) else value
    if _records(x, (value,)):
        return apply_in_place(x, "fill_", lambda old, val: Fill.apply(old, val), value)
    x.data[...] = v
    x._bump_version()
    return x


class Fill(Function):
    """Every element set to ``value``; the old values get a zero gradient, ``value`` the sum."""
    saves_inputs = False

    def forward(self, a, value):
        return np.full_like(a, value)

    def backward(self, grad):
        return _overwritten(self.inputs[0], grad), (grad.sum() if isinstance(self.inputs[1], Tensor) else None)


def copy_(x, src):
    """Copy ``src`` (broadcast to x's shape) into x."""
    _check_in_place(x, "copy_")
    if _records(x, (src,)):
        return apply_in_place(x, "copy_", lambda old, s: CopyFrom.apply(old, s), src)
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
        return (_overwritten(self.inputs[0], grad),
                cast(sum_to(grad, self.src_shape), src.dtype) if isinstance(src, Tensor) else None)


def _overwritten(old, grad):
    """The gradient of a value that was overwritten whole: zero, and zeros rather than None, so
    the history that made the old value still receives a gradient (PyTorch's zeros, not unused)."""
    return Tensor._make(np.zeros_like(grad.data), None) if getattr(old, "requires_grad", False) else None


class IndexPut(Function):
    """x with ``value`` written at ``key``: grad to x is zero there; grad to value is grad[key]."""
    saves_inputs = False

    def forward(self, a, value, key):
        self.key, self.value_shape = key, np.shape(value)
        out = a.copy()
        region, k = _region(out, key)
        region[k] = value
        return out

    def backward(self, grad):
        mask = np.ones(grad.shape, dtype=grad.dtype)
        region, k = _region(mask, self.key)
        region[k] = 0
        g_value = None
        if isinstance(self.inputs[1], Tensor):
            g_value = sum_to(GetItem.apply(grad, self.key), self.value_shape)
        return grad * Tensor._make(mask, None), g_value, None


def setitem(x, key, value):
    key = _convert_key(key)
    if isinstance(value, (Tensor, np.ndarray)) and value.ndim and value.shape[0] == 1:
        # PyTorch drops a value's leading size-1 dims before broadcasting it to x[key]:
        # x[()] = tensor([2.]) on a 0-dim x, or a (1, 1, 1) value written into a matrix
        kept = next((i for i, n in enumerate(value.shape) if n != 1), value.ndim)
        value = value.reshape(value.shape[kept:])
    _check_in_place(x, "__setitem__")
    if _records(x, (value,)):
        return apply_in_place(x, "__setitem__", lambda old, v: IndexPut.apply(old, v, key), value)
    region, k = _region(x.data, key)
    region[k] = value.data if isinstance(value, Tensor) else value
    x._bump_version()
    return x


def uniform_(x, a=0.0, b=1.0, generator=None):
    _check_in_place(x, "uniform_")   # before no_grad, which would let a leaf that requires grad through
    with no_grad():
        return copy_(x, _gen(generator).uniform(a, b, size=x.shape).astype(x.dtype))


def normal_(x, mean=0.0, std=1.0, generator=None):
    _check_in_place(x, "normal_")
    with no_grad():
        return copy_(x, (_gen(generator).standard_normal(x.shape) * std + mean).astype(x.dtype))

