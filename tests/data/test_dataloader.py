"""DataLoader: batching, seeded shuffling, and a position that resumes exactly."""
import itertools
import json

import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip
from nnlite.data import DataLoader, Dataset, Subset, TensorDataset


def make_ds(n=23):
    return TensorDataset(np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n))


def labels(loader, epochs=1):
    out = []
    for _ in range(epochs):
        out.append([y.tolist() for _, y in loader])
    return out


def test_batches_in_order_and_last_partial_batch():
    loader = DataLoader(make_ds(), batch_size=5)
    assert len(loader) == 5
    (batches,) = labels(loader)
    assert batches[0] == [0, 1, 2, 3, 4] and batches[-1] == [20, 21, 22]
    assert len(DataLoader(make_ds(), batch_size=5, drop_last=True)) == 4
    assert labels(DataLoader(make_ds(), batch_size=5, drop_last=True))[0][-1] == [15, 16, 17, 18, 19]


def test_shuffle_visits_every_example_once_with_new_order_each_epoch():
    loader = DataLoader(make_ds(), batch_size=4, shuffle=True, generator=nl.Generator(0))
    e1, e2 = labels(loader, epochs=2)
    assert sorted(sum(e1, [])) == list(range(23)) == sorted(sum(e2, []))
    assert sum(e1, []) != sum(e2, []) != list(range(23))
    assert loader.epoch == 1


def test_same_seed_same_batches():
    a = labels(DataLoader(make_ds(), batch_size=4, shuffle=True, generator=nl.Generator(7)), 3)
    b = labels(DataLoader(make_ds(), batch_size=4, shuffle=True, generator=nl.Generator(7)), 3)
    c = labels(DataLoader(make_ds(), batch_size=4, shuffle=True, generator=nl.Generator(8)), 3)
    assert a == b and a != c


def test_global_generator_drives_shuffling():
    nl.manual_seed(5)
    a = labels(DataLoader(make_ds(), batch_size=4, shuffle=True), 2)
    nl.manual_seed(5)
    b = labels(DataLoader(make_ds(), batch_size=4, shuffle=True), 2)
    assert a == b


@pytest.mark.parametrize("stop_after", [0, 1, 3, 6])
def test_resume_mid_epoch_sees_the_same_batches(stop_after):
    reference = labels(DataLoader(make_ds(), batch_size=4, shuffle=True, generator=nl.Generator(1)), 3)
    flat = sum(reference, [])

    first = DataLoader(make_ds(), batch_size=4, shuffle=True, generator=nl.Generator(1))
    seen = []
    for _ in range(2):  # epoch 0 complete, epoch 1 interrupted
        for i, (_, y) in enumerate(first):
            seen.append(y.tolist())
            if first.epoch == 1 and i + 1 == stop_after:
                break
        if first.epoch == 1:
            break
    state = json.loads(json.dumps(first.state_dict()))  # it must survive a JSON round trip
    assert state["epoch"] == 1 and state["batch_index"] == (stop_after or 6)

    # A fresh loader with a generator in another state: the saved position alone decides.
    resumed = DataLoader(make_ds(), batch_size=4, shuffle=True, generator=nl.Generator(99))
    resumed.load_state_dict(state)
    resumed.generator = nl.Generator(1)  # irrelevant for epoch 1; epoch 2 differs from reference
    rest = [y.tolist() for _, y in resumed]
    assert seen + rest == flat[:len(seen) + len(rest)]
    assert len(seen) + len(rest) == 12


def test_resume_continues_with_generator_restored():
    gen = nl.Generator(2)
    reference = labels(DataLoader(make_ds(), batch_size=5, shuffle=True, generator=gen), 3)
    gen = nl.Generator(2)
    loader = DataLoader(make_ds(), batch_size=5, shuffle=True, generator=gen)
    it = iter(loader)
    got = [next(it)[1].tolist() for _ in range(2)]
    state, gen_state = loader.state_dict(), gen.get_state()
    gen2 = nl.Generator(0).set_state(gen_state)
    loader2 = DataLoader(make_ds(), batch_size=5, shuffle=True, generator=gen2)
    loader2.load_state_dict(state)
    got += [y.tolist() for _, y in loader2]
    got += [y.tolist() for _, y in loader2] + [y.tolist() for _, y in loader2]
    assert got == sum(reference, [])


def test_fresh_iter_after_break_starts_a_new_epoch():
    loader = DataLoader(make_ds(), batch_size=4)
    next(iter(loader))
    assert [y.tolist() for _, y in loader][0] == [0, 1, 2, 3]
    assert loader.epoch == 1


def test_state_from_another_loader_is_refused():
    state = DataLoader(make_ds(), batch_size=4).state_dict()
    with pytest.raises(ValueError, match="batch_size: saved 4, this loader 5"):
        DataLoader(make_ds(), batch_size=5).load_state_dict(state)
    with pytest.raises(ValueError, match="dataset_length"):
        DataLoader(make_ds(30), batch_size=4).load_state_dict(state)
    with pytest.raises(ValueError, match="not a DataLoader state"):
        DataLoader(make_ds(), batch_size=4).load_state_dict({"epoch": 0})


def test_bad_arguments():
    with pytest.raises(ValueError, match="positive int"):
        DataLoader(make_ds(), batch_size=0)
    with pytest.raises(TypeError, match="must have a length"):
        DataLoader(iter([1, 2]), batch_size=2)
    with pytest.raises(TypeError, match="callable"):
        DataLoader(make_ds(), collate_fn=3)


def test_generic_path_matches_fast_path_and_custom_collate():
    class Plain(Dataset):
        def __init__(self, base):
            self.base = base

        def __len__(self):
            return len(self.base)

        def __getitem__(self, i):
            return self.base[i]

    fast = DataLoader(make_ds(), batch_size=4, shuffle=True, generator=nl.Generator(3))
    slow = DataLoader(Plain(make_ds()), batch_size=4, shuffle=True, generator=nl.Generator(3))
    for (xf, yf), (xs, ys) in zip(fast, slow):
        assert np.array_equal(xf.data, xs.data) and np.array_equal(yf.data, ys.data)
    sub = DataLoader(Subset(make_ds(), [5, 1, 9]), batch_size=2)
    assert [y.tolist() for _, y in sub] == [[5, 1], [9]]
    sizes = DataLoader(make_ds(), batch_size=4, collate_fn=len)
    assert list(sizes) == [4, 4, 4, 4, 4, 3]


# ------------------------------------------------- PyTorch's options and rules --

def test_arguments_have_torchs_names_and_order():
    torch = pytest.importorskip("torch")
    import inspect
    ours = list(inspect.signature(DataLoader).parameters)
    assert ours == list(inspect.signature(torch.utils.data.DataLoader).parameters)
    # So the fourth positional argument is the sampler, as in PyTorch (not drop_last).
    assert labels(DataLoader(make_ds(5), 2, False, [4, 0, 3]))[0] == [[4, 0], [3]]


def test_two_iterations_at_once_each_see_a_whole_epoch():
    loader = DataLoader(make_ds(5), batch_size=2)
    assert [(a.tolist(), b.tolist()) for (_, a), (_, b) in zip(loader, loader)] == \
        [([0, 1], [0, 1]), ([2, 3], [2, 3]), ([4], [4])]
    nested = [[(a.tolist(), b.tolist()) for _, b in loader] for _, a in loader]
    assert [row[0][0] for row in nested] == [[0, 1], [2, 3], [4]]
    assert all([b for _, b in row] == [[0, 1], [2, 3], [4]] for row in nested)


def test_the_newest_iteration_owns_the_position():
    loader = DataLoader(make_ds(), batch_size=4, shuffle=True, generator=nl.Generator(4))
    old = iter(loader)
    next(old)
    new = iter(loader)
    next(new)
    next(old), next(old)   # the older iteration goes on without moving the saved position
    assert (loader.state_dict()["epoch"], loader.state_dict()["batch_index"]) == (1, 1)
    rest_old = [y.tolist() for _, y in old]
    assert len(rest_old) == 3


def test_batch_size_none_gives_examples_one_by_one():
    ds = TensorDataset(np.arange(6.0).reshape(3, 2), np.arange(3))
    loader = DataLoader(ds, batch_size=None)
    assert len(loader) == 3
    items = list(loader)
    assert [x.shape for x, _ in items] == [(2,), (2,), (2,)] and [y.item() for _, y in items] == [0, 1, 2]

    class Arrays(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return {"x": np.full(3, i, np.float32), "i": i}

    first = next(iter(DataLoader(Arrays(), batch_size=None)))
    assert isinstance(first["x"], nl.Tensor) and first["x"].shape == (3,) and first["i"] == 0
    assert list(DataLoader(Arrays(), batch_size=None, collate_fn=lambda e: e["i"])) == [0, 1]
    with pytest.raises(ValueError, match="drop_last"):
        DataLoader(ds, batch_size=None, drop_last=True)


def test_batch_size_none_matches_torch():
    torch = pytest.importorskip("torch")
    x, y = np.arange(8.0).reshape(4, 2), np.arange(4)
    ours = list(DataLoader(TensorDataset(x, y), batch_size=None))
    theirs = list(torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)),
                                              batch_size=None))
    assert len(ours) == len(theirs) == 4
    for (xo, yo), (xt, yt) in zip(ours, theirs):
        assert xo.tolist() == xt.tolist() and yo.tolist() == yt.tolist() and xo.shape == tuple(xt.shape)


def test_batch_sampler_chooses_the_batches():
    loader = DataLoader(make_ds(5), batch_sampler=[[0, 1], [4], [2, 3]])
    assert len(loader) == 3 and loader.batch_size is None
    assert labels(loader, 2) == [[[0, 1], [4], [2, 3]]] * 2


@pytest.mark.parametrize("options", [{"batch_size": 2}, {"shuffle": True}, {"sampler": [0, 1]},
                                     {"drop_last": True}])
def test_batch_sampler_excludes_the_other_batching_options(options):
    with pytest.raises(ValueError, match="batch_sampler excludes batch_size, shuffle, sampler and drop_last"):
        DataLoader(make_ds(5), batch_sampler=[[0, 1]], **options)


@pytest.mark.parametrize("drop_last", [1, "no", None])
def test_drop_last_must_be_a_bool(drop_last):
    with pytest.raises(ValueError, match=f"drop_last must be a bool, got {drop_last!r}"):
        DataLoader(make_ds(), drop_last=drop_last)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True, "2"])
def test_batch_size_must_be_a_positive_int_or_none(batch_size):
    with pytest.raises(ValueError, match=f"batch_size must be a positive int or None, got {batch_size!r}"):
        DataLoader(make_ds(), batch_size=batch_size)


def test_worker_options_mean_no_workers():
    calls = []
    loader = DataLoader(make_ds(5), batch_size=2, num_workers=0, pin_memory=True, timeout=5,
                        worker_init_fn=calls.append, prefetch_factor=None, persistent_workers=False,
                        pin_memory_device="", in_order=False)
    assert labels(loader) == [[[0, 1], [2, 3], [4]]] and calls == []   # no worker, so never called


@pytest.mark.parametrize("option, value, message", [
    ("num_workers", 2, "num_workers must be 0, got 2"),
    ("num_workers", -1, "num_workers must be a non-negative int, got -1"),
    ("timeout", -1, "timeout must be a non-negative number, got -1"),
    ("worker_init_fn", 3, "worker_init_fn must be callable or None, got int"),
    ("prefetch_factor", 2, "prefetch_factor needs worker processes"),
    ("persistent_workers", True, "persistent_workers=True needs worker processes"),
    ("multiprocessing_context", "spawn", "multiprocessing_context needs worker processes"),
])
def test_worker_options_that_need_workers_are_refused_by_name(option, value, message):
    error = TypeError if option == "worker_init_fn" else ValueError
    with pytest.raises(error, match=message):
        DataLoader(make_ds(), **{option: value})


@pytest.mark.parametrize("kind", ["batch_sampler", "batch_size_none"])
def test_resume_mid_epoch_without_automatic_batching(kind):
    def make():
        if kind == "batch_sampler":
            return DataLoader(make_ds(7), batch_sampler=[[6, 0], [1], [2, 5], [3, 4]])
        return DataLoader(make_ds(7), batch_size=None)
    reference = [y.tolist() for _, y in make()]
    first = make()
    it = iter(first)
    seen = [next(it)[1].tolist() for _ in range(2)]
    resumed = make()
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert seen + [y.tolist() for _, y in resumed] == reference


class _KeyedDataset:
    """A map-style dataset indexed by strings, and by a list of them for a whole batch."""
    values = {"a": 1.0, "b": 2.0, "c": 3.0}

    def __len__(self):
        return len(self.values)

    def __getitem__(self, key):
        if isinstance(key, list):
            return np.array([self.values[k] for k in key])
        return self.values[key]


def test_indices_that_are_not_ints_reach_the_dataset_as_given():
    # As in PyTorch, the loader hands the dataset whatever its sampler yields; every
    # index was cast to int first ("invalid literal for int() with base 10: 'c'").
    ds = _KeyedDataset()
    assert [b.tolist() for b in nl.data.DataLoader(ds, sampler=["c", "a", "b"], batch_size=2)] == [[3.0, 1.0], [2.0]]
    assert [b.tolist() for b in nl.data.DataLoader(ds, batch_sampler=[["c", "a"], ["b"]])] == [[3.0, 1.0], [2.0]]
    assert list(nl.data.DataLoader(ds, sampler=["b", "a"], batch_size=None)) == [2.0, 1.0]
    # A dataset that fetches a batch itself: a BatchSampler as the sampler, batching off.
    batches = nl.data.DataLoader(ds, sampler=nl.data.BatchSampler(["a", "b", "c"], 2, False), batch_size=None)
    assert [b.tolist() for b in batches] == [[1.0, 2.0], [3.0]]


def test_a_batch_sampler_as_sampler_matches_torch():
    torch_or_skip()
    from torch.utils.data import BatchSampler, DataLoader as TorchLoader, SequentialSampler
    ds = TensorDataset(np.arange(7.0))   # indexed by a list, it gives the batch at once
    expected = [b[0].tolist() for b in TorchLoader(
        ds, sampler=BatchSampler(SequentialSampler(range(7)), 3, False), batch_size=None)]
    got = [b[0].tolist() for b in DataLoader(
        ds, sampler=nl.data.BatchSampler(nl.data.SequentialSampler(range(7)), 3, False), batch_size=None)]
    assert got == expected == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0]]


def test_an_endless_sampler_gives_batches_as_they_come():
    # The loader and BatchSampler read the whole sampler before the first batch: an endless
    # one (training by steps, not epochs) hung. PyTorch takes the indices as they come.
    class Forever(nl.data.Sampler):
        def __iter__(self):
            return itertools.cycle(range(5))

    ds = TensorDataset(np.arange(5.0))
    loaders = (DataLoader(ds, sampler=Forever(), batch_size=2),
               DataLoader(ds, batch_sampler=nl.data.BatchSampler(Forever(), 2, drop_last=True)))
    for loader in loaders:
        batches = itertools.islice(loader, 4)
        assert [b[0].tolist() for b in batches] == [[0.0, 1.0], [2.0, 3.0], [4.0, 0.0], [1.0, 2.0]]
    assert [b[0].item() for b in itertools.islice(DataLoader(ds, sampler=Forever(), batch_size=None), 6)] \
        == [0.0, 1.0, 2.0, 3.0, 4.0, 0.0]
