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
    nnlite.dataloader      class and state_dict (position within the epoch)
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
import json
import os
import re
import string
from collections import OrderedDict

import numpy as np

from .. import random as _random
from ..tensor import Tensor
from . import jsonstate
from .errors import (CheckpointError, HeaderError, MissingKeysError, NotACheckpointError, ShapeMismatchError,
                     UnexpectedKeysError)
from .format import _load_json, atomic_write, decode, parse, read_file, serialize, verify_checksum
from .migrations import FORMAT_VERSION, VERSION_KEY, upgrade

__all__ = ["save_checkpoint", "load_checkpoint", "read_checkpoint", "save_state_dict", "load_state_dict",
           "Checkpoint", "CheckpointManager"]


def _version():
    from .. import __version__
    return __version__


def _header(kind):
    return {"nnlite.format": kind, VERSION_KEY: str(FORMAT_VERSION), "nnlite.version": _version()}


def _dumps(obj):
    return json.dumps(obj, allow_nan=False, separators=(",", ":"))


def _qualname(obj):
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _config(model):
    """The model's constructor configuration when it exposes one (``model.config``), else None."""
    config = getattr(model, "config", None)
    if hasattr(config, "__dataclass_fields__"):
        import dataclasses
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
    # A loader with its own Generator draws next epoch's shuffle from it: that state belongs here too.
    generator = getattr(obj, "generator", None)
    if isinstance(generator, _random.Generator):
        out["generator"] = generator.get_state()
    return _dumps(out)


def _count(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
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
        rotate(template, keep_last)
    return path


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


# ----------------------------------------------------------------- reading --
class Checkpoint(dict):
    """What :func:`read_checkpoint` and :func:`load_checkpoint` return: a dict with attribute access.

    Keys: ``path, format, format_version, stored_format_version, nnlite_version,
    step, epoch, extra, model, optimizer, scheduler, dataloader, rng, tensors,
    aliases, metadata`` (the user's own metadata entries); after loading into a
    model also ``missing_keys`` and ``unexpected_keys``.
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def summary(self):
        """A readable listing of the file: what ``nnlite inspect`` prints."""
        lines = [f"{self['path']}: nnlite {self['format'] or 'safetensors'} file, format "
                 f"{self['format_version']}, written by nnlite {self['nnlite_version']}"]
        for key in ("step", "epoch"):
            if self.get(key) is not None:
                lines.append(f"  {key}: {self[key]}")
        for section in ("model", "optimizer", "scheduler", "dataloader"):
            if self.get(section):
                lines.append(f"  {section}: {self[section].get('class')}")
        total = 0
        lines.append(f"  tensors ({len(self['tensors'])}):")
        for name, (dtype, shape) in self["tensors"].items():
            count = int(np.prod(shape, dtype=np.int64))
            total += count
            lines.append(f"    {name:<40} {dtype:<5} {list(shape)}")
        lines.append(f"  {total} numbers stored")
        for alias, kept in self["aliases"].items():
            lines.append(f"  {alias} -> {kept} (tied)")
        return "\n".join(lines)


def _open(path):
    """Read, validate, checksum and migrate; return (raw bytes, parsed file, current-format metadata, info)."""
    source = repr(os.fspath(path))
    raw = read_file(path)
    parsed = parse(raw, source)
    stored, metadata = upgrade(parsed.metadata, source)
    verify_checksum(parsed, source, required=stored is not None and stored >= 2)
    return raw, parsed, metadata, stored


def _section(metadata, name, source):
    text = metadata.get(f"nnlite.{name}")
    return None if text is None else _load_json(text, f"{source} metadata nnlite.{name}")


def _info(path, parsed, metadata, stored):
    source = repr(os.fspath(path))
    sections = {s: _section(metadata, s, source) for s in
                ("model", "optimizer", "scheduler", "dataloader", "rng", "progress", "extra", "aliases", "keys")}
    progress = sections["progress"] or {}
    aliases = sections["aliases"] or {}
    if stored is None:
        # safetensors.torch.save_model records each dropped shared name as metadata[dropped] = kept.
        aliases = {k: v for k, v in metadata.items() if v in parsed.tensors and k not in parsed.tensors}
    if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
        raise HeaderError(f"{source}: nnlite.aliases must map names to names")
    if not isinstance(progress, dict):
        raise HeaderError(f"{source}: nnlite.progress must be an object")
    if sections["model"] is not None and not isinstance(sections["model"], dict):
        raise HeaderError(f"{source}: nnlite.model must be an object")
    for name in ("optimizer", "scheduler", "dataloader"):
        value = sections[name]
        if value is not None and not (isinstance(value, dict) and {"class", "state"} <= set(value)):
            raise HeaderError(f"{source}: nnlite.{name} must be an object with 'class' and 'state'")
    return Checkpoint(
        path=os.fspath(path), format=metadata.get("nnlite.format"),
        format_version=FORMAT_VERSION if stored is not None else None, stored_format_version=stored,
        nnlite_version=metadata.get("nnlite.version"), step=progress.get("step"), epoch=progress.get("epoch"),
        model=sections["model"], optimizer=sections["optimizer"], scheduler=sections["scheduler"],
        dataloader=sections["dataloader"], rng=sections["rng"], extra=sections["extra"],
        aliases=aliases, keys=sections["keys"],
        tensors={n: (e.dtype, e.shape) for n, e in sorted(parsed.tensors.items(), key=lambda t: t[1].begin)},
        metadata={k: v for k, v in metadata.items() if not k.startswith("nnlite")})


def read_checkpoint(path):
    """List a file's tensors and metadata without a model (validated and checksummed, nothing loaded).

    Works on nnlite checkpoints, nnlite state-dict files and any safetensors file.
    Sections that hold tensors (optimizer state, ``extra``) are returned in their
    stored JSON form, with ``{"__tensor__": name}`` references.
    """
    _, parsed, metadata, stored = _open(path)
    return _info(path, parsed, metadata, stored)


def _arrays(raw, parsed, info):
    """All tensors, with aliases restored as the same array under each name."""
    arrays = decode(raw, parsed)
    for alias, kept in info["aliases"].items():
        if kept not in arrays:
            raise HeaderError(f"{info['path']}: alias {alias!r} refers to {kept!r}, which the file does not hold")
        arrays[alias] = arrays[kept]
    return arrays


def load_state_dict(path):
    """Read a safetensors weights file into an ``OrderedDict`` of name -> Tensor.

    Accepts files from :func:`save_state_dict`, from PyTorch
    (``safetensors.torch.save_file``) and nnlite checkpoints (their model part).
    Tied tensors come back as one Tensor under each of their names.
    """
    raw, parsed, metadata, stored = _open(path)
    info = _info(path, parsed, metadata, stored)
    arrays = _arrays(raw, parsed, info)
    if info["format"] == "checkpoint":
        if not info["model"]:
            raise MissingKeysError(f"{info['path']} is a checkpoint without model weights")
        arrays = {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}
        order = info["model"]["keys"]
    else:
        order = info["keys"] or list(info["tensors"])
    shared = {}
    out = OrderedDict()
    for key in [k for k in order if k in arrays] + sorted(k for k in arrays if k not in order):
        arr = arrays[key]
        out[key] = shared.setdefault(id(arr), Tensor._make(arr, None))
    return out


def _decode(obj, arrays, source):
    try:
        return jsonstate.decode(obj, arrays, source)
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise HeaderError(f"{source}: malformed state in the metadata ({type(e).__name__}: {e})") from None


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


def _check_optimizer(optimizer, saved, source):
    """Group sizes and per-parameter state shapes must fit ``optimizer`` (PyTorch's state_dict layout)."""
    if not (isinstance(saved, dict) and isinstance(saved.get("state"), dict)
            and isinstance(saved.get("param_groups"), list)):
        raise HeaderError(f"{source}: optimizer state lacks 'state' and 'param_groups'")
    ours = [len(g["params"]) for g in optimizer.param_groups]
    theirs = [len(g.get("params", [])) for g in saved["param_groups"]]
    if ours != theirs:
        raise ShapeMismatchError(f"{source}: the saved optimizer's parameter groups hold {theirs} parameters, "
                                 f"this {type(optimizer).__name__} holds {ours}")
    shape_of = {}
    for group, saved_group in zip(optimizer.param_groups, saved["param_groups"]):
        for p, index in zip(group["params"], saved_group["params"]):
            shape_of[index] = tuple(p.shape)
    problems = []
    for index, entry in saved["state"].items():
        if index not in shape_of:
            problems.append(f"state for parameter {index!r}, which no parameter group lists")
            continue
        for name, value in (entry.items() if isinstance(entry, dict) else ()):
            shape = tuple(np.shape(value.data if isinstance(value, Tensor) else value))
            if shape and shape != shape_of[index]:
                problems.append(f"state {index}.{name}: checkpoint {shape}, parameter {shape_of[index]}")
    if problems:
        raise ShapeMismatchError(f"{source} does not fit {type(optimizer).__name__}: " + "; ".join(problems))


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
        stored.update(_decode(info["model"].get("extra_state") or {}, arrays, source))
        order = [k for k in info["model"].get("keys") or [] if k in stored]
        state = {k: stored[k] for k in order + sorted(set(stored) - set(order))}
        info["missing_keys"], info["unexpected_keys"] = _check_model(model, state, strict, source)
    for section, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("dataloader", dataloader)):
        if obj is not None:
            _check_section(info, section, obj, strict)
    for section in ("optimizer", "scheduler", "dataloader"):
        if info[section] is not None:
            info[section] = dict(info[section], state=_decode(info[section]["state"], arrays, source))
    if info["extra"] is not None:
        info["extra"] = _decode(info["extra"], arrays, source)
    if optimizer is not None:
        _check_optimizer(optimizer, info["optimizer"]["state"], source)
    if model is not None:
        model.load_state_dict(state, strict=False)
    for section, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("dataloader", dataloader)):
        if obj is not None:
            obj.load_state_dict(info[section]["state"])
            if "generator" in info[section] and isinstance(getattr(obj, "generator", None), _random.Generator):
                obj.generator.set_state(info[section]["generator"])
    if restore_rng and info["rng"] is not None:
        _random.set_rng_state(info["rng"])
    return info


# ---------------------------------------------------------------- rotation --
def _template_pattern(template):
    """A regex matching the file names ``template`` produces, capturing the step (or epoch)."""
    parts, fields = [], []
    for literal, field, _, _ in string.Formatter().parse(os.path.basename(template)):
        parts.append(re.escape(literal))
        if field is not None:
            if field not in ("step", "epoch"):
                raise ValueError(f"checkpoint path template: only {{step}} and {{epoch}} fields, got {{{field}}}")
            parts.append(f"(?P<{field}>-?\\d+)" if field not in fields else "-?\\d+")
            fields.append(field)
    if not fields:
        raise ValueError(f"keep_last needs a path template with a {{step}} or {{epoch}} field, got {template!r}")
    return re.compile("".join(parts) + r"\Z"), "step" if "step" in fields else "epoch"


def list_checkpoints(template):
    """[(number, path)] of existing files matching ``template``, oldest first."""
    directory = os.path.dirname(os.path.abspath(template))
    if "{" in os.path.dirname(template):
        raise ValueError(f"checkpoint path template: fields belong in the file name, not the directory ({template!r})")
    pattern, field = _template_pattern(template)
    found = []
    for name in os.listdir(directory):
        m = pattern.match(name)
        if m:
            found.append((int(m.group(field)), os.path.join(directory, name)))
    return sorted(found)


def rotate(template, keep_last):
    """Delete all but the ``keep_last`` newest checkpoints matching ``template``; return those deleted."""
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
        raise ValueError(f"keep_last must be a positive integer, got {keep_last!r}")
    found = list_checkpoints(template)
    doomed = [p for _, p in found[:-keep_last]]
    for p in doomed:
        try:
            os.remove(p)
        except FileNotFoundError:
            pass
    return doomed


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
