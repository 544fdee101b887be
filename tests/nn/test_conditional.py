"""Conditional normalisation (FiLM, conditional batch norm, AdaIN): gradients, PyTorch compositions, errors."""
import doctest

import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip
from nnlite.autograd import gradcheck
from nnlite.nn import conditional

F = nl.nn.functional


def _t(a, grad=True):
    return nl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _randomize(module, rng):
    """Move the parameters away from the identity start, so the checks see every term."""
    for p in module.parameters():
        p.data[...] = rng.standard_normal(p.shape)


def test_doctests_run():
    failures, tried = doctest.testmod(conditional, verbose=False)
    assert tried >= 3 and failures == 0
    # film is written in nnlite/nn/functional.py, below the layers it serves; its example runs here.
    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(F.film, "film", globs={"film": F.film}):
        runner.run(test)
    assert runner.tries >= 3 and runner.failures == 0


def test_film_starts_as_identity_and_has_kinds():
    layer = nl.nn.FiLM(4, cond_features=3)
    kinds = {name: p.kind for name, p in layer.named_parameters()}
    assert kinds == {"scale.weight": "scale", "scale.bias": "scale", "shift.weight": "shift",
                     "shift.bias": "shift"}
    assert layer.scale.bias.init == {"scheme": "ones_"}
    x = nl.randn(2, 4, 5)
    np.testing.assert_array_equal(layer(x, nl.randn(2, 3)).data, x.data)


@pytest.mark.parametrize("shape", [(3, 4), (3, 4, 5), (2, 4, 3, 2)])
def test_film_gradcheck(rng, shape):
    layer = nl.nn.FiLM(4, cond_features=2, dtype=nl.float64)
    _randomize(layer, rng)
    x, c = _t(rng.standard_normal(shape)), _t(rng.standard_normal((shape[0], 2)))
    params = list(layer.parameters())
    assert gradcheck(lambda x, c, *ps: layer(x, c), [x, c, *params])


def test_film_matches_torch_linear_composition(rng):
    torch = torch_or_skip()
    layer = nl.nn.FiLM(3, cond_features=2, dtype=nl.float64)
    _randomize(layer, rng)
    x, c = rng.standard_normal((4, 3, 6)), rng.standard_normal((4, 2))
    xn, cn = _t(x), _t(c)
    out = layer(xn, cn)
    xt, ct = torch.tensor(x, requires_grad=True), torch.tensor(c, requires_grad=True)
    w = {k: torch.tensor(v.data, requires_grad=True) for k, v in layer.state_dict().items()}
    gamma = torch.nn.functional.linear(ct, w["scale.weight"], w["scale.bias"])
    beta = torch.nn.functional.linear(ct, w["shift.weight"], w["shift.bias"])
    ref = xt * gamma[:, :, None] + beta[:, :, None]
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(nl.tensor(g))
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(xn.grad.data, xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(cn.grad.data, ct.grad.numpy(), rtol=1e-12)
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad.data, w[name].grad.numpy(), rtol=1e-12, err_msg=name)


def test_film_second_order(rng):
    """FiLM is built from differentiable ops: gradients of gradients match finite differences."""
    layer = nl.nn.FiLM(2, cond_features=2, dtype=nl.float64)
    _randomize(layer, rng)
    x = _t(rng.standard_normal((3, 2, 4)))

    def grad_norm(c):
        with nl.enable_grad():   # gradcheck's finite differences run without recording
            out = (layer(x, c) ** 2).sum()
            (gx,) = nl.grad(out, [x], create_graph=True)
            return (gx * gx).sum()

    assert gradcheck(grad_norm, [_t(rng.standard_normal((3, 2)))])


@pytest.mark.parametrize("cls,shape", [(nl.nn.ConditionalBatchNorm1d, (6, 3)),
                                       (nl.nn.ConditionalBatchNorm1d, (6, 3, 4)),
                                       (nl.nn.ConditionalBatchNorm2d, (6, 3, 2, 2))])
def test_conditional_batch_norm_gradcheck(rng, cls, shape):
    layer = cls(3, num_classes=4, dtype=nl.float64)
    _randomize(layer, rng)
    y = nl.tensor([0, 1, 3, 1, 0, 2])
    x = _t(rng.standard_normal(shape))
    assert gradcheck(lambda x, w, b: layer(x, y), [x, layer.weight, layer.bias])


def test_conditional_batch_norm_matches_torch(rng):
    torch = torch_or_skip()
    layer = nl.nn.ConditionalBatchNorm2d(3, num_classes=4, dtype=nl.float64)
    _randomize(layer, rng)
    tbn = torch.nn.BatchNorm2d(3, affine=False, dtype=torch.float64)
    w = torch.tensor(layer.weight.data, requires_grad=True)
    b = torch.tensor(layer.bias.data, requires_grad=True)
    labels = np.array([0, 1, 3, 1, 2])
    for step in range(2):
        x = rng.standard_normal((5, 3, 2, 3))
        xn, xt = _t(x), torch.tensor(x, requires_grad=True)
        out = layer(xn, nl.tensor(labels))
        yt = torch.tensor(labels)
        ref = tbn(xt) * torch.nn.functional.embedding(yt, w)[:, :, None, None] \
            + torch.nn.functional.embedding(yt, b)[:, :, None, None]
        np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
        g = rng.standard_normal(out.shape)
        layer.zero_grad()
        w.grad = b.grad = None
        out.backward(nl.tensor(g))
        ref.backward(torch.tensor(g))
        np.testing.assert_allclose(xn.grad.data, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(layer.weight.grad.data, w.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(layer.bias.grad.data, b.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.bn.running_mean.data, tbn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.bn.running_var.data, tbn.running_var.numpy(), rtol=1e-12)
    layer.eval()
    tbn.eval()
    x = rng.standard_normal((2, 3, 2, 3))
    ref = tbn(torch.tensor(x)) * w[[2, 0]][:, :, None, None] + b[[2, 0]][:, :, None, None]
    np.testing.assert_allclose(layer(_t(x, False), nl.tensor([2, 0])).data, ref.detach().numpy(), rtol=1e-10)


def test_conditional_batch_norm_rows_are_per_class(rng):
    """Only the rows of the classes present in the batch receive gradient."""
    layer = nl.nn.ConditionalBatchNorm1d(2, num_classes=5)
    layer(nl.randn(4, 2), nl.tensor([1, 3, 3, 1])).sum().backward()
    touched = np.abs(layer.bias.grad.data).sum(axis=1) > 0
    assert touched.tolist() == [False, True, False, True, False]
    assert {p.kind for p in layer.parameters()} == {"scale", "shift"}
    # labels may also be a list or a NumPy array
    x = nl.randn(4, 2)
    np.testing.assert_array_equal(layer(x, [1, 3, 3, 1]).data, layer(x, nl.tensor([1, 3, 3, 1])).data)
    np.testing.assert_array_equal(layer(x, np.array([1, 3, 3, 1])).data, layer(x, nl.tensor([1, 3, 3, 1])).data)


def test_adaptive_instance_norm_matches_torch(rng):
    torch = torch_or_skip()
    content, style = rng.standard_normal((2, 3, 4, 5)), 3 + 2 * rng.standard_normal((2, 3, 6, 2))
    cn, sn = _t(content), _t(style)
    out = F.adaptive_instance_norm(cn, sn)
    ct, st = torch.tensor(content, requires_grad=True), torch.tensor(style, requires_grad=True)
    s_mean = st.mean(dim=(2, 3), keepdim=True)
    s_std = (st.var(dim=(2, 3), unbiased=False, keepdim=True) + 1e-5).sqrt()
    ref = torch.nn.functional.instance_norm(ct) * s_std + s_mean
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(nl.tensor(g))
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(cn.grad.data, ct.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sn.grad.data, st.grad.numpy(), rtol=1e-9, atol=1e-12)
    # The output takes on the style's channel statistics.
    np.testing.assert_allclose(out.data.mean(axis=(2, 3)), style.mean(axis=(2, 3)), rtol=1e-10)


def test_adaptive_instance_norm_gradcheck(rng):
    c, s = _t(rng.standard_normal((2, 2, 5))), _t(rng.standard_normal((2, 2, 3)))
    assert gradcheck(F.adaptive_instance_norm, [c, s])


def test_adaptive_instance_norm_module(rng):
    torch = torch_or_skip()
    layer = nl.nn.AdaptiveInstanceNorm(3, style_features=4, dtype=nl.float64)
    _randomize(layer, rng)
    x, s = rng.standard_normal((2, 3, 6)), rng.standard_normal((2, 4))
    xn, sn = _t(x), _t(s)
    assert gradcheck(lambda x, s, *ps: layer(x, s), [xn, sn, *layer.parameters()])
    w = {k: torch.tensor(v.data) for k, v in layer.state_dict().items()}
    st = torch.tensor(s)
    ref = (torch.nn.functional.instance_norm(torch.tensor(x))
           * torch.nn.functional.linear(st, w["style.scale.weight"], w["style.scale.bias"])[:, :, None]
           + torch.nn.functional.linear(st, w["style.shift.weight"], w["style.shift.bias"])[:, :, None])
    np.testing.assert_allclose(layer(xn, sn).data, ref.numpy(), rtol=1e-10, atol=1e-12)


def test_errors_name_expected_and_given():
    with pytest.raises(ValueError, match=r"film: gamma must have shape \(N, C\) = \(2, 3\).*got \(2, 4\)"):
        F.film(nl.randn(2, 3, 5), nl.randn(2, 4), nl.randn(2, 3))
    with pytest.raises(ValueError, match=r"FiLM\(cond_features=2\): condition must have shape \(N, 2\), got \(4, 3\)"):
        nl.nn.FiLM(3, 2)(nl.randn(4, 3), nl.randn(4, 3))
    with pytest.raises(ValueError, match=r"FiLM\(num_features=3\): input must have shape \(4, 3, \*\), got \(4, 5\)"):
        nl.nn.FiLM(3, 2)(nl.randn(4, 5), nl.randn(4, 2))
    cbn = nl.nn.ConditionalBatchNorm1d(3, num_classes=2)
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 2\), got 0..2"):
        cbn(nl.randn(3, 3), nl.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"y must be a 1-D integer tensor of 3 class labels, got float32"):
        cbn(nl.randn(3, 3), nl.randn(3))
    with pytest.raises(ValueError, match=r"adaptive_instance_norm: expected more than 1 spatial element per channel"):
        F.adaptive_instance_norm(nl.randn(2, 3, 1), nl.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"same N and C, got \(2, 3, 4\) and \(2, 2, 4\)"):
        F.adaptive_instance_norm(nl.randn(2, 3, 4), nl.randn(2, 2, 4))


def test_film_learns_a_task_code(rng):
    """One network, two tasks chosen by a one-hot code: FiLM fits both, the unconditioned net cannot."""
    nl.manual_seed(0)
    x = rng.uniform(-1, 1, (256, 1))
    task = rng.integers(0, 2, 256)
    target = np.where(task == 0, x[:, 0], -x[:, 0])[:, None]   # y = x or y = -x
    code = np.eye(2)[task]
    hidden, film, head = nl.nn.Linear(1, 16), nl.nn.FiLM(16, cond_features=2), nl.nn.Linear(16, 1)
    params = [*hidden.parameters(), *film.parameters(), *head.parameters()]
    opt = nl.optim.Adam(params, lr=0.02)
    xt, ct, yt = nl.tensor(x, dtype=nl.float32), nl.tensor(code, dtype=nl.float32), nl.tensor(target,
                                                                                              dtype=nl.float32)
    for _ in range(300):
        opt.zero_grad()
        loss = F.mse_loss(head(F.relu(film(hidden(xt), ct))), yt)
        loss.backward()
        opt.step()
    # Without the code the best prediction is 0 (mse = E[x^2] = 1/3).
    assert float(loss.data) < 0.02
