"""Dataset, TensorDataset, Subset, random_split and default_collate."""
import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip
from nnlite.data import (ConcatDataset, Dataset, Subset, TensorDataset, default_collate,
                         random_split)


def make_ds(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return TensorDataset(x, nl.tensor(y))


def test_tensor_dataset_items_and_len():
    ds = make_ds()
    assert len(ds) == 10
    x, y = ds[4]
    assert isinstance(x, nl.Tensor) and x.tolist() == [12.0, 13.0, 14.0]
    assert y.item() == 4
    assert len(ds.tensors) == 2


def test_tensor_dataset_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same first dimension"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(TypeError, match="Tensor or a numpy.ndarray"):
        TensorDataset([1, 2, 3])
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()


def test_subset_and_concat():
    ds = make_ds()
    sub = Subset(ds, [7, 2, 5])
    assert len(sub) == 3
    assert [sub[i][1].item() for i in range(3)] == [7, 2, 5]
    with pytest.raises(IndexError, match="indices must lie"):
        Subset(ds, [10])
    both = ConcatDataset([ds, sub])
    assert len(both) == 13 and both[11][1].item() == 2
    assert len(ds + sub) == 13


def test_random_split_is_a_seeded_partition():
    ds = make_ds(20)
    a, b = random_split(ds, [15, 5], generator=nl.Generator(3))
    seen = sorted(int(i) for i in np.concatenate([a.indices, b.indices]))
    assert seen == list(range(20))
    a2, _ = random_split(ds, [15, 5], generator=nl.Generator(3))
    assert np.array_equal(a.indices, a2.indices)
    a3, _ = random_split(ds, [15, 5], generator=nl.Generator(4))
    assert not np.array_equal(a.indices, a3.indices)
    parts = random_split(ds, [0.5, 0.3, 0.2], generator=nl.Generator(0))
    assert [len(p) for p in parts] == [10, 6, 4]
    with pytest.raises(ValueError, match="sum to 19"):
        random_split(ds, [15, 4])


def test_random_split_uses_the_global_generator():
    ds = make_ds(30)
    nl.manual_seed(11)
    a, _ = random_split(ds, [10, 20])
    nl.manual_seed(11)
    b, _ = random_split(ds, [10, 20])
    assert np.array_equal(a.indices, b.indices)


def test_default_collate_structures():
    batch = [(np.ones(2, np.float32) * i, i) for i in range(3)]
    x, y = default_collate(batch)
    assert x.shape == (3, 2) and x.dtype == np.float32
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2]
    d = default_collate([{"a": 1.5, "b": "s"}, {"a": 2.5, "b": "t"}])
    assert d["a"].dtype == np.float32 and d["b"] == ["s", "t"]
    t = default_collate([nl.tensor([1.0, 2.0]), nl.tensor([3.0, 4.0])])
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    z = default_collate([np.float64(1.0), np.float64(2.0)])
    assert z.dtype == np.float64
    lists = default_collate([[1, 2.0], [3, 4.0]])
    assert isinstance(lists, list) and lists[0].dtype == np.int64


def test_default_collate_errors():
    with pytest.raises(ValueError, match="one shape"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(ValueError, match="non-empty"):
        default_collate([])
    with pytest.raises(TypeError, match="got object"):
        default_collate([object(), object()])
    with pytest.raises(ValueError, match="same number of fields"):
        default_collate([(1, 2), (1,)])


def test_dataset_base_class_requires_methods():
    class Squares(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return i * i

    assert [Squares()[i] for i in range(4)] == [0, 1, 4, 9]
    with pytest.raises(NotImplementedError):
        len(Dataset())


def test_random_split_takes_numpy_fractions_like_torch():
    torch = pytest.importorskip("torch")
    for fractions in (np.array([0.3, 0.7], np.float32), [np.float64(0.25), np.float64(0.75)],
                      np.array([0.5, 0.25, 0.25], np.float32)):
        ours = [len(s) for s in random_split(range(11), fractions, generator=nl.Generator(0))]
        theirs = [len(s) for s in torch.utils.data.random_split(range(11), fractions)]
        assert ours == theirs, fractions


def test_random_split_numpy_fractions_partition_the_dataset():
    parts = random_split(make_ds(), np.array([0.5, 0.3, 0.2], np.float32), generator=nl.Generator(1))
    assert [len(p) for p in parts] == [5, 3, 2]
    assert sorted(np.concatenate([p.indices for p in parts]).tolist()) == list(range(10))


@pytest.mark.parametrize("indices", [[1.5, 2.0], np.array([0.9]), [True, False]])
def test_subset_refuses_indices_that_are_not_ints(indices):
    with pytest.raises(TypeError, match="Subset: indices must be ints"):
        Subset(make_ds(), indices)


def test_subset_and_concat_index_like_a_list():
    sub = Subset(make_ds(), [3, 5, 7])
    assert sub[-1][1].item() == 7 and len(Subset(make_ds(), [])) == 0
    with pytest.raises(IndexError):
        sub[3]
    cat = ConcatDataset([Subset(make_ds(), []), make_ds(2), Subset(make_ds(), [9])])
    assert [cat[i][1].item() for i in range(-3, 3)] == [0, 1, 9, 0, 1, 9]
    for index in (3, -4):
        with pytest.raises(IndexError, match=f"index {index} out of range for length 3"):
            cat[index]


def test_subset_passes_a_list_of_positions_to_the_dataset_as_one_request():
    # As in PyTorch: a TensorDataset fetches the batch at once; a list of examples came back.
    ds = nl.data.TensorDataset(np.arange(10.0), np.arange(10))
    x, y = nl.data.Subset(ds, [9, 8, 7])[[0, 2]]
    assert x.tolist() == [9.0, 7.0] and y.tolist() == [9, 7]
    batches = nl.data.DataLoader(nl.data.Subset(ds, [9, 8, 7]), batch_size=None,
                                 sampler=nl.data.BatchSampler(range(3), 2, drop_last=False))
    assert [b[0].tolist() for b in batches] == [[9.0, 8.0], [7.0]]


def test_subset_of_a_list_of_positions_matches_torch():
    torch = torch_or_skip()
    from torch.utils.data import Subset as TorchSubset, TensorDataset as TorchTensorDataset
    expected = TorchSubset(TorchTensorDataset(torch.arange(10.0)), [9, 8, 7])[[0, 2]]
    got = nl.data.Subset(nl.data.TensorDataset(np.arange(10.0)), [9, 8, 7])[[0, 2]]
    assert [t.tolist() for t in got] == [t.tolist() for t in expected]
