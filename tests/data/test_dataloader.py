"""DataLoader: batching, seeded shuffling, and a position that resumes exactly."""
import json

import numpy as np
import pytest

import nnlite as nl
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
