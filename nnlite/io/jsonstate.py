"""Optimizer, scheduler and loader state as JSON, with their arrays set aside as tensors.

An optimizer's ``state_dict()`` mixes arrays (Adam's ``exp_avg``), numbers,
tuples (``betas``) and integer-keyed dicts (``state``). :func:`encode` turns it
into JSON-able data, moving every array into ``tensors`` under a dotted key
that says where it came from (``optimizer.state.3.exp_avg``) and leaving a
marker in its place; :func:`decode` reverses it exactly: tuples come back as
tuples, integer keys as integers, NumPy scalars with their dtype, NaN as NaN.
Only plain data is accepted, so nothing executable ever enters a checkpoint.
"""
import math
from collections import Counter

import numpy as np

from ..tensor import Tensor
from .errors import HeaderError

__all__ = ["encode", "decode"]

_KINDS = {"Tensor", "ndarray", "scalar"}


def encode(obj, path, tensors):
    """JSON-able form of ``obj``; arrays go into ``tensors`` under keys starting with ``path``."""
    if isinstance(obj, (Tensor, np.ndarray, np.generic)):
        if isinstance(obj, Tensor):
            kind, arr = "Tensor", obj.data
        elif isinstance(obj, np.ndarray):
            kind, arr = "ndarray", obj
        else:
            kind, arr = "scalar", np.asarray(obj)
        key = path
        while key in tensors:  # two containers can flatten to one dotted path ("a.b" vs a -> b)
            key += "_"
        tensors[key] = arr
        return {"__tensor__": key, "as": kind}
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, (list, tuple)):
        items = [encode(v, f"{path}.{i}", tensors) for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else {"__tuple__": items}
    if isinstance(obj, Counter):  # MultiStepLR's milestones: a missing key must still count 0
        return {"__counter__": encode(dict(obj), path, tensors)}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: encode(v, f"{path}.{k}", tensors) for k, v in obj.items()}
        pairs = []
        for k, v in obj.items():
            if not (k is None or isinstance(k, (bool, int, float, str, tuple))):
                raise TypeError(f"{path}: cannot store a dict key of type {type(k).__name__} in a checkpoint")
            pairs.append([encode(k, f"{path}.key", {}), encode(v, f"{path}.{k}", tensors)])
        return {"__items__": pairs}
    raise TypeError(f"{path}: cannot store a {type(obj).__name__} in a checkpoint; only tensors, arrays, "
                    "numbers, strings, None, lists, tuples and dicts are saved (never pickled objects)")


def decode(obj, tensors, where="checkpoint"):
    """Inverse of :func:`encode`; ``tensors`` maps the stored keys to arrays."""
    if isinstance(obj, list):
        return [decode(v, tensors, where) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        key, kind = obj.get("__tensor__"), obj.get("as")
        if key not in tensors or kind not in _KINDS:
            raise HeaderError(f"{where}: reference to tensor {key!r} ({kind}) that the file does not hold")
        arr = tensors[key]
        if kind == "Tensor":
            return Tensor._make(arr, None)
        return arr[()] if kind == "scalar" else arr
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__counter__" in obj:
        return Counter(decode(obj["__counter__"], tensors, where))
    if "__tuple__" in obj:
        return tuple(decode(v, tensors, where) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {_hashable(decode(k, tensors, where)): decode(v, tensors, where) for k, v in obj["__items__"]}
    return {k: decode(v, tensors, where) for k, v in obj.items()}


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key
