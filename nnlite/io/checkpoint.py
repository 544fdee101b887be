"""Checkpoints: everything needed to stop training and resume it bit for bit.

One checkpoint is one safetensors file. Tensors (the model's ``state_dict``,
the optimizer's per-parameter state such as Adam's ``exp_avg``) are stored as
tensors: ``model.<key>`` and ``optimizer.state.<index>.<name>``. Everything
else is JSON in the safetensors metadata, one key per section::

    nnlite.format          "checkpoint" or "state_dict"
    nnlite.format_version  see nnlite.io.migrations
    nnlite.version         the nnlite that wrote the file
    nnlite.model           class, configuration (when the model has a ``config``), parameter kinds
    nnlite.optimizer       class and state_dict (arrays replaced by references to tensors)
    nnlite.scheduler       class and state_dict
    nnlite.dataloader      class and state_dict (position within the epoch), and the state of
                           the generators it and its samplers draw from
    nnlite.rng             the global generator, so dropout and shuffling continue unchanged
    nnlite.progress        step and epoch
    nnlite.extra           whatever the user passed as ``extra``
    nnlite.aliases         tied tensors: alias name -> stored name
    nnlite.sha256          checksum of all of the above and every tensor

Weight tying: safetensors stores each tensor under one name, so a tensor that
a model shares under two names (``embed.weight`` and ``head.weight``) is
written once, under the name that sorts first, and the other name is recorded
in ``nnlite.aliases``. Loading restores every key. PyTorch users load such a
file with ``safetensors.torch.load_model``, which follows the same rule.
"""
import copy
import dataclasses
import json
import os
import string
from collections import OrderedDict

import numpy as np

from .._kernels.checks import is_int
from .. import random as _random
from ..tensor import Tensor
from . import jsonstate
from .errors import (CheckpointError, HeaderError, MissingKeysError, NotACheckpointError, ShapeMismatchError,
                     UnexpectedKeysError)
from .format import atomic_write, serialize
from .reader import _arrays, _dumps, _header, _info, _open, _provenance
from .rotation import check_rotation, list_checkpoints, rotate

__all__ = ["save_checkpoint", "load_checkpoint", "CheckpointManager"]


def _qualname(obj):
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _config(model):
    """The model's constructor configuration when it exposes one (``model.config``), else None."""
    config = getattr(model, "config", None)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    try:
        json.dumps(config, allow_nan=False)
        return config
    except (TypeError, ValueError):
        return None


def _describe_parameters(model):
    out = {}
    for name, p in model.named_parameters():
        info = {"kind": getattr(p, "kind", "other"), "trainable": bool(p.requires_grad)}
        init = getattr(p, "init", None)
        if init is not None:
            info["init"] = json.loads(json.dumps(init, default=repr))
        out[name] = info
    return out


# ------------------------------------------------------------------ saving --
def _state_section(obj, section, tensors):
    if not hasattr(obj, "state_dict"):
        raise TypeError(f"save_checkpoint: {section}= must have a state_dict() method, got {type(obj).__name__}")
    out = {"class": _qualname(obj), "state": jsonstate.encode(obj.state_dict(), section, tensors)}
    generators = _generators(obj)
    if "generator" in generators:
        out["generator"] = generators.pop("generator").get_state()
    if generators:
        out["generators"] = {name: g.get_state() for name, g in generators.items()}
    return _dumps(out)


def _generators(obj):
    """{attribute path: Generator} of the nl.Generators ``obj`` draws from: its own and its samplers'.

    A loader with its own Generator, or a sampler given one, draws the next
    epoch's order from it: that state belongs in the checkpoint too, or the
    epochs after a resumed one would repeat the first orders.
    """
    found = {}
    for name in ("generator", "sampler.generator", "batch_sampler.generator", "batch_sampler.sampler.generator"):
        holder = obj
        for attribute in name.split("."):
            holder = getattr(holder, attribute, None)
        if isinstance(holder, _random.Generator):
            found[name] = holder
    return found


def _saved_generator_states(section):
    """{attribute path: state} of the generators saved with a section (see :func:`_generators`)."""
    states = dict(section.get("generators") or {})
    if "generator" in section:
        states["generator"] = section["generator"]
    return states


def _count(name, value):
    if value is None:
        return None
    if not is_int(value):
        raise TypeError(f"save_checkpoint: {name} must be an int or None, got {type(value).__name__}")
    return int(value)


def _fill_template(template, step, epoch):
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    if not fields:
        return template
    unknown = sorted(set(fields) - {"step", "epoch"})
    if unknown:
        raise ValueError(f"save_checkpoint: path {template!r} has fields {unknown}; only {{step}} and {{epoch}} "
                         "are filled in (double a literal brace: '{{')")
    for name, value in (("step", step), ("epoch", epoch)):
        if name in fields and value is None:
            raise ValueError(f"save_checkpoint: path {template!r} uses {{{name}}} but {name}=None")
    return template.format(step=step, epoch=epoch)


def save_checkpoint(path, model=None, optimizer=None, scheduler=None, extra=None, step=None, epoch=None,
                    dataloader=None, keep_last=None, rng=True):
    """Write a training checkpoint to ``path`` atomically; return the path written.

    ``path`` may contain ``{step}``/``{epoch}`` fields (``"run/ckpt-{step:06d}.safetensors"``);
    with ``keep_last=N`` only the N newest files matching that pattern are kept.
    ``rng=True`` saves the global generator so that dropout and shuffling resume
    exactly. ``extra`` is any JSON-like data (arrays allowed).
    """
    template = os.fspath(path)
    path = _fill_template(template, step, epoch)
    if keep_last is not None:   # checked now: once the file is written, an error would hide that it was
        check_rotation(template, keep_last)
    tensors, metadata = {}, _header("checkpoint")
    if model is not None:
        model_tensors, model_rest = {}, {}
        for key, value in model.state_dict().items():
            (model_tensors if isinstance(value, (Tensor, np.ndarray)) else model_rest)[key] = value
        tensors.update({"model." + k: v for k, v in model_tensors.items()})
        metadata["nnlite.model"] = _dumps({
            "class": _qualname(model), "config": _config(model), "keys": list(model_tensors) + list(model_rest),
            "extra_state": jsonstate.encode(model_rest, "model_extra", tensors),
            "parameters": _describe_parameters(model)})
    for section, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("dataloader", dataloader)):
        if obj is not None:
            metadata[f"nnlite.{section}"] = _state_section(obj, section, tensors)
    if rng:
        metadata["nnlite.rng"] = _dumps(_random.get_rng_state())
    metadata["nnlite.progress"] = _dumps({"step": _count("step", step), "epoch": _count("epoch", epoch)})
    if extra is not None:
        metadata["nnlite.extra"] = _dumps(jsonstate.encode(extra, "extra", tensors))
    atomic_write(path, serialize(tensors, metadata))
    if keep_last is not None:
        rotate(template, keep_last, keep=path)
    return path


def _decode(obj, arrays, source, field="metadata"):
    try:
        return jsonstate.decode(obj, arrays, f"{source} {field}")
    except RecursionError:
        raise HeaderError(f"{source}: {field} is nested too deeply to be a checkpoint's state") from None
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise HeaderError(f"{source}: malformed state in {field} ({type(e).__name__}: {e})") from None


def _check_model(model, state, strict, source):
    own = model.state_dict(keep_vars=True)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k}: checkpoint {tuple(np.shape(state[k]))}, model {tuple(own[k].shape)}"
                  for k in own if k in state and isinstance(own[k], Tensor)
                  and tuple(np.shape(state[k])) != tuple(own[k].shape)]
    name = type(model).__name__
    if mismatched:
        raise ShapeMismatchError(f"{source} does not fit {name}: size mismatch for " + "; ".join(mismatched))
    if strict and missing:
        raise MissingKeysError(f"{source} lacks state for {name}: missing keys " + ", ".join(missing)
                               + " (strict=False loads the rest)")
    if strict and unexpected:
        raise UnexpectedKeysError(f"{source} holds keys {name} does not have: " + ", ".join(unexpected)
                                  + " (strict=False ignores them)")
    return missing, unexpected


def _check_section(info, section, obj, strict):
    stored = info[section]
    if stored is None:
        raise MissingKeysError(f"{info['path']} holds no {section} state, but a {section} was passed to "
                               "load_checkpoint")
    if strict and stored["class"] != _qualname(obj):
        raise CheckpointError(f"{info['path']}: {section} state was saved from {stored['class']}, "
                              f"not {_qualname(obj)} (strict=False loads it anyway)")


def _is_number(x):
    """A real number; a one-element floating Tensor counts too (PyTorch's optimizers take ``lr`` as one)."""
    if isinstance(x, Tensor):
        return x.numel() == 1 and x.dtype.kind == "f"
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _check_like(saved, ours, field):
    """``saved`` must be the same kind of value as ``ours`` (the live object's own state)."""
    if ours is None or saved is None and not isinstance(ours, (bool, int, float)):
        return
    if isinstance(ours, (bool, np.bool_)):
        ok = isinstance(saved, (bool, np.bool_))
    elif _is_number(ours):
        ok = _is_number(saved)
    elif isinstance(ours, str):
        ok = isinstance(saved, str)
    elif isinstance(ours, (tuple, list)):
        ok = isinstance(saved, (tuple, list)) and (len(saved) == len(ours) or isinstance(ours, list))
        if ok and isinstance(ours, tuple):
            for i, (s, o) in enumerate(zip(saved, ours)):
                _check_like(s, o, f"{field}[{i}]")
    elif isinstance(ours, dict):
        ok = isinstance(saved, dict)
    else:
        return
    if not ok:
        raise HeaderError(f"{field} must be like {ours!r} ({type(ours).__name__}), got {str(saved)[:40]!r} "
                          f"({type(saved).__name__})")


def _check_optimizer(optimizer, saved, source):
    """Group sizes, hyperparameter types and state shapes must fit ``optimizer`` (PyTorch's layout)."""
    where = f"{source}: nnlite.optimizer.state"
    if not (isinstance(saved, dict) and isinstance(saved.get("state"), dict)
            and isinstance(saved.get("param_groups"), list)):
        raise HeaderError(f"{where}: optimizer state lacks 'state' (an object) and 'param_groups' (a list)")
    for i, g in enumerate(saved["param_groups"]):
        if not (isinstance(g, dict) and isinstance(g.get("params"), list)):
            raise HeaderError(f"{where}.param_groups[{i}] must be an object with a 'params' list")
    ours = [len(g["params"]) for g in optimizer.param_groups]
    theirs = [len(g["params"]) for g in saved["param_groups"]]
    if ours != theirs:
        raise ShapeMismatchError(f"{source}: the saved optimizer's parameter groups hold {theirs} parameters, "
                                 f"this {type(optimizer).__name__} holds {ours}")
    shape_of = {}
    for i, (group, saved_group) in enumerate(zip(optimizer.param_groups, saved["param_groups"])):
        for key, value in saved_group.items():
            if key != "params":
                _check_like(value, group.get(key), f"{where}.param_groups[{i}].{key}")
        for p, index in zip(group["params"], saved_group["params"]):
            if isinstance(index, (bool, list, dict)):
                raise HeaderError(f"{where}.param_groups[{i}].params must list parameter indices, got {index!r}")
            shape_of[index] = tuple(p.shape)
    problems = []
    for index, entry in saved["state"].items():
        if index not in shape_of:
            problems.append(f"state for parameter {index!r}, which no parameter group lists")
            continue
        if not isinstance(entry, dict):
            raise HeaderError(f"{where}.state.{index} must be an object, got {type(entry).__name__}")
        for name, value in entry.items():
            shape = tuple(np.shape(value.data if isinstance(value, Tensor) else value))
            if shape and shape != shape_of[index]:
                problems.append(f"state {index}.{name}: checkpoint {shape}, parameter {shape_of[index]}")
    if problems:
        raise ShapeMismatchError(f"{source} does not fit {type(optimizer).__name__}: " + "; ".join(problems))


def _check_state(obj, section, saved, source):
    """A scheduler's or loader's saved fields must be the same kinds as its own."""
    ours = obj.state_dict()
    for key, value in saved.items():
        if key in ours:
            _check_like(value, ours[key], f"{source}: nnlite.{section}.state.{key}")


def _snapshot(obj):
    """A copy of ``obj``'s state to put back if loading a later section fails."""
    return copy.deepcopy(obj.state_dict())


def load_checkpoint(path, model=None, optimizer=None, scheduler=None, strict=True, dataloader=None,
                    restore_rng=True):
    """Restore what is passed from a checkpoint; return a :class:`Checkpoint` (metadata, ``extra``...).

    Everything is validated before anything is changed: a file that does not
    fit the model leaves the model, optimizer and generator untouched.
    ``restore_rng`` (default True) resets the global generator to its saved state.
    """
    raw, parsed, metadata, stored = _open(path)
    info = _info(path, parsed, metadata, stored)
    source = repr(info["path"])
    if info["format"] != "checkpoint":
        raise NotACheckpointError(f"{source} is a plain weights file, not a training checkpoint; read it with "
                                  "nl.load_state_dict(path) and pass that to model.load_state_dict")
    arrays = _arrays(raw, parsed, info)
    if model is not None:
        if info["model"] is None:
            raise MissingKeysError(f"{source} holds no model state")
        stored = {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}
        extra_state = _decode(info["model"].get("extra_state") or {}, arrays, source, "nnlite.model.extra_state")
        if not isinstance(extra_state, dict):   # an object in JSON can still decode to a tuple ("__tuple__")
            raise HeaderError(f"{source}: nnlite.model.extra_state must decode to a mapping of names to values, "
                              f"got {type(extra_state).__name__}")
        stored.update(extra_state)
        order = [k for k in info["model"].get("keys") or [] if k in stored]
        state = OrderedDict((k, stored[k]) for k in order + sorted(set(stored) - set(order)))
        state.provenance = _provenance(info, raw, info["model"].get("parameters"))
        info["missing_keys"], info["unexpected_keys"] = _check_model(model, state, strict, source)
    for section, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("dataloader", dataloader)):
        if obj is not None:
            _check_section(info, section, obj, strict)
    for section in ("optimizer", "scheduler", "dataloader"):
        if info[section] is not None:
            info[section] = dict(info[section], state=_decode(info[section]["state"], arrays, source,
                                                              f"nnlite.{section}"))
            if not isinstance(info[section]["state"], dict):
                raise HeaderError(f"{source}: nnlite.{section}.state must be an object")
    if info["extra"] is not None:
        info["extra"] = _decode(info["extra"], arrays, source, "nnlite.extra")
    if optimizer is not None:
        _check_optimizer(optimizer, info["optimizer"]["state"], source)
    for section, obj in (("scheduler", scheduler), ("dataloader", dataloader)):
        if obj is not None:
            _check_state(obj, section, info[section]["state"], source)
    # Everything is validated; now apply. A section the object itself still refuses puts
    # back what was applied before it, so a failed load never leaves a half-loaded run.
    applied = []
    try:
        for section, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("dataloader", dataloader)):
            if obj is not None:
                generators = _generators(obj)
                applied.append((obj, generators, _snapshot(obj),
                                {name: g.get_state() for name, g in generators.items()}))
                obj.load_state_dict(info[section]["state"])
                for name, saved in _saved_generator_states(info[section]).items():
                    if name in generators:
                        generators[name].set_state(saved)
    except Exception as e:
        for obj, generators, before, generator_states in reversed(applied):
            obj.load_state_dict(before)
            for name, generator_state in generator_states.items():
                generators[name].set_state(generator_state)
        if isinstance(e, CheckpointError):
            raise
        raise HeaderError(f"{source}: the saved {section} state does not fit {type(obj).__name__} "
                          f"({type(e).__name__}: {e}); nothing was loaded") from None
    # The model (shapes checked) and the generator (state checked) cannot fail: last.
    if model is not None:
        model.load_state_dict(state, strict=False)
    if restore_rng and info["rng"] is not None:
        _random.set_rng_state(info["rng"])
    return info


class CheckpointManager:
    """Numbered checkpoints in one directory, keeping the newest ``keep_last``.

    >>> manager = CheckpointManager("runs/mnist", keep_last=3)   # doctest: +SKIP
    >>> manager.save(step, model=model, optimizer=opt)             # doctest: +SKIP
    >>> manager.load_latest(model=model, optimizer=opt)            # doctest: +SKIP
    """

    def __init__(self, directory, prefix="checkpoint", keep_last=None, suffix=".safetensors"):
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.template = os.path.join(self.directory, prefix + "-{step:08d}" + suffix)
        self.keep_last = keep_last

    def save(self, step, **kwargs):
        return save_checkpoint(self.template, step=step, keep_last=self.keep_last, **kwargs)

    def checkpoints(self):
        return list_checkpoints(self.template)

    def latest(self):
        found = self.checkpoints()
        return found[-1][1] if found else None

    def load_latest(self, **kwargs):
        """Load the newest checkpoint (None when there is none yet)."""
        path = self.latest()
        return None if path is None else load_checkpoint(path, **kwargs)
