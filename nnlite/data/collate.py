"""Collate: turn a list of examples into one batch.

``default_collate([(x0, y0), (x1, y1), ...])`` gives ``(stack(x), stack(y))``:
it keeps the structure of one example (tuple, list, dict) and stacks the
leaves along a new first dimension. Leaves may be Tensors, NumPy arrays or
numbers; Python floats become the default float dtype (float32) and Python
ints become int64, the dtype class labels need (a batch of ints mixed with
floats is a float batch). Strings stay a list. PyTorch makes Python floats
float64 and gives tuples back as lists; nnlite keeps float32, its default,
and keeps tuples tuples.

:func:`default_convert` is what a loader without batching
(``batch_size=None``) applies to each example: NumPy arrays and scalars
become Tensors, everything else keeps its type.
"""
import collections.abc
import numbers

import numpy as np

from ..tensor import Tensor, get_default_dtype

__all__ = ["default_collate", "default_convert"]


def _numeric_array(a):
    """``a`` itself, if its dtype can make a Tensor (strings and objects cannot)."""
    if a.dtype.kind in "USOV":
        raise TypeError(f"default_collate: NumPy arrays must hold numbers or bools to become "
                        f"Tensors, got dtype {a.dtype}")
    return a


def _same_mapping(first, items):
    """A mapping of the first example's type holding ``items`` (a plain dict if that type cannot)."""
    try:
        return type(first)(items)
    except TypeError:
        return dict(items)


def default_collate(batch):
    """Stack a list of examples into a batch of Tensors, keeping their structure."""
    if not isinstance(batch, (list, tuple)) or len(batch) == 0:
        raise ValueError(f"default_collate: expected a non-empty list of examples, got {batch!r:.80}")
    first = batch[0]
    if isinstance(first, (Tensor, np.ndarray)):
        arrays = [_numeric_array(b.data if isinstance(b, Tensor) else b) for b in batch]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"default_collate: examples must have one shape to be stacked, "
                             f"got shapes {sorted(shapes)}")
        return Tensor._make(np.stack(arrays), None)
    if isinstance(first, (str, bytes)):   # before np.generic: NumPy's strings are str too
        return list(batch)
    # The whole batch decides the dtype, not its first example: a bool or NumPy int first
    # must not turn a later 2 into True or a later 2.5 into 2.
    if all(isinstance(b, (bool, np.bool_)) for b in batch):
        return Tensor._make(np.asarray(batch, dtype=np.bool_), None)
    if isinstance(first, np.generic):
        return Tensor._make(_numeric_array(np.asarray(batch)), None)
    if isinstance(first, numbers.Integral) and all(isinstance(b, numbers.Integral) for b in batch):
        return Tensor._make(np.asarray(batch, dtype=np.int64), None)
    if isinstance(first, numbers.Real):
        return Tensor._make(np.asarray(batch, dtype=get_default_dtype()), None)
    if isinstance(first, collections.abc.Mapping):
        return _same_mapping(first, {key: default_collate([b[key] for b in batch]) for key in first})
    if isinstance(first, (tuple, list)):
        sizes = {len(b) for b in batch}
        if len(sizes) != 1:
            raise ValueError(f"default_collate: every example must have the same number of fields, "
                             f"got {sorted(sizes)}")
        fields = [default_collate(list(column)) for column in zip(*batch)]
        if hasattr(first, "_fields"):  # namedtuple
            return type(first)(*fields)
        return tuple(fields) if isinstance(first, tuple) else fields
    raise TypeError(f"default_collate: examples must contain Tensors, arrays, numbers, strings, "
                    f"dicts, tuples or lists; got {type(first).__name__}")


def default_convert(data):
    """One example (``data``, PyTorch's name) with its NumPy arrays and scalars made Tensors,
    its structure kept."""
    if isinstance(data, np.ndarray) and data.dtype.kind not in "USOV":
        return Tensor._make(data, None)
    if isinstance(data, (np.number, np.bool_)):
        return Tensor._make(np.asarray(data), None)
    if isinstance(data, collections.abc.Mapping):
        return _same_mapping(data, {key: default_convert(v) for key, v in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
        return type(data)(*(default_convert(v) for v in data))
    if isinstance(data, (tuple, list)):
        return type(data)(default_convert(v) for v in data)
    return data
