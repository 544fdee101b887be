"""IterableDataset and ChainDataset: a DataLoader over a stream batches it in order, refuses the
options that need indices, has a length only when the stream does, and cannot save a position."""
import numpy as np
import pytest
from helpers import torch_or_skip

import nnlite as nl
from nnlite.data import ChainDataset, DataLoader, Dataset, IterableDataset


class Count(IterableDataset):
    """0, 1, ..., n - 1 as (feature row, label) pairs."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return ((np.full(2, k, np.float32), k) for k in range(self.n))


class CountWithLength(Count):
    def __len__(self):
        return self.n


def labels(loader):
    return [y.tolist() for _, y in loader]


@pytest.mark.parametrize("batch_size, drop_last, expected", [
    (3, False, [[0, 1, 2], [3, 4, 5], [6]]),
    (3, True, [[0, 1, 2], [3, 4, 5]]),
    (7, True, [[0, 1, 2, 3, 4, 5, 6]]),
    (10, True, []),
    (1, False, [[k] for k in range(7)]),
])
def test_batches_follow_the_stream(batch_size, drop_last, expected):
    loader = DataLoader(Count(7), batch_size=batch_size, drop_last=drop_last)
    assert labels(loader) == expected
    assert labels(loader) == expected   # a second epoch streams again from the start


def test_batches_are_collated_like_map_style_batches():
    x, y = next(iter(DataLoader(Count(5), batch_size=2)))
    assert isinstance(x, nl.Tensor) and x.shape == (2, 2) and x.tolist() == [[0, 0], [1, 1]]
    assert y.tolist() == [0, 1]
    merged = [b for b in DataLoader(Count(4), batch_size=3, collate_fn=lambda ex: sum(k for _, k in ex))]
    assert merged == [3, 3]


def test_batch_size_none_gives_examples_one_by_one():
    examples = list(DataLoader(Count(3), batch_size=None))
    assert [y for _, y in examples] == [0, 1, 2]
    assert isinstance(examples[0][0], nl.Tensor) and examples[0][0].shape == (2,)


def test_length_only_when_the_stream_has_one():
    with pytest.raises(TypeError, match="object of type 'Count' has no len()"):
        len(DataLoader(Count(7), batch_size=2))
    assert len(DataLoader(CountWithLength(7), batch_size=2)) == 4
    assert len(DataLoader(CountWithLength(7), batch_size=2, drop_last=True)) == 3
    assert len(DataLoader(CountWithLength(7), batch_size=None)) == 7


@pytest.mark.parametrize("option, value", [("shuffle", True), ("sampler", [0, 1]), ("batch_sampler", [[0, 1]])])
def test_options_that_need_indices_are_refused(option, value):
    with pytest.raises(ValueError, match=f"DataLoader with IterableDataset: expected unspecified {option} option"):
        DataLoader(Count(4), **{option: value})
    assert labels(DataLoader(Count(4), shuffle=False, batch_size=4)) == [[0, 1, 2, 3]]


def test_a_position_in_a_stream_cannot_be_saved():
    loader = DataLoader(Count(4), batch_size=2)
    with pytest.raises(TypeError, match="cannot return to a position"):
        loader.state_dict()
    with pytest.raises(TypeError, match="cannot return to a position"):
        loader.load_state_dict(DataLoader(nl.data.TensorDataset(np.zeros(4)), batch_size=2).state_dict())


def test_base_class_is_abstract_and_a_dataset():
    with pytest.raises(TypeError, match="abstract"):
        IterableDataset()
    assert isinstance(Count(1), Dataset)
    with pytest.raises(TypeError, match="has no len"):
        len(Count(1))
    assert "stream" in repr(DataLoader(Count(1)))


def test_chain_dataset_streams_each_part_in_turn():
    chain = Count(2) + CountWithLength(3)
    assert isinstance(chain, ChainDataset)
    assert [k for _, k in chain] == [0, 1, 0, 1, 2]
    assert labels(DataLoader(chain, batch_size=2)) == [[0, 1], [0, 1], [2]]
    assert len(ChainDataset([CountWithLength(2), CountWithLength(3)])) == 5
    with pytest.raises(TypeError, match="has no len"):
        len(chain)
    with pytest.raises(TypeError, match="ChainDataset only supports IterableDataset, got list"):
        ChainDataset([Count(2), [1, 2]])


# ---------------------------------------------------------- against PyTorch ---
@pytest.mark.parametrize("batch_size, drop_last", [(3, False), (3, True), (None, False), (8, False), (8, True)])
def test_batching_and_length_match_torch(batch_size, drop_last):
    torch = torch_or_skip()

    class TorchCount(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(range(7))

        def __len__(self):
            return 7

    class Plain(IterableDataset):
        def __iter__(self):
            return iter(range(7))

        def __len__(self):
            return 7
    theirs = torch.utils.data.DataLoader(TorchCount(), batch_size=batch_size, drop_last=drop_last)
    ours = DataLoader(Plain(), batch_size=batch_size, drop_last=drop_last)
    assert [np.asarray(b).tolist() for b in ours] == [np.asarray(b).tolist() for b in theirs]
    assert len(ours) == len(theirs)


@pytest.mark.parametrize("option, value", [("shuffle", True), ("sampler", [0, 1]), ("batch_sampler", [[0, 1]])])
def test_refused_options_match_torch(option, value):
    torch = torch_or_skip()

    class TorchCount(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(range(4))
    with pytest.raises(ValueError) as theirs:
        torch.utils.data.DataLoader(TorchCount(), **{option: value})
    with pytest.raises(ValueError) as ours:
        DataLoader(Count(4), **{option: value})
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(TypeError) as theirs:
        len(torch.utils.data.DataLoader(TorchCount(), batch_size=2))
    with pytest.raises(TypeError) as ours:
        len(DataLoader(Count(4), batch_size=2))
    assert str(ours.value) == str(theirs.value).replace("TorchCount", "Count")


def test_get_worker_info_is_none_in_the_loading_process_as_in_torch():
    # A stream written for PyTorch asks which worker it runs in, and reads everything when None.
    torch_or_skip()
    from torch.utils.data import get_worker_info as torch_worker_info

    class Sharded(nl.data.IterableDataset):
        def __iter__(self):
            info = nl.data.get_worker_info()
            start, step = (0, 1) if info is None else (info.id, info.num_workers)
            return iter(range(start, 6, step))

    assert nl.data.get_worker_info() is None and torch_worker_info() is None
    assert [b.tolist() for b in nl.data.DataLoader(Sharded(), batch_size=4)] == [[0, 1, 2, 3], [4, 5]]
