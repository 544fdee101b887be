"""Format versions of nnlite files, and the explicit steps that bring old ones up to date.

The version lives in the safetensors metadata. Reading a file:

* the current version is used as it is;
* an older version passes through the migration functions below, one
  version at a time, each a small function from old metadata to new;
* a newer version raises :class:`~nnlite.io.VersionError` asking for a newer
  nnlite, rather than guessing at a layout this version does not know.

History:

1. Every non-tensor section in one JSON object under the metadata key
   ``"nnlite"``; no checksum.
2. (current) One metadata key per section (``nnlite.model``,
   ``nnlite.optimizer``, ...), so a reader such as ``nnlite inspect`` decodes
   only what it shows, plus ``nnlite.sha256`` over tensors and metadata.
"""
import json
import re

from .errors import CheckpointError, HeaderError, VersionError
from .format import _load_json

__all__ = ["FORMAT_VERSION", "MIGRATIONS", "stored_version", "upgrade"]

FORMAT_VERSION = 2
VERSION_KEY = "nnlite.format_version"
SECTIONS = ("model", "optimizer", "scheduler", "dataloader", "rng", "progress", "extra")


def _v1_to_v2(metadata):
    """Split format 1's single ``nnlite`` JSON object into one metadata key per section."""
    out = {k: v for k, v in metadata.items() if k != "nnlite"}
    blob = _load_json(metadata["nnlite"], "format-1 metadata")
    out["nnlite.format"] = blob.get("format", "checkpoint")
    out["nnlite.version"] = blob.get("nnlite_version", "unknown")
    if "step" in blob or "epoch" in blob:
        blob["progress"] = {"step": blob.get("step"), "epoch": blob.get("epoch")}
    for section in SECTIONS:
        if section in blob:
            out[f"nnlite.{section}"] = json.dumps(blob[section])
    out[VERSION_KEY] = "2"
    return out


# MIGRATIONS[v] turns the metadata of format v into that of format v + 1.
MIGRATIONS = {1: _v1_to_v2}


def stored_version(metadata, source="file"):
    """The format version recorded in ``metadata``, or None for a file nnlite did not write."""
    if VERSION_KEY in metadata:
        text = metadata[VERSION_KEY]
        # ASCII digits only, and few of them: "²".isdigit() is True, and int() refuses 5000 digits.
        if not re.fullmatch(r"[0-9]{1,9}", text):
            shown = text if len(text) <= 20 else text[:20] + f"... ({len(text)} characters)"
            raise HeaderError(f"{source}: {VERSION_KEY} must be a positive integer, got {shown!r}")
        return int(text)
    if "nnlite" in metadata:
        try:
            blob = _load_json(metadata["nnlite"], f"{source}: format-1 metadata")
            version = blob["format_version"]
            if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < 10**9:
                raise HeaderError(f"{source}: format-1 metadata: format_version must be a positive integer, "
                                  f"got {str(version)[:20]!r}")
            return version
        except CheckpointError:
            raise
        except (ValueError, KeyError, TypeError):
            raise HeaderError(f"{source}: metadata key 'nnlite' is not a format-1 description") from None
    return None


def upgrade(metadata, source="file"):
    """(stored version, metadata in the current format); files nnlite did not write pass unchanged."""
    version = stored_version(metadata, source)
    if version is None:
        return None, dict(metadata)
    if version > FORMAT_VERSION:
        from .._version import __version__
        raise VersionError(f"{source} uses checkpoint format {version}, written by nnlite "
                           f"{metadata.get('nnlite.version', 'newer than this one')}; nnlite {__version__} "
                           f"reads formats up to {FORMAT_VERSION}. Upgrade nnlite to load it "
                           "(pip install --upgrade nnlite).")
    if version < 1:
        raise VersionError(f"{source}: checkpoint format {version} does not exist (formats start at 1)")
    current = dict(metadata)
    for v in range(version, FORMAT_VERSION):
        try:
            current = MIGRATIONS[v](current)
        except CheckpointError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise HeaderError(f"{source}: cannot migrate format {v} to {v + 1} ({e})") from None
    return version, current
