"""Pruning: set chosen weights to zero and keep them there (``torch.nn.utils.prune``'s API).

Pruning a parameter ``weight`` of a module *reparametrises* it, exactly as
PyTorch does, so pruned ``state_dict`` s move between the two frameworks:

* the learned values move to a Parameter ``weight_orig``;
* a buffer ``weight_mask`` (same shape, 1 = kept, 0 = pruned) is registered;
* ``weight`` becomes a plain attribute, ``weight_orig * weight_mask``, recomputed
  by a forward pre-hook before every call.

Gradients reach ``weight_orig`` through the product, so a pruned entry gets a
gradient of exactly zero and the weight the layer uses stays exactly zero
whatever the optimizer does to ``weight_orig`` (momentum, weight decay).
:func:`remove` makes the pruning permanent: ``weight`` is a Parameter again,
holding the zeros, and the mask is gone.

Which entries go is decided by a **pruning method** (a :class:`BasePruningMethod`)
from an ``amount``: a float in [0, 1] is a fraction, rounded with Python's
``round(amount * n)``; an int is a count. Pruning the same parameter again
*composes*: the new method acts only on what is still unpruned
(:class:`PruningContainer`), so ``l1_unstructured(m, "weight", 0.5)`` twice
leaves 25% of the weights, not 50%.

* unstructured methods remove single entries: the smallest ``|w|``
  (:func:`l1_unstructured`, magnitude pruning, Han et al. 2015) or random ones;
* structured methods remove whole slices along ``dim`` (output channels with
  ``dim=0``): those of smallest L\\ :sub:`n` norm (:func:`ln_structured`, Li et
  al. 2017) or random ones. Removing whole rows is what can make a layer
  faster, once the zero rows are cut out of the weight;
* :func:`global_unstructured` ranks the entries of many parameters together,
  so layers with many small weights lose more of them.

>>> import nnlite as nl
>>> from nnlite.nn.utils import prune
>>> layer = nl.nn.Linear(4, 2)
>>> _ = prune.l1_unstructured(layer, "weight", amount=0.5)
>>> sorted(k for k in layer.state_dict())
['bias', 'weight_mask', 'weight_orig']
>>> int((layer.weight.detach().numpy() == 0).sum())
4
"""
import numbers
from collections import OrderedDict, namedtuple

import numpy as np

from ...parameter import Parameter
from ...random import _gen
from ...tensor import Tensor

__all__ = ["BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured", "L1Unstructured",
           "RandomStructured", "LnStructured", "CustomFromMask", "identity", "random_unstructured",
           "l1_unstructured", "random_structured", "ln_structured", "global_unstructured",
           "custom_from_mask", "remove", "is_pruned", "sparsity_report", "SparsityReport"]


# ------------------------------------------------------------------ amounts --
def _validate_amount_init(amount):
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(f"Invalid type for amount: {amount!r}. Must be int or float.")
    if isinstance(amount, numbers.Integral):
        if amount < 0:
            raise ValueError(f"amount={amount} should either be a float in the range [0, 1] "
                             "or a non-negative integer")
    elif not 0.0 <= float(amount) <= 1.0:
        raise ValueError(f"amount={amount} should either be a float in the range [0, 1] or a non-negative integer")


def _nparams_to_prune(amount, size):
    """How many of ``size`` units go: an int is a count, a float a fraction (Python's round, as torch)."""
    if isinstance(amount, numbers.Integral):
        if amount > size:
            raise ValueError(f"amount={amount} should be smaller than the number of parameters to prune={size}")
        return int(amount)
    return round(float(amount) * size)


def _smallest(values, k):
    """Flat indices of the ``k`` smallest values (a stable sort, so ties go to the first ones)."""
    return np.argsort(values.reshape(-1), kind="stable")[:k]


def _as_array(t):
    return t.data if isinstance(t, Tensor) else np.asarray(t)


def _norm(t, n, dim):
    """The L_n norm of every slice of ``t`` along ``dim`` (over all the other dims)."""
    axes = tuple(d for d in range(t.ndim) if d != dim)
    a = np.abs(t.astype(np.float64))
    if n == "fro" or n == 2:
        return np.sqrt((a * a).sum(axis=axes))
    if n == np.inf:
        return a.max(axis=axes)
    if n == -np.inf:
        return a.min(axis=axes)
    if n == 0:
        return (a != 0).sum(axis=axes).astype(np.float64)
    if isinstance(n, numbers.Real):
        return (a ** n).sum(axis=axes) ** (1.0 / n)
    raise ValueError(f"ln_structured: n must be a number, inf, -inf or 'fro', got {n!r}")


def _check_structured(t, dim):
    if t.ndim <= 1:
        raise ValueError(f"Structured pruning can only be applied to multidimensional tensors. "
                         f"Found tensor of shape {t.shape} with {t.ndim} dims")
    if not -t.ndim <= dim < t.ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-t.ndim}, {t.ndim - 1}], "
                         f"but got {dim})")
    return dim % t.ndim


def _channel_mask(t, dim, keep):
    """A mask that is 1 on the slices ``keep`` (indices or booleans) along ``dim``, 0 elsewhere."""
    mask = np.zeros_like(t)
    index = [slice(None)] * t.ndim
    index[dim] = keep
    mask[tuple(index)] = 1
    return mask


# ------------------------------------------------------------------ methods --
class BasePruningMethod:
    """A way of choosing a mask; also the forward pre-hook that applies it.

    Subclasses set ``PRUNING_TYPE`` ("unstructured", "structured" with a
    ``dim``, or "global") and define ``compute_mask(t, default_mask)``: the new
    mask for the scores ``t`` (NumPy arrays), given the mask already in place.
    """
    PRUNING_TYPE = None
    _tensor_name = None

    def __call__(self, module, inputs):
        # The pre-hook: recompute weight = weight_orig * weight_mask from the current values.
        setattr(module, self._tensor_name, self.apply_mask(module))

    def compute_mask(self, t, default_mask):
        raise NotImplementedError(f"{type(self).__name__} must define compute_mask(t, default_mask)")

    def apply_mask(self, module):
        """``weight_orig * weight_mask`` (differentiable in ``weight_orig``)."""
        if self._tensor_name is None:
            raise RuntimeError(f"{type(self).__name__} has not been applied to a module yet")
        orig = getattr(module, self._tensor_name + "_orig")
        mask = getattr(module, self._tensor_name + "_mask")
        return orig * mask

    @classmethod
    def apply(cls, module, name, *args, importance_scores=None, **kwargs):
        """Prune ``module.<name>`` in place with a new ``cls(*args, **kwargs)``; return the method."""
        method = _composite_method(cls, module, name, *args, **kwargs)
        orig = getattr(module, name)
        scores = _as_array(orig if importance_scores is None else importance_scores)
        if scores.shape != tuple(orig.shape):
            raise ValueError(f"importance_scores should have the same shape as parameter {name} of "
                             f"{type(module).__name__}: expected {tuple(orig.shape)}, got {scores.shape}")
        first = not isinstance(method, PruningContainer)
        if first:
            if not isinstance(orig, Parameter):
                raise TypeError(f"prune: {type(module).__name__}.{name} is not a Parameter "
                                f"(got {type(orig).__name__})")
            module.register_parameter(name + "_orig", orig)
            del module._parameters[name]
            default_mask = np.ones_like(orig.data)
        else:
            default_mask = getattr(module, name + "_mask").data.copy()
        try:
            mask = method.compute_mask(scores, default_mask=default_mask)
            module.register_buffer(name + "_mask", Tensor(np.ascontiguousarray(mask, dtype=orig.data.dtype)))
            setattr(module, name, method.apply_mask(module))
            module.register_forward_pre_hook(method)
        except Exception:
            if first:   # leave the module as it was
                del module._parameters[name + "_orig"]
                module.__dict__.pop(name + "_orig", None)
                module.__dict__.pop(name, None)
                module.register_parameter(name, orig)
            raise
        return method

    def prune(self, t, default_mask=None, importance_scores=None):
        """``t`` times the mask this method computes for it (a new Tensor; the module is untouched)."""
        data = _as_array(t)
        scores = data if importance_scores is None else _as_array(importance_scores)
        default = np.ones_like(data) if default_mask is None else _as_array(default_mask)
        return Tensor(data * self.compute_mask(scores, default_mask=default))

    def remove(self, module):
        """Make the pruning permanent: ``weight`` is a Parameter again, holding ``orig * mask``."""
        name = self._tensor_name
        weight = self.apply_mask(module).data
        orig = module._parameters[name + "_orig"]
        # In place, so a parameter living in an optimizer's arena stays there.
        np.copyto(orig.data, weight)
        orig._bump_version()
        module.__dict__.pop(name, None)
        delattr(module, name + "_orig")
        delattr(module, name + "_mask")
        module.register_parameter(name, orig)


def _composite_method(cls, module, name, *args, **kwargs):
    """The method to hook: the new one, or a container holding the old method(s) then the new one."""
    old = [(k, h) for k, h in module._forward_pre_hooks.items()
           if isinstance(h, BasePruningMethod) and h._tensor_name == name]
    if len(old) > 1:
        raise RuntimeError(f"prune: found {len(old)} pruning hooks for {name!r}, expected at most one")
    for k, _ in old:
        del module._forward_pre_hooks[k]
    method = cls(*args, **kwargs)
    method._tensor_name = name
    if old:
        previous = old[0][1]
        if isinstance(previous, PruningContainer):
            previous.add_pruning_method(method)
            method = previous
        else:
            method = PruningContainer(previous, method)
    return method


class PruningContainer(BasePruningMethod):
    """Several pruning methods on one parameter, applied in turn (iterative pruning).

    The newest method sees only what the mask still keeps: the kept entries
    (unstructured), the kept slices along its ``dim`` (structured) or everything
    (global), so an amount is a fraction of what is left.
    """

    def __init__(self, *methods):
        self._pruning_methods = ()
        for m in methods:
            self.add_pruning_method(m)

    @property
    def PRUNING_TYPE(self):
        return self._pruning_methods[-1].PRUNING_TYPE

    def add_pruning_method(self, method):
        if not isinstance(method, BasePruningMethod):
            raise TypeError(f"{type(method).__name__} is not a BasePruningMethod subclass")
        if self._tensor_name is None:
            self._tensor_name = method._tensor_name
        elif method._tensor_name != self._tensor_name:
            raise ValueError(f"Can only add pruning methods acting on the parameter named "
                             f"'{self._tensor_name}' to PruningContainer. Found '{method._tensor_name}'")
        self._pruning_methods += (method,)

    def __len__(self):
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, idx):
        return self._pruning_methods[idx]

    def compute_mask(self, t, default_mask):
        method = self._pruning_methods[-1]
        mask = np.array(default_mask, dtype=t.dtype)
        if method.PRUNING_TYPE == "unstructured":
            index = mask == 1
        elif method.PRUNING_TYPE == "structured":
            if not hasattr(method, "dim"):
                raise AttributeError("Pruning methods of PRUNING_TYPE 'structured' need to have the attribute `dim`")
            dim = _check_structured(t, method.dim)
            keep = mask.sum(axis=tuple(d for d in range(t.ndim) if d != dim)) != 0
            index = [slice(None)] * t.ndim
            index[dim] = keep
            index = tuple(index)
        elif method.PRUNING_TYPE == "global":
            index = (slice(None),) * t.ndim
        else:
            raise ValueError(f"Unrecognized PRUNING_TYPE {method.PRUNING_TYPE!r}")
        mask[index] = method.compute_mask(t[index], default_mask=mask[index])
        return mask


class Identity(BasePruningMethod):
    """Prunes nothing: the mask is all ones (useful to get the reparametrisation alone)."""
    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        return np.array(default_mask)

    @classmethod
    def apply(cls, module, name):
        return super().apply(module, name)


class RandomUnstructured(BasePruningMethod):
    """Prune ``amount`` entries chosen uniformly at random (from the generator ``nl.manual_seed`` seeds)."""
    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _validate_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        k = _nparams_to_prune(self.amount, t.size)
        mask = np.array(default_mask)
        if k:
            mask.reshape(-1)[_gen(None).permutation(t.size)[:k]] = 0
        return mask

    @classmethod
    def apply(cls, module, name, amount):
        return super().apply(module, name, amount=amount)


class L1Unstructured(BasePruningMethod):
    """Prune the ``amount`` entries of smallest absolute value (magnitude pruning)."""
    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _validate_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        k = _nparams_to_prune(self.amount, t.size)
        mask = np.array(default_mask)
        if k:
            mask.reshape(-1)[_smallest(np.abs(t), k)] = 0
        return mask

    @classmethod
    def apply(cls, module, name, amount, importance_scores=None):
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


class RandomStructured(BasePruningMethod):
    """Prune ``amount`` whole slices along ``dim``, chosen at random."""
    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim=-1):
        _validate_amount_init(amount)
        self.amount, self.dim = amount, dim

    def compute_mask(self, t, default_mask):
        dim = _check_structured(t, self.dim)
        k = _nparams_to_prune(self.amount, t.shape[dim])
        if k == 0:
            return np.array(default_mask)
        drop = np.zeros(t.shape[dim], dtype=bool)
        drop[_gen(None).permutation(t.shape[dim])[:k]] = True
        return _channel_mask(t, dim, ~drop) * default_mask

    @classmethod
    def apply(cls, module, name, amount, dim=-1):
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(BasePruningMethod):
    r"""Prune the ``amount`` slices along ``dim`` with the smallest :math:`L_n` norm.

    The norm of slice :math:`i` is :math:`(\sum_j |w_{ij}|^n)^{1/n}` over every
    other dim; ``n`` is a number, ``inf``, ``-inf`` or ``"fro"`` (= 2).
    """
    PRUNING_TYPE = "structured"

    def __init__(self, amount, n, dim=-1):
        _validate_amount_init(amount)
        self.amount, self.n, self.dim = amount, n, dim

    def compute_mask(self, t, default_mask):
        dim = _check_structured(t, self.dim)
        k = _nparams_to_prune(self.amount, t.shape[dim])
        if k == 0:
            return np.array(default_mask)
        norms = _norm(t, self.n, dim)
        keep = np.ones(t.shape[dim], dtype=bool)
        keep[_smallest(norms, k)] = False
        return _channel_mask(t, dim, keep) * default_mask

    @classmethod
    def apply(cls, module, name, amount, n, dim, importance_scores=None):
        return super().apply(module, name, amount=amount, n=n, dim=dim, importance_scores=importance_scores)


class CustomFromMask(BasePruningMethod):
    """Prune with a given mask (combined with any mask already in place)."""
    PRUNING_TYPE = "global"

    def __init__(self, mask):
        self.mask = _as_array(mask)

    def compute_mask(self, t, default_mask):
        if default_mask.shape != self.mask.shape:
            raise ValueError(f"custom_from_mask: the mask has shape {self.mask.shape}, "
                             f"the parameter {default_mask.shape}")
        return default_mask * self.mask.astype(default_mask.dtype)

    @classmethod
    def apply(cls, module, name, mask):
        return super().apply(module, name, mask=mask)


# -------------------------------------------------------------- functions --
def identity(module, name):
    """Reparametrise ``module.<name>`` with an all-ones mask (nothing pruned). Returns ``module``."""
    Identity.apply(module, name)
    return module


def random_unstructured(module, name, amount):
    """Prune ``amount`` random entries of ``module.<name>`` (float: fraction, int: count)."""
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name, amount, importance_scores=None):
    """Prune the ``amount`` entries of ``module.<name>`` with the smallest ``|importance_scores|``
    (the weights themselves by default)."""
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name, amount, dim):
    """Prune ``amount`` random slices of ``module.<name>`` along ``dim``."""
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name, amount, n, dim, importance_scores=None):
    """Prune the ``amount`` slices along ``dim`` of smallest L\\ :sub:`n` norm.

    ``dim=0`` on a Linear or Conv weight removes whole output units/channels.
    """
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def custom_from_mask(module, name, mask):
    """Prune the entries where ``mask`` is 0."""
    CustomFromMask.apply(module, name, mask)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs):
    """Rank the entries of all ``parameters`` (``(module, name)`` pairs) together and prune.

    ``pruning_method`` is an unstructured method class (``L1Unstructured``,
    ``RandomUnstructured``) and ``kwargs`` its arguments (``amount``, counted over
    all the parameters). Already-pruned entries stay pruned and are not counted
    again. ``importance_scores`` maps ``(module, name)`` to scores to rank by.
    """
    if isinstance(parameters, (str, bytes)) or not hasattr(parameters, "__iter__"):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    parameters = list(parameters)
    scores = importance_scores or {}
    flat_scores = np.concatenate(
        [_as_array(scores.get((m, n), getattr(m, n))).reshape(-1) for m, n in parameters])
    default_mask = np.concatenate(
        [(_as_array(getattr(m, n + "_mask")) if hasattr(m, n + "_mask")
          else np.ones(getattr(m, n).shape, flat_scores.dtype)).reshape(-1) for m, n in parameters])
    if not (isinstance(pruning_method, type) and issubclass(pruning_method, BasePruningMethod)):
        raise TypeError(f"global_unstructured: pruning_method must be a pruning method class such as "
                        f"prune.L1Unstructured, got {pruning_method!r}")
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError(f'Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. '
                        f"Found method {pruning_method} of type {method.PRUNING_TYPE}")
    final_mask = PruningContainer(method).compute_mask(flat_scores, default_mask)
    start = 0
    for module, name in parameters:
        shape = getattr(module, name).shape
        size = int(np.prod(shape))
        custom_from_mask(module, name, final_mask[start:start + size].reshape(shape))
        start += size


def remove(module, name):
    """Make the pruning of ``module.<name>`` permanent (drop ``_orig``, ``_mask`` and the hook)."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[key]
            return module
    raise ValueError(f"Parameter '{name}' of module {type(module).__name__} has to be pruned "
                     "before pruning can be removed")


def is_pruned(module):
    """True when ``module`` or any sub-module has a pruning hook."""
    return any(isinstance(hook, BasePruningMethod)
               for m in module.modules() for hook in m._forward_pre_hooks.values())


# ----------------------------------------------------------------- report --
LayerSparsity = namedtuple("LayerSparsity", ["zeros", "total", "sparsity"])


class SparsityReport:
    """Zeros per weight and overall: ``layers`` maps ``"0.weight"`` to (zeros, total, sparsity)."""

    def __init__(self, layers):
        self.layers = layers
        self.zeros = sum(r.zeros for r in layers.values())
        self.total = sum(r.total for r in layers.values())

    @property
    def global_sparsity(self):
        """Fraction of all the reported entries that are zero."""
        return self.zeros / self.total if self.total else 0.0

    def __str__(self):
        width = max([len(n) for n in self.layers] + [6])
        lines = [f"{'tensor':<{width}}  {'zeros':>9}  {'total':>9}  sparsity"]
        for name, r in self.layers.items():
            lines.append(f"{name:<{width}}  {r.zeros:>9}  {r.total:>9}  {r.sparsity:8.1%}")
        lines.append(f"{'global':<{width}}  {self.zeros:>9}  {self.total:>9}  {self.global_sparsity:8.1%}")
        return "\n".join(lines)

    __repr__ = __str__


def sparsity_report(model, names=("weight",)):
    """Exact zeros in every tensor called one of ``names`` (the weight a layer uses, pruned or not).

    >>> import nnlite as nl
    >>> from nnlite.nn.utils import prune
    >>> m = nl.nn.Sequential(nl.nn.Linear(10, 10), nl.nn.ReLU(), nl.nn.Linear(10, 2))
    >>> _ = prune.l1_unstructured(m[0], "weight", amount=30)
    >>> report = prune.sparsity_report(m)
    >>> report.layers["0.weight"].sparsity, round(report.global_sparsity, 3)
    (0.3, 0.25)
    """
    layers = OrderedDict()
    for mod_name, module in model.named_modules():
        for name in names:
            # The effective tensor: for a pruned parameter, orig * mask from the current values.
            if name + "_mask" in module._buffers and name + "_orig" in module._parameters:
                data = module._parameters[name + "_orig"].data * module._buffers[name + "_mask"].data
            elif module._parameters.get(name) is not None:
                data = module._parameters[name].data
            else:
                continue
            zeros, total = int(np.count_nonzero(data == 0)), int(data.size)
            layers[(mod_name + "." if mod_name else "") + name] = LayerSparsity(
                zeros, total, zeros / total if total else 0.0)
    return SparsityReport(layers)
