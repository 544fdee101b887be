"""Samplers: what each one draws, their lengths and errors, PyTorch's where PyTorch has them,
and a DataLoader that resumes a random sampler's interrupted pass exactly."""
import json

import numpy as np
import pytest
from helpers import torch_or_skip

import nnlite as nl
from nnlite.data import (BatchSampler, DataLoader, RandomSampler, Sampler, SequentialSampler,
                         SubsetRandomSampler, TensorDataset, WeightedRandomSampler)


def make_ds(n=23):
    return TensorDataset(np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n))


# ------------------------------------------------------------- what they draw --
def test_sequential_sampler_counts_up():
    s = SequentialSampler(make_ds(5))
    assert list(s) == [0, 1, 2, 3, 4] == list(s) and len(s) == 5


def test_random_sampler_without_replacement_is_a_permutation_each_pass():
    s = RandomSampler(range(30), generator=nl.Generator(0))
    first, second = list(s), list(s)
    assert sorted(first) == list(range(30)) == sorted(second)
    assert first != second and first != list(range(30))


def test_random_sampler_more_samples_than_examples_chains_permutations():
    draws = list(RandomSampler(range(4), num_samples=10, generator=nl.Generator(1)))
    assert len(draws) == 10
    assert sorted(draws[:4]) == sorted(draws[4:8]) == [0, 1, 2, 3]
    assert len(set(draws[8:])) == 2   # the last permutation is cut short, still without repeats


def test_random_sampler_with_replacement_repeats_and_is_uniform():
    draws = np.array(list(RandomSampler(range(5), replacement=True, num_samples=5000,
                                        generator=nl.Generator(2))))
    counts = np.bincount(draws, minlength=5)
    assert draws.min() >= 0 and draws.max() <= 4 and counts.sum() == 5000
    assert (np.abs(counts - 1000) < 150).all()   # ~5 standard deviations of a binomial(5000, 0.2)
    short = list(RandomSampler(range(3), replacement=True, num_samples=50, generator=nl.Generator(3)))
    assert len(short) == 50 and len(set(short)) == 3


def test_random_sampler_without_replacement_matches_shuffle_order():
    ds = make_ds()
    shuffled = [y.tolist() for _, y in DataLoader(ds, batch_size=4, shuffle=True, generator=nl.Generator(5))]
    sampled = [y.tolist() for _, y in DataLoader(ds, batch_size=4,
                                                 sampler=RandomSampler(ds, generator=nl.Generator(5)))]
    assert sampled == shuffled


def test_subset_random_sampler_shuffles_exactly_the_given_indices():
    s = SubsetRandomSampler([10, 4, 7, 1, 12], generator=nl.Generator(0))
    passes = [list(s) for _ in range(5)]
    assert all(sorted(p) == [1, 4, 7, 10, 12] for p in passes) and len(s) == 5
    assert len({tuple(p) for p in passes}) > 1


def test_weighted_sampler_frequencies_follow_the_weights():
    weights = [1.0, 2.0, 0.0, 7.0]
    draws = np.array(list(WeightedRandomSampler(weights, 20000, generator=nl.Generator(0))))
    freq = np.bincount(draws, minlength=4) / 20000
    assert freq[2] == 0
    assert np.allclose(freq, [0.1, 0.2, 0.0, 0.7], atol=0.02)


def test_weighted_sampler_without_replacement_never_repeats():
    s = WeightedRandomSampler([5.0, 1.0, 1.0, 0.0, 3.0], num_samples=4, replacement=False,
                              generator=nl.Generator(0))
    passes = [list(s) for _ in range(400)]
    assert all(sorted(p) == [0, 1, 2, 4] for p in passes) and len(s) == 4
    # The heaviest index comes first most often (probability 5/10 for the first draw).
    firsts = np.bincount([p[0] for p in passes], minlength=5) / 400
    assert 0.4 < firsts[0] < 0.6 and firsts[3] == 0


def test_same_seed_same_draws_and_global_generator_drives_them():
    for make in (lambda g: RandomSampler(range(20), generator=g),
                 lambda g: RandomSampler(range(20), replacement=True, generator=g),
                 lambda g: SubsetRandomSampler(list(range(20)), generator=g),
                 lambda g: WeightedRandomSampler(np.arange(1.0, 21.0), 20, generator=g)):
        a, b = make(nl.Generator(9)), make(nl.Generator(9))
        assert [list(a) for _ in range(3)] == [list(b) for _ in range(3)]
        nl.manual_seed(4)
        first = list(make(None))
        nl.manual_seed(4)
        assert list(make(None)) == first


def test_numpy_global_state_is_not_used():
    np.random.seed(0)
    a = list(RandomSampler(range(50), generator=nl.Generator(1)))
    np.random.seed(123)
    b = list(RandomSampler(range(50), generator=nl.Generator(1)))
    assert a == b


def test_batch_sampler_batches_and_lengths():
    assert list(BatchSampler(range(7), 3, False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(BatchSampler(range(7), 3, True)) == [[0, 1, 2], [3, 4, 5]]
    assert list(BatchSampler(range(6), 3, True)) == [[0, 1, 2], [3, 4, 5]]
    assert len(BatchSampler(range(7), 3, False)) == 3 and len(BatchSampler(range(7), 3, True)) == 2
    inner = RandomSampler(range(10), generator=nl.Generator(0))
    batches = list(BatchSampler(inner, 4, False))
    assert [len(b) for b in batches] == [4, 4, 2] and sorted(sum(batches, [])) == list(range(10))


def test_batch_sampler_drives_a_dataloader():
    loader = DataLoader(make_ds(10), batch_sampler=BatchSampler(SequentialSampler(range(10)), 4, True))
    assert len(loader) == 2
    assert [y.tolist() for _, y in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_a_custom_sampler_subclass():
    class Evens(Sampler):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(0, self.n, 2))

        def __len__(self):
            return (self.n + 1) // 2
    loader = DataLoader(make_ds(7), batch_size=2, sampler=Evens(7))
    assert len(loader) == 2 and [y.tolist() for _, y in loader] == [[0, 2], [4, 6]]
    with pytest.raises(NotImplementedError, match="must define __iter__"):
        iter(Sampler())


# ------------------------------------------------------------------ errors ---
@pytest.mark.parametrize("make, error, message", [
    (lambda: RandomSampler(range(3), replacement=1), TypeError, "replacement should be a boolean value"),
    (lambda: RandomSampler(range(3), num_samples=0), ValueError, "num_samples should be a positive integer"),
    (lambda: RandomSampler(range(3), num_samples=2.0), ValueError, "num_samples should be a positive integer"),
    (lambda: RandomSampler([]), ValueError, "num_samples should be a positive integer value, but got num_samples=0"),
    (lambda: WeightedRandomSampler([1.0, 2.0], 0), ValueError, "num_samples should be a positive integer"),
    (lambda: WeightedRandomSampler([1.0, 2.0], True), ValueError, "num_samples should be a positive integer"),
    (lambda: WeightedRandomSampler([1.0, 2.0], 2, replacement="yes"), ValueError,
     "replacement should be a boolean value"),
    (lambda: WeightedRandomSampler([[1.0, 2.0]], 2), ValueError, r"weights should be a 1d sequence .* \(1, 2\)"),
    (lambda: WeightedRandomSampler(3.0, 2), ValueError, r"weights should be a 1d sequence .* \(\)"),
    (lambda: WeightedRandomSampler([1.0, -1.0], 2), RuntimeError, "probability entry < 0"),
    (lambda: WeightedRandomSampler([0.0, 0.0], 2), RuntimeError, r"sum of probabilities <= 0"),
    (lambda: WeightedRandomSampler([], 2), RuntimeError, r"sum of probabilities <= 0"),
    (lambda: WeightedRandomSampler([1.0, float("inf")], 2), RuntimeError, "infinity or NaN"),
    (lambda: WeightedRandomSampler([1.0, float("nan")], 2), RuntimeError, "infinity or NaN"),
    (lambda: WeightedRandomSampler([1.0, 2.0], 3, replacement=False), RuntimeError,
     "cannot sample n_sample > prob_dist.size"),
    (lambda: WeightedRandomSampler([1.0, 0.0, 0.0], 2, replacement=False), RuntimeError,
     "only 1 of the 3 weights are positive"),
    (lambda: BatchSampler(range(3), 0, False), ValueError, "batch_size should be a positive integer"),
    (lambda: BatchSampler(range(3), 2, 1), ValueError, "drop_last should be a boolean value"),
    (lambda: BatchSampler(5, 2, False), TypeError, "sampler must be an iterable of indices, got int"),
    (lambda: RandomSampler(range(3), generator=np.random.default_rng(0)), TypeError, "nl.Generator"),
    (lambda: SubsetRandomSampler([1], generator=3), TypeError, "nl.Generator"),
])
def test_bad_arguments_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_random_sampler_of_an_empty_source_with_num_samples():
    s = RandomSampler([], num_samples=3)
    assert len(s) == 3
    with pytest.raises(ValueError, match="cannot draw num_samples=3 indices from an empty data_source"):
        list(s)


def test_sampler_load_state_dict_refuses_other_data():
    with pytest.raises(ValueError, match="expected a dict with a 'seed'"):
        RandomSampler(range(3)).load_state_dict({"epoch": 1})


# --------------------------------------------------------- against PyTorch ---
@pytest.mark.parametrize("n, replacement, num_samples", [(7, False, None), (7, False, 17), (7, True, 40),
                                                         (1, False, None)])
def test_random_sampler_lengths_and_multiset_match_torch(n, replacement, num_samples):
    torch = torch_or_skip()
    ours = RandomSampler(range(n), replacement=replacement, num_samples=num_samples, generator=nl.Generator(0))
    theirs = torch.utils.data.RandomSampler(range(n), replacement=replacement, num_samples=num_samples,
                                            generator=torch.Generator().manual_seed(0))
    a, b = list(ours), list(theirs)
    assert len(ours) == len(theirs) == len(a) == len(b)
    if not replacement:   # whole permutations, the last one cut short: each index num_samples // n times, or once more
        q = len(a) // n
        for draws in (a, b):
            assert set(np.bincount(draws, minlength=n).tolist()) <= {q, q + 1}


@pytest.mark.parametrize("n, batch_size, drop_last", [(10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False),
                                                      (2, 5, True)])
def test_batch_sampler_matches_torch(n, batch_size, drop_last):
    torch = torch_or_skip()
    ours = BatchSampler(SequentialSampler(range(n)), batch_size, drop_last)
    theirs = torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(n)), batch_size, drop_last)
    assert list(ours) == list(theirs) and len(ours) == len(theirs)
    assert len(DataLoader(make_ds(n), batch_sampler=ours)) == len(
        torch.utils.data.DataLoader(range(n), batch_sampler=theirs))


def test_subset_and_weighted_lengths_match_torch():
    torch = torch_or_skip()
    assert len(SubsetRandomSampler([3, 1, 4])) == len(torch.utils.data.SubsetRandomSampler([3, 1, 4])) == 3
    ours = WeightedRandomSampler([0.1, 0.9, 0.4], 7)
    theirs = torch.utils.data.WeightedRandomSampler([0.1, 0.9, 0.4], 7)
    assert len(ours) == len(theirs) == len(list(ours)) == len(list(theirs)) == 7
    assert ours.replacement is theirs.replacement is True


@pytest.mark.parametrize("args, kwargs", [
    ((range(3),), {"replacement": 1}), ((range(3),), {"num_samples": 0}), (([],), {}),
])
def test_random_sampler_errors_match_torch(args, kwargs):
    torch = torch_or_skip()
    with pytest.raises(Exception) as theirs:
        torch.utils.data.RandomSampler(*args, **kwargs)
    with pytest.raises(type(theirs.value), match=str(theirs.value)):
        RandomSampler(*args, **kwargs)


@pytest.mark.parametrize("weights, num_samples, replacement", [
    ([1.0, 2.0], 0, True), ([1.0, 2.0], 2, "yes"), ([[1.0, 2.0]], 2, True),
    ([1.0, -1.0], 2, True), ([0.0, 0.0], 2, True), ([1.0, float("inf")], 2, True), ([1.0, 2.0], 3, False),
])
def test_weighted_sampler_errors_match_torch(weights, num_samples, replacement):
    torch = torch_or_skip()
    with pytest.raises(Exception) as theirs:   # PyTorch refuses bad weights at the first pass
        list(torch.utils.data.WeightedRandomSampler(weights, num_samples, replacement))
    with pytest.raises(type(theirs.value)) as ours:   # nnlite at construction
        WeightedRandomSampler(weights, num_samples, replacement)
    assert str(theirs.value) in str(ours.value)


@pytest.mark.parametrize("batch_size, drop_last", [(0, False), (-1, False), (2, 1), (True, False)])
def test_batch_sampler_errors_match_torch(batch_size, drop_last):
    torch = torch_or_skip()
    with pytest.raises(Exception) as theirs:
        torch.utils.data.BatchSampler(range(3), batch_size, drop_last)
    with pytest.raises(type(theirs.value), match=str(theirs.value)):
        BatchSampler(range(3), batch_size, drop_last)


# ---------------------------------------------------------- resume exactly ---
@pytest.mark.parametrize("make_sampler", [
    lambda ds, g: {"sampler": RandomSampler(ds, generator=g)},
    lambda ds, g: {"sampler": RandomSampler(ds, replacement=True, num_samples=30, generator=g)},
    lambda ds, g: {"sampler": WeightedRandomSampler(np.arange(1.0, 24.0), 25, generator=g)},
    lambda ds, g: {"sampler": SubsetRandomSampler(list(range(3, 20)), generator=g)},
    lambda ds, g: {"batch_sampler": BatchSampler(RandomSampler(ds, generator=g), 4, False)},
], ids=["random", "replacement", "weighted", "subset", "batch_sampler"])
@pytest.mark.parametrize("stop_after", [1, 3, 5])
def test_loader_resumes_a_random_sampler_mid_epoch(make_sampler, stop_after):
    def make(seed):
        ds = make_ds()
        options = make_sampler(ds, nl.Generator(seed))
        return DataLoader(ds, batch_size=4, **options) if "sampler" in options else DataLoader(ds, **options)
    reference_loader = make(1)
    reference = [[y.tolist() for _, y in reference_loader] for _ in range(3)]

    first = make(1)
    seen = [[y.tolist() for _, y in first]]        # epoch 0 complete
    it = iter(first)
    seen.append([next(it)[1].tolist() for _ in range(stop_after)])   # epoch 1 interrupted
    state = json.loads(json.dumps(first.state_dict()))
    generator_state = first.sampler.generator.get_state() if first.sampler is not None \
        else first.batch_sampler.sampler.generator.get_state()

    resumed = make(99)   # a generator in another state: the saved seed alone decides epoch 1
    resumed.load_state_dict(state)
    seen[1] += [y.tolist() for _, y in resumed]
    gen = resumed.sampler.generator if resumed.sampler is not None else resumed.batch_sampler.sampler.generator
    gen.set_state(generator_state)   # restored with the checkpoint, it decides epoch 2
    seen.append([y.tolist() for _, y in resumed])
    assert seen == reference


@pytest.mark.parametrize("name", ["sampler", "batch_sampler"])
def test_loader_refuses_a_position_without_its_samplers_state(name):
    # Without the saved seed the interrupted epoch would go on in another order.
    def make():
        ds = make_ds()
        sampler = RandomSampler(ds, generator=nl.Generator(1))
        if name == "sampler":
            return DataLoader(ds, batch_size=4, sampler=sampler)
        return DataLoader(ds, batch_sampler=BatchSampler(sampler, 4, False))
    first = make()
    next(iter(first))
    state = first.state_dict()
    assert name in state
    del state[name]
    with pytest.raises(ValueError, match=f"this loader's {name} .* keeps a state, but the saved position has none"):
        make().load_state_dict(state)
    never_started = make().state_dict()
    del never_started[name]
    make().load_state_dict(never_started)   # nothing to replay: accepted
