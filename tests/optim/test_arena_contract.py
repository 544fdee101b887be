"""The arena's contract with a parameter (adopt_storage, mark_updated) and the optimizer twins' scalars."""
import numpy as np
import pytest

import nnlite as nl
from nnlite._kernels import _optim as compiled
from nnlite._kernels.reference import _optim as twin
from nnlite.optim._torch_rounding import torch_lerp
from nnlite.parameter import adopt_storage, mark_updated


def test_adopt_storage_points_data_and_gradient_at_the_views():
    w = nl.nn.Parameter(nl.tensor([1.0, 2.0, 3.0]))
    data, grad = np.zeros(3, np.float32), np.full(3, 7.0, np.float32)
    adopt_storage(w, data, grad)
    assert w.data is data and data.tolist() == [1.0, 2.0, 3.0]
    (w * w).sum().backward()
    # Autograd overwrote the slot (no .grad before), then accumulates into it.
    assert w.grad.data is grad and grad.tolist() == [2.0, 4.0, 6.0]
    (w * 1).sum().backward()
    assert grad.tolist() == [3.0, 5.0, 7.0]


def test_adopt_storage_copies_an_existing_gradient_and_leaves_plain_tensors_their_own():
    t = nl.tensor([1.0, -1.0], requires_grad=True)
    (t * 4).sum().backward()
    data, grad = np.zeros(2, np.float32), np.zeros(2, np.float32)
    adopt_storage(t, data, grad)
    assert t.data is data and t.grad.data is grad and grad.tolist() == [4.0, 4.0]
    t.grad = None
    (t * 2).sum().backward()
    assert t.grad.data is not grad and grad.tolist() == [4.0, 4.0]


def test_mark_updated_makes_a_graph_over_the_old_values_refuse_backward():
    w = nl.nn.Parameter(nl.tensor([1.0, 2.0]))
    loss = (w * w).sum()          # saves w for the backward pass
    w.data[...] = 0.0
    mark_updated(w)
    with pytest.raises(RuntimeError, match="in place"):
        loss.backward()


def test_an_optimizer_step_marks_its_parameters_updated():
    w = nl.nn.Parameter(nl.tensor([1.0, 2.0]))
    opt = nl.optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    stale = (w * w).sum()
    opt.step()
    with pytest.raises(RuntimeError, match="in place"):
        stale.backward()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scalar", [float, np.float64, np.float32])
def test_adam_twin_equals_compiled_whatever_the_scalar_type(dtype, scalar):
    # A hyperparameter is taken as a double whatever its type, as the compiled kernel's
    # C signature takes it; 1 - beta1 is then formed in double, not in the scalar's float32.
    results = []
    for impl in (compiled, twin):
        rng = np.random.default_rng(3)
        p, g, m = (rng.standard_normal(257).astype(dtype) for _ in range(3))
        v = np.abs(rng.standard_normal(257)).astype(dtype)
        for step in (1, 2, 3):
            impl.adam_step(p, g, m, v, None, step, lr=scalar(1e-3), beta1=scalar(0.9),
                           beta2=scalar(0.999), eps=scalar(1e-8), weight_decay=scalar(0.1),
                           decoupled_weight_decay=False, amsgrad=False, maximize=False)
        results.append((p, m, v))
    for a, b in zip(*results):
        assert np.array_equal(a, b)


def test_torch_lerp_is_the_running_average_exact_at_both_ends():
    rng = np.random.default_rng(0)
    start, end = rng.standard_normal(1000), rng.standard_normal(1000)
    for w in (0.1, 0.3, 0.5, 0.7, 0.999):
        plain = (1 - w) * start + w * end
        np.testing.assert_allclose(torch_lerp(start, end, w), plain, rtol=0, atol=1e-15)
    assert np.array_equal(torch_lerp(start, end, 0.0), start)
    assert np.array_equal(torch_lerp(start, end, 1.0), end)
    assert torch_lerp(start.astype(np.float32), end.astype(np.float32), 0.1).dtype == np.float32
