"""Stateless use of a Module: run it with parameters you hold yourself.

A Module normally owns its parameters. Meta-learning and hypernetworks need
the same computation with *other* tensors in their place — the weights after a
few inner gradient steps (MAML), or weights produced by another network — and
they need gradients to flow to those tensors, not to the module's own.

:func:`functional_call` does this the way ``torch.func.functional_call`` does:
for the duration of one call it swaps the given tensors into the modules'
attributes, runs the module (hooks included), and puts the originals back, even
if the forward raises. The module's own parameters are never read or written.

* Names are the dotted ``state_dict`` names (``"0.weight"``, ``"bn.running_mean"``).
* Buffers can be replaced too; a BatchNorm in training mode then updates the
  given running statistics in place, exactly as PyTorch does, and leaves the
  module's own untouched.
* Tied parameters (one Parameter under two names) stay tied: giving a tensor
  for either name replaces it everywhere. Giving two different tensors for the
  names of one tied parameter is an error. With ``tie_weights=False`` only the
  names given are replaced, as in PyTorch.
* Names not given keep the module's own tensors. A name given None runs the
  module without that tensor (``{"bias": None}``: a Linear without its bias),
  as in PyTorch.
"""
from .nn.module import Module
from .tensor import Tensor

__all__ = ["functional_call"]

_NOT_GIVEN = object()   # a name given None is replaced (by None), so None cannot mean "not given"


def _owners(module):
    """Every (dotted name, owning module, attribute, registry) for parameters and buffers, tied ones included."""
    for mod_name, mod in module.named_modules(remove_duplicate=False):
        base = mod_name + "." if mod_name else ""
        for registry in ("_parameters", "_buffers"):
            for attr, value in getattr(mod, registry).items():
                if value is not None:
                    yield base + attr, mod, attr, registry, value


def functional_call(module, parameters_and_buffers, args=None, kwargs=None, *, tie_weights=True, strict=False):
    """``module(*args, **kwargs)`` with the tensors of ``parameters_and_buffers`` in place of its own.

    ``parameters_and_buffers`` maps dotted names to Tensors (a tuple of dicts is
    merged, as in ``torch.func``). ``args`` is a tuple, or a single input; None
    (the default) calls the module with no positional arguments.
    With ``strict=True`` every parameter and buffer must be given (RuntimeError
    otherwise, as in PyTorch).

    >>> import nnlite as nl
    >>> layer = nl.nn.Linear(2, 1)
    >>> w = nl.ones(1, 2, requires_grad=True)
    >>> out = nl.func.functional_call(layer, {"weight": w, "bias": nl.zeros(1)}, (nl.tensor([[1.0, 2.0]]),))
    >>> out.data.tolist()
    [[3.0]]
    >>> out.sum().backward(); w.grad.data.tolist(), layer.weight.grad is None
    ([[1.0, 2.0]], True)
    """
    if not isinstance(module, Module):
        raise TypeError(f"functional_call: expected an nnlite.nn.Module, got {type(module).__name__}")
    if isinstance(parameters_and_buffers, (tuple, list)):
        merged = {}
        for d in parameters_and_buffers:
            overlap = merged.keys() & d.keys()
            if overlap:
                raise ValueError(f"functional_call: {sorted(overlap)} given in more than one dict")
            merged.update(d)
        parameters_and_buffers = merged
    for name, value in parameters_and_buffers.items():
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(f"functional_call: {name!r} must be a Tensor or None, got {type(value).__name__}")
    args = () if args is None else args if isinstance(args, tuple) else (args,)
    kwargs = kwargs or {}

    entries = list(_owners(module))
    known = {name for name, *_ in entries}
    unknown = [k for k in parameters_and_buffers if k not in known]
    if unknown:
        raise ValueError(f"functional_call: unexpected keys {unknown}; {type(module).__name__} has "
                         f"{sorted(known)}")

    # A tied tensor is replaced wherever it appears, whichever of its names was given.
    replacement = {}
    for name, _, _, _, value in entries:
        if name in parameters_and_buffers and tie_weights:
            new = parameters_and_buffers[name]
            if replacement.get(id(value), new) is not new:
                raise ValueError(f"functional_call: {name!r} is tied to another given name but was "
                                 "given a different tensor")
            replacement[id(value)] = new
    if strict:
        missing = [name for name, _, _, _, value in entries
                   if (id(value) not in replacement if tie_weights else name not in parameters_and_buffers)]
        if missing:
            raise RuntimeError(f"functional_call(strict=True): missing keys {missing}")   # PyTorch's type

    swapped = []
    try:
        for name, mod, attr, registry, value in entries:
            new = replacement.get(id(value), _NOT_GIVEN) if tie_weights \
                else parameters_and_buffers.get(name, _NOT_GIVEN)
            if new is not _NOT_GIVEN and mod.__dict__[attr] is value:
                # Writing the dicts directly skips Module.__setattr__, which would refuse a
                # plain Tensor in a parameter slot; both views (attribute and registry) change.
                getattr(mod, registry)[attr] = new
                mod.__dict__[attr] = new
                swapped.append((mod, attr, registry, value))
        return module(*args, **kwargs)
    finally:
        for mod, attr, registry, value in reversed(swapped):
            getattr(mod, registry)[attr] = value
            mod.__dict__[attr] = value
