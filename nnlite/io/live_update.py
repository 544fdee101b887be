"""Updating a deployed model's parameters: check the new file completely, then replace them all.

A service that serves a model swaps in retrained parameters without a
restart. A half-applied update (some layers new, some old) computes nonsense
without any error, so :func:`hot_swap` does it in two phases:

1. **Validate everything, change nothing.** The file's checksum (required),
   its format version (older ones are migrated, newer ones refused), the exact
   set of names, every shape, every dtype, and, when asked, its lineage: the
   new checkpoint's model card must name the live parameters' file as its
   parent, so an update cannot skip a version or come from another branch.
2. **Copy.** Only then are the values written, in place, into the live
   parameters and buffers (an optimizer's arena and tied weights keep working).
   After phase 1 nothing in phase 2 can fail, so the model is either entirely
   old or entirely new.

The copy is not a lock: a forward pass running at the same moment in another
thread could read a mix. Swap between requests, or guard both with one lock.
"""
import numpy as np

from .card import card_of
from .errors import CheckpointError, DTypeError, MissingKeysError, ShapeMismatchError, UnexpectedKeysError
from .format import verify_checksum
from .reader import _arrays, _info, _open, _provenance

__all__ = ["hot_swap", "LineageError"]


class LineageError(CheckpointError):
    """The new checkpoint does not descend from the parameters it would replace."""


def _parent_sha(parent):
    if parent is None:
        return None
    text = str(parent)
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text.lower()):
        return text.lower()
    from .card import file_sha256
    return file_sha256(parent)


def hot_swap(model, path, *, parent=None):
    """Replace every parameter and buffer of ``model`` with the values in checkpoint ``path``.

    ``parent`` (a SHA-256 hex string, or the path of the file the live
    parameters came from) makes the lineage part of the check: the new file's
    model card must name that file as its parent. Returns a dict with the new
    file's ``sha256``, ``format_version``, ``step`` and ``lineage``. Raises a
    :class:`~nnlite.io.CheckpointError` subclass, before anything is changed,
    when a check fails.
    """
    raw, parsed, metadata, stored = _open(path)
    source = repr(str(path))
    verify_checksum(parsed, source, required=True)   # _open accepts unchecked old files; a swap does not
    info = _info(path, parsed, metadata, stored)
    arrays = _arrays(raw, parsed, info)
    if info["format"] == "checkpoint":
        arrays = {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}
    live = {name: t for name, t in model.state_dict(keep_vars=True).items() if hasattr(t, "data")}
    missing = sorted(set(live) - set(arrays))
    unexpected = sorted(set(arrays) - set(live))
    if missing:
        raise MissingKeysError(f"hot_swap: {source} lacks {missing}; the model was left unchanged")
    if unexpected:
        raise UnexpectedKeysError(f"hot_swap: {source} has names the model does not: {unexpected}; "
                                  "the model was left unchanged")
    for name, t in live.items():
        new = arrays[name]
        if new.shape != t.data.shape:
            raise ShapeMismatchError(f"hot_swap: {name} has shape {tuple(new.shape)} in {source} but "
                                     f"{tuple(t.data.shape)} in the model; the model was left unchanged")
        if new.dtype != t.data.dtype:
            raise DTypeError(f"hot_swap: {name} is {new.dtype} in {source} but {t.data.dtype} in the model; "
                             "the model was left unchanged")
    record = _provenance(info, raw)
    card = card_of(info)
    claimed = ((card or {}).get("lineage") or {}).get("parent_sha256")
    expected = _parent_sha(parent)
    if expected is not None and claimed != expected:
        raise LineageError(f"hot_swap: {source} does not continue the live parameters (its card names parent "
                            f"{claimed or 'none'}, the live parameters come from {expected}); "
                            "the model was left unchanged")
    # Phase 2: every check passed; the copies below cannot fail.
    for name, t in live.items():
        np.copyto(t.data, arrays[name])
        if hasattr(t, "_bump_version"):
            t._bump_version()   # autograd: values saved for a backward are now stale
    return {"sha256": record["sha256"], "format_version": info["format_version"],
            "stored_format_version": info["stored_format_version"], "step": info["step"],
            "lineage": {"parent_sha256": claimed}}
