"""Whole-model transforms: dynamic quantization, QAT preparation and conversion, size on disk.

All three walk the model and swap modules by type, in place or on a deep copy
(``inplace=False``, the default, as in torch): ``nn.Linear`` →
:class:`QuantizedLinear` or :class:`Float16Linear` and :class:`LinearReLU` →
:class:`QuantizedLinearReLU` (:func:`quantize_dynamic`),
``nn.Linear`` → :class:`QATLinear` (:func:`prepare_qat`) and
:class:`QATLinear` → :class:`QuantizedLinear` (:func:`convert`). Other layers
stay in float32.
"""
import copy
import os
import tempfile

import numpy as np

from ..nn._checks import require_module
from ..io import save_state_dict
from ..nn.fusion import LinearReLU as FusedLinearReLU
from ..nn.linear import Linear
from ..nn.module import forward_hook_options
from ..nn.utils.prune import BasePruningMethod
from .fuse import LinearReLU
from .linear import Float16Linear, QATLinear, QuantizedLinear, QuantizedLinearReLU
from .qtensor import QDtype, qint8

__all__ = ["quantize_dynamic", "prepare_qat", "convert", "model_size_bytes"]


def _swap(model, wanted, make, inplace, caller):
    require_module(model, caller)
    model = model if inplace else copy.deepcopy(model)
    if type(model) in wanted:
        return _replacement(model, make)
    names = [name for name, m in model.named_modules() if name and type(m) in wanted]
    for name in names:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, attr, _replacement(getattr(parent, attr), make))
    return model


def _replacement(old, make):
    """``make(old)``, with ``old``'s forward pre-hooks and forward hooks registered on it (they run on
    the new layer's input and output, as torch's ``swap_module`` keeps them) and in ``old``'s
    training mode. A pruning hook stays behind: the new layer is made from the pruned weight."""
    new = make(old)
    for key, hook in old._forward_pre_hooks.items():
        if not isinstance(hook, BasePruningMethod):
            new.register_forward_pre_hook(hook, **forward_hook_options(old, key, pre=True))
    for key, hook in old._forward_hooks.items():
        new.register_forward_hook(hook, **forward_hook_options(old, key, pre=False))
    return new.train(old.training)


def quantize_dynamic(model, qconfig_spec=None, dtype=qint8, mapping=None, inplace=False, reduce_range=None):
    """Replace every Linear (the types in ``qconfig_spec``, default: Linear and both LinearReLUs) by a smaller one.

    ``dtype=nl.qint8``: weights become int8 per output row now; activations are
    quantized per batch at run time (:class:`QuantizedLinear`; a
    :class:`LinearReLU` made by :func:`fuse_modules`, or an ``nn.LinearReLU``
    made by ``nn.fuse_linear_relu``, becomes a
    :class:`QuantizedLinearReLU`, whose ReLU runs inside the kernel call).
    Activations are quantized to 7 bits (0..127) by default, as PyTorch's
    dynamic Linear does (``reduce_range=True`` in its int8 forward): the kernel
    can then use the faster byte multiply-add, whose 16-bit pair sums cannot
    overflow. ``reduce_range=False`` keeps all 8 bits (0..255). ``reduce_range``
    (None: True for ``nl.qint8``) applies to int8 only. ONNX export keeps the 7
    bits (the codes are computed with ``Round`` and ``Clip`` to 0..127, as
    ``DynamicQuantizeLinear`` has 8 only).
    ``dtype=nl.float16``: weights and biases are stored in float16 and the
    products run in float32 (:class:`Float16Linear`; ``nn.fuse_linear_relu``'s
    layers, which have no float16 form, stay as they are). The same two choices as torch.

    >>> import nnlite as nl
    >>> model = nl.nn.Sequential(nl.nn.Linear(8, 8), nl.nn.ReLU(), nl.nn.Linear(8, 2))
    >>> qmodel = nl.quantization.quantize_dynamic(model, {nl.nn.Linear}, dtype=nl.qint8)
    >>> type(qmodel[0]).__name__, qmodel[0].weight_int8.dtype
    ('QuantizedLinear', dtype('int8'))
    """
    half = not isinstance(dtype, QDtype) and np.dtype(dtype) == np.float16
    if dtype is not qint8 and not half:
        raise ValueError(f"quantize_dynamic: dtype must be nl.qint8 or nl.float16, got {dtype!r}")
    if reduce_range is None:
        reduce_range = not half
    # None is every supported type; an empty set, as in torch, is none of them.
    supported = (Linear, LinearReLU, FusedLinearReLU)
    wanted = set(supported) if qconfig_spec is None else set(qconfig_spec)
    unsupported = [t.__name__ if isinstance(t, type) else t for t in wanted if t not in supported]
    if unsupported:
        raise ValueError(f"quantize_dynamic: only nn.Linear and LinearReLU (fuse_modules' or "
                         f"nn.fuse_linear_relu's) have quantized versions; qconfig_spec must be a set of these "
                         f"types, got {unsupported}")
    if half and FusedLinearReLU in wanted:   # Float16Linear would drop the layer's own ReLU
        if qconfig_spec is not None:
            raise ValueError("quantize_dynamic: dtype=nl.float16 has no layer for nn.fuse_linear_relu's "
                             "LinearReLU; leave it out of qconfig_spec")
        wanted.discard(FusedLinearReLU)
    if LinearReLU in wanted:
        # fused pairs first, so that their inner Linear is not swapped on its own
        if half:   # float16 has no fused kernel: the pair keeps its ReLU, its Linear is stored in float16
            wanted.add(Linear)
        else:
            model = _swap(model, {LinearReLU},
                          lambda m: QuantizedLinearReLU.from_float(m, reduce_range=reduce_range), inplace,
                          "quantize_dynamic")
            inplace = True
    wanted.discard(LinearReLU)
    if reduce_range and half:
        raise ValueError("quantize_dynamic: reduce_range applies to dtype=nl.qint8 only")
    make = Float16Linear.from_float if half else lambda m: (
        QuantizedLinearReLU if type(m) is FusedLinearReLU else QuantizedLinear
    ).from_float(m, reduce_range=reduce_range)
    return _swap(model, wanted, make, inplace, "quantize_dynamic")


def prepare_qat(model, mapping=None, inplace=False):
    """Swap every Linear for a :class:`QATLinear` sharing its parameters (fake-quantized training).

    ``nn.fuse_linear_relu``'s layers have no QAT form and are refused (left in float32,
    they would be neither trained with the rounding nor converted): fuse after ``convert``.
    """
    fused = [name for name, m in require_module(model, "prepare_qat").named_modules()
             if type(m) is FusedLinearReLU]
    if fused:
        raise ValueError(f"prepare_qat: {fused} are nn.fuse_linear_relu's LinearReLU layers, which have no QAT "
                         f"form; prepare the model before fusing it")
    return _swap(model, {Linear}, QATLinear.from_float, inplace, "prepare_qat")


def convert(model, mapping=None, inplace=False):
    """Swap every :class:`QATLinear` for a static :class:`QuantizedLinear` with the qparams it learned."""
    return _swap(model, {QATLinear}, QATLinear.to_quantized, inplace, "convert")


def model_size_bytes(model):
    """Bytes of the model's ``state_dict`` written as a safetensors file (what goes on disk)."""
    require_module(model, "model_size_bytes")
    fd, path = tempfile.mkstemp(suffix=".safetensors")
    os.close(fd)
    try:
        save_state_dict(model.state_dict(), path)
        return os.path.getsize(path)
    finally:
        os.remove(path)
