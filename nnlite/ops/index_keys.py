"""How an indexing key becomes NumPy's key, in PyTorch's order.

``x[key]`` and ``x[key] = value`` (``indexing.py``, ``inplace.py``) take
PyTorch's keys: ints, slices, None, Ellipsis, bool masks, lists and integer
Tensors or arrays. Most go to NumPy as they are. Two need care: a 0-dim integer
Tensor is an int, as in PyTorch (so ``x[i]`` stays a view), and a key that mixes
ints with index arrays is applied in two steps (:class:`SelectThenIndex`),
because NumPy and PyTorch put the indexed dims in different places.
"""
import numpy as np

from ..tensor import Tensor


def _is_basic(key):
    """True when ``key`` uses only ints, slices, None and Ellipsis (a view, no repeats)."""
    items = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (int, np.integer, slice)) for k in items)


def _convert_key(key):
    """``key`` with Tensors replaced by their arrays, ready for NumPy, in PyTorch's axis order.

    A 0-dim integer Tensor is an int, as in PyTorch (so ``x[i]`` is a view). A tuple
    mixing ints with index arrays becomes a :class:`SelectThenIndex`.
    """
    if isinstance(key, Tensor):
        return _as_index(key.data)
    if isinstance(key, tuple):
        for k in key:   # ints, slices, None and Ellipsis (the common keys) go to NumPy as they are
            if not (type(k) is int or type(k) is slice or k is None or k is Ellipsis):
                break
        else:
            return key
        key = tuple(_as_index(k.data if isinstance(k, Tensor) else k) if isinstance(k, (Tensor, np.ndarray))
                    else _list_index(k) if isinstance(k, list) else k for k in key)
        return SelectThenIndex.split(key)
    if isinstance(key, list):
        return _list_index(key)
    return key


def _list_index(key):
    """A list key as an index array; an empty list selects nothing (NumPy reads it as float and refuses)."""
    array = np.asarray(key)
    return array.astype(np.intp) if array.size == 0 and array.dtype != bool else array


def _as_index(array):
    return int(array) if array.ndim == 0 and array.dtype.kind in "iu" else array


def _is_int(k):
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def _is_advanced(k):
    return isinstance(k, (np.ndarray, list, bool, np.bool_))


class SelectThenIndex:
    """A key that mixes index arrays with ints or an Ellipsis, applied in PyTorch's order.

    NumPy counts an int among index arrays as one more index array: when they
    are separated by a slice (``x[0, :, idx]``), the indexed dims go first in
    the result. PyTorch first applies the ints, slices, None and Ellipsis (basic
    indexing, a view), then the index arrays to what remains, so ``x[0, :, idx]``
    is ``x[0][:, idx]``. ``basic`` is that first step (each index array replaced
    by full slices over the dims it covers), ``advanced`` the second.

    An Ellipsis among index arrays comes here too. PyTorch expands it into the full
    slices it stands for, so one that stands for none separates nothing: in
    ``x[:, idx, ..., mask]`` of a 3-dim x, idx and mask are next to each other and
    their dims stay in place. NumPy counts the Ellipsis as a separator all the
    same and moves the indexed dims first; ``region`` drops such an Ellipsis.
    """
    __slots__ = ("basic", "advanced", "key")

    def __init__(self, basic, advanced, key):
        self.basic, self.advanced, self.key = basic, advanced, key

    @classmethod
    def split(cls, key):
        """``key`` itself unless it holds an index array beside an int or an Ellipsis."""
        if not (any(_is_int(k) or k is Ellipsis for k in key) and any(_is_advanced(k) for k in key)):
            return key
        basic, advanced = [], []
        for k in key:
            if _is_int(k):
                basic.append(k)
            elif _is_advanced(k):
                k = np.asarray(k)
                if k.ndim == 0:   # a scalar bool: a new dim of size 1, masked (PyTorch's way)
                    basic.append(None)
                    k = k.reshape(1)
                else:
                    basic.extend([slice(None)] * (k.ndim if k.dtype == bool else 1))
                advanced.append(k)
            elif k is None:
                basic.append(None)
                advanced.append(slice(None))
            else:   # a slice or Ellipsis
                basic.append(k)
                advanced.append(k if k is Ellipsis else slice(None))
        return cls(tuple(basic), tuple(advanced), key)

    def region(self, array):
        """The view of ``array`` that ``basic`` selects, and the key to apply to it."""
        view = array[self.basic]
        return view, _without_empty_ellipsis(self.advanced, view.ndim)

    def __repr__(self):
        return repr(self.key)


def _without_empty_ellipsis(key, ndim):
    """``key`` (index arrays, slices, an Ellipsis) without its Ellipsis if that stands for no dim."""
    named = sum(k.ndim if isinstance(k, np.ndarray) and k.dtype == bool else 0 if k is Ellipsis else 1
                for k in key)
    return tuple(k for k in key if k is not Ellipsis) if named == ndim else key


def _region(array, key):
    """(array, key), with a :class:`SelectThenIndex`'s basic step already applied (a view)."""
    return key.region(array) if type(key) is SelectThenIndex else (array, key)
