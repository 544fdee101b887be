"""ParameterList and ParameterDict: parameters whose number is known only when the model is built.

A model that learns one scale per layer, or one temperature per task, cannot
name each of those parameters as an attribute in its source. Kept in a plain
Python list or dict they are lost: a Module registers what is assigned to its
attributes, a list is not a Parameter, and so ``parameters()``, the optimizer
and ``state_dict()`` never see what is inside. These two containers are
Modules whose entries are their own attributes, named by position ("0",
"1", ...) or by key. Under a parent attribute ``taus`` the parameters are
``taus.0``, ``taus.1``... or ``taus.<key>``: the names PyTorch gives them, so
a ``state_dict`` moves between the two unchanged.

What an entry becomes follows PyTorch: a :class:`Parameter` is registered as
it is; any other Tensor (a plain tensor, a Buffer) is made a Parameter that
shares its memory; a Module is registered as a sub-module; anything else (a
number, a string, ``None``) is kept as a plain attribute, listed but neither
learned nor saved.
"""
import operator
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from ..parameter import Parameter
from ..tensor import Tensor
from .module import Module

__all__ = ["ParameterList", "ParameterDict"]


def _as_parameter(value):
    # The one place a container turns a tensor into a parameter (trainable, kind "other").
    if isinstance(value, Tensor) and not isinstance(value, Parameter):
        return Parameter(value)
    return value


def _describe(key, value):
    """One line of the repr, in PyTorch's layout: ``(0): Parameter containing: [float32 of size 3x4]``."""
    if isinstance(value, Tensor):
        what = "Parameter" if isinstance(value, Parameter) else "Tensor"
        size = "x".join(str(n) for n in value.shape)
        return f"  ({key}): {what} containing: [{value.dtype} of size {size}]"
    return f"  ({key}): Object of type: {type(value).__name__}"


class ParameterList(Module):
    """A list of parameters registered with the module that holds it.

    Indexing (negative indices too), slicing (a new ParameterList holding the
    same parameters), ``append``, ``extend``, ``+=``, ``len`` and iteration
    work as on a list; ``lst[i] = value`` replaces an entry. Tensors are made
    Parameters as they come in.

    >>> import nnlite as nl
    >>> scales = nl.nn.ParameterList([nl.ones(4) for _ in range(3)])
    >>> [name for name, _ in scales.named_parameters()], scales[-1].requires_grad
    (['0', '1', '2'], True)
    >>> scales.append(nl.zeros(4))[3].shape
    (4,)
    """

    def __init__(self, values=None):
        super().__init__()
        self._size = 0
        if values is not None:
            self.extend(values)

    def _key(self, idx):
        idx = operator.index(idx)
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"ParameterList: index {idx} is out of range for a list of length {n}")
        return str(idx % n)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)().extend(self[i] for i in range(*idx.indices(len(self))))
        return getattr(self, self._key(idx))

    def __setitem__(self, idx, value):
        setattr(self, self._key(idx), _as_parameter(value))

    def __len__(self):
        return self._size

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __iadd__(self, values):
        return self.extend(values)

    def append(self, value):
        # Convert first: a tensor that cannot be a parameter (integers) leaves the list unchanged.
        setattr(self, str(len(self)), _as_parameter(value))
        self._size += 1
        return self

    def extend(self, values):
        # A Tensor is iterable (over its rows), but adding its rows one by one is never what was meant.
        if not isinstance(values, Iterable) or isinstance(values, Tensor):
            raise TypeError(f"ParameterList.extend: expected an iterable of values, got {type(values).__name__}")
        for value in values:
            self.append(value)
        return self

    def extra_repr(self):
        return "\n".join(_describe(i, value) for i, value in enumerate(self))

    def forward(self, *args, **kwargs):
        raise RuntimeError("ParameterList should not be called: index it or iterate over it "
                           "in the forward() of the module that holds it")


class _MissingKey(KeyError, AttributeError):
    """A key a ParameterDict does not hold: a KeyError, as from a dict, and the AttributeError PyTorch raises."""


class ParameterDict(Module):
    """An ordered dict of parameters, by string key, registered with the module that holds it.

    It has a dict's methods (``keys``, ``values``, ``items``, ``get``, ``pop``,
    ``popitem``, ``setdefault``, ``update``, ``clear``, ``copy``, ``fromkeys``,
    ``in``, ``|`` and ``|=``). A key is a parameter's name inside the module,
    so it must be a non-empty string without ".", that is not already the
    name of one of the module's attributes (``"keys"``, ``"training"``).

    Like PyTorch's, the constructor and :meth:`update` take a plain ``dict`` in
    sorted key order (an ``OrderedDict``, another ParameterDict or a list of
    pairs keeps its order), so both frameworks list the same parameters in
    the same order.

    >>> import nnlite as nl
    >>> bias = nl.nn.ParameterDict({"spam": nl.zeros(1), "ham": nl.zeros(1)})
    >>> list(bias), bias["ham"].requires_grad
    (['ham', 'spam'], True)
    """

    def __init__(self, parameters=None):
        super().__init__()
        self._keys = {}
        if parameters is not None:
            self.update(parameters)

    @staticmethod
    def _check_key(key):
        if not isinstance(key, str):
            raise TypeError(f"ParameterDict keys must be strings, got {type(key).__name__} ({key!r})")

    def _existing(self, key):
        self._check_key(key)
        if key not in self._keys:
            raise _MissingKey(f"ParameterDict has no key {key!r} (its keys: {list(self._keys)})")
        return key

    def __getitem__(self, key):
        return getattr(self, self._existing(key))

    def __setitem__(self, key, value):
        self._check_key(key)
        if key not in self._keys:
            # The key becomes an attribute name and one part of a dotted state_dict key.
            if not key or "." in key:
                raise KeyError(f"ParameterDict: a key must be a non-empty string without '.', got {key!r}")
            if hasattr(self, key):
                raise KeyError(f"ParameterDict: key {key!r} would hide the module's attribute of that name")
        setattr(self, key, _as_parameter(value))
        self._keys[key] = None

    def __delitem__(self, key):
        delattr(self, self._existing(key))
        del self._keys[key]

    def __len__(self):
        return len(self._keys)

    def __iter__(self):
        return iter(self._keys)

    def __reversed__(self):
        return reversed(self._keys)

    def __contains__(self, key):
        return key in self._keys

    def keys(self):
        return self._keys.keys()

    def items(self):
        return ((k, self[k]) for k in self._keys)

    def values(self):
        return (self[k] for k in self._keys)

    def get(self, key, default=None):
        return self[key] if key in self else default

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key):
        value = self[key]
        del self[key]
        return value

    def popitem(self):
        """Remove and return the last inserted ``(key, value)`` pair."""
        if not self._keys:
            raise KeyError("popitem(): ParameterDict is empty")
        key = next(reversed(self._keys))
        return key, self.pop(key)

    def clear(self):
        for key in list(self._keys):
            del self[key]

    def copy(self):
        """A new ParameterDict holding the same parameters (not copies of them)."""
        return ParameterDict(OrderedDict(self.items()))

    @classmethod
    def fromkeys(cls, keys, default=None):
        """A new ParameterDict with every key set to ``default`` (a Parameter is shared by all)."""
        return cls((key, default) for key in keys)

    def update(self, parameters):
        if not isinstance(parameters, Iterable):
            raise TypeError("ParameterDict.update: expected a mapping or an iterable of (key, value) pairs, "
                            f"got {type(parameters).__name__}")
        if isinstance(parameters, (OrderedDict, ParameterDict)):
            pairs = list(parameters.items())
        elif isinstance(parameters, Mapping):
            for key in parameters:
                self._check_key(key)
            pairs = sorted(parameters.items(), key=lambda pair: pair[0])  # PyTorch's order for a plain dict
        else:
            pairs = []
            for j, pair in enumerate(parameters):
                if not isinstance(pair, Iterable) or isinstance(pair, Tensor):
                    raise TypeError(f"ParameterDict.update: element #{j} should be a (key, value) pair, "
                                    f"got {type(pair).__name__}")
                pair = tuple(pair)
                if len(pair) != 2:
                    raise ValueError(f"ParameterDict.update: element #{j} has length {len(pair)}; 2 is required")
                pairs.append(pair)
        for key, value in pairs:
            self[key] = value

    def __or__(self, other):
        merged = self.copy()
        merged.update(other)
        return merged

    def __ror__(self, other):
        merged = other.copy()
        merged.update(self)
        return merged

    def __ior__(self, other):
        self.update(other)
        return self

    def extra_repr(self):
        return "\n".join(_describe(key, value) for key, value in self.items())

    def forward(self, *args, **kwargs):
        raise RuntimeError("ParameterDict should not be called: look a parameter up by key "
                           "in the forward() of the module that holds it")
