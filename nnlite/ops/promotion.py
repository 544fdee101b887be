"""Type promotion: which dtype an operation's result gets from its operands, as in PyTorch.

NumPy and PyTorch disagree here. NumPy lets every operand count: an int64
array times a float32 array is float64. PyTorch ranks dtypes in three
*categories*, bool < integer < floating point, and lets an operand decide the
dtype only if it has a higher category than the ones that outrank it:

1. tensors with at least one dimension decide first;
2. zero-dimensional tensors (``nl.tensor(2.0)``) only raise the category;
3. Python numbers last, a float standing for the default dtype (float32),
   an int for int64, a bool for bool.

So by PyTorch's rules (``nl.result_type``) an int64 tensor with a float32 tensor
gives float32, a float32 tensor with a 0-dim float64 tensor float32, an int32
tensor with 5 int32, and an int64 tensor with 2.5 float32. Within one priority group, dtypes of one category promote as NumPy does
(int32 with int64 gives int64); across categories the higher category wins (int64
with float16 gives float16, where NumPy would give float64).

Functions that only make sense on real numbers (``log1p``, ``atan2``) give the
default float dtype where the promoted dtype is an integer or bool: ``log1p`` of an
int64 tensor is float32, as in PyTorch. The operations of ``elementary.py``,
``rounding.py`` and ``scan.py``, the arithmetic extras (lerp, addcmul...), ``kron``
and ``tensordot`` follow these rules; ``+``, ``*`` and the older operations still
follow NumPy's.
"""
import numbers

import numpy as np

from ..tensor import Tensor, get_default_dtype, is_floating_dtype
from .casting import cast

_BOOL, _INTEGER, _FLOAT = 0, 1, 2


def _category(dtype):
    if dtype.kind == "b":
        return _BOOL
    return _INTEGER if dtype.kind in "iu" else _FLOAT


def _promote_two(a, b):
    """PyTorch's ``promote_types``: within a category as NumPy; across categories the higher one wins."""
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)


def _dtype_and_group(op, x):
    """An operand's dtype and its priority group: 0 for a tensor with dims, 1 for 0-dim, 2 for a number."""
    if isinstance(x, (Tensor, np.ndarray)):
        return x.dtype, (0 if x.ndim else 1)
    if isinstance(x, (bool, np.bool_)):
        return np.dtype(np.bool_), 2
    if isinstance(x, numbers.Integral):
        return np.dtype(np.int64), 2
    if isinstance(x, numbers.Real):
        return get_default_dtype(), 2
    raise TypeError(f"{op}: expected a Tensor or a real number, got {type(x).__name__}")


def promoted_dtype(op, *operands):
    """The dtype of an operation on ``operands`` (Tensors, arrays, Python numbers) by PyTorch's rules."""
    groups = [None, None, None]
    for x in operands:
        dtype, group = _dtype_and_group(op, x)
        groups[group] = dtype if groups[group] is None else _promote_two(groups[group], dtype)
    result = None
    for dtype in groups:   # highest priority first; a later group only ever raises the category
        if dtype is not None and (result is None or _category(dtype) > _category(result)):
            result = dtype
    return result


def floating_dtype(op, *operands):
    """The promoted dtype, or the default float dtype where that is an integer or bool."""
    dtype = promoted_dtype(op, *operands)
    return dtype if is_floating_dtype(dtype) else get_default_dtype()


def result_type(tensor1, tensor2):
    """The dtype of an arithmetic operation on ``tensor1`` and ``tensor2`` (Tensors or numbers).

    PyTorch's ``torch.result_type``: the higher category of bool < integer < float wins,
    and tensors with dims outrank 0-dim tensors, which outrank Python numbers.

    >>> import nnlite as nl
    >>> nl.result_type(nl.tensor([1, 2]), 2.5), nl.result_type(nl.tensor([1.0]), nl.tensor(1.0, dtype=nl.float64))
    (dtype('float32'), dtype('float32'))
    """
    return promoted_dtype("result_type", tensor1, tensor2)


def operand(op, name, x, dtype):
    """``x`` as a Tensor of ``dtype``.

    A Tensor is cast with the differentiable ``cast`` (its gradient comes back in its
    own dtype); numbers and arrays become constants. Anything else is refused.
    """
    if isinstance(x, Tensor):
        return cast(x, dtype)
    if isinstance(x, np.ndarray) or isinstance(x, numbers.Real):
        return Tensor._make(np.asarray(x, dtype=dtype), None)
    raise TypeError(f"{op}: expected {name} to be a Tensor or a real number, got {type(x).__name__}")


def tensor_input(op, input):
    """``input``, refused unless it is a Tensor (the functions take a tensor first, as PyTorch's do)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected input to be a Tensor, got {type(input).__name__}")
    return input


def floating_input(op, input):
    """``input`` for a function of real numbers: integer and bool tensors become the default float dtype."""
    tensor_input(op, input)
    if is_floating_dtype(input.dtype):
        return input
    return Tensor._make(input.data.astype(get_default_dtype()), None)


def broadcast_shape(op, *operands, **named):
    """The shape the operands broadcast to, or a ValueError naming each shape.

    Operands given by keyword are named in the message (``input (6, 4)``), so a
    loss can say which of its arguments is the odd one out.
    """
    shapes = [np.shape(x.data if isinstance(x, Tensor) else x) for x in operands + tuple(named.values())]
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        names = [f"{name} " for name in named] if named else [""] * len(shapes)
        given = ", ".join(f"{name}{shape}" for name, shape in zip(names, shapes))
        raise ValueError(f"{op}: shapes must broadcast together, got {given}") from None
