"""The bundled datasets' constructors: bad arguments are refused by name."""
import numpy as np
import pytest

from helpers import sklearn_or_skip
from nnlite.data import MNIST1D, CharDataset, CharVocab, Digits


@pytest.mark.parametrize("name, value", [("block_size", 1.5), ("block_size", "3"), ("block_size", None),
                                         ("block_size", True), ("stride", 1.5), ("stride", 0)])
def test_char_dataset_sizes_must_be_positive_ints(name, value):
    arguments = {"block_size": 3, "stride": 1, name: value}
    with pytest.raises(ValueError, match=f"CharDataset: {name} must be a positive int, got {value!r}"):
        CharDataset(np.arange(20) % 5, **arguments)


@pytest.mark.parametrize("ids", [[0.5, 1.7, 2.2, 3.1], "hello world"])
def test_char_dataset_ids_must_be_integers(ids):
    with pytest.raises(TypeError, match="CharDataset: ids must be integer character ids"):
        CharDataset(ids, 2)


def test_char_dataset_windows_with_numpy_int_sizes():
    ds = CharDataset(np.arange(10, dtype=np.int32), np.int64(3), stride=np.int64(2))
    assert len(ds) == 4 and ds[-1][1].tolist() == [7, 8, 9]


@pytest.mark.parametrize("ids", [[5], [-1], [0.0]])
def test_char_vocab_decode_refuses_unknown_ids(ids):
    with pytest.raises(ValueError, match=r"CharVocab.decode: ids must be ints in \[0, 3\)"):
        CharVocab("abc").decode(ids)


def test_char_vocab_round_trip():
    vocab = CharVocab("hello")
    assert vocab.decode(vocab.encode("hole")) == "hole" and vocab.decode([]) == ""


@pytest.mark.parametrize("arguments, message", [
    ({"test_size": "0.2"}, "test_size must be a fraction in \\(0, 1\\), got '0.2'"),
    ({"test_size": None}, "test_size must be a fraction in \\(0, 1\\), got None"),
    ({"split_seed": -1}, "split_seed must be a non-negative int, got -1"),
    ({"split_seed": 1.5}, "split_seed must be a non-negative int, got 1.5"),
])
def test_digits_refuses_bad_arguments_by_name(arguments, message):
    with pytest.raises(ValueError, match=f"Digits: {message}"):
        Digits(**arguments)


@pytest.mark.parametrize("test_size", [1e-5, 1 - 1e-5])
def test_digits_refuses_a_split_with_an_empty_side(test_size):
    sklearn_or_skip()
    with pytest.raises(ValueError, match="both sides need at least one"):
        Digits(train=False, test_size=test_size)


def test_mnist1d_args_must_be_a_dict():
    with pytest.raises(TypeError, match="MNIST1D: args must be a dict of dataset arguments or None, got list"):
        MNIST1D(args=[1])
