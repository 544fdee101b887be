"""Reading nnlite and safetensors files: validate, verify the checksum, migrate, describe.

:func:`read_checkpoint` lists what a file holds without a model; the loaders
in :mod:`~nnlite.io.checkpoint` and :mod:`~nnlite.io.weights` build on the
same steps.
"""
import hashlib
import json
import os

import numpy as np

from ..random import Generator
from .errors import HeaderError
from .format import _load_json, decode, parse, read_file, verify_checksum
from .migrations import FORMAT_VERSION, VERSION_KEY, upgrade

__all__ = ["Checkpoint", "read_checkpoint"]


def _version():
    from .._version import __version__
    return __version__


def _header(kind):
    return {"nnlite.format": kind, VERSION_KEY: str(FORMAT_VERSION), "nnlite.version": _version()}


def _dumps(obj):
    return json.dumps(obj, allow_nan=False, separators=(",", ":"))


class Checkpoint(dict):
    """What :func:`read_checkpoint` and :func:`load_checkpoint` return: a dict with attribute access.

    Keys: ``path, format, format_version, stored_format_version, nnlite_version,
    step, epoch, extra, model, optimizer, scheduler, dataloader, rng, tensors
    (name -> (dtype, shape) in file order), aliases, keys, metadata`` (the
    user's own metadata entries); after loading into a model also
    ``missing_keys`` and ``unexpected_keys``.
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
    """Read, validate, checksum and migrate: (raw bytes, parsed file, current-format metadata, stored version)."""
    source = repr(os.fspath(path))
    raw = read_file(path)
    parsed = parse(raw, source)
    stored, metadata = upgrade(parsed.metadata, source)
    verify_checksum(parsed, source, required=stored is not None and stored >= 2)
    return raw, parsed, metadata, stored


def _provenance(info, raw, previous=None):
    """Where loaded values come from, for the parameters' ``init`` records: the file and its SHA-256.

    ``previous`` maps names to the ``init`` records the file itself stores
    (an nnlite checkpoint describes its parameters), which keeps the lineage.
    """
    record = {"source": info["path"], "sha256": hashlib.sha256(raw).hexdigest()}
    previous = {k: v["init"] for k, v in (previous or {}).items() if isinstance(v, dict) and v.get("init")}
    if previous:
        record["previous"] = previous
    return record


def _section(metadata, name, source):
    text = metadata.get(f"nnlite.{name}")
    return None if text is None else _load_json(text, f"{source} metadata nnlite.{name}")


def _info(path, parsed, metadata, stored):
    source = repr(os.fspath(path))
    sections = {s: _section(metadata, s, source) for s in
                ("model", "optimizer", "scheduler", "dataloader", "rng", "progress", "extra", "aliases", "keys")}
    progress = sections["progress"] or {}
    # Ties are read only from nnlite's own namespaced key. Another writer's metadata is the
    # user's: a value that happens to equal a tensor name ({"note": "weight"}) is not an alias.
    # (safetensors.torch.save_model stores a tied tensor once; Module.load_state_dict fills
    # the other name through the tie.)
    aliases = sections["aliases"] or {}
    if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
        raise HeaderError(f"{source}: nnlite.aliases must map names to names")
    _check_sections(sections, progress, source)
    return Checkpoint(
        path=os.fspath(path), format=metadata.get("nnlite.format"),
        format_version=FORMAT_VERSION if stored is not None else None, stored_format_version=stored,
        nnlite_version=metadata.get("nnlite.version"), step=progress.get("step"), epoch=progress.get("epoch"),
        model=sections["model"], optimizer=sections["optimizer"], scheduler=sections["scheduler"],
        dataloader=sections["dataloader"], rng=sections["rng"], extra=sections["extra"],
        aliases=aliases, keys=sections["keys"],
        tensors={n: (e.dtype, e.shape) for n, e in sorted(parsed.tensors.items(), key=lambda t: t[1].begin)},
        metadata={k: v for k, v in metadata.items() if not k.startswith("nnlite")})


def _kind(value):
    return type(value).__name__


def _check_sections(sections, progress, source):
    """Types of every field the loaders read, each failure naming its field."""
    if not isinstance(progress, dict):
        raise HeaderError(f"{source}: nnlite.progress must be an object, got {_kind(progress)}")
    for key in ("step", "epoch"):
        value = progress.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise HeaderError(f"{source}: nnlite.progress.{key} must be an integer or null, got {_kind(value)}")
    model = sections["model"]
    if model is not None:
        if not isinstance(model, dict):
            raise HeaderError(f"{source}: nnlite.model must be an object, got {_kind(model)}")
        keys = model.get("keys")
        if keys is not None and not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
            raise HeaderError(f"{source}: nnlite.model.keys must be a list of strings, got {_kind(keys)}"
                              + (f" of {sorted({_kind(k) for k in keys})}" if isinstance(keys, list) else ""))
        for field in ("extra_state", "parameters", "config"):
            value = model.get(field)
            if value is not None and not isinstance(value, dict):
                raise HeaderError(f"{source}: nnlite.model.{field} must be an object, got {_kind(value)}")
    keys = sections["keys"]
    if keys is not None and not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise HeaderError(f"{source}: nnlite.keys must be a list of strings, got {_kind(keys)}")
    for name in ("optimizer", "scheduler", "dataloader"):
        value = sections[name]
        if value is None:
            continue
        if not (isinstance(value, dict) and {"class", "state"} <= set(value)):
            raise HeaderError(f"{source}: nnlite.{name} must be an object with 'class' and 'state'")
        if not isinstance(value["class"], str):
            raise HeaderError(f"{source}: nnlite.{name}.class must be a string, got {_kind(value['class'])}")
        if not isinstance(value["state"], dict):
            raise HeaderError(f"{source}: nnlite.{name}.state must be an object, got {_kind(value['state'])}")
    if sections["rng"] is not None:
        try:
            Generator(0).set_state(sections["rng"])
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as e:
            raise HeaderError(f"{source}: nnlite.rng is not a generator state ({e})") from None


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
