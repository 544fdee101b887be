"""Damaged, hostile and foreign files: each raises its own CheckpointError, allocates little, runs nothing."""
import json
import pickle
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

import nnlite as nl
from nnlite import io as nio
from nnlite.io import format as fmt


def _file(header, data=b"", length=None):
    """A safetensors file from a header (dict, or raw bytes) and a data section."""
    body = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(body) if length is None else length) + body + data


def _f32(shape, begin, dtype="F32"):
    size = 4 * int(np.prod(shape))
    return {"dtype": dtype, "shape": list(shape), "data_offsets": [begin, begin + size]}


def _expect(tmp_path, raw, exc, match, readers=(nio.read_checkpoint, nl.load_state_dict, nl.load_checkpoint)):
    """Every reader raises exactly ``exc`` for ``raw`` and allocates far less than the header could ask for."""
    path = tmp_path / "model.safetensors"
    path.write_bytes(raw)
    for read in readers:
        tracemalloc.start()
        try:
            with pytest.raises(nio.CheckpointError, match=match) as info:
                read(path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert type(info.value) is exc, f"{read.__name__}: {type(info.value).__name__}: {info.value}"
        assert peak < 256 * 1024 + 4 * len(raw), f"{read.__name__} allocated {peak} bytes for a {len(raw)}-byte file"
    return info.value


def _valid(tmp_path):
    model = nl.nn.Sequential(nl.nn.Linear(3, 4), nl.nn.Linear(4, 2))
    path = nl.save_checkpoint(tmp_path / "good.safetensors", model=model, step=1)
    return model, path, open(path, "rb").read()


# ------------------------------------------------------------------- header --
@pytest.mark.parametrize("header, match", [
    (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}', "not valid JSON"),
    (b'{"w": 1}', "expected an object with keys dtype, shape, data_offsets"),
    (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "pickle": true}}', "expected an object"),
    (b'{"__metadata__": {"a": 1}}', "must map strings to strings"),
    (b'{"\xff\xfe": 1}', "not UTF-8"),
])
def test_bad_header(tmp_path, header, match):
    _expect(tmp_path, _file(header, b"\0" * 4), nio.HeaderError, match)


def test_oversized_header_length_is_refused_without_allocating(tmp_path):
    e = _expect(tmp_path, _file({"w": _f32([1], 0)}, b"\0" * 4, length=2**62), nio.HeaderError, "exceeds the limit")
    assert "100000000" in str(e)
    _expect(tmp_path, _file(b'{"a":1}', length=fmt.MAX_HEADER_BYTES + 1), nio.HeaderError, "exceeds the limit")


def test_header_longer_than_the_file_is_truncation(tmp_path):
    _expect(tmp_path, _file({"w": _f32([1], 0)}, b"", length=500), nio.TruncatedError, "announces 500 bytes")


def test_every_truncation_of_a_real_checkpoint_is_detected(tmp_path):
    _, _, raw = _valid(tmp_path)
    n = struct.unpack("<Q", raw[:8])[0]
    for cut in sorted({0, 3, 7, 8, 9, 8 + n // 2, 8 + n - 1, 8 + n, 8 + n + 1, len(raw) - 4, len(raw) - 1}):
        _expect(tmp_path, raw[:cut], nio.TruncatedError, "truncated|only|8-byte", readers=(nio.read_checkpoint,))


def test_truncated_data_names_the_sizes(tmp_path):
    raw = _file({"a": _f32([2], 0), "b": _f32([3], 8)}, b"\0" * 15)
    _expect(tmp_path, raw, nio.TruncatedError, "describes 20 bytes of tensor data but only 15")


# ------------------------------------------------------------------ offsets --
@pytest.mark.parametrize("offsets", [[8, 24], [16, 32]])
def test_offsets_out_of_range(tmp_path, offsets):
    raw = _file({"w": {"dtype": "F32", "shape": [4], "data_offsets": offsets}}, b"\0" * 16)
    _expect(tmp_path, raw, nio.OffsetError, "out of range")


@pytest.mark.parametrize("offsets", [[4, 0], [-4, 0], [0], [0, 4.0], "0-4", [True, 4]])
def test_malformed_offsets(tmp_path, offsets):
    raw = _file({"w": {"dtype": "F32", "shape": [1], "data_offsets": offsets}}, b"\0" * 4)
    _expect(tmp_path, raw, nio.OffsetError, "data_offsets must be")


def test_gap_and_trailing_bytes(tmp_path):
    raw = _file({"a": _f32([1], 0), "b": _f32([1], 8)}, b"\0" * 12)
    _expect(tmp_path, raw, nio.OffsetError, "bytes 4..8 of the data section belong to no tensor")
    raw = _file({"a": _f32([1], 0)}, b"\0" * 9)
    _expect(tmp_path, raw, nio.OffsetError, "5 bytes after the last tensor")


def test_overlapping_offsets(tmp_path):
    raw = _file({"a": _f32([4], 0), "b": _f32([4], 8)}, b"\0" * 24)
    _expect(tmp_path, raw, nio.OverlapError, "'a' and 'b' overlap")
    same = _file({"a": _f32([4], 0), "b": _f32([4], 0)}, b"\0" * 16)
    _expect(tmp_path, same, nio.OverlapError, "overlap")


# -------------------------------------------------------------- dtype, shape --
@pytest.mark.parametrize("dtype, match", [("F33", "unknown dtype"), ("F8_E4M3", "NumPy has no such dtype"),
                                          ("f32", "unknown dtype"), (7, "unknown dtype")])
def test_unknown_dtype(tmp_path, dtype, match):
    raw = _file({"w": {"dtype": dtype, "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4)
    _expect(tmp_path, raw, nio.DTypeError, match)


def test_shape_not_covered_by_the_data(tmp_path):
    raw = _file({"w": {"dtype": "F32", "shape": [5], "data_offsets": [0, 16]}}, b"\0" * 16)
    _expect(tmp_path, raw, nio.ShapeError, r"shape \(5,\) of F32 needs 20 bytes but its offsets \[0, 16\] cover 16")


def test_huge_shape_is_rejected_without_allocating(tmp_path):
    raw = _file({"w": {"dtype": "F64", "shape": [2**40, 2**40], "data_offsets": [0, 16]}}, b"\0" * 16)
    _expect(tmp_path, raw, nio.ShapeError, "needs 9671406556917033397649408 bytes")
    # Consistent offsets for the same claim: the data is simply not there.
    honest = _file({"w": {"dtype": "F64", "shape": [2**20, 2**20], "data_offsets": [0, 2**43]}}, b"\0" * 16)
    _expect(tmp_path, honest, nio.TruncatedError, "describes 8796093022208 bytes")


@pytest.mark.parametrize("shape", [[-1], [2.0], "2", [True]])
def test_malformed_shape(tmp_path, shape):
    raw = _file({"w": {"dtype": "F32", "shape": shape, "data_offsets": [0, 8]}}, b"\0" * 8)
    _expect(tmp_path, raw, nio.ShapeError, "shape must be a list of non-negative integers")


# ------------------------------------------------------------ duplicate keys --
@pytest.mark.parametrize("header", [
    b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
    b'"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}',
    b'{"__metadata__": {"a": "1", "a": "2"}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}',
    b'{"w": {"dtype": "F32", "dtype": "F64", "shape": [1], "data_offsets": [0, 4]}}',
])
def test_duplicate_keys(tmp_path, header):
    _expect(tmp_path, _file(header, b"\0" * 4), nio.DuplicateKeyError, "appears more than once")


def test_duplicate_keys_inside_a_metadata_section(tmp_path):
    meta = {"nnlite.format": "checkpoint", "nnlite.format_version": "2", "nnlite.version": "0.1.0",
            "nnlite.progress": '{"step": 1, "step": 2}'}
    raw = fmt.serialize({"model.w": np.zeros(2, np.float32)}, meta)  # a valid checksum over the bad JSON
    _expect(tmp_path, raw, nio.DuplicateKeyError, "nnlite.progress.*'step' appears more than once")


# ------------------------------------------------------------ model mismatch --
def test_shape_mismatch_with_the_model(tmp_path):
    _, path, _ = _valid(tmp_path)
    other = nl.nn.Sequential(nl.nn.Linear(3, 4), nl.nn.Linear(4, 3))
    with pytest.raises(nio.ShapeMismatchError, match=r"1\.weight: checkpoint \(2, 4\), model \(3, 4\)"):
        nl.load_checkpoint(path, model=other)


def test_missing_keys(tmp_path):
    _, path, _ = _valid(tmp_path)
    other = nl.nn.Sequential(nl.nn.Linear(3, 4), nl.nn.Linear(4, 2), nl.nn.LayerNorm(2))
    with pytest.raises(nio.MissingKeysError, match=r"missing keys 2\.weight, 2\.bias"):
        nl.load_checkpoint(path, model=other)


# ------------------------------------------------------------------ checksum --
def test_checksum_mismatch_on_flipped_data_byte(tmp_path):
    model, path, raw = _valid(tmp_path)
    damaged = bytearray(raw)
    damaged[-3] ^= 0x01
    e = _expect(tmp_path, bytes(damaged), nio.ChecksumError, "SHA-256 mismatch")
    assert "modified or damaged" in str(e)


def test_checksum_covers_metadata(tmp_path):
    _, _, raw = _valid(tmp_path)
    assert b'\\"step\\":1' in raw  # the progress section, JSON inside the JSON header
    _expect(tmp_path, raw.replace(b'\\"step\\":1', b'\\"step\\":7'), nio.ChecksumError, "SHA-256 mismatch")


def test_checkpoint_without_checksum_is_refused(tmp_path):
    _, _, raw = _valid(tmp_path)
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    del header["__metadata__"][fmt.CHECKSUM_KEY]
    _expect(tmp_path, _file(header, raw[8 + n:]), nio.ChecksumError, "carries no nnlite.sha256")


# ------------------------------------------------------------------- version --
def test_newer_format_version_asks_to_upgrade(tmp_path):
    meta = {"nnlite.format": "checkpoint", "nnlite.format_version": str(nio.FORMAT_VERSION + 1),
            "nnlite.version": "9.0.0", "nnlite.newsection": "{}"}
    raw = fmt.serialize({"model.w": np.zeros(2, np.float32)}, meta)
    e = _expect(tmp_path, raw, nio.VersionError, "Upgrade nnlite")
    assert "format 3, written by nnlite 9.0.0" in str(e) and f"up to {nio.FORMAT_VERSION}" in str(e)


@pytest.mark.parametrize("version, exc", [("0", nio.VersionError), ("two", nio.HeaderError)])
def test_impossible_format_versions(tmp_path, version, exc):
    meta = {"nnlite.format": "checkpoint", "nnlite.format_version": version}
    _expect(tmp_path, fmt.serialize({"w": np.zeros(1)}, meta), exc, "format")


# ------------------------------------------------------------ foreign files --
class Payload:
    """Unpickling this creates ``marker``: the proof that a loader ran code from the file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickle_renamed_to_checkpoint_is_refused_and_never_run(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"model.weight": Payload(marker)}, protocol=protocol)
    canary = tmp_path / "canary"  # the payload is live: unpickling really creates the file
    pickle.loads(pickle.dumps(Payload(canary), protocol=protocol)).close()
    assert canary.exists()
    path = tmp_path / "checkpoint.safetensors"
    path.write_bytes(payload)
    for read in (nl.load_checkpoint, nl.load_state_dict, nio.read_checkpoint):
        with pytest.raises(nio.NotACheckpointError, match="pickle.*never unpickles"):
            read(path)
    model = nl.nn.Linear(2, 2)
    with pytest.raises(nio.NotACheckpointError):
        nl.load_checkpoint(path, model=model)
    assert not marker.exists()


def test_torch_style_zip_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "checkpoint.safetensors"
    with zipfile.ZipFile(path, "w") as z:  # the layout torch.save writes: a pickle inside a zip
        z.writestr("archive/data.pkl", pickle.dumps(Payload(marker)))
        z.writestr("archive/version", "3\n")
    with pytest.raises(nio.NotACheckpointError, match="zip archive"):
        nl.load_checkpoint(path)
    assert not marker.exists()


def test_real_torch_save_file_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "checkpoint.safetensors"
    torch.save({"weight": torch.ones(2)}, path)
    with pytest.raises(nio.NotACheckpointError, match="torch.save"):
        nl.load_state_dict(path)


@pytest.mark.parametrize("raw, exc, match", [
    (b"", nio.TruncatedError, "has 0 bytes"),
    (b"\x05\0\0", nio.TruncatedError, "has 3 bytes"),
    (b"hello, this is a text file\n", nio.HeaderError, "exceeds the limit"),
    (b"\x93NUMPY\x01\x00v\x00{'descr': '<f4'}", nio.NotACheckpointError, "NumPy .npy file"),
    (struct.pack("<Q", 4) + b"[12]", nio.NotACheckpointError, "does not start with")])
def test_other_files(tmp_path, raw, exc, match):
    _expect(tmp_path, raw, exc, match)


def test_random_byte_damage_is_detected_or_harmless(tmp_path):
    """Flip random bytes anywhere: the load fails with a CheckpointError, or yields exactly the saved state."""
    import random
    model = nl.nn.Sequential(nl.nn.Linear(3, 4), nl.nn.LayerNorm(4))
    opt = nl.optim.Adam(model.parameters())
    model(nl.randn(2, 3)).sum().backward()
    opt.step()
    path = nl.save_checkpoint(tmp_path / "good.safetensors", model=model, optimizer=opt, step=3, extra={"a": 1})
    raw = open(path, "rb").read()
    expected = {k: v.data.tobytes() for k, v in model.state_dict().items()}
    rng = random.Random(1)
    damaged_path = tmp_path / "damaged.safetensors"
    outcomes = {"detected": 0, "harmless": 0}
    for _ in range(300):
        damaged = bytearray(raw)
        for _ in range(rng.choice([1, 1, 2, 3])):
            damaged[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        damaged_path.write_bytes(bytes(damaged))
        fresh = nl.nn.Sequential(nl.nn.Linear(3, 4), nl.nn.LayerNorm(4))
        try:
            info = nl.load_checkpoint(damaged_path, model=fresh)
        except nio.CheckpointError:
            outcomes["detected"] += 1
            continue
        assert {k: v.data.tobytes() for k, v in fresh.state_dict().items()} == expected
        assert (info.step, info.extra) == (3, {"a": 1})
        outcomes["harmless"] += 1
    assert outcomes["detected"] > 250, outcomes
