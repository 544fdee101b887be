"""Gradient clipping against torch, penalties as weight decay, parameter vectors, memory report."""
import math

import numpy as np
import pytest

import nnlite as nl
from nnlite.nn import Parameter
from nnlite.nn import utils

SHAPES = [(4, 3), (3,), (2, 2, 2)]


def _with_grads(seed=0, scale=1.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = [Parameter(rng.standard_normal(s).astype(dtype)) for s in SHAPES]
    for p in params:
        p.grad = nl.tensor((scale * rng.standard_normal(p.shape)).astype(dtype))
    return params


def _torch_twins(params):
    torch = pytest.importorskip("torch")
    twins = [torch.nn.Parameter(torch.tensor(p.data)) for p in params]
    for t, p in zip(twins, params):
        t.grad = torch.tensor(p.grad.data.copy())
    return twins


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_equals_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    params = _with_grads()
    twins = _torch_twins(params)
    total = utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(twins, max_norm, norm_type=float(norm_type))
    assert isinstance(total, nl.Tensor) and total.dtype == np.float64
    np.testing.assert_allclose(float(total), float(expected), rtol=1e-12)
    for p, t in zip(params, twins):
        np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-12)
    clipped = float(utils.get_total_norm([p.grad for p in params], norm_type))
    assert clipped <= max_norm * (1 + 1e-9)
    if max_norm > float(total):
        np.testing.assert_array_equal(params[0].grad.data, twins[0].grad.numpy())


def test_clip_grad_norm_keeps_arena_gradients_in_place():
    params = _with_grads(scale=10.0)
    opt = nl.optim.SGD(params, lr=0.1)
    slots = [p.grad.data for p in params]
    before = [s.copy() for s in slots]
    total = float(utils.clip_grad_norm_(params, 1.0))
    for p, s, b in zip(params, slots, before):
        assert p.grad.data is s and np.shares_memory(s, opt._arenas[0][0].grads)
        np.testing.assert_allclose(s, b / (total + 1e-6), rtol=1e-12)


def test_clip_grad_norm_nonfinite():
    torch = pytest.importorskip("torch")
    params = _with_grads()
    params[1].grad.data[0] = np.nan
    with pytest.raises(RuntimeError, match="non-finite"):
        utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    twins = _torch_twins(params)
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_(twins, 1.0, error_if_nonfinite=True)
    assert math.isnan(float(utils.clip_grad_norm_(params, 1.0)))
    params = _with_grads()
    params[0].grad.data[0, 0] = np.inf
    with pytest.raises(RuntimeError, match="non-finite"):
        utils.clip_grad_norm_(params, 1.0, norm_type=math.inf, error_if_nonfinite=True)


def test_clip_grad_norm_edge_cases():
    w = Parameter(np.ones(3))
    assert float(utils.clip_grad_norm_([w], 1.0)) == 0.0      # no gradients: norm 0
    w.grad = nl.tensor(np.array([3.0, 4.0, 0.0]))
    assert float(utils.clip_grad_norm_(w, 1.0)) == 5.0           # a single tensor is accepted
    np.testing.assert_allclose(w.grad.data, [0.6, 0.8, 0.0], rtol=1e-6)
    f32 = _with_grads(dtype=np.float32, scale=5.0)
    total = utils.clip_grad_norm_(f32, 1.0)
    assert total.dtype == np.float32 and f32[0].grad.dtype == np.float32


@pytest.mark.parametrize("clip_value", [0.3, 5.0])
def test_clip_grad_value_equals_torch(clip_value):
    torch = pytest.importorskip("torch")
    params = _with_grads(scale=2.0)
    twins = _torch_twins(params)
    params.append(Parameter(np.ones(2)))          # no gradient: skipped
    assert utils.clip_grad_value_(params, clip_value) is None
    torch.nn.utils.clip_grad_value_(twins, clip_value)
    for p, t in zip(params, twins):
        np.testing.assert_array_equal(p.grad.data, t.grad.numpy())
        assert np.abs(p.grad.data).max() <= clip_value
    assert params[-1].grad is None


def test_penalties_values_and_gradients():
    a = Parameter(np.array([1.0, -2.0, 0.5]))
    b = Parameter(np.array([[3.0, -0.25]]))
    l1 = utils.l1_penalty([a, b])
    l2 = utils.l2_penalty([a, b])
    assert float(l1) == 1 + 2 + 0.5 + 3 + 0.25
    assert float(l2) == 0.5 * (1 + 4 + 0.25 + 9 + 0.0625)
    (l1 + l2).backward()
    np.testing.assert_array_equal(a.grad.data, np.sign(a.data) + a.data)
    np.testing.assert_array_equal(b.grad.data, np.sign(b.data) + b.data)
    with pytest.raises(ValueError, match="at least one parameter"):
        utils.l2_penalty([])


def test_l2_penalty_under_sgd_is_weight_decay():
    """loss + lam * l2_penalty(params) with SGD == SGD(weight_decay=lam) on the loss."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 4)), rng.standard_normal(16)
    lam = 0.3
    results = []
    for use_penalty in (True, False):
        w = Parameter(np.zeros(4) + 0.5)
        opt = nl.optim.SGD([w], lr=0.05, momentum=0.9, weight_decay=0 if use_penalty else lam)
        for _ in range(20):
            opt.zero_grad()
            loss = ((nl.tensor(x) @ w - nl.tensor(y)) ** 2).mean()
            if use_penalty:
                loss = loss + lam * utils.l2_penalty([w])
            loss.backward()
            opt.step()
        results.append(w.data.copy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)


def test_parameters_to_vector_and_back():
    torch = pytest.importorskip("torch")
    params = _with_grads()
    opt = nl.optim.Adam(params)
    storages = [p.data for p in params]
    vec = utils.parameters_to_vector(params)
    expected = torch.nn.utils.parameters_to_vector(_torch_twins(params))
    np.testing.assert_array_equal(vec.data, expected.detach().numpy())
    utils.vector_to_parameters(vec * 2.0, params)
    for p, s in zip(params, storages):
        assert p.data is s                          # written in place: the arena is kept
    np.testing.assert_array_equal(utils.parameters_to_vector(params).data, 2 * vec.data)
    assert np.shares_memory(params[0].data, opt._arenas[0][0].params)
    with pytest.raises(ValueError, match="1-D with 23 elements"):
        utils.vector_to_parameters(nl.zeros(5), params)
    w = Parameter(np.ones(3))
    (utils.parameters_to_vector([w]) * nl.tensor([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [1.0, 2.0, 3.0])


def test_memory_report_counts_bytes():
    w = Parameter(np.ones((3, 5), np.float32), kind="weight")      # 15 floats -> 16 slot
    b = Parameter(np.ones(3, np.float32), kind="bias")             # 3 -> 16
    e = Parameter(np.ones((2, 4)), kind="embedding")               # float64: 8 -> 8
    opt = nl.optim.Adam([{"params": [w, b, e]}])
    report = opt.memory_report()
    f32, f64 = report["groups"]
    assert (f32["dtype"], f32["params"], f32["numel"]) == ("float32", 2, 18)
    assert f32["param_bytes"] == f32["grad_bytes"] == 72 and f32["state_bytes"] == 0
    assert f32["padding_bytes"] == (32 - 18) * 4 * 2 and f32["total_bytes"] == 32 * 4 * 2
    for p in (w, b, e):
        p.grad = nl.ones_like(p)
    opt.step()                                     # Adam's state appears on the first step
    report = opt.memory_report()
    f32, f64 = report["groups"]
    assert f32["state_bytes"] == 2 * 72 and f32["total_bytes"] == 32 * 4 * 4
    assert f64["padding_bytes"] == 0 and f64["total_bytes"] == 8 * 8 * 4
    assert report["kinds"]["bias"]["padding_bytes"] == 13 * 4 * 4
    assert report["kinds"]["weight"]["param_bytes"] == 60
    assert report["total"]["total_bytes"] == 32 * 4 * 4 + 8 * 8 * 4
    assert report["state_names"] == ["exp_avg", "exp_avg_sq"]
    text = str(report)
    assert "group 0 float32" in text and "kind embedding" in text and "total" in text
    assert report == nl.optim.memory_report(opt)
