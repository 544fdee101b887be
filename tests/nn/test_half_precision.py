"""float16 storage and inference: ``Module.half()`` / ``.to(nl.float16)``, a forward pass, checkpoints.

The kernels compute in float32; an operation on float16 arrays widens them, computes,
and rounds its output to float16 (``autograd._forward_in_float32``).
"""
import numpy as np
import pytest

import nnlite as nl
import nnlite.nn.functional as F
from nnlite.recipes import MNIST1DCNN, MNIST1DMLP, CharTransformer

EPS16 = float(np.finfo(np.float16).eps)   # 2**-10


def _half_and_float_twin(make):
    """A half model, and a float32 model holding exactly its (float16-rounded) weights."""
    nl.manual_seed(0)
    half = make().eval().half()
    nl.manual_seed(0)
    wide = make().eval()
    wide.load_state_dict({k: v.data.astype(np.float32) if v.data.dtype == np.float16 else v.data
                          for k, v in half.state_dict().items()})
    return half, wide


def _f16(rng, *shape):
    return rng.standard_normal(shape).astype(np.float16)


@pytest.mark.parametrize("case", ["linear", "conv1d", "conv2d", "layer_norm", "softmax", "gelu", "embedding",
                                  "max_pool2d", "batch_norm"])
def test_one_operation_equals_float32_rounded_once(rng, case):
    """Each kernel-backed operation: exactly the float32 result on the same values, rounded to float16."""
    a, b, c = _f16(rng, 4, 6), _f16(rng, 5, 6), _f16(rng, 5)
    calls = {
        "linear": lambda t: F.linear(t(a), t(b), t(c)),
        "conv1d": lambda t: F.conv1d(t(_x3), t(_w3), t(c[:4]), padding=1),
        "conv2d": lambda t: F.conv2d(t(_x4), t(_w4), None, stride=2),
        "layer_norm": lambda t: F.layer_norm(t(a), (6,), t(a[0]), t(a[1])),
        "softmax": lambda t: F.softmax(t(a), dim=-1),
        "gelu": lambda t: F.gelu(t(a)),
        "embedding": lambda t: F.embedding(nl.tensor(np.array([3, 0, 3])), t(b)),
        "max_pool2d": lambda t: F.max_pool2d(t(_x4), 2),
        "batch_norm": lambda t: F.batch_norm(t(_x3), t(_b3 * 0), t(np.abs(_b3) + 1), training=False),
    }
    _x3, _w3, _b3 = _f16(rng, 2, 3, 7), _f16(rng, 4, 3, 3), _f16(rng, 3)
    _x4, _w4 = _f16(rng, 2, 3, 6, 6), _f16(rng, 4, 3, 3, 3)
    with nl.no_grad():
        half = calls[case](lambda arr: nl.tensor(arr))
        wide = calls[case](lambda arr: nl.tensor(arr.astype(np.float32)))
    assert half.dtype == nl.float16 and wide.dtype == nl.float32
    assert half.data.tobytes() == wide.data.astype(np.float16).tobytes()


@pytest.mark.parametrize("name", ["mlp", "cnn", "char_transformer"])
def test_half_models_give_the_float32_outputs_to_float16_precision(rng, name):
    """Every operation rounds its output, so a whole model is within a few float16 steps of float32."""
    make, x = {
        "mlp": (MNIST1DMLP, rng.standard_normal((16, 40))),
        "cnn": (MNIST1DCNN, rng.standard_normal((16, 40))),
        "char_transformer": (lambda: CharTransformer(30, block_size=16), rng.integers(0, 30, (4, 16))),
    }[name]
    half, wide = _half_and_float_twin(make)
    assert all(p.dtype == nl.float16 for p in half.parameters())
    if x.dtype.kind == "f":
        x = x.astype(np.float16)
    with nl.no_grad():
        got = half(nl.tensor(x))
        want = wide(nl.tensor(x.astype(np.float32) if x.dtype.kind == "f" else x))
    assert got.dtype == nl.float16
    want = want.data.astype(np.float16).astype(np.float32)
    error = np.abs(got.data.astype(np.float32) - want).max()
    assert error <= 4 * EPS16 * np.abs(want).max(), (name, error / EPS16 / np.abs(want).max())
    assert (got.data.argmax(-1) == want.argmax(-1)).mean() >= 0.9


def test_to_float16_is_half_and_a_float32_input_is_refused(rng):
    nl.manual_seed(0)
    model = MNIST1DMLP().to(nl.float16)
    nl.manual_seed(0)
    halved = MNIST1DMLP().half()
    assert {p.dtype for p in model.parameters()} == {nl.float16}
    for a, b in zip(model.parameters(), halved.parameters()):
        assert a.data.tobytes() == b.data.tobytes()
    x = rng.standard_normal((3, 40))
    with nl.no_grad():
        model(nl.tensor(x.astype(np.float16)))
        with pytest.raises(TypeError, match=r"linear: input is float32 but weight is float16.*x.to\(model"):
            model(nl.tensor(x.astype(np.float32)))   # as in PyTorch: the input's dtype must match


def test_tensor_half_and_bfloat16_cast_as_module_half_does(rng):
    x = nl.tensor(rng.standard_normal(5).astype(np.float32), requires_grad=True)
    h = x.half()
    assert h.dtype == nl.float16 and h.data.tobytes() == x.data.astype(np.float16).tobytes()
    h.float().sum().backward()   # a differentiable cast, as .float() and .double() are
    np.testing.assert_array_equal(x.grad.data, np.ones(5, np.float32))
    pytest.importorskip("ml_dtypes")
    assert x.bfloat16().dtype == nl.bfloat16


def test_backward_through_a_half_model_is_a_clear_error(rng):
    nl.manual_seed(0)
    model = MNIST1DMLP().half()
    out = model(nl.tensor(_f16(rng, 2, 40)))   # gradients enabled: the graph is recorded
    assert out.grad_fn.name == "Float16LinearBackward"
    with pytest.raises(RuntimeError, match=r"Linear: its inputs were float16.*model\.float\(\)"):
        out.sum().backward()


def test_batch_norm_in_training_updates_float16_running_statistics(rng):
    nl.manual_seed(0)
    bn = nl.nn.BatchNorm1d(3).half()
    x = _f16(rng, 8, 3) + np.float16(2)
    with nl.no_grad():
        bn(nl.tensor(x))
    assert bn.running_mean.dtype == nl.float16
    want = (0.1 * x.astype(np.float32).mean(0)).astype(np.float16)
    np.testing.assert_array_equal(bn.running_mean.data, want)


def test_other_dtype_errors_are_unchanged():
    x64, w32 = np.ones((1, 2, 4, 4)), np.ones((3, 2, 3, 3), np.float32)
    with pytest.raises(TypeError, match="got input float64 and weight float32") as raised:
        F.conv2d(nl.tensor(x64), nl.tensor(w32))
    assert not getattr(raised.value, "__notes__", None)   # no float16 operand: not retried
    with pytest.raises(TypeError, match="share one dtype, got x float16, weight float64"):
        F.conv2d(nl.tensor(x64.astype(np.float16)), nl.tensor(w32.astype(np.float64)))


def test_checkpoints_keep_float16(rng, tmp_path):
    nl.manual_seed(0)
    model = MNIST1DCNN().half()
    path = tmp_path / "half.ckpt"
    nl.save_checkpoint(path, model)
    nl.manual_seed(1)
    restored = MNIST1DCNN().half()
    nl.load_checkpoint(path, restored)
    for (name, a), b in zip(model.state_dict().items(), restored.state_dict().values()):
        assert b.dtype == a.dtype, name
        assert b.data.tobytes() == a.data.tobytes(), name
    assert {v.dtype for v in restored.state_dict().values() if v.data.dtype.kind == "f"} == {nl.float16}
    x = nl.tensor(_f16(rng, 4, 40))
    with nl.no_grad():
        assert model.eval()(x).data.tobytes() == restored.eval()(x).data.tobytes()


# One rule for every layer, as in PyTorch: a layer's operands share one dtype.
_MIXED_LAYERS = {
    "linear": (lambda: nl.nn.Linear(6, 4), (3, 6)),
    "conv1d": (lambda: nl.nn.Conv1d(3, 4, 3, padding=1), (2, 3, 7)),
    "conv2d": (lambda: nl.nn.Conv2d(3, 4, 3), (2, 3, 6, 6)),
    "batch_norm": (lambda: nl.nn.BatchNorm1d(3).eval(), (4, 3, 5)),
    "layer_norm": (lambda: nl.nn.LayerNorm(6), (3, 6)),
    "group_norm": (lambda: nl.nn.GroupNorm(2, 4), (2, 4, 5)),
    "rms_norm": (lambda: nl.nn.RMSNorm(6), (3, 6)),
    "attention": (lambda: _SelfAttention(nl.nn.MultiheadAttention(8, 2, batch_first=True)), (2, 5, 8)),
}


class _SelfAttention(nl.nn.Module):
    def __init__(self, attention):
        super().__init__()
        self.attention = attention

    def forward(self, x):
        return self.attention(x, x, x, need_weights=False)[0]


@pytest.mark.parametrize("name", sorted(_MIXED_LAYERS))
def test_every_half_layer_refuses_a_float32_input_and_takes_a_float16_one(rng, name):
    make, shape = _MIXED_LAYERS[name]
    nl.manual_seed(0)
    layer = make().half()
    x = rng.standard_normal(shape)
    with nl.no_grad():
        assert layer(nl.tensor(x.astype(np.float16))).dtype == nl.float16
        with pytest.raises(TypeError, match="float32.*float16") as raised:
            layer(nl.tensor(x.astype(np.float32)))
    assert "float16" in str(raised.value) and "float32" in str(raised.value)


@pytest.mark.parametrize("name", ["conv2d", "layer_norm", "attention"])
def test_a_float32_layer_refuses_a_float16_input(rng, name):
    """The rule is symmetric: a float16 input to a float32 layer is an error too, not a float16 result."""
    make, shape = _MIXED_LAYERS[name]
    nl.manual_seed(0)
    layer = make()
    with nl.no_grad(), pytest.raises(TypeError, match="float16.*float32"):
        layer(nl.tensor(rng.standard_normal(shape).astype(np.float16)))


def test_a_half_embedding_then_a_float32_linear_is_refused():
    """Token ids are integers, so a half Embedding takes them; its float16 output then meets the next layer."""
    nl.manual_seed(0)
    embed, head = nl.nn.Embedding(10, 6).half(), nl.nn.Linear(6, 3)
    ids = nl.tensor(np.array([[1, 4, 9]]))
    with nl.no_grad():
        h = embed(ids)
        assert h.dtype == nl.float16
        assert head.half()(h).dtype == nl.float16        # both half: fine
        with pytest.raises(TypeError, match="float16 but weight is float32"):
            head.float()(h)


def test_the_mixed_dtype_error_names_the_operands():
    conv = nl.nn.Conv1d(2, 3, 3).half()
    with nl.no_grad(), pytest.raises(TypeError) as raised:
        conv(nl.tensor(np.ones((1, 2, 5), np.float32)))
    message = str(raised.value)
    assert "float32" in message and "weight float16" in message and "model.float()" in message


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_half_recurrent_layers_give_the_float32_outputs_on_the_rounded_weights(rng, kind):
    def make():
        return getattr(nl.nn, kind)(5, 8, num_layers=2, batch_first=True)
    half, wide = _half_and_float_twin(make)
    assert {p.dtype for p in half.parameters()} == {nl.float16}
    x = _f16(rng, 3, 12, 5)
    with nl.no_grad():
        got, got_state = half(nl.tensor(x))
        want, want_state = wide(nl.tensor(x.astype(np.float32)))
    assert got.dtype == nl.float16
    # Twelve steps of a recurrence each round the hidden state: a few float16 steps on outputs in (-1, 1).
    np.testing.assert_allclose(got.data.astype(np.float32), want.data, atol=16 * EPS16, rtol=0)
    last_got = got_state[0] if kind == "LSTM" else got_state
    last_want = want_state[0] if kind == "LSTM" else want_state
    np.testing.assert_allclose(last_got.data.astype(np.float32), last_want.data, atol=16 * EPS16, rtol=0)
    with nl.no_grad(), pytest.raises(TypeError, match="float32"):
        half(nl.tensor(x.astype(np.float32)))


@pytest.mark.parametrize("op", ["mean", "mean_dim", "var", "std", "norm", "norm_p1", "norm_p3"])
def test_means_variances_and_norms_of_float16_are_taken_in_float32_as_in_torch(rng, op):
    """Summed in float16, ten thousand 1000s overflow to inf (65504 is float16's largest);
    PyTorch takes these reductions in float32 and rounds once, so their results fit."""
    from helpers import torch_or_skip
    torch = torch_or_skip()
    call = {"mean": lambda t: t.mean(), "mean_dim": lambda t: t.mean(1, keepdim=True), "var": lambda t: t.var(0),
            "std": lambda t: t.std(1, correction=0), "norm": lambda t: t.norm(),
            "norm_p1": lambda t: t.norm(p=1, dim=0), "norm_p3": lambda t: t.norm(p=3, dim=1)}[op]
    for a in (np.full((100, 100), 1000, np.float16), _f16(rng, 7, 300) * np.float16(50)):
        ours, theirs = call(nl.tensor(a)), call(torch.tensor(a))
        assert ours.dtype == nl.float16
        np.testing.assert_array_equal(ours.data, theirs.numpy())
