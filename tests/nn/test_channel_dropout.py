"""Dropout1d, Dropout2d and AlphaDropout: whole channels, exact scaling, statistics, seeds, errors."""
import doctest
import warnings

import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck
from nnlite.nn import dropout as dropout_module
from helpers import torch_or_skip

nn = nl.nn
F = nn.functional

SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

# (function, input shape, the axes one channel spans)
CHANNEL_CASES = [(F.dropout1d, (40, 50, 7), (2,)), (F.dropout1d, (300, 9), (1,)), (F.dropout2d, (30, 40, 3, 5), (2, 3)),
                 (F.dropout2d, (20, 60, 1, 1), (2, 3))]
CASE_IDS = ["1d", "1d_unbatched", "2d", "2d_1x1"]


def _kept_channels(y, axes):
    """Per channel: False if dropped (all zero), True otherwise."""
    return ~(y == 0).all(axis=axes)


@pytest.mark.parametrize("fn, shape, axes", CHANNEL_CASES, ids=CASE_IDS)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_whole_channels_are_dropped_and_the_rest_scaled_exactly(fn, shape, axes, p):
    rng = np.random.default_rng(0)
    data = rng.uniform(0.5, 2.0, shape)            # no zeros of its own
    x = nl.tensor(data)
    y = fn(x, p).data
    kept = _kept_channels(y, axes)
    expanded = np.expand_dims(kept, axes)
    # a channel is all zero or all scaled: never a mix
    np.testing.assert_array_equal(y == 0, np.broadcast_to(~expanded, shape))
    scale = data.dtype.type(1.0 / (1.0 - p))
    np.testing.assert_array_equal(y[np.broadcast_to(expanded, shape)], (data * scale)[np.broadcast_to(expanded, shape)])
    # the dropped fraction is p within six standard deviations of a binomial count
    count = kept.size
    assert abs((~kept).mean() - p) < 6 * np.sqrt(p * (1 - p) / count)


@pytest.mark.parametrize("fn, shape, axes", CHANNEL_CASES, ids=CASE_IDS)
def test_same_seed_same_mask_and_generator_argument(fn, shape, axes):
    x = nl.ones(*shape)
    nl.manual_seed(5)
    a = fn(x, 0.5).data
    nl.manual_seed(5)
    b = fn(x, 0.5).data
    np.testing.assert_array_equal(a, b)
    c = fn(x, 0.5, generator=nl.Generator(2)).data
    d = fn(x, 0.5, generator=nl.Generator(2)).data
    np.testing.assert_array_equal(c, d)
    assert not np.array_equal(fn(x, 0.5).data, fn(x, 0.5).data)   # and the next call draws anew


@pytest.mark.parametrize("fn, shape, axes", CHANNEL_CASES[:3], ids=CASE_IDS[:3])
def test_gradient_is_the_scaled_mask(fn, shape, axes):
    rng = np.random.default_rng(1)
    x = nl.tensor(rng.standard_normal(shape), requires_grad=True)
    nl.manual_seed(3)
    y = fn(x, 0.4)
    g = rng.standard_normal(shape)
    y.backward(nl.tensor(g))
    nl.manual_seed(3)
    mask = fn(nl.ones(*shape, dtype=nl.float64), 0.4).data      # the same draw: the mask times 1/(1-p)
    np.testing.assert_array_equal(x.grad.data, g * mask)
    gen = nl.Generator(4)
    state = gen.get_state()

    def same_mask(t):
        gen.set_state(state)
        return fn(t, 0.4, generator=gen)
    small = nl.tensor(rng.standard_normal(tuple(min(n, 3) for n in shape)), requires_grad=True)
    assert gradcheck(same_mask, [small])


def test_eval_and_p_zero_are_the_identity_and_p_one_zeroes():
    x = nl.randn(4, 5, 6)
    for layer in (nn.Dropout1d(0.5), nn.Dropout2d(0.5), nn.AlphaDropout(0.5)):
        assert layer.eval()(x) is x
    assert F.dropout1d(x, 0.0) is x and F.dropout1d(x, 0.7, training=False) is x
    assert F.alpha_dropout(x, 0.5) is x          # PyTorch's default: training=False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert F.dropout2d(x, 0.0) is x
    x4 = nl.randn(2, 3, 4, 5)
    for y in (F.dropout1d(x, 1.0), F.dropout2d(x4, 1.0), F.alpha_dropout(x4, 1.0, training=True)):
        assert not y.data.any()


def test_inplace_overwrites_the_input():
    data = np.random.default_rng(2).standard_normal((3, 4, 5, 6))
    nl.manual_seed(9)
    expected = F.dropout2d(nl.tensor(data), 0.5).data
    x = nl.tensor(data.copy())
    nl.manual_seed(9)
    assert F.dropout2d(x, 0.5, inplace=True) is x
    np.testing.assert_array_equal(x.data, expected)
    h = nl.tensor(data, requires_grad=True) * 1.0
    nl.manual_seed(9)
    assert nn.Dropout2d(0.5, inplace=True)(h) is h
    np.testing.assert_array_equal(h.data, expected)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        F.dropout1d(nl.tensor(data[0], requires_grad=True), 0.5, inplace=True)


def test_dropout2d_reads_other_ranks_as_pytorch_does():
    x = nl.ones(6, 40, 5)
    with pytest.warns(UserWarning, match=r"3-D input is read as \(N, C, L\)"):
        y = F.dropout2d(x, 0.5).data
    assert np.all((y == 0).all(axis=2) | (y == 2).all(axis=2))      # each x[n, c, :] whole
    with pytest.warns(UserWarning, match="expected a 4-D"):
        y = F.dropout2d(nl.ones(30, 40), 0.5).data                    # a 2-D input: per element
    assert set(np.unique(y)) <= {0.0, 2.0}
    with pytest.raises(ValueError, match=r"dropout2d: expected a 4-D \(N, C, H, W\) input, got shape \(5,\)"):
        F.dropout2d(nl.ones(5), 0.5)


def test_alpha_dropout_keeps_mean_and_variance_of_standard_normal_input():
    nl.manual_seed(0)
    x = nl.randn(400, 500, dtype=nl.float64)
    for p in (0.1, 0.3, 0.5):
        y = F.alpha_dropout(x, p, training=True).data
        assert abs(y.mean()) < 0.01 and abs(y.var() - 1.0) < 0.02
        # dropped elements all take one value: a * alpha' + b
        alpha = -SELU_SCALE * SELU_ALPHA
        a = 1.0 / np.sqrt((1 - p) * (1 + p * alpha ** 2))
        dropped = np.isclose(y, a * alpha * (1 - p), rtol=0, atol=1e-12)
        assert abs(dropped.mean() - p) < 6 * np.sqrt(p * (1 - p) / y.size)
        np.testing.assert_allclose(y[~dropped], a * x.data[~dropped] - a * alpha * p, rtol=1e-12)


def test_alpha_dropout_matches_torch_on_the_same_mask():
    """PyTorch's random stream differs; with the mask recovered from nnlite's output, the affine
    map and the gradient are PyTorch's: torch at p is torch on the same Bernoulli noise."""
    torch = torch_or_skip()
    p = 0.3
    data = np.random.default_rng(3).standard_normal((5, 7))
    x = nl.tensor(data, requires_grad=True)
    nl.manual_seed(4)
    y = F.alpha_dropout(x, p, training=True)
    y.backward(nl.ones(5, 7, dtype=nl.float64))
    keep = x.grad.data != 0
    # PyTorch's affine map on that Bernoulli noise, in torch's own ops
    alpha = 1.7580993408473766
    a = 1.0 / np.sqrt((alpha * alpha * p + 1) * (1 - p))
    noise = torch.tensor(keep.astype(np.float64))
    b = (noise - 1) * (alpha * a) + alpha * a * p
    expected = torch.tensor(data) * noise * a + b
    np.testing.assert_allclose(y.data, expected.numpy(), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(x.grad.data, (noise * a).numpy(), rtol=1e-15)
    # and the same statistics as torch's own draws
    torch.manual_seed(0)
    big = torch.randn(400, 500, dtype=torch.float64)
    theirs = torch.nn.functional.alpha_dropout(big, p, training=True)
    ours = F.alpha_dropout(nl.tensor(big.numpy()), p, training=True).data
    assert abs(theirs.mean().item() - ours.mean()) < 0.01 and abs(theirs.var().item() - ours.var()) < 0.02


@pytest.mark.parametrize("name, args", [("Dropout1d", ()), ("Dropout1d", (0.2, True)), ("Dropout2d", ()),
                                        ("Dropout2d", (0.25,)), ("AlphaDropout", ()), ("AlphaDropout", (0.1, True)),
                                        ("Dropout", (0.3,))])
def test_reprs_are_torch(name, args):
    torch = torch_or_skip()
    assert repr(getattr(nn, name)(*args)) == repr(getattr(torch.nn, name)(*args))


def test_eval_modules_match_torch_and_train_shapes_agree():
    torch = torch_or_skip()
    data = np.random.default_rng(5).standard_normal((2, 3, 4, 5))
    for name, x in (("Dropout1d", data[0]), ("Dropout2d", data), ("AlphaDropout", data)):
        ours, theirs = getattr(nn, name)(0.5).eval(), getattr(torch.nn, name)(0.5).eval()
        np.testing.assert_array_equal(ours(nl.tensor(x)).data, theirs(torch.tensor(x)).numpy())
        assert ours.train()(nl.tensor(x)).shape == tuple(theirs.train()(torch.tensor(x)).shape)


def test_bad_input_names_expected_and_given():
    for layer in (nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Dropout):
        with pytest.raises(ValueError, match=rf"{layer.__name__}: probability must be in \[0, 1\], got 1.5"):
            layer(1.5)
        with pytest.raises(ValueError, match=r"probability must be in \[0, 1\], got -0.1"):
            layer(-0.1)
    for fn in (F.dropout1d, F.dropout2d, F.alpha_dropout):
        with pytest.raises(ValueError, match=rf"{fn.__name__}: probability must be in \[0, 1\], got 2"):
            fn(nl.ones(2, 3, 4, 5), 2)
    with pytest.raises(ValueError, match=r"dropout1d: expected a 2-D \(C, L\) or 3-D \(N, C, L\) input, "
                                         r"got shape \(2, 3, 4, 5\)"):
        F.dropout1d(nl.ones(2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"dropout1d: .*got shape \(4,\)"):
        nn.Dropout1d()(nl.ones(4))


def test_doctests_run():
    failures, tried = doctest.testmod(dropout_module, verbose=False)
    assert tried >= 2 and failures == 0
