"""Meta-learning objects refuse settings that would train nothing or sample from an empty range."""
import pytest

from nnlite import nn
from nnlite.meta import HyperNetwork, Reptile, SinusoidTasks


def test_hypernetwork_sizes_are_positive():
    with pytest.raises(ValueError, match="HyperNetwork: embedding_dim must be a positive integer, got 0"):
        HyperNetwork(nn.Linear(2, 2), 0)


def test_reptile_outer_lr_is_positive():
    with pytest.raises(ValueError, match="Reptile: outer_lr must be > 0, got 0"):
        Reptile(nn.Linear(1, 1), outer_lr=0)


def test_sinusoid_ranges_are_ordered():
    with pytest.raises(ValueError, match=r"amplitude must be a \(low, high\) range with low <= high, got \(5, 0.1\)"):
        SinusoidTasks(amplitude=(5, 0.1))


def test_sampling_no_tasks_is_an_error():
    with pytest.raises(ValueError, match="num_tasks must be a positive integer, got 0"):
        SinusoidTasks().sample(0)


def test_inner_steps_is_a_whole_number():
    from nnlite.meta import MAML, sinusoid_mlp
    with pytest.raises(ValueError, match="inner_steps an integer >= 1, got inner_lr=0.01, inner_steps=1.5"):
        MAML(sinusoid_mlp(), inner_steps=1.5)
