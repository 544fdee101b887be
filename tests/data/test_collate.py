"""default_collate and default_convert against torch.utils.data's rules."""
import collections

import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip
from nnlite.data import default_collate
from nnlite.data.collate import default_convert


def test_ints_mixed_with_floats_make_a_float_batch():
    # An int first must not decide the dtype: 2.5 would be cut to 2.
    batch = default_collate([1, 2.5, 3])
    assert batch.dtype == np.float32 and batch.tolist() == [1.0, 2.5, 3.0]
    assert default_collate([1, 2]).dtype == np.int64


def test_ints_mixed_with_floats_match_torch():
    torch = torch_or_skip()
    from torch.utils.data import default_collate as torch_collate
    expected = torch_collate([1, 2.5, 3])
    got = default_collate([1, 2.5, 3])
    assert str(got.dtype) == str(expected.dtype).replace("torch.", "")
    assert got.tolist() == expected.tolist()
    assert torch.is_floating_point(expected)


@pytest.mark.parametrize("array", [np.array(["a", "b"]), np.array([None, 1], dtype=object)])
def test_string_and_object_arrays_are_refused(array):
    with pytest.raises(TypeError, match=f"numbers or bools to become Tensors, got dtype {array.dtype}"):
        default_collate([array, array])


def test_numpy_strings_stay_a_list_like_python_strings():
    assert default_collate([np.str_("a"), np.str_("b")]) == ["a", "b"]


def test_mapping_type_is_kept():
    batch = default_collate([collections.OrderedDict(b=1, a=2.0), collections.OrderedDict(b=3, a=4.0)])
    assert type(batch) is collections.OrderedDict and list(batch) == ["b", "a"]
    assert batch["b"].tolist() == [1, 3]
    # A mapping that cannot be rebuilt from a dict alone comes back as a dict.
    dd = collections.defaultdict(list, x=1)
    assert type(default_collate([dd, dd])) is dict


def test_dtypes_match_torch_except_python_floats():
    torch = torch_or_skip()
    from torch.utils.data import default_collate as torch_collate
    examples = {"ints": [1, 2], "bools": [True, False], "np float32": [np.float32(1), np.float32(2)],
                "np float16": [np.float16(1), np.float16(2)], "np int64": [np.int64(1), np.int64(2)],
                "np bool": [np.bool_(True), np.bool_(False)], "int32 arrays": [np.zeros(2, np.int32)] * 2,
                "float64 arrays": [np.zeros(2)] * 2, "0-d arrays": [np.array(1.0), np.array(2.0)]}
    for name, batch in examples.items():
        got, expected = default_collate(batch), torch_collate(batch)
        assert str(got.dtype) == str(expected.dtype).replace("torch.", ""), name
        assert got.shape == tuple(expected.shape), name
    # Python floats: float64 in PyTorch, nnlite's default float dtype (float32) here.
    assert torch_collate([1.0, 2.0]).dtype == torch.float64
    assert default_collate([1.0, 2.0]).dtype == nl.get_default_dtype()


def test_nested_structure_matches_torch():
    torch_or_skip()
    from torch.utils.data import default_collate as torch_collate
    batch = [{"a": (i, [float(i), np.full(2, i, np.float32)]), "s": str(i)} for i in range(3)]
    got, expected = default_collate(batch), torch_collate(batch)
    assert got["s"] == expected["s"] == ["0", "1", "2"]
    assert got["a"][0].tolist() == expected["a"][0].tolist()
    assert got["a"][1][0].tolist() == expected["a"][1][0].tolist()
    assert got["a"][1][1].tolist() == expected["a"][1][1].tolist()


def test_default_convert_makes_arrays_tensors_and_keeps_structure():
    example = {"x": np.arange(3.0), "n": np.int64(4), "label": 2, "name": "a", "pair": (np.ones(1), [np.zeros(1)])}
    out = default_convert(example)
    assert isinstance(out["x"], nl.Tensor) and out["x"].tolist() == [0.0, 1.0, 2.0]
    assert isinstance(out["n"], nl.Tensor) and out["n"].item() == 4
    assert out["label"] == 2 and type(out["label"]) is int and out["name"] == "a"
    assert isinstance(out["pair"], tuple) and isinstance(out["pair"][1], list)
    assert isinstance(out["pair"][1][0], nl.Tensor)
    strings = np.array(["a"])
    assert default_convert(strings) is strings


@pytest.mark.parametrize("batch, dtype, values", [
    ([np.int64(1), np.float64(2.5)], np.float64, [1.0, 2.5]),
    ([np.int32(1), 2.5], np.float64, [1.0, 2.5]),
    ([True, 2], np.int64, [1, 2]),
    ([np.bool_(True), 3], np.int64, [1, 3]),
])
def test_later_examples_are_not_cast_to_the_first_ones_dtype(batch, dtype, values):
    # A NumPy int or a bool first must not cut a later 2.5 to 2 or turn a later 2 into True.
    got = default_collate(batch)
    assert got.dtype == dtype and got.tolist() == values


def test_numpy_scalars_of_mixed_dtypes_match_torch():
    torch_or_skip()
    from torch.utils.data import default_collate as torch_collate
    for batch in ([np.int64(1), np.float64(2.5)], [True, 2], [np.float32(1.5), np.float32(2)]):
        expected = torch_collate(batch)
        got = default_collate(batch)
        assert str(got.dtype) == str(expected.dtype).replace("torch.", "")
        assert got.tolist() == expected.tolist()


def test_default_convert_takes_its_argument_by_pytorchs_name():
    torch_or_skip()
    from torch.utils.data import default_convert as torch_convert
    example = {"x": np.arange(3.0), "label": 2}
    got, expected = default_convert(data=example), torch_convert(data=example)
    assert got["x"].tolist() == expected["x"].tolist() and got["label"] == expected["label"] == 2
