"""The safetensors container: validated reading, checksummed writing, atomic files.

A safetensors file is::

    8 bytes   little-endian unsigned length N of the header
    N bytes   UTF-8 JSON: {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}, ...}
    the rest  the tensors' bytes, packed back to back

Tensors are encoded and decoded by the ``safetensors`` library. Before a file
reaches it, :func:`parse` checks the header here, in plain Python, so that each
kind of damage raises its own exception (see :mod:`nnlite.io.errors`) and a
hostile header cannot make the reader allocate more than the file's size: every
size the header claims is compared with the bytes actually present before
anything is built from it. Nothing here ever unpickles.
"""
import errno
import hashlib
import json
import os
import re
import secrets
import time
from collections import namedtuple

import numpy as np
import safetensors
import safetensors.numpy

from ..tensor import Tensor, bfloat16_dtype, is_bfloat16
from .errors import (ChecksumError, DTypeError, DuplicateKeyError, HeaderError, NotACheckpointError,
                     OffsetError, OverlapError, ShapeError, TruncatedError)

__all__ = ["DTYPES", "MAX_HEADER_BYTES", "TensorEntry", "Parsed", "parse", "read_file", "decode",
           "serialize", "atomic_write", "remove_stale_temporaries", "compute_checksum", "verify_checksum", "CHECKSUM_KEY",
           "ALIASES_KEY"]

# The safetensors dtype strings NumPy can hold; the others are named so the error can say why.
DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "U64": np.uint64,
          "I32": np.int32, "U32": np.uint32, "I16": np.int16, "U16": np.uint16, "I8": np.int8,
          "U8": np.uint8, "BOOL": np.bool_}
DTYPES = {k: np.dtype(v) for k, v in DTYPES.items()}
_DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
# BF16 is read and written too, as ml_dtypes' bfloat16, which is imported only for a file that has one:
# a header is validated with the size alone.
BF16_ITEMSIZE = 2
_KNOWN_ELSEWHERE = {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"}


def _numpy_dtype(name):
    """The NumPy dtype of a safetensors dtype string this reader accepts."""
    return bfloat16_dtype() if name == "BF16" else DTYPES[name]


def _dtype_name(dtype):
    """The safetensors dtype string of a NumPy dtype (native byte order), or None."""
    return "BF16" if is_bfloat16(dtype) else _DTYPE_NAMES.get(dtype)

# The same limit the safetensors library applies; a real header is a few kilobytes.
MAX_HEADER_BYTES = 100_000_000

CHECKSUM_KEY = "nnlite.sha256"
ALIASES_KEY = "nnlite.aliases"

TensorEntry = namedtuple("TensorEntry", ["dtype", "shape", "begin", "end"])
Parsed = namedtuple("Parsed", ["tensors", "metadata", "data"])
Parsed.__doc__ = """``tensors``: name -> TensorEntry; ``metadata``: the str -> str ``__metadata__``;
``data``: a memoryview of the tensor bytes (offsets are relative to it)."""


# ---------------------------------------------------------------- reading --
def read_file(path):
    """The whole file as bytes (a checkpoint is read once, then validated in memory)."""
    with open(os.fspath(path), "rb") as f:
        return f.read()


def _looks_like_other_format(raw):
    """Name the format of a file that is clearly not safetensors, else None."""
    if raw[:4] == b"PK\x03\x04":
        return "a zip archive (torch.save writes these; they contain pickles)"
    # Opcode 0 does not exist, so "80 0k 00" is a small header length, not a pickle.
    if len(raw) >= 3 and raw[0] == 0x80 and 2 <= raw[1] <= 5 and raw[2] != 0:
        return f"a pickle (protocol {raw[1]})"
    if raw[:6] == b"\x93NUMPY":
        return "a NumPy .npy file"
    if raw[:8] == b"\x89HDF\r\n\x1a\n":
        return "an HDF5 file"
    return None


def _no_duplicates(pairs):
    keys = set()
    for key, _ in pairs:
        if key in keys:
            raise DuplicateKeyError(f"safetensors header: key {key!r} appears more than once; a "
                                    "well-formed file names each tensor and field once")
        keys.add(key)
    return dict(pairs)


def _load_json(text, what):
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except DuplicateKeyError as e:
        raise DuplicateKeyError(f"{what}: {e}") from None
    except RecursionError:
        raise HeaderError(f"{what} is nested too deeply to be a checkpoint's JSON") from None
    except ValueError as e:
        raise HeaderError(f"{what} is not valid JSON ({e})") from None


def _is_count(x):
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _entry(name, spec):
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
        got = sorted(spec) if isinstance(spec, dict) else type(spec).__name__
        raise HeaderError(f"tensor {name!r}: expected an object with keys dtype, shape, data_offsets; got {got}")
    dtype = spec["dtype"]
    if dtype not in DTYPES and dtype != "BF16":
        why = "NumPy has no such dtype" if dtype in _KNOWN_ELSEWHERE else "unknown dtype"
        raise DTypeError(f"tensor {name!r}: dtype {dtype!r} is not supported by nnlite ({why}); "
                         f"expected one of {sorted(DTYPES) + ['BF16']}")
    shape = spec["shape"]
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise ShapeError(f"tensor {name!r}: shape must be a list of non-negative integers, got {shape!r}")
    offsets = spec["data_offsets"]
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)
            and offsets[0] <= offsets[1]):
        raise OffsetError(f"tensor {name!r}: data_offsets must be [begin, end] with 0 <= begin <= end, "
                          f"got {offsets!r}")
    begin, end = offsets
    # Python integers cannot overflow, so a huge shape is caught here, not allocated.
    nbytes = BF16_ITEMSIZE if dtype == "BF16" else DTYPES[dtype].itemsize
    for d in shape:
        nbytes *= d
    if nbytes != end - begin:
        raise ShapeError(f"tensor {name!r}: shape {tuple(shape)} of {dtype} needs {nbytes} bytes but its "
                         f"offsets [{begin}, {end}] cover {end - begin}")
    return TensorEntry(dtype, tuple(shape), begin, end)


def _check_layout(entries, data_len):
    """Offsets must tile [0, data_len) exactly: no overlap, no gap, nothing past the end."""
    spans = sorted((e.begin, e.end, name) for name, e in entries.items())
    position, gap, previous = 0, None, None
    for begin, end, name in spans:
        if begin < position:
            raise OverlapError(f"tensors {previous!r} and {name!r} overlap: {name!r} starts at byte {begin}, "
                               f"before {previous!r} ends at byte {position}")
        if begin > position and gap is None:
            gap = (position, begin, name)
        if end >= position:
            position, previous = end, name
    if position > data_len:
        if gap is None:
            raise TruncatedError(f"file truncated: the header describes {position} bytes of tensor data "
                                 f"but only {data_len} follow it")
        raise OffsetError(f"tensor offsets out of range: tensors reach byte {position} of a data section of "
                          f"{data_len} bytes (and bytes {gap[0]}..{gap[1]} before {gap[2]!r} belong to no tensor)")
    if gap is not None:
        raise OffsetError(f"bytes {gap[0]}..{gap[1]} of the data section belong to no tensor "
                          f"(before {gap[2]!r}); offsets must be contiguous")
    if position < data_len:
        raise OffsetError(f"{data_len - position} bytes after the last tensor belong to no tensor "
                          f"(data section {data_len} bytes, tensors end at {position})")


def parse(raw, source="file"):
    """Validate a safetensors byte string; return :class:`Parsed` or raise a CheckpointError."""
    raw = memoryview(raw)
    size = len(raw)
    n = int.from_bytes(raw[:8], "little") if size >= 8 else None
    # A cut-off safetensors file still has a sane length and its "{"; only other files are sniffed.
    plausible = n is not None and n <= MAX_HEADER_BYTES and raw[8:9] == b"{"
    other = None if plausible else _looks_like_other_format(bytes(raw[:8]))
    if other:
        raise NotACheckpointError(f"{source} is {other}, not a safetensors checkpoint; nnlite never "
                                  "unpickles files, because loading a pickle can run arbitrary code")
    if n is None:
        raise TruncatedError(f"{source} has {size} bytes; a safetensors file starts with an 8-byte header length")
    if n > MAX_HEADER_BYTES:
        raise HeaderError(f"{source}: header length {n} bytes exceeds the limit of {MAX_HEADER_BYTES} "
                          "(damaged file, or not a safetensors file)")
    if n > size - 8:
        raise TruncatedError(f"{source}: header announces {n} bytes but only {size - 8} follow the length field")
    header = bytes(raw[8:8 + n])
    if not header.startswith(b"{"):
        raise NotACheckpointError(f"{source} is not a safetensors file: its header does not start with '{{'")
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HeaderError(f"{source}: header is not UTF-8 ({e})") from None
    obj = _load_json(text, f"{source} header")
    if not isinstance(obj, dict):
        raise HeaderError(f"{source}: header must be a JSON object, got {type(obj).__name__}")
    metadata = obj.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise HeaderError(f"{source}: __metadata__ must map strings to strings")
    entries = {name: _entry(name, spec) for name, spec in obj.items()}
    data = raw[8 + n:]
    _check_layout(entries, len(data))
    return Parsed(entries, metadata, data)


def decode(raw, parsed=None):
    """name -> writable ndarray, decoded by safetensors from a file already passed by :func:`parse`."""
    parsed = parse(raw) if parsed is None else parsed
    try:
        flat = safetensors.deserialize(bytes(raw))
    except safetensors.SafetensorError as e:  # parse() accepts only what safetensors accepts
        raise HeaderError(f"safetensors rejected the file: {e}") from None
    out = {}
    for name, view in flat:
        entry = parsed.tensors[name]
        out[name] = np.frombuffer(view["data"], dtype=_numpy_dtype(entry.dtype)).reshape(entry.shape)
    return out


# --------------------------------------------------------------- checksum --
def _hash_tensor(h, name, dtype, shape, buffer):
    h.update(json.dumps([name, dtype, list(shape)]).encode())
    h.update(buffer)


def _hash_metadata(h, metadata):
    rest = {k: v for k, v in metadata.items() if k != CHECKSUM_KEY}
    h.update(json.dumps(rest, sort_keys=True).encode())


def compute_checksum(arrays, metadata):
    """SHA-256 over every tensor (name, dtype, shape, bytes, in name order) and the metadata.

    Defined independently of where safetensors places each tensor, so the
    writer can compute it from the arrays and the reader from the file.
    """
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        _hash_tensor(h, name, _dtype_name(a.dtype.newbyteorder("=")), a.shape, a.reshape(-1).view(np.uint8))
    _hash_metadata(h, metadata)
    return h.hexdigest()


def verify_checksum(parsed, source="file", required=True):
    stored = parsed.metadata.get(CHECKSUM_KEY)
    if stored is None:
        if required:
            raise ChecksumError(f"{source} carries no {CHECKSUM_KEY} checksum")
        return
    h = hashlib.sha256()
    for name in sorted(parsed.tensors):
        e = parsed.tensors[name]
        _hash_tensor(h, name, e.dtype, e.shape, parsed.data[e.begin:e.end])
    _hash_metadata(h, parsed.metadata)
    if h.hexdigest() != stored:
        raise ChecksumError(f"{source}: SHA-256 mismatch (stored {stored}, computed {h.hexdigest()}); "
                            "the file was modified or damaged after it was written")


# ---------------------------------------------------------------- writing --
def _as_array(name, arr):
    if _dtype_name(arr.dtype.newbyteorder("=")) is None:
        raise DTypeError(f"tensor {name!r}: dtype {arr.dtype} cannot be stored; expected one of "
                         f"{sorted(str(d) for d in _DTYPE_NAMES) + ['bfloat16']}")
    if arr.dtype.byteorder == ">":  # safetensors is little-endian by definition
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr if arr.flags.c_contiguous else arr.copy(order="C")  # ascontiguousarray would make 0-d 1-d


def _dedupe(arrays):
    """Store a tensor shared under several names once; return (unique arrays, alias -> kept name).

    The kept name is the first in sorted order, the rule ``safetensors.torch``
    uses, so ``safetensors.torch.load_model`` accepts the result.
    """
    groups = {}
    for name, a in arrays.items():
        if a.size == 0:
            continue
        key = (a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str)
        groups.setdefault(key, []).append(name)
    aliases = {}
    for names in groups.values():
        if len(names) > 1:
            kept = min(names)
            aliases.update({n: kept for n in names if n != kept})
    return {n: a for n, a in arrays.items() if n not in aliases}, aliases


def serialize(tensors, metadata):
    """Bytes of a safetensors file with aliases recorded and a checksum; ``metadata`` is str -> str."""
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"safetensors metadata must map str to str; got {k!r}: {type(v).__name__}")
    named = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise TypeError(f"tensor names must be strings other than '__metadata__', got {name!r}")
        arr = value.data if isinstance(value, Tensor) else value
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"tensor {name!r}: expected an nnlite Tensor or a NumPy array, got {type(value).__name__}")
        named[name] = arr
    shared, aliases = _dedupe(named)  # before copying, so sharing is still visible
    arrays = {name: _as_array(name, a) for name, a in shared.items()}
    metadata = dict(metadata)
    if aliases:
        metadata[ALIASES_KEY] = json.dumps(aliases, sort_keys=True)
    metadata[CHECKSUM_KEY] = compute_checksum(arrays, metadata)
    return safetensors.numpy.save(arrays, metadata=metadata)


def _fsync_directory(directory):
    # A rename is durable only once the directory entry is; not possible on Windows.
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Temporaries are ".<file name>.<writer's pid>.<12 hex digits>.tmp" (older files: no pid).
_TEMPORARY = re.compile(r"\.(?P<target>.+?)\.(?:(?P<pid>\d{1,10})\.)?[0-9a-f]{12}\.tmp\Z")
# A temporary this old belongs to no save still running (writing one takes seconds).
STALE_TEMPORARY_SECONDS = 3600


def _process_is_gone(pid):
    if os.name == "nt":
        return False   # no cheap check; the age rule still applies
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False
    return False


def remove_stale_temporaries(directory, now=None):
    """Delete temporaries of interrupted saves in ``directory``; return the names removed.

    A save killed between writing and renaming (``kill -9``, a power cut) leaves
    its temporary behind. Only names of :func:`atomic_write`'s own pattern are
    considered, and only when the process that wrote one is gone or the file is
    older than an hour, so a save running in another process is never disturbed.
    """
    now = time.time() if now is None else now
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        m = _TEMPORARY.match(name)
        if m is None:
            continue
        path = os.path.join(directory, name)
        try:
            old = now - os.stat(path).st_mtime > STALE_TEMPORARY_SECONDS
            pid = m.group("pid")
            if old or (pid is not None and int(pid) != os.getpid() and _process_is_gone(int(pid))):
                os.unlink(path)
                removed.append(name)
        except OSError:   # removed by another saver meanwhile, or not ours to remove
            continue
    return removed


def atomic_write(path, data):
    """Write ``data`` to ``path`` so a crash at any moment leaves the old file or the new one.

    The bytes go to a temporary file in the same directory (``os.replace`` is
    atomic only within one file system), are flushed and fsynced, then renamed
    over ``path``; finally the directory is fsynced so the rename survives a
    power loss. Temporaries that interrupted saves left in the directory are
    removed first (:func:`remove_stale_temporaries`).
    """
    path = os.fspath(path)
    # Checked first, so the error names the path asked for rather than the temporary beside it.
    if not os.path.basename(path):
        raise ValueError(f"cannot write {path!r}: expected the path of a file, got no file name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, f"cannot write {path!r}: its directory {directory!r} does not "
                                "exist (create it first)")
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"cannot write {path!r}: expected the path of a file, got a "
                                "directory")
    remove_stale_temporaries(directory)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)
