"""Reading nnlite and safetensors files: validate, verify the checksum, migrate, describe.

:func:`read_checkpoint` lists what a file holds without a model; the loaders
in :mod:`~nnlite.io.checkpoint` and :mod:`~nnlite.io.weights` build on the
same steps.
"""
import hashlib
import json
import os

import numpy as np

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
