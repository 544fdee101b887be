"""Collate: turn a list of examples into one batch.

``default_collate([(x0, y0), (x1, y1), ...])`` gives ``(stack(x), stack(y))``:
it keeps the structure of one example (tuple, list, dict) and stacks the
leaves along a new first dimension. Leaves may be Tensors, NumPy arrays or
numbers; Python floats become the default float dtype (float32) and Python
ints become int64, the dtype class labels need. Strings stay a list.
"""
import numbers

import numpy as np

from ..tensor import Tensor, get_default_dtype

__all__ = ["default_collate"]


def default_collate(batch):
    """Stack a list of examples into a batch of Tensors, keeping their structure."""
    if not isinstance(batch, (list, tuple)) or len(batch) == 0:
        raise ValueError(f"default_collate: expected a non-empty list of examples, got {batch!r:.80}")
    first = batch[0]
    if isinstance(first, (Tensor, np.ndarray)):
        arrays = [b.data if isinstance(b, Tensor) else b for b in batch]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"default_collate: examples must have one shape to be stacked, "
                             f"got shapes {sorted(shapes)}")
        return Tensor._make(np.stack(arrays), None)
    if isinstance(first, (bool, np.bool_)):
        return Tensor._make(np.asarray(batch, dtype=np.bool_), None)
    if isinstance(first, np.generic):
        return Tensor._make(np.asarray(batch, dtype=first.dtype), None)
    if isinstance(first, numbers.Integral):
        return Tensor._make(np.asarray(batch, dtype=np.int64), None)
    if isinstance(first, numbers.Real):
        return Tensor._make(np.asarray(batch, dtype=get_default_dtype()), None)
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, dict):
        return {key: default_collate([b[key] for b in batch]) for key in first}
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
