"""Readers for user files (IDX, .npz, CSV) and the bundled datasets."""
import gzip
import os
import struct
import sys

import numpy as np
import pytest

import nnlite as nl
from nnlite.data import (MNIST, CharDataset, CharVocab, DataLoader, Digits, available_texts,
                         load_csv, load_npz, load_text, read_idx)


def write_idx(path, array, code=0x08, gz=False):
    dt = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4", 0x0E: ">f8"}[code]
    raw = bytes([0, 0, code, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    raw += np.asarray(array, dtype=dt).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(raw)
    return path


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("code", [0x08, 0x0B, 0x0D, 0x0E])
def test_read_idx_round_trip(tmp_path, gz, code):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 120, size=(4, 3, 5))
    path = write_idx(tmp_path / "a.idx", arr, code, gz)
    got = read_idx(path)
    assert got.shape == (4, 3, 5)
    assert np.array_equal(got, arr)
    assert got.dtype.isnative


def test_read_idx_errors(tmp_path):
    good = write_idx(tmp_path / "good", np.zeros((2, 3), np.uint8))
    raw = good.read_bytes()
    cases = {
        "magic": (b"\x01\x00" + raw[2:], "magic number"),
        "type": (raw[:2] + b"\x07" + raw[3:], "unknown IDX element type 0x07"),
        "short": (raw[:6], "truncated IDX header"),
        "tiny": (b"\x00\x00", "header needs 4"),
        "size": (raw[:-1], r"promises shape \(2, 3\).*holds 5"),
        "extra": (raw + b"\x00", "holds 7"),
        "zero": (raw[:3] + b"\x00", "0 dimensions"),
    }
    for name, (content, message) in cases.items():
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(ValueError, match=message):
            read_idx(p)
    bad_gz = tmp_path / "bad.gz"
    bad_gz.write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(ValueError, match="does not decompress"):
        read_idx(bad_gz)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_idx(tmp_path / "missing")


def test_mnist_reader_from_user_files(tmp_path):
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, gz=True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([7, 2, 1]))
    ds = MNIST(tmp_path, train=False)
    x, y = ds[0]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and float(x.data.max()) <= 1.0
    assert [int(ds[i][1].item()) for i in range(3)] == [7, 2, 1]
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        MNIST(tmp_path, train=True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([7, 2]))
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        MNIST(tmp_path, train=False)


def test_load_npz(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=np.ones((2, 2)), y=np.arange(2))
    d = load_npz(p)
    assert set(d) == {"x", "y"} and d["y"].tolist() == [0, 1]
    assert list(load_npz(p, keys=["y"])) == ["y"]
    with pytest.raises(KeyError, match="no array named 'z'"):
        load_npz(p, keys=["z"])
    q = tmp_path / "not.npz"
    q.write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_npz(q)
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(ValueError, match="single .npy"):
        load_npz(tmp_path / "single.npy")
    obj = tmp_path / "obj.npz"
    np.savez(obj, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError):
        load_npz(obj)


def test_load_csv(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,label\n1,2,0\n3.5,4,1\n")
    x, y = load_csv(p, label_column=-1)
    assert x.tolist() == [[1.0, 2.0], [3.5, 4.0]] and x.dtype == np.float32
    assert y.tolist() == [0, 1] and y.dtype == np.int64
    assert load_csv(p).shape == (2, 3)
    p.write_text("1,2\n3\n")
    with pytest.raises(ValueError, match="line 2: 1 columns"):
        load_csv(p)
    p.write_text("1,2\n3,x\n")
    with pytest.raises(ValueError, match="line 2: non-numeric"):
        load_csv(p)
    p.write_text("1,2.5\n3,4\n")
    with pytest.raises(ValueError, match="non-integer"):
        load_csv(p, label_column=1)


def test_digits_dataset():
    pytest.importorskip("sklearn")
    train, test = Digits(train=True), Digits(train=False)
    assert len(train) + len(test) == 1797 and len(test) == 359
    x, y = train[0]
    assert x.shape == (64,) and 0 <= float(x.data.min()) and float(x.data.max()) <= 1
    assert Digits(flatten=False)[0][0].shape == (1, 8, 8)
    overlap = set(map(bytes, train.arrays[0].view(np.uint8).reshape(len(train), -1))) & \
        set(map(bytes, test.arrays[0].view(np.uint8).reshape(len(test), -1)))
    assert len(overlap) < 5  # disjoint split (a few digits are exact duplicates in the data)


def test_bundled_text_and_char_dataset():
    assert "hamlet" in available_texts()
    text = load_text("hamlet")
    assert 100_000 < len(text) < 300_000 and "To be, or not to be" in text
    with pytest.raises(ValueError, match="available"):
        load_text("nope")
    vocab = CharVocab(text)
    ids = vocab.encode("To be")
    assert vocab.decode(ids) == "To be"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("\u00e9")
    ds = CharDataset(vocab.encode(text[:1000]), block_size=8)
    assert len(ds) == 992
    x, y = ds[3]
    assert x.tolist()[1:] == y.tolist()[:-1]
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert xb.shape == (4, 8) and np.array_equal(xb.data[1], ds[1][0].data)
    with pytest.raises(ValueError, match="block_size"):
        CharDataset(np.arange(5), block_size=5)


def test_missing_optional_package_names_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(ImportError, match=r'pip install "nnlite\[data\]"'):
        nl.data.MNIST1D(args={"num_samples": 100})


def test_mnist1d_generation_is_cached_atomically(tmp_path, monkeypatch):
    pytest.importorskip("mnist1d")
    monkeypatch.setenv("NNLITE_CACHE", str(tmp_path))
    state = np.random.get_state()[1].copy()
    ds = nl.data.MNIST1D(train=True, args={"num_samples": 200})
    test = nl.data.MNIST1D(train=False, args={"num_samples": 200})
    assert np.array_equal(np.random.get_state()[1], state)  # global NumPy generator untouched
    assert len(ds) == 160 and len(test) == 40 and ds[0][0].shape == (40,)
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].startswith("mnist1d-") and files[0].endswith(".npz")
    again = nl.data.MNIST1D(train=True, args={"num_samples": 200})
    assert np.array_equal(again.arrays[0], ds.arrays[0])
    with pytest.raises(ValueError, match="unknown dataset arguments"):
        nl.data.MNIST1D(args={"bogus": 1})


@pytest.mark.parametrize("label", ["inf", "-inf"])
def test_load_csv_refuses_infinite_labels(tmp_path, label):
    p = tmp_path / "inf.csv"
    p.write_text(f"1.0,0\n2.0,{label}\n")
    with pytest.raises(ValueError, match="label column 1 holds non-integer values"):
        load_csv(p, label_column=1)


@pytest.mark.parametrize("column", [1.0, True, "1"])
def test_load_csv_label_column_must_be_an_int(tmp_path, column):
    p = tmp_path / "a.csv"
    p.write_text("1.0,0\n2.0,1\n")
    with pytest.raises(TypeError, match=f"label_column must be an int, got {column!r}"):
        load_csv(p, label_column=column)
    assert load_csv(p, label_column=np.int64(1))[1].tolist() == [0, 1]
