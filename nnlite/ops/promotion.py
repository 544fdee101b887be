"""Type promotion: which dtype an operation's result gets from its operands, as in PyTorch.

NumPy and PyTorch disagree here. NumPy lets every operand count: an int64 array
times a float32 array is float64, and so is an int64 array divided by another.
PyTorch ranks dtypes in three *categories*, bool < integer < floating point, and
lets an operand decide the dtype only if it has a higher category than the ones
that outrank it:

1. tensors with at least one dimension decide first;
2. zero-dimensional tensors (``nl.tensor(2.0)``) only raise the category;
3. Python numbers last, a float standing for the default dtype (float32),
   an int for int64, a bool for bool.

So (``nl.result_type``) an int64 tensor with a float32 tensor gives float32, a
float32 tensor with a 0-dim float64 tensor float32, an int32 tensor with 5 int32,
and an int64 tensor with 2.5 float32. Within one priority group, dtypes of one
category promote as NumPy does (int32 with int64 gives int64); across categories
the higher category wins (int64 with float16 gives float16, where NumPy would give
float64): :func:`promote_types`. The operation is computed in the promoted dtype, as
PyTorch computes it: ``float32_tensor * nl.tensor(0.1, dtype=nl.float64)`` multiplies
by 0.1 rounded to float32.

Functions that only make sense on real numbers (``/``, ``exp``, ``log``, ``sqrt``,
``log1p``, ``atan2``...) give the default float dtype where the promoted dtype is an
integer or bool: ``nl.tensor([1, 2]) / 2`` and ``exp`` of an int64 tensor are
float32, as in PyTorch (NumPy: float64, and float16 for ``exp`` of int8).

The operations of ``nnlite.ops`` follow these rules: ``+ - * / ** // %``, the
comparisons and the bitwise operators, their functions and in-place forms, the
elementwise functions, ``where``, ``maximum``, ``clamp``, ``cat``, ``outer`` and the
rest, and so do the losses and layers written with them. ``cat``, ``kron`` and ``outer``
promote with :func:`promote_types`, a 0-dim operand counting as fully as the others
(PyTorch reshapes it first). The products (``matmul`` and ``@``, ``mm``, ``bmm``, ``dot``,
``tensordot``, ``einsum``, ``linear``) and the operations whose kernels take one dtype
(convolutions, the norms, ``scatter_add``, ``index_add``) refuse two, as PyTorch does
(:class:`DTypeMismatchError` for the products).

An in-place operation is computed in the promoted dtype and written in the tensor's own
dtype; a float result for an integer tensor, or an integer one for a bool tensor, is
refused with PyTorch's RuntimeError (:class:`CastingError`, also a TypeError). A gradient
comes back in its input's dtype, computed in the result's dtype (no float64 detour for a
float32 input beside a Python float).

The hot operations (``+ - * / **``, ``exp``, ``log``, ``sqrt``, ``rsqrt``, ``sin``,
``cos``, ``matmul``, ``add_``, ``sub_``, ``mul_``) promote in their forward: they ask
NumPy to compute with ``casting="no"``, which refuses every operand NumPy would first
convert, and only then apply these rules. Operands of one dtype, and a float tensor with
a Python number (which NumPy reads in the tensor's dtype), so pay for no check in Python.

In ``+ - * // %``, ``fmod``, the bitwise operators, the comparisons and as a power's
base, a Python int beside an integer tensor is read in the tensor's dtype, wrapping as
PyTorch's conversion wraps it (``wrapped_int``): an int8 tensor ``& 1000`` is ``& -24``,
its ``< 1000`` is ``< -24``, and 2**63 beside int64 is -2**63; an int beyond 64 bits is
refused. Scalar *arguments* (a clamp bound, pow's exponent, ``alpha``, the value of
``where``, ``masked_fill`` and ``addcmul``) are checked instead, as PyTorch checks them
(``checked_int``): 1000 does not fit int8.
"""
import numbers

import numpy as np

from ..tensor import Tensor, _to_array, get_default_dtype, is_floating_dtype
from .casting import cast

_BOOL, _INTEGER, _FLOAT = 0, 1, 2


def _category(dtype):
    if dtype.kind == "b":
        return _BOOL
    return _INTEGER if dtype.kind in "iu" else _FLOAT


def promote_types(type1, type2):
    """The dtype two tensors with dims promote to, PyTorch's ``promote_types``: within a category
    as NumPy (int32 with int64 is int64), across categories the higher one (int64 with float16
    is float16, where NumPy would give float64).

    >>> import nnlite as nl
    >>> nl.promote_types(nl.int64, nl.float16), nl.promote_types(nl.uint8, "int8")
    (dtype('float16'), dtype('int16'))
    """
    a, b = np.dtype(type1), np.dtype(type2)
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
        groups[group] = dtype if groups[group] is None else promote_types(groups[group], dtype)
    result = None
    for dtype in groups:   # highest priority first; a later group only ever raises the category
        if dtype is not None and (result is None or _category(dtype) > _category(result)):
            result = dtype
    return result


def floating_dtype(op, *operands):
    """The promoted dtype, or the default float dtype where that is an integer or bool."""
    dtype = promoted_dtype(op, *operands)
    return dtype if is_floating_dtype(dtype) else get_default_dtype()


_INTEGER_RANGES = {np.dtype(t): (int(np.iinfo(t).min), int(np.iinfo(t).max))
                   for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)}
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -2 ** 63, 2 ** 63 - 1, 2 ** 64 - 1


def wrapped_int(op, value, dtype):
    """The Python int ``value`` as PyTorch reads it in an operation with a tensor of ``dtype``.

    PyTorch holds a Python int in 64 bits, as int64 or, from 2**63 up, uint64, and refuses
    one beyond that. Beside an integer tensor it is then cast to the tensor's dtype the way
    C casts, keeping the low bits: 1000 in int8 is -24 (1000 - 4 * 256), -1 in uint8 is
    255. Beside a bool tensor it is an int64; beside a float tensor, a float (there nnlite,
    unlike PyTorch, takes ints beyond 64 bits too).

    >>> import numpy as np
    >>> wrapped_int("add", 1000, np.dtype(np.int8)), wrapped_int("add", -1, np.dtype(np.uint8))
    (-24, 255)
    """
    limits = _INTEGER_RANGES.get(dtype)
    if limits is None:   # a float or bool tensor
        if dtype.kind == "b" and not _INT64_MIN <= value <= _INT64_MAX:
            raise OverflowError(f"{op}: the Python integer {value} does not fit int64, the dtype it has beside "
                                f"a bool tensor; expected one in [{_INT64_MIN}, {_INT64_MAX}]")
        return value
    low, high = limits
    if low <= value <= high:   # the common case: it fits as it is
        return value
    if not _INT64_MIN <= value <= _UINT64_MAX:
        raise OverflowError(f"{op}: the Python integer {value} does not fit in 64 bits; "
                            f"expected one in [{_INT64_MIN}, {_UINT64_MAX}]")
    value %= high - low + 1
    return value + low * 2 if value > high else value   # signed: the upper half is negative


def checked_int(op, name, value, dtype):
    """The int ``value`` of argument ``name``, refused unless it fits the integer ``dtype``.

    PyTorch's check for a scalar argument (a clamp bound, pow's exponent, ``alpha``): a
    signed dtype takes its own range; an unsigned one also takes the negatives down to
    ``-max``, which wrap (-1 is 255 in uint8), so ``a - b`` can be written ``a + 255 * b``.
    """
    low, high = _INTEGER_RANGES[dtype]
    if low == 0:
        low = -high
    if not low <= value <= high:
        raise OverflowError(f"{op}: {name}={value} does not fit {dtype}; expected an integer in [{low}, {high}]")
    return value % (high + 1) if value < 0 and dtype.kind == "u" else value


def python_int_operands(op, input, other):
    """``input`` and ``other``, a Python int among them read as :func:`wrapped_int` reads it beside the other."""
    if type(other) is int and isinstance(input, (Tensor, np.ndarray)):
        return input, wrapped_int(op, other, input.dtype)
    if type(input) is int and isinstance(other, (Tensor, np.ndarray)):
        return wrapped_int(op, input, other.dtype), other
    return input, other


def one_dtype(input, other):
    """True when ``input`` and ``other`` need no promotion: tensors (or arrays) of one dtype, or a
    floating one with a Python float or int, which NumPy reads in the tensor's dtype."""
    if isinstance(input, (Tensor, np.ndarray)):
        if isinstance(other, (Tensor, np.ndarray)):
            return input.dtype == other.dtype
        return type(other) in (float, int) and input.dtype.kind == "f"
    return type(input) in (float, int) and isinstance(other, (Tensor, np.ndarray)) and other.dtype.kind == "f"


def promoted_operands(op, input, other, floating=False):
    """``input`` and ``other`` in the dtype PyTorch computes ``op`` in (``floating``: the
    default float dtype where that is an integer or bool, as for ``/``).

    A Python int beside an integer tensor is first read in its dtype (:func:`wrapped_int`;
    not for ``floating``, where ``int8 / 1000`` divides by 1000). Tensors and arrays are
    cast to the dtype, a Tensor with the differentiable ``cast`` (its gradient comes back in
    its own dtype); numbers stay Python numbers, which NumPy reads in the arrays' dtype
    (a NumPy scalar becomes one, so that ``np.float64(0.5)`` counts as a Python float does).
    A list or tuple is read as ``nl.tensor`` reads it.
    """
    input, other = sequence_as_array(input), sequence_as_array(other)
    if not floating:
        input, other = python_int_operands(op, input, other)
    dtype = (floating_dtype if floating else promoted_dtype)(op, input, other)
    return _in_dtype(input, dtype), _in_dtype(other, dtype)


def sequence_as_array(x):
    """A list or tuple as ``nl.tensor`` reads it (Python floats as float32), anything else as it is."""
    return _to_array(x, None) if isinstance(x, (list, tuple)) else x


def _in_dtype(x, dtype):
    if isinstance(x, Tensor):
        return cast(x, dtype)
    if isinstance(x, np.ndarray):
        return x.astype(dtype, copy=False)
    return x.item() if isinstance(x, np.generic) else x   # promoted_dtype refused any other type


class CastingError(RuntimeError, TypeError):
    """An in-place operation's result cannot be written into its tensor's dtype.

    A RuntimeError, as PyTorch raises it, and a TypeError, since the dtypes are what is wrong.
    """


class DTypeMismatchError(RuntimeError, TypeError):
    """Operands an operation takes in one dtype come in two (a float32 ``A @ B`` of a float64 ``B``).

    A RuntimeError, as PyTorch raises it, and a TypeError, since the dtypes are what is wrong.
    """


def same_dtype(op, input, other):
    """Refuse, with :class:`DTypeMismatchError`, ``input`` and ``other`` of two dtypes: the products
    (``matmul``, ``mm``, ``bmm``, ``dot``, ``tensordot``) take one dtype, as in PyTorch."""
    if input.dtype != other.dtype:
        raise DTypeMismatchError(f"{op}: expected both operands to have the same dtype, but got {input.dtype} "
                                 f"and {other.dtype}, as in PyTorch; convert one (e.g. "
                                 f"other.to(nl.{input.dtype}))")


#: PyTorch's names of the dtypes, as its messages spell them ("result type Float").
_TORCH_NAMES = {"bool": "Bool", "uint8": "Byte", "int8": "Char", "int16": "Short", "int32": "Int",
                "int64": "Long", "uint16": "UInt16", "uint32": "UInt32", "uint64": "UInt64",
                "float16": "Half", "bfloat16": "BFloat16", "float32": "Float", "float64": "Double"}


def writable_dtype(op, tensor, dtype, hint=None):
    """``dtype``, the dtype of an in-place operation's result, refused (:class:`CastingError`) if it
    cannot be written into ``tensor`` as PyTorch refuses it: a float result into an integer or bool
    tensor, an integer one into a bool tensor (a result of a lower category is cast, as is float64
    into float32). ``hint`` replaces the advice for an in-place operation in the message."""
    if _category(dtype) > _category(tensor.dtype):
        result, output = (_TORCH_NAMES.get(d.name, d.name) for d in (dtype, tensor.dtype))
        hint = hint or f"use the out-of-place operation, or convert the tensor first (x.to({dtype}))"
        raise CastingError(f"{op}: result type {result} can't be cast to the desired output type {output} "
                           f"(a {dtype} result for the {tensor.dtype} tensor, as in PyTorch); {hint}")
    return dtype


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


def floating_array(a):
    """The array ``a`` as a function of real numbers reads it: an integer or bool array in the
    default float dtype (a forward's form of :func:`floating_input`)."""
    return a if is_floating_dtype(a.dtype) else a.astype(get_default_dtype())


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
