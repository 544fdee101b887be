"""Module fusion before quantization: a Linear followed by a ReLU becomes one :class:`LinearReLU`.

A quantized layer computes its output in one kernel call, so the ReLU that
follows it can be applied in that call's epilogue (``max(y, 0)`` as each output
is written) instead of in a separate pass over the output. The float model has
to say which pairs to fuse: :func:`fuse_modules` replaces the first module of
each pair by a :class:`LinearReLU` holding both and the second by an
``nn.Identity``, so the model computes the same function and its other module
names do not change. :func:`~nnlite.quantization.quantize_dynamic` then turns
every :class:`LinearReLU` into a :class:`~nnlite.quantization.QuantizedLinearReLU`.
PyTorch's names: ``torch.ao.quantization.fuse_modules`` and
``torch.ao.nn.intrinsic.LinearReLU``.
"""
import copy

from ..nn.rectifier import ReLU
from ..nn.container import Sequential
from ..nn.linear import Identity, Linear
from ..nn.module import forward_hook_options
from ..nn.utils.prune import BasePruningMethod

__all__ = ["LinearReLU", "fuse_modules"]


class LinearReLU(Sequential):
    """``Sequential(linear, relu)``, marked for quantization as one layer with a fused ReLU."""

    def __init__(self, linear, relu):
        if type(linear) is not Linear or type(relu) is not ReLU:
            raise TypeError(f"LinearReLU: expected an nn.Linear and an nn.ReLU, got "
                            f"{type(linear).__name__} and {type(relu).__name__}")
        super().__init__(linear, relu)


def fuse_modules(model, modules_to_fuse, inplace=False):
    """Fuse each ``[linear_name, relu_name]`` pair of ``model`` into a :class:`LinearReLU`.

    ``modules_to_fuse`` is one list of names or a list of such lists (names as
    in ``named_modules``). On a deep copy unless ``inplace=True``. The Linear's
    forward pre-hooks and the ReLU's forward hooks move to the LinearReLU, as in torch.

    >>> import nnlite as nl
    >>> model = nl.nn.Sequential(nl.nn.Linear(4, 8), nl.nn.ReLU(), nl.nn.Linear(8, 2))
    >>> fused = nl.quantization.fuse_modules(model, [["0", "1"]])
    >>> [type(m).__name__ for m in fused]
    ['LinearReLU', 'Identity', 'Linear']
    """
    if isinstance(modules_to_fuse, str):   # would be read name by character
        raise TypeError(f"fuse_modules: modules_to_fuse must be a list of module names or of such lists, "
                        f"got the string {modules_to_fuse!r}")
    groups = [modules_to_fuse] if modules_to_fuse and isinstance(modules_to_fuse[0], str) else modules_to_fuse
    for names in groups:
        if isinstance(names, str) or not all(isinstance(name, str) for name in names):
            raise TypeError(f"fuse_modules: each group must be a list of module names (str), got {names!r}")
    from ..nn._checks import require_module
    require_module(model, "fuse_modules")
    model = model if inplace else copy.deepcopy(model)
    for names in groups:
        mods = [model.get_submodule(name) for name in names]
        kinds = [type(m) for m in mods]
        if kinds != [Linear, ReLU]:
            raise ValueError(f"fuse_modules: only [nn.Linear, nn.ReLU] pairs can be fused, got "
                             f"{[k.__name__ for k in kinds]} for {list(names)}")
        for name, module in zip(names, (_fused(*mods), Identity())):
            parent_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent_name), attr, module)
    return model


def _fused(linear, relu):
    """``LinearReLU(linear, relu)`` holding the Linear's forward pre-hooks and the ReLU's forward
    hooks, moved to it as torch's ``fuse_modules`` moves them: they then run on the pair's input
    and output, and stay on the quantized layer that replaces the pair. A pruning hook stays on
    the Linear, whose weight it computes."""
    fused = LinearReLU(linear, relu)
    for key, hook in list(linear._forward_pre_hooks.items()):
        if not isinstance(hook, BasePruningMethod):
            fused.register_forward_pre_hook(hook, **forward_hook_options(linear, key, pre=True))
            del linear._forward_pre_hooks[key]
    for key, hook in relu._forward_hooks.items():
        fused.register_forward_hook(hook, **forward_hook_options(relu, key, pre=False))
    relu._forward_hooks.clear()
    return fused
