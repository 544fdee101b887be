"""Meta-learning objects refuse settings that would train nothing or sample from an empty range."""
import pytest

from nnlite import nn
from nnlite.meta import HyperNetwork, Reptile, SinusoidTasks


def test_hypernetwork_sizes_are_positive():
    with pytest.raises(ValueError, match="HyperNetwork: embedding_dim must be a positive integer, got 0"):
        HyperNetwork(nn.Linear(2, 2), 0)


def test_reptile_outer_lr_is_positive():
    with pytest.raises(ValueError, match="Reptile: outer_lr must be a finite number > 0, got 0"):
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


def test_rates_and_scales_that_are_not_numbers_are_named():
    # They were met by a comparison first: "'<' not supported between instances of 'int' and 'str'".
    from nnlite import meta
    number = r"must be a real number \(int, float or NumPy scalar\), got str"
    with pytest.raises(TypeError, match="MAML: inner_lr " + number):
        meta.MAML(meta.sinusoid_mlp(), inner_lr="0.01")
    with pytest.raises(TypeError, match="InnerLoop: inner_steps " + number):
        meta.InnerLoop(meta.sinusoid_mlp(), inner_steps="5")
    with pytest.raises(TypeError, match="Reptile: outer_lr " + number):
        meta.Reptile(meta.sinusoid_mlp(), outer_lr="0.1")
    with pytest.raises(TypeError, match="HyperNetwork: init_scale " + number):
        meta.HyperNetwork(meta.sinusoid_mlp(), 2, init_scale="1e-3")


@pytest.mark.parametrize("learner", ["InnerLoop", "MAML", "MetaSGD", "Reptile"])
def test_learners_check_the_model_and_the_inner_rate(learner):
    import numpy as np
    from nnlite import meta
    cls = getattr(meta, learner)
    with pytest.raises(TypeError, match=f"{learner}: expected an nn.Module, got ndarray"):
        cls(np.zeros(3))
    with pytest.raises(ValueError, match="inner_lr must be a finite number > 0"):
        cls(meta.sinusoid_mlp(), inner_lr=float("nan"))
    with pytest.raises(ValueError, match=f"{learner}: Sequential has no parameters to adapt"):
        cls(nn.Sequential())


def test_tasks_pretraining_hypernetworks_and_task_batched_calls():
    import numpy as np
    import nnlite as nl
    from nnlite.meta import pretrain, sinusoid_mlp, task_batched_call
    with pytest.raises(TypeError, match="dtype must be a floating dtype, got int32"):
        SinusoidTasks(dtype=np.int32)
    with pytest.raises(ValueError, match="pretrain: iterations must be an integer >= 0, got -1"):
        pretrain(sinusoid_mlp(), SinusoidTasks(), -1)
    with pytest.raises(TypeError, match="expected tasks to be a sampler with sample"):
        pretrain(sinusoid_mlp(), np.zeros(3), 1)
    with pytest.raises(TypeError, match="HyperNetwork: expected the target to be an nn.Module, got ndarray"):
        HyperNetwork(np.zeros(3), 4)
    with pytest.raises(ValueError, match="init_scale must be finite, got nan"):
        HyperNetwork(nn.Linear(2, 2), 4, init_scale=float("nan"))
    with pytest.raises(ValueError, match=r"task_batched_call: the model has no parameters \['9.weight'\]"):
        task_batched_call(sinusoid_mlp(), {"9.weight": nl.ones(2, 1, 1)}, nl.randn(2, 5, 1))   # was ignored


def test_adapt_steps_and_reptile_step_rate_are_checked():
    from nnlite.meta import MAML, sinusoid_mlp
    batch = SinusoidTasks(shots=5).sample(2)
    with pytest.raises(ValueError, match="MAML.adapt: steps must be an integer >= 0, got -1"):
        MAML(sinusoid_mlp()).adapt(batch.support_x[0], batch.support_y[0], steps=-1)   # was no step at all
    with pytest.raises(ValueError, match="Reptile: outer_lr must be a finite number > 0, got nan"):
        Reptile(sinusoid_mlp()).step(batch, outer_lr=float("nan"))
