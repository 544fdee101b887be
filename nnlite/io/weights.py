"""Plain weight files: a ``state_dict`` as safetensors, with PyTorch's keys and layouts.

A file written by :func:`save_state_dict` loads into the equivalent PyTorch
module with ``safetensors.torch.load_file`` (or ``load_model`` when weights
are tied), and a file PyTorch wrote with ``safetensors.torch.save_file``
initialises an nnlite model through :func:`load_state_dict`.
"""
import os
from collections import OrderedDict

from ..tensor import Tensor
from .errors import MissingKeysError
from .format import atomic_write, serialize
from .reader import _arrays, _dumps, _header, _info, _open, _provenance

__all__ = ["save_state_dict", "load_state_dict"]


def save_state_dict(state_dict, path, metadata=None):
    """Write plain weights as safetensors with the ``state_dict`` keys (readable by PyTorch).

    ``state_dict`` maps names to Tensors or arrays (a Module is accepted and its
    ``state_dict()`` used); ``metadata`` is extra str -> str information.
    """
    if hasattr(state_dict, "state_dict") and callable(state_dict.state_dict):
        state_dict = state_dict.state_dict()
    meta = dict(metadata or {})
    for key in meta:
        if isinstance(key, str) and key.startswith("nnlite"):
            raise ValueError(f"save_state_dict: metadata key {key!r} is reserved (keys starting with 'nnlite')")
    meta.update(_header("state_dict"))
    # The keys and layouts are PyTorch's; Hugging Face loaders look for this marker.
    meta.setdefault("format", "pt")
    meta["nnlite.keys"] = _dumps(list(state_dict))
    atomic_write(path, serialize(dict(state_dict), meta))
    return os.fspath(path)


def load_state_dict(path):
    """Read a safetensors weights file into an ``OrderedDict`` of name -> Tensor.

    Accepts files from :func:`save_state_dict`, from PyTorch
    (``safetensors.torch.save_file``) and nnlite checkpoints (their model part).
    Tied tensors come back as one Tensor under each of their names. The
    dict's ``provenance`` attribute (the path and the file's SHA-256) becomes
    the ``init`` record of the parameters it is loaded into.
    """
    raw, parsed, metadata, stored = _open(path)
    info = _info(path, parsed, metadata, stored)
    arrays = _arrays(raw, parsed, info)
    if info["format"] == "checkpoint":
        if not info["model"]:
            raise MissingKeysError(f"{info['path']} is a checkpoint without model weights")
        arrays = {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}
        order = info["model"].get("keys") or []
    else:
        order = info["keys"] or list(info["tensors"])
    shared = {}
    out = OrderedDict()
    # Read by Module.load_state_dict to record where each parameter's values came from.
    out.provenance = _provenance(info, raw, (info["model"] or {}).get("parameters"))
    for key in [k for k in order if k in arrays] + sorted(k for k in arrays if k not in order):
        arr = arrays[key]
        out[key] = shared.setdefault(id(arr), Tensor._make(arr, None))
    return out
