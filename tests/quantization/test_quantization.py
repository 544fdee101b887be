"""nl.quantization: qparams, quantize/dequantize and fake quantization equal torch's; observers;
dynamic int8 Linear close to float; QAT prepare/convert; int8 checkpoints 4x smaller."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import quantization as Q
from nnlite.autograd import gradcheck


def _torch():
    torch = pytest.importorskip("torch")
    import warnings
    warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
    return torch


def test_quantize_per_tensor_equals_torch():
    torch = _torch()
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32) * 3
    for scale, zp, ours_dt, their_dt in [(0.05, 128, Q.quint8, torch.quint8), (0.02, 0, Q.qint8, torch.qint8),
                                         (0.1, -5, Q.qint8, torch.qint8)]:
        ours = Q.quantize_per_tensor(nl.tensor(x), scale, zp, ours_dt)
        theirs = torch.quantize_per_tensor(torch.from_numpy(x), scale, zp, their_dt)
        np.testing.assert_array_equal(ours.int_repr().numpy(), theirs.int_repr().numpy())
        np.testing.assert_array_equal(ours.dequantize().numpy(), theirs.dequantize().numpy())
        assert ours.q_scale() == pytest.approx(theirs.q_scale()) and ours.q_zero_point() == theirs.q_zero_point()


def test_quantize_per_channel_equals_torch():
    torch = _torch()
    w = (np.random.default_rng(1).standard_normal((6, 10)) * np.arange(1, 7)[:, None]).astype(np.float32)
    obs = Q.PerChannelMinMaxObserver(ch_axis=0, dtype=Q.qint8, qscheme=Q.per_channel_symmetric)
    obs(nl.tensor(w))
    scale, zp = obs.calculate_qparams()
    tobs = torch.ao.quantization.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8,
                                                         qscheme=torch.per_channel_symmetric)
    tobs(torch.from_numpy(w))
    tscale, tzp = tobs.calculate_qparams()
    np.testing.assert_array_equal(scale.numpy(), tscale.numpy())
    np.testing.assert_array_equal(zp.numpy(), tzp.numpy())
    ours = Q.quantize_per_channel(nl.tensor(w), scale, zp, 0, Q.qint8)
    theirs = torch.quantize_per_channel(torch.from_numpy(w), tscale, tzp, 0, torch.qint8)
    np.testing.assert_array_equal(ours.int_repr().numpy(), theirs.int_repr().numpy())
    np.testing.assert_array_equal(ours.dequantize().numpy(), theirs.dequantize().numpy())
    assert ours.q_per_channel_axis() == 0


@pytest.mark.parametrize("name,kwargs", [("MinMaxObserver", {}),
                                         ("MinMaxObserver", dict(qscheme="per_tensor_symmetric", dtype="qint8")),
                                         ("MinMaxObserver", dict(reduce_range=True)),
                                         ("MovingAverageMinMaxObserver", dict(averaging_constant=0.1))])
def test_observers_equal_torch(name, kwargs):
    torch = _torch()
    ours_kw = {k: getattr(Q, v) if isinstance(v, str) else v for k, v in kwargs.items()}
    theirs_kw = {k: getattr(torch, v) if isinstance(v, str) else v for k, v in kwargs.items()}
    ours, theirs = getattr(Q, name)(**ours_kw), getattr(torch.ao.quantization, name)(**theirs_kw)
    rng = np.random.default_rng(2)
    for i in range(4):
        x = (rng.standard_normal(200) * (i + 1) + i).astype(np.float32)
        ours(nl.tensor(x))
        theirs(torch.from_numpy(x))
    (s, z), (ts, tz) = ours.calculate_qparams(), theirs.calculate_qparams()
    np.testing.assert_allclose(s.numpy(), ts.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(z.numpy(), tz.numpy())


def test_percentile_and_mse_observers_clip_the_tails():
    rng = np.random.default_rng(3)
    x = rng.laplace(size=20000).astype(np.float32)       # heavy tails: a few large values
    four_bits = dict(quant_min=0, quant_max=15)             # few codes: where the range matters most
    minmax, pct = Q.MinMaxObserver(**four_bits), Q.PercentileObserver(99.9, **four_bits)
    mse = Q.MSEObserver(**four_bits)
    for obs in (minmax, pct, mse):
        obs(nl.tensor(x))

    def error(obs):
        s, z = (t.numpy() for t in obs.calculate_qparams())
        back = (np.clip(np.rint(x / s) + z, 0, 15) - z) * s
        return float(np.mean((back - x) ** 2))
    assert float(pct.calculate_qparams()[0]) < float(minmax.calculate_qparams()[0]) / 1.5
    # the MSE search includes the min-max range, so it can only do better; here clearly better
    assert error(mse) < 0.7 * error(minmax) and error(mse) <= 1.0001 * error(pct)
    with pytest.raises(RuntimeError, match="no values observed"):
        Q.MinMaxObserver().calculate_qparams()


def test_fake_quantize_equals_torch_forward_and_straight_through_gradient():
    torch = _torch()
    x = np.linspace(-3, 3, 101).astype(np.float32)
    ours_x = nl.tensor(x, requires_grad=True)
    out = Q.fake_quantize_per_tensor_affine(ours_x, 0.02, 10, 0, 255)
    out.backward(nl.ones(101))
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.fake_quantize_per_tensor_affine(tx, 0.02, 10, 0, 255)
    tout.backward(torch.ones(101))
    np.testing.assert_array_equal(out.detach().numpy(), tout.detach().numpy())
    np.testing.assert_array_equal(ours_x.grad.numpy(), tx.grad.numpy())
    assert 0 < ours_x.grad.numpy().sum() < 101                 # clipped values get no gradient
    w = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    s, z = np.array([0.01, 0.02, 0.03, 0.04], np.float32), np.zeros(4, np.int64)
    ours = Q.fake_quantize_per_channel_affine(nl.tensor(w), s, z, 0, -128, 127)
    theirs = torch.fake_quantize_per_channel_affine(torch.from_numpy(w), torch.from_numpy(s),
                                                    torch.from_numpy(z).int(), 0, -128, 127)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_straight_through_gradient_is_identity_inside_the_range():
    # Away from rounding ties the STE gradient is exactly the identity's: check it by
    # comparing with a function whose true gradient is the identity (x itself).
    x = nl.tensor(np.random.default_rng(4).uniform(-1, 1, 20), requires_grad=True)
    fq = Q.fake_quantize_per_tensor_affine(x, 0.5, 0, -128, 127)
    g, = nl.grad(fq.sum(), [x])
    np.testing.assert_array_equal(g.numpy(), np.ones(20))
    assert gradcheck(lambda t: t * 2.0, [x])


def _mlp(seed=0):
    nl.manual_seed(seed)
    return nl.nn.Sequential(nl.nn.Linear(40, 64), nl.nn.ReLU(), nl.nn.Linear(64, 64), nl.nn.ReLU(),
                            nl.nn.Linear(64, 5))


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_quantize_dynamic_close_to_float(backend):
    model = _mlp()
    x = nl.randn(32, 40)
    want = model(x).detach().numpy()
    old = nl.get_backend()
    nl.set_backend(backend)
    try:
        qmodel = Q.quantize_dynamic(model, {nl.nn.Linear}, dtype=nl.qint8)
        got = qmodel(x).numpy()
    finally:
        nl.set_backend(old)
    assert type(model[0]) is nl.nn.Linear                       # not in place by default
    assert all(type(qmodel[i]) is Q.QuantizedLinear for i in (0, 2, 4))
    rel = np.abs(got - want).max() / np.abs(want).max()
    assert rel < 0.03
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.9
    # the layer is the formula: dequantized weight times a quantize-dequantized input,
    # the input on 7-bit codes by default (0..127, as torch's dynamic Linear)
    layer = qmodel[0]
    assert layer.reduce_range
    xs = x.numpy()
    s, z = Q.calculate_qparams(xs.min(), xs.max(), quant_min=0, quant_max=127)
    xq = Q.quantize_per_tensor(x, float(s), int(z), Q.quint8).dequantize().numpy()
    ref = xq @ layer.dequantized_weight().numpy().T + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), ref, rtol=1e-4, atol=1e-4)


def test_quantize_dynamic_default_matches_torch_dynamic_linear():
    """Both quantize activations to 7 bits per batch; per-tensor weights give torch's numbers."""
    torch = pytest.importorskip("torch")
    nl.manual_seed(0)
    model = nl.nn.Sequential(nl.nn.Linear(40, 32))
    x = nl.randn(16, 40)
    ours = Q.quantize_dynamic(model)(x).numpy()
    t_model = torch.nn.Sequential(torch.nn.Linear(40, 32))
    t_model.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    theirs = torch.ao.quantization.quantize_dynamic(t_model, {torch.nn.Linear}, dtype=torch.qint8)
    got = theirs(torch.tensor(x.numpy())).numpy()
    want = model(x).detach().numpy()
    ours8 = Q.quantize_dynamic(model, reduce_range=False)(x).numpy()
    # torch's weights are per tensor, ours per row, so the outputs differ by weight rounding;
    # 8-bit activation codes would differ from torch's 7-bit ones by far more
    assert np.abs(ours - want).max() <= 1.5 * np.abs(got - want).max()
    assert np.abs(ours - got).max() < 0.5 * np.abs(ours8 - got).max()


def test_quantized_linear_leading_dims_and_errors():
    layer = Q.QuantizedLinear.from_float(nl.nn.Linear(6, 3))
    assert layer(nl.randn(2, 4, 6)).shape == (2, 4, 3)
    with pytest.raises(ValueError, match=r"QuantizedLinear\(in_features=6\): input has 5 features"):
        layer(nl.randn(2, 5))
    with pytest.raises(ValueError, match="dtype must be nl.qint8 or nl.float16"):
        Q.quantize_dynamic(_mlp(), dtype=nl.quint8)
    with pytest.raises(ValueError, match="only nn.Linear"):
        Q.quantize_dynamic(_mlp(), {nl.nn.Conv2d})


def test_int8_checkpoint_is_4x_smaller_and_round_trips(tmp_path):
    model = nl.nn.Sequential(nl.nn.Linear(256, 256), nl.nn.ReLU(), nl.nn.Linear(256, 256))
    qmodel = Q.quantize_dynamic(model)
    ratio = Q.model_size_bytes(model) / Q.model_size_bytes(qmodel)
    assert 3.5 < ratio <= 4.0
    path = tmp_path / "q.safetensors"
    nl.io.save_state_dict(qmodel.state_dict(), path)
    loaded = nl.io.load_state_dict(path)
    assert loaded["0.weight_int8"].dtype == np.int8 and loaded["0.weight_scale"].dtype == np.float32
    fresh = Q.quantize_dynamic(nl.nn.Sequential(nl.nn.Linear(256, 256), nl.nn.ReLU(), nl.nn.Linear(256, 256)))
    fresh.load_state_dict(loaded)
    x = nl.randn(3, 256)
    np.testing.assert_array_equal(fresh(x).numpy(), qmodel(x).numpy())


def test_qat_trains_and_converts_to_matching_int8():
    nl.manual_seed(0)
    rng = np.random.default_rng(0)
    x = nl.tensor(rng.standard_normal((256, 40)).astype(np.float32))
    y = nl.tensor(rng.integers(0, 5, 256))
    model = _mlp()
    qat = Q.prepare_qat(model)
    assert all(type(qat[i]) is Q.QATLinear for i in (0, 2, 4))
    assert qat[0].weight is not model[0].weight          # a copy by default...
    shared = Q.prepare_qat(model, inplace=True)
    assert shared[0].weight is not None and type(model[0]) is Q.QATLinear   # ...or in place
    opt = nl.optim.Adam(qat.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = nl.nn.functional.cross_entropy(qat(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.8 * losses[0]
    for m in qat.modules():
        if isinstance(m, Q.FakeQuantize):
            m.enable_observer(False)
    qat.eval()
    fake = qat(x).detach().numpy()
    int8 = Q.convert(qat)
    assert all(type(int8[i]) is Q.QuantizedLinear and not int8[i].dynamic for i in (0, 2, 4))
    real = int8(x).numpy()
    # layer by layer, the int8 layers compute what the fake-quantized ones simulated (up to
    # float rounding); end to end, those tiny differences move a few activations to the next code
    h = x
    for i in range(5):
        np.testing.assert_allclose(int8[i](h).detach().numpy(), qat[i](h).detach().numpy(), rtol=1e-5, atol=1e-5)
        h = qat[i](h)
    assert np.abs(real - fake).max() < 0.05 * np.abs(fake).max()
    assert (real.argmax(1) == fake.argmax(1)).mean() > 0.95


def test_quantized_linear_repacks_codes_changed_after_a_call():
    """The layer keeps its codes packed for the kernel; codes loaded in place (load_state_dict
    copies into the buffer) or replaced after a call are packed again, not served stale."""
    make = lambda seed: Q.quantize_dynamic(nl.nn.Sequential(nl.nn.Linear(40, 12)))
    nl.manual_seed(0)
    layer = make(0)
    nl.manual_seed(1)
    other = make(1)
    x = nl.randn(5, 40)
    before = layer(x).numpy()
    layer.load_state_dict(other.state_dict())
    after = layer(x).numpy()
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, other(x).numpy())
    layer[0].weight_int8.data = np.zeros_like(layer[0].weight_int8.data)     # a new array
    np.testing.assert_array_equal(layer(x).numpy(), np.broadcast_to(layer[0].bias.data, (5, 12)))


def test_int8_model_round_trips_through_a_training_checkpoint(tmp_path):
    make = lambda: Q.quantize_dynamic(nl.nn.Sequential(nl.nn.Linear(64, 64), nl.nn.ReLU(), nl.nn.Linear(64, 4)))
    qmodel, other = make(), make()
    path = tmp_path / "int8.safetensors"
    nl.save_checkpoint(path, model=qmodel)
    nl.load_checkpoint(path, model=other)
    assert other[0].weight_int8.dtype == np.int8
    x = nl.randn(3, 64)
    np.testing.assert_array_equal(other(x).numpy(), qmodel(x).numpy())


def test_float16_dynamic_halves_the_size_and_computes_in_float32():
    model = _mlp()
    half = Q.quantize_dynamic(model, {nl.nn.Linear}, dtype=nl.float16)
    assert all(type(half[i]) is Q.Float16Linear for i in (0, 2, 4))
    assert half[0].weight.dtype == np.float16 and half.state_dict()["0.bias"].dtype == np.float16
    assert 1.9 < Q.model_size_bytes(model) / Q.model_size_bytes(half) <= 2.0
    x = nl.randn(16, 40)
    out = half(x)
    assert out.dtype == np.float32
    # exactly the float32 model with its weights rounded to float16
    rounded = _mlp()
    rounded.load_state_dict({k: v.numpy().astype(np.float16) for k, v in model.state_dict().items()})
    np.testing.assert_allclose(out.numpy(), rounded(x).detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out.numpy(), model(x).detach().numpy(), rtol=1e-2, atol=1e-3)
    with pytest.raises(ValueError, match=r"Float16Linear\(in_features=40\): input has 3 features"):
        half[0](nl.randn(2, 3))


def test_half_model_keeps_float16_in_checkpoints_and_runs_through_float16_linear(tmp_path):
    model = _mlp()
    x = nl.randn(4, 40)
    want = model(x).detach().numpy()
    model.half()
    assert all(p.dtype == np.float16 for p in model.parameters())
    path = tmp_path / "half.safetensors"
    nl.io.save_state_dict(model.state_dict(), path)
    loaded = nl.io.load_state_dict(path)
    assert all(v.dtype == np.float16 for v in loaded.values())
    runnable = Q.quantize_dynamic(model, {nl.nn.Linear}, dtype=nl.float16)
    np.testing.assert_allclose(runnable(x).numpy(), want, rtol=1e-2, atol=2e-3)
    np.testing.assert_allclose(model.float()(x).detach().numpy(), want, rtol=1e-2, atol=2e-3)


def test_int8_model_gives_the_same_bytes_on_both_backends():
    pytest.importorskip("nnlite._kernels._int8")
    qmodel = Q.quantize_dynamic(_mlp())
    x = nl.randn(9, 40)
    old = nl.get_backend()
    try:
        nl.set_backend("cython")
        compiled = qmodel(x).numpy().tobytes()
        nl.set_backend("reference")
        twin = qmodel(x).numpy().tobytes()
    finally:
        nl.set_backend(old)
    assert compiled == twin


def test_fused_linear_relu_quantizes_to_one_kernel_call_with_the_same_output():
    model = _mlp()
    fused = Q.fuse_modules(model, [["0", "1"], ["2", "3"]])
    assert [type(m).__name__ for m in fused] == ["LinearReLU", "Identity", "LinearReLU", "Identity", "Linear"]
    assert type(model[0]) is nl.nn.Linear                       # not in place by default
    x = nl.randn(17, 40)
    np.testing.assert_array_equal(fused(x).detach().numpy(), model(x).detach().numpy())
    qfused, qplain = Q.quantize_dynamic(fused), Q.quantize_dynamic(model)
    assert type(qfused[0]) is Q.QuantizedLinearReLU and type(qfused[4]) is Q.QuantizedLinear
    # the ReLU inside the kernel's epilogue gives what the separate ReLU module gave
    np.testing.assert_array_equal(qfused(x).numpy(), qplain(x).numpy())
    assert (qfused[0](x).numpy() >= 0).all() and (qplain[0](x).numpy() < 0).any()
    assert list(qfused.state_dict()) == list(qplain.state_dict())
    # an explicit {nn.Linear} leaves the pair unfused: its Linear is quantized, its ReLU stays a module
    partly = Q.quantize_dynamic(fused, {nl.nn.Linear})
    assert type(partly[0]) is Q.LinearReLU and type(partly[0][0]) is Q.QuantizedLinear
    np.testing.assert_array_equal(partly(x).numpy(), qplain(x).numpy())
    # float16 has no fused kernel: the pair keeps its ReLU module
    half = Q.quantize_dynamic(fused, dtype=nl.float16)
    assert type(half[0][0]) is Q.Float16Linear and type(half[0][1]) is nl.nn.ReLU


def test_fuse_modules_errors():
    model = _mlp()
    with pytest.raises(ValueError, match=r"only \[nn.Linear, nn.ReLU\] pairs .* got \['ReLU', 'Linear'\]"):
        Q.fuse_modules(model, ["1", "2"])
    with pytest.raises(AttributeError, match="no submodule '9'"):
        Q.fuse_modules(model, [["0", "9"]])
    with pytest.raises(TypeError, match="LinearReLU: expected an nn.Linear and an nn.ReLU, got ReLU and ReLU"):
        Q.LinearReLU(nl.nn.ReLU(), nl.nn.ReLU())
    with pytest.raises(TypeError, match="list of module names or of such lists, got the string '01'"):
        Q.fuse_modules(model, "01")   # not read as the names '0' and '1'
    with pytest.raises(TypeError, match=r"each group must be a list of module names \(str\), got \[0, 1\]"):
        Q.fuse_modules(model, [[0, 1]])
    fused = Q.fuse_modules(model, ["0", "1"], inplace=True)
    assert fused is model and type(model[0]) is Q.LinearReLU


def test_from_float_names_a_weight_scale_that_is_not_one_positive_scale_per_row():
    linear = nl.nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"QuantizedLinear.from_float: weight_scale needs 3 positive finite "
                                         r"entries \(one per output row\), got \[0.5\]"):
        Q.QuantizedLinear.from_float(linear, weight_scale=[0.5])
    with pytest.raises(ValueError, match=r"QuantizedLinearReLU.from_float: .* got \[0.5, 0.0, 0.5\]"):
        Q.QuantizedLinearReLU.from_float(linear, weight_scale=[0.5, 0.0, 0.5])
    layer = Q.QuantizedLinear.from_float(linear, weight_scale=[0.5, 0.25, 0.5])
    np.testing.assert_array_equal(layer.weight_scale.data, np.float32([0.5, 0.25, 0.5]))


def test_dynamic_int8_rejects_non_finite_input():
    layer = Q.QuantizedLinear.from_float(nl.nn.Linear(6, 3))
    x = np.zeros((2, 6), np.float32)
    x[1, 4] = np.nan
    for backend in ("cython", "reference"):
        old = nl.get_backend()
        nl.set_backend(backend)
        try:
            with pytest.raises(ValueError, match="dynamic quantization needs a finite input"):
                layer(nl.tensor(x))
        finally:
            nl.set_backend(old)


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_reduce_range_quantizes_activations_to_7_bits(backend):
    model = _mlp()
    x = nl.randn(32, 40)
    want = model(x).detach().numpy()
    old = nl.get_backend()
    nl.set_backend(backend)
    try:
        q7 = Q.quantize_dynamic(Q.fuse_modules(model, [["0", "1"]]), reduce_range=True)
        got = q7(x).numpy()
        layer = q7[2]
        assert layer.reduce_range and "reduce_range=True" in repr(layer)
        # the fused first layer is the unfused one followed by a ReLU
        h = np.maximum(Q.QuantizedLinear.from_float(model[0], reduce_range=True)(x).numpy(), 0)
        np.testing.assert_array_equal(q7[0](x).numpy(), h)
        # a layer is the formula with codes 0..127: quint8 qparams with quant_max 127
        s, z = Q.calculate_qparams(h.min(), h.max(), quant_min=0, quant_max=127)
        hq = np.clip(np.rint(h / s) + z, 0, 127)
        ref = ((hq - z) * s) @ layer.dequantized_weight().numpy().T + layer.bias.numpy()
        np.testing.assert_allclose(layer(nl.tensor(h)).numpy(), ref, rtol=1e-4, atol=1e-4)
        # and coarser than the 8-bit layer's codes, which the same formula with 255 gives
        s8, z8 = Q.calculate_qparams(h.min(), h.max())
        ref8 = ((np.clip(np.rint(h / s8) + z8, 0, 255) - z8) * s8) @ layer.dequantized_weight().numpy().T
        full = Q.QuantizedLinear.from_float(model[2])(nl.tensor(h)).numpy()
        np.testing.assert_allclose(full, ref8 + layer.bias.numpy(), rtol=1e-4, atol=1e-4)
    finally:
        nl.set_backend(old)
    rel = np.abs(got - want).max() / np.abs(want).max()
    assert rel < 0.05 and (got.argmax(1) == want.argmax(1)).mean() >= 0.9
    with pytest.raises(ValueError, match="reduce_range applies to dynamic layers only"):
        Q.QuantizedLinear(4, 2, dynamic=False, reduce_range=True)
    with pytest.raises(ValueError, match="reduce_range applies to dtype=nl.qint8 only"):
        Q.quantize_dynamic(model, dtype=nl.float16, reduce_range=True)


def test_prepare_qat_draws_no_random_numbers_and_keeps_the_layers_mode():
    """QATLinear.from_float discards its constructor's initial weights: drawing them from the global
    generator would change every later random number (dropout, data order)."""
    model = nl.nn.Sequential(nl.nn.Linear(4, 3), nl.nn.ReLU(), nl.nn.Linear(3, 2)).eval()
    state = nl.random.get_rng_state()
    expected = nl.randn(5).data
    nl.random.set_rng_state(state)
    qat = Q.prepare_qat(model)
    np.testing.assert_array_equal(nl.randn(5).data, expected)
    assert isinstance(qat[0], Q.QATLinear) and not any(m.training for m in qat.modules())


def test_copies_of_observers_and_qat_models_still_quantize():
    """nl.qint8 and the schemes are compared by identity: a deep copy of an observer (a model
    copied for convert, for an average of weights) must hold the same objects, as pickle must."""
    import copy
    import pickle
    observer = Q.PerChannelMinMaxObserver(dtype=nl.qint8, qscheme=Q.per_channel_symmetric)
    observer(nl.randn(3, 5))
    copied = copy.deepcopy(observer)
    assert copied.dtype is nl.qint8 and copied.qscheme is Q.per_channel_symmetric
    for a, b in zip(copied.calculate_qparams(), observer.calculate_qparams()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert pickle.loads(pickle.dumps(nl.quint8)) is nl.quint8
    qat = Q.prepare_qat(nl.nn.Sequential(nl.nn.Linear(4, 3)))
    x = nl.randn(2, 4)
    np.testing.assert_array_equal(copy.deepcopy(qat)(x).detach().numpy(), qat(x).detach().numpy())


def test_convert_observes_the_weight_the_last_step_left():
    """As torch's convert: the weight qparams come from the weight as it is now, not as the last
    forward pass saw it (the optimizer step after it would be clipped), nor missing (never run)."""
    nl.manual_seed(0)
    qat = Q.prepare_qat(nl.nn.Sequential(nl.nn.Linear(6, 4)))
    never_run = Q.convert(qat)[0]
    weight = qat[0].weight.data
    step = never_run.weight_scale.data[:, None]
    assert np.abs(never_run.dequantized_weight().numpy() - weight).max() <= 0.5 * step.max() + 1e-7
    qat(nl.randn(3, 6))
    with nl.no_grad():
        qat[0].weight.data *= 3.0      # what a large optimizer step would leave
    converted = Q.convert(qat)[0]
    error = np.abs(converted.dequantized_weight().numpy() - qat[0].weight.data)
    assert (error <= 0.5 * converted.weight_scale.data[:, None] + 1e-6).all()


def test_swapped_layers_keep_their_forward_hooks():
    """As torch's swap_module: a hook on a Linear still runs on the layer that replaces it."""
    model = nl.nn.Sequential(nl.nn.Linear(4, 3), nl.nn.ReLU(), nl.nn.Linear(3, 2))
    seen = []
    model[0].register_forward_pre_hook(lambda module, args: seen.append(("pre", type(module).__name__)))
    model[2].register_forward_hook(lambda module, args, output: seen.append(("post", output.shape)))
    x = nl.randn(5, 4)
    for swapped in (Q.quantize_dynamic(model), Q.quantize_dynamic(model, dtype=np.float16),
                    Q.convert(Q.prepare_qat(model))):
        seen.clear()
        swapped(x)
        assert seen == [("pre", type(swapped[0]).__name__), ("post", (5, 2))]
    seen.clear()
    Q.quantize_dynamic(model[0])(x)   # the model itself swapped
    assert seen == [("pre", "QuantizedLinear")]
    from nnlite.nn.utils import prune
    pruned = prune.l1_unstructured(nl.nn.Linear(4, 3), "weight", amount=0.5)
    quantized = Q.quantize_dynamic(pruned)   # made from the pruned weight: the pruning hook stays behind
    assert not quantized._forward_pre_hooks and (quantized.weight_int8.data == 0).sum() == 6


def test_swapped_and_fused_layers_keep_their_hooks_options():
    """A hook registered with_kwargs (or always_call) is called the same way after the swap or fusion."""
    model = nl.nn.Sequential(nl.nn.Linear(4, 3), nl.nn.ReLU(), nl.nn.Linear(3, 2))
    seen = []
    model[0].register_forward_pre_hook(lambda module, args, kwargs: seen.append(("pre", kwargs)),
                                       with_kwargs=True)
    model[1].register_forward_hook(lambda module, args, kwargs, output: seen.append(("relu", kwargs)),
                                   with_kwargs=True, always_call=True)
    model[2].register_forward_hook(lambda module, args, kwargs, output: seen.append(("post", kwargs)),
                                   with_kwargs=True)
    x = nl.randn(2, 4)
    for changed in (Q.quantize_dynamic(model), Q.quantize_dynamic(Q.fuse_modules(model, [["0", "1"]]))):
        seen.clear()
        changed(x)
        assert seen == [("pre", {}), ("relu", {}), ("post", {})]
    fused = Q.fuse_modules(model, [["0", "1"]])
    assert fused[0]._forward_hooks_always_called == set(fused[0]._forward_hooks)


def test_per_channel_observer_passes_over_an_empty_batch_as_torch_does():
    """An input without values leaves the ranges as they were (it failed inside np.min or reshape)."""
    torch = _torch()
    from torch.ao.quantization import PerChannelMinMaxObserver
    ours, theirs = Q.PerChannelMinMaxObserver(ch_axis=0), PerChannelMinMaxObserver(ch_axis=0)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    for batch in (np.zeros((3, 0), np.float32), x, np.zeros((0, 4), np.float32)):
        ours(nl.tensor(batch))
        theirs(torch.tensor(batch))
    np.testing.assert_array_equal(ours.min_val.data, theirs.min_val.numpy())
    np.testing.assert_array_equal(ours.max_val.data, theirs.max_val.numpy())


def test_fusing_moves_the_pairs_hooks_to_the_fused_module_as_torch_does():
    """The Linear's pre-hooks and the ReLU's forward hooks move to the LinearReLU, so they still
    run once the pair is quantized as one layer (they were left inside and lost)."""
    model = nl.nn.Sequential(nl.nn.Linear(4, 3), nl.nn.ReLU(), nl.nn.Linear(3, 2))
    seen = []
    model[0].register_forward_pre_hook(lambda module, args: seen.append(("pre", type(module).__name__)))
    model[1].register_forward_hook(lambda module, args, output: seen.append(("post", type(module).__name__)))
    fused = Q.fuse_modules(model, [["0", "1"]])
    fused(nl.randn(2, 4))
    assert seen == [("pre", "LinearReLU"), ("post", "LinearReLU")]
    seen.clear()
    Q.quantize_dynamic(fused)(nl.randn(2, 4))
    assert seen == [("pre", "QuantizedLinearReLU"), ("post", "QuantizedLinearReLU")]
    assert model[0]._forward_pre_hooks and model[1]._forward_hooks   # the original is not fused in place


def test_zero_size_linears_quantize_to_layers_of_the_same_function():
    """A weight without entries has no range to observe (from_float stopped with 'no values
    observed yet'); its layer still maps a batch to its bias, or to no outputs."""
    x = nl.randn(2, 4)
    for layer, inputs in ((nl.nn.Linear(4, 0), x), (nl.nn.Linear(0, 3), nl.zeros(2, 0))):
        quantized = Q.quantize_dynamic(nl.nn.Sequential(layer))
        np.testing.assert_array_equal(quantized(inputs).numpy(), layer(inputs).detach().numpy())


def test_layers_fused_by_nn_fuse_linear_relu_are_quantized_not_left_in_float():
    """nn.fuse_linear_relu's LinearReLU is a Linear applying its ReLU itself: quantize_dynamic left
    it in float32 without a word; it becomes a QuantizedLinearReLU (float16 has no fused layer)."""
    model = nl.nn.Sequential(nl.nn.Linear(4, 3), nl.nn.ReLU(), nl.nn.Linear(3, 2))
    fused = nl.nn.fuse_linear_relu(model)
    x = nl.randn(5, 4)
    int8 = Q.quantize_dynamic(fused)
    assert [type(m).__name__ for m in int8] == ["QuantizedLinearReLU", "Identity", "QuantizedLinear"]
    np.testing.assert_allclose(int8(x).numpy(), model(x).detach().numpy(), atol=0.02)
    assert int8[0](x).numpy().min() == 0.0
    half = Q.quantize_dynamic(fused, dtype=np.float16)
    assert [type(m).__name__ for m in half] == ["LinearReLU", "Identity", "Float16Linear"]
    with pytest.raises(ValueError, match="float16 has no layer for nn.fuse_linear_relu's LinearReLU"):
        Q.quantize_dynamic(fused, {nl.nn.LinearReLU}, dtype=np.float16)
    with pytest.raises(ValueError, match=r"prepare_qat: \['0'\] are nn.fuse_linear_relu's LinearReLU layers"):
        Q.prepare_qat(fused)
