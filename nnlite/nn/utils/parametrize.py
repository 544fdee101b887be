"""Parametrizations: a module's tensor computed from other tensors (``torch.nn.utils.parametrize``'s API).

``register_parametrization(layer, "weight", f)`` turns ``layer.weight`` from a
stored Parameter into the *output of a function*: the stored values move to
``layer.parametrizations.weight.original`` and every read of ``layer.weight``
returns ``f(original)``, recomputed with autograd recording, so gradients
flow through ``f`` to the original and the optimizer trains the original.
This is how a constraint becomes part of the model instead of a correction
applied after each step: ``f`` can make a matrix symmetric, a value positive,
a weight's rows unit length (:func:`~nnlite.nn.utils.parametrizations.weight_norm`)
or its largest singular value one
(:func:`~nnlite.nn.utils.parametrizations.spectral_norm`).

The mechanism, as in PyTorch (so ``state_dict`` keys are the same):

* the module's class becomes a subclass ``Parametrized<Name>`` holding a
  ``property`` per parametrized name; its getter runs the parametrizations,
  its setter runs them backwards (``layer.weight = value`` stores
  ``right_inverse(value)`` in the originals);
* ``layer.parametrizations`` is a :class:`~nnlite.nn.ModuleDict` of
  :class:`ParametrizationList`, one per parametrized name; a list holds the
  functions (registering again on the same name appends, and they run in
  order) and the originals: ``original``, or ``original0``, ``original1``...
  when the first function's ``right_inverse`` splits the tensor into several.

To ship the trained model with a plain ``weight`` key (and an ONNX graph
without the parametrization's operations), call :func:`remove_parametrizations`:
the computed tensor is stored again. Exported as it is, the graph computes the
weight from the originals at every run.

A parametrization is a :class:`~nnlite.nn.Module` whose ``forward`` takes the
original(s) and returns the tensor; an optional ``right_inverse`` maps a tensor
back to original(s) such that ``forward(right_inverse(X))`` is ``X``. It may
also name the :attr:`~nnlite.nn.Parameter.kind` of each original it creates in
a class attribute ``original_kinds`` (otherwise they take the kind of the
tensor they replace).

>>> import nnlite as nl
>>> from nnlite.nn.utils import parametrize
>>> class Symmetric(nl.nn.Module):
...     def forward(self, X):
...         return (X + X.T) / 2
>>> layer = parametrize.register_parametrization(nl.nn.Linear(3, 3), "weight", Symmetric())
>>> type(layer).__name__, sorted(layer.state_dict())
('ParametrizedLinear', ['bias', 'parametrizations.weight.original'])
>>> W = layer.weight.detach().numpy()
>>> bool((W == W.T).all())
True
"""
import copy
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np

from ...autograd import no_grad
from ...parameter import Parameter
from ...tensor import Tensor
from ..container import ModuleDict, ModuleList
from ..module import Module

__all__ = ["cached", "ParametrizationList", "register_parametrization", "is_parametrized",
           "remove_parametrizations", "type_before_parametrizations"]

_cache_enabled = 0
_cache = {}


@contextmanager
def cached():
    """Compute each parametrized tensor once inside the block and reuse it.

    Without it every read of ``layer.weight`` runs the parametrization again
    (and spectral norm's power iteration with it); a forward that reads the
    same weight many times (a recurrent cell over time steps, a tied weight)
    can wrap the loop::

        with parametrize.cached():
            for x in steps:
                h = cell(x, h)

    The values are dropped when the outermost ``cached()`` block ends.
    """
    global _cache, _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache = {}


def _register_parameter_or_buffer(module, name, tensor):
    if isinstance(tensor, Parameter):
        module.register_parameter(name, tensor)
    else:
        module.register_buffer(name, tensor)


def _set(dest, src):
    """Give ``dest`` the values of ``src``, keeping the object (an optimizer holds it).

    With the same shape and dtype the values are copied into ``dest``'s own
    storage, which may be a view into an optimizer's arena; otherwise (an
    ``unsafe`` parametrization) ``dest`` gets new storage.
    """
    src = src.data if isinstance(src, Tensor) else np.asarray(src)
    if src.shape == dest.data.shape and src.dtype == dest.data.dtype:
        np.copyto(dest.data, src)
    else:
        dest.data = np.array(src)
    dest._bump_version()


def _describe(value):
    return f"{type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}" \
        if isinstance(value, Tensor) else type(value).__name__


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, and its original(s): ``module.parametrizations[name]``.

    Made by :func:`register_parametrization`, not by hand. Calling it runs the
    chain: ``self[0]`` on the original(s), then each further parametrization
    on the previous one's output. :meth:`right_inverse` runs the chain
    backwards and stores the result in the originals.
    """

    def __init__(self, modules, original, unsafe=False):
        if len(modules) == 0:
            raise ValueError("ParametrizationList needs at least one parametrization")
        super().__init__(modules)
        self.unsafe = unsafe
        shape, dtype = original.shape, original.dtype
        with no_grad():
            new = original
            for module in reversed(list(self)):
                inverse = getattr(module, "right_inverse", None)
                if inverse is not None:
                    try:
                        new = inverse(new)
                    except NotImplementedError:
                        pass   # a parametrization without an inverse keeps the tensor as it is
        if not isinstance(new, (Tensor, Sequence)):
            raise ValueError(f"right_inverse must return a Tensor or a sequence of Tensors, got {_describe(new)}")
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if new.dtype != dtype:
                raise ValueError(f"right_inverse returning one tensor may not change the dtype: the tensor is "
                                 f"{dtype}, right_inverse returned {new.dtype}")
            # The original object stays (an optimizer may hold it); only its values change.
            _set(original, new)
            _register_parameter_or_buffer(self, "original", original)
        else:
            kinds = getattr(self[0], "original_kinds", None) or ()
            for i, tensor in enumerate(new):
                if not isinstance(tensor, Tensor):
                    raise ValueError(f"right_inverse must return Tensors; element {i} is {_describe(tensor)}")
                data = np.array(tensor.data)   # its own storage, not shared with the tensor it replaces
                if isinstance(original, Parameter):
                    kind = kinds[i] if i < len(kinds) else original.kind
                    part = Parameter(data, requires_grad=original.requires_grad, kind=kind)
                    part.init = {"scheme": "right_inverse", "parametrization": type(self[0]).__name__}
                else:
                    part = Tensor(data, requires_grad=original.requires_grad)
                _register_parameter_or_buffer(self, f"original{i}", part)
            # Removing the parametrization rebuilds a Parameter: give it back the kind it had.
            self.original_kind = getattr(original, "kind", "other")
        if not unsafe:
            out = self()
            if not isinstance(out, Tensor):
                raise ValueError(f"a parametrization must return a Tensor, got {_describe(out)}")
            if out.dtype != dtype:
                raise ValueError(f"a parametrization may not change the dtype unless unsafe=True: the tensor "
                                 f"is {dtype}, the parametrization returned {out.dtype}")
            if out.shape != shape:
                raise ValueError(f"a parametrization may not change the shape unless unsafe=True: the tensor "
                                 f"has shape {tuple(shape)}, the parametrization returned {tuple(out.shape)}")

    def _originals(self):
        if self.is_tensor:
            return [self.original]
        return [getattr(self, f"original{i}") for i in range(self.ntensors)]

    def right_inverse(self, value):
        """Store ``value`` in the originals: the parametrizations' ``right_inverse``, last one first."""
        with no_grad():
            for module in reversed(list(self)):
                inverse = getattr(module, "right_inverse", None)
                if inverse is None:
                    raise RuntimeError(f"parametrization {type(module).__name__} has no right_inverse, so a "
                                       "value cannot be assigned to the tensor it computes")
                value = inverse(value)
            if self.is_tensor:
                if not isinstance(value, Tensor):
                    raise ValueError(f"right_inverse should return a Tensor, got {_describe(value)}")
                if value.dtype != self.original.dtype:
                    raise ValueError(f"right_inverse returned dtype {value.dtype}, the original is "
                                     f"{self.original.dtype}")
                _set(self.original, value)
                return
            if not isinstance(value, Sequence) or len(value) != self.ntensors:
                got = f"{len(value)} tensors" if isinstance(value, Sequence) else _describe(value)
                raise ValueError(f"right_inverse must return a sequence of {self.ntensors} tensors, got {got}")
            for i, (original, tensor) in enumerate(zip(self._originals(), value)):
                if not isinstance(tensor, Tensor) or tensor.dtype != original.dtype:
                    raise ValueError(f"right_inverse: element {i} should be a Tensor of dtype {original.dtype} "
                                     f"(as original{i}), got {_describe(tensor)}")
                _set(original, tensor)

    def forward(self):
        first, *rest = self._modules.values()
        x = first(*self._originals())
        for module in rest:
            x = module(x)
        return x


# ------------------------------------------------------- the injected class --
def _parametrized_class(base, names=()):
    """A subclass ``Parametrized<Base>`` of ``base``, with a property for each of ``names``.

    Each parametrized module gets a class of its own, because registering and
    removing add and delete properties on it.
    """
    def __setattr__(self, name, value):
        # Module.__setattr__ writes the instance dict directly; a parametrized name
        # must reach the property's setter instead.
        if isinstance(getattr(cls, name, None), property) and is_parametrized(self, name):
            if isinstance(value, Parameter):
                raise KeyError(f"cannot assign a Parameter to {name!r}: it is computed by "
                               f"parametrizations.{name}; assign a Tensor (stored through right_inverse) "
                               "or call remove_parametrizations first")
            object.__setattr__(self, name, value)
        else:
            super(cls, self).__setattr__(name, value)

    def __deepcopy__(self, memo):
        # The copy gets a class of its own too, so removing a parametrization from
        # one of the two leaves the other's property in place.
        replica = object.__new__(_parametrized_class(base, self.parametrizations.keys()))
        memo[id(self)] = replica
        object.__setattr__(replica, "__dict__", copy.deepcopy(self.__dict__, memo))
        return replica

    def __getstate__(self):
        raise RuntimeError(f"{type(self).__name__}: a parametrized module is saved through its state_dict "
                           "(nl.io.save_state_dict or nl.io.save_checkpoint), not by pickling")

    members = {"__setattr__": __setattr__, "__getstate__": __getstate__, "__module__": base.__module__}
    if not hasattr(base, "__deepcopy__"):
        members["__deepcopy__"] = __deepcopy__
    members.update({name: _parametrized_property(name) for name in names})
    cls = type(f"Parametrized{base.__name__}", (base,), members)
    return cls


def _parametrized_property(tensor_name):
    def get_parametrized(self):
        parametrization = self.parametrizations[tensor_name]
        if not _cache_enabled:
            return parametrization()
        key = (id(self), tensor_name)
        tensor = _cache.get(key)
        if tensor is None:
            tensor = _cache[key] = parametrization()
        return tensor

    def set_original(self, value):
        self.parametrizations[tensor_name].right_inverse(value)

    return property(get_parametrized, set_original,
                    doc=f"``{tensor_name}``, computed by ``parametrizations.{tensor_name}``")


def _tensor_names(module):
    params = [n for n, p in module._parameters.items() if p is not None]
    buffers = [n for n, b in module._buffers.items() if b is not None]
    parametrized = list(module.parametrizations.keys()) if is_parametrized(module) else []
    return (f"parameters: {', '.join(params) or 'none'}; buffers: {', '.join(buffers) or 'none'}; "
            f"parametrized: {', '.join(parametrized) or 'none'}")


def _check_same_space(module, tensor_name, parametrization):
    """A further parametrization must map the tensor's space to itself (same shape, same dtype)."""
    Y = getattr(module, tensor_name)
    what = f"register_parametrization({type(parametrization).__name__}) on {tensor_name!r}"

    def check(label, out):
        if not isinstance(out, Tensor):
            raise ValueError(f"{what}: {label} must return a Tensor, got {_describe(out)}")
        if out.dtype != Y.dtype or out.shape != Y.shape:
            raise ValueError(f"{what}: {label} may not change the shape or dtype unless unsafe=True: "
                             f"module.{tensor_name} is {_describe(Y)}, {label} returned {_describe(out)}")

    X = parametrization(Y)
    check("the parametrization", X)
    inverse = getattr(parametrization, "right_inverse", None)
    if inverse is not None:
        try:
            Z = inverse(X)
        except NotImplementedError:
            return   # no inverse: taken as the identity
        check("its right_inverse", Z)


def register_parametrization(module, tensor_name, parametrization, *, unsafe=False):
    """Make ``module.<tensor_name>`` the output of ``parametrization``; returns ``module``.

    The first call on a name moves the Parameter (or buffer) into
    ``module.parametrizations[tensor_name]`` as ``original`` (the same object,
    so an optimizer that holds it keeps training it; with a ``right_inverse``
    it now holds ``right_inverse(value)``), or as ``original0``,
    ``original1``... when ``right_inverse`` returns several tensors (new
    Parameters: give them to the optimizer). Later calls on the same name
    append to the chain. Unless ``unsafe=True``, the result must keep the
    tensor's shape and dtype (checked once, here).

    The parametrization is put in the module's training mode.
    """
    if not isinstance(parametrization, Module):
        raise TypeError(f"register_parametrization: the parametrization must be an nn.Module, "
                        f"got {type(parametrization).__name__}")
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            _check_same_space(module, tensor_name, parametrization)
        chain = module.parametrizations[tensor_name]
        chain.append(parametrization)
        chain.unsafe |= unsafe    # once unsafe, the chain stays unsafe
        return module
    if tensor_name not in module._parameters and tensor_name not in module._buffers:
        raise ValueError(f"register_parametrization: {type(module).__name__} has no parameter, buffer or "
                         f"parametrized tensor named {tensor_name!r} ({_tensor_names(module)})")
    original = getattr(module, tensor_name)
    if original is None:
        raise ValueError(f"register_parametrization: {type(module).__name__}.{tensor_name} is None; there "
                         "is no tensor to parametrize")
    chain = ParametrizationList([parametrization], original, unsafe=unsafe)   # checks before changing anything
    delattr(module, tensor_name)
    if not is_parametrized(module):
        # Module.__setattr__ would file __class__ away in the instance dict.
        object.__setattr__(module, "__class__", _parametrized_class(type(module)))
        module.parametrizations = ModuleDict()
    setattr(type(module), tensor_name, _parametrized_property(tensor_name))
    module.parametrizations[tensor_name] = chain
    return module


def is_parametrized(module, tensor_name=None):
    """Whether ``module`` has a parametrization on ``tensor_name`` (on any tensor when None)."""
    parametrizations = module.__dict__.get("parametrizations")
    if not isinstance(parametrizations, ModuleDict):
        return False
    return len(parametrizations) > 0 if tensor_name is None else tensor_name in parametrizations


def remove_parametrizations(module, tensor_name, leave_parametrized=True):
    """Turn ``module.<tensor_name>`` back into a stored tensor; returns ``module``.

    With ``leave_parametrized=True`` it keeps its current (computed) value;
    with ``False`` it gets the original's value, which needs a single original
    (``original``, not ``original0``, ``original1``...). When the tensor had a
    single original, that same object is put back, so an optimizer holding
    it carries on; otherwise a new Parameter (of the kind the tensor had
    before) replaces the originals. The last removal gives the module back its
    own class.
    """
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"remove_parametrizations: {type(module).__name__} has no parametrization on "
                         f"{tensor_name!r} ({_tensor_names(module)})")
    chain = module.parametrizations[tensor_name]
    if chain.is_tensor:
        original = chain.original
        if leave_parametrized:
            with no_grad():
                _set(original, getattr(module, tensor_name))
    elif leave_parametrized:
        value = getattr(module, tensor_name)
        data = np.array(value.data)
        original = Parameter(data, kind=chain.original_kind) if value.requires_grad else Tensor(data)
    else:
        raise ValueError(f"remove_parametrizations({tensor_name!r}, leave_parametrized=False): the tensor is "
                         f"computed from {chain.ntensors} originals, so there is no single original to put "
                         "back; use leave_parametrized=True")
    delattr(type(module), tensor_name)
    del module.parametrizations[tensor_name]
    _register_parameter_or_buffer(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        object.__setattr__(module, "__class__", type(module).__bases__[0])
    return module


def type_before_parametrizations(module):
    """The module's class before parametrizations were registered (its class when there are none)."""
    return type(module).__bases__[0] if is_parametrized(module) else type(module)
