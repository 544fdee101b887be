"""ONNX export: the graph passes onnx.checker and onnxruntime computes what nnlite computes."""
import os
import sys

import numpy as np
import pytest

import nnlite as nl
from nnlite import nn


def _runtime():
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


def _round_trip(model, x, tmp_path, other_batch=None, atol=2e-5, **kwargs):
    """Export, run in onnxruntime on x (and on a batch of another size), compare with nnlite."""
    ort = _runtime()
    path = tmp_path / "model.onnx"
    dynamic = {"input": {0: "batch"}, "output": {0: "batch"}}
    proto = nl.onnx.export(model, x, path, dynamic_axes=dynamic, **kwargs)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model.eval()
    for batch in [x] + ([other_batch] if other_batch is not None else []):
        expected = model(nl.Tensor(batch)).data
        got = session.run(None, {"input": batch})[0]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=atol)
    return proto


def _floats(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_mlp_with_residual(tmp_path):
    from nnlite.recipes import MNIST1DMLP
    nl.manual_seed(0)
    proto = _round_trip(MNIST1DMLP(), _floats(4, 40), tmp_path, other_batch=_floats(9, 40, seed=1))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Gemm") == 3 and "Add" in ops and "Relu" in ops
    names = {i.name for i in proto.graph.initializer}
    assert {"linear1.weight", "linear1.bias", "linear3.weight"} <= names


def test_lenet_and_the_mnist1d_cnn(tmp_path):
    from nnlite.recipes import DigitsCNN, MNIST1DCNN
    nl.manual_seed(0)
    lenet = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    proto = _round_trip(lenet, _floats(2, 1, 28, 28), tmp_path, other_batch=_floats(3, 1, 28, 28, seed=1))
    ops = {n.op_type for n in proto.graph.node}
    assert {"Conv", "AveragePool", "MaxPool", "Gemm", "Tanh"} <= ops
    _round_trip(DigitsCNN(), _floats(2, 1, 8, 8), tmp_path, other_batch=_floats(5, 1, 8, 8, seed=1))
    _round_trip(MNIST1DCNN(), _floats(2, 40), tmp_path, other_batch=_floats(6, 40, seed=1))


def test_char_transformer_with_tied_weights(tmp_path):
    from nnlite.recipes import CharTransformer
    nl.manual_seed(0)
    model = CharTransformer(vocab_size=20, block_size=12, d_model=16, nhead=4, num_layers=2, dim_feedforward=32)
    ids = np.random.default_rng(0).integers(0, 20, (2, 12))
    other = np.random.default_rng(1).integers(0, 20, (3, 12))
    proto = _round_trip(model, ids, tmp_path, other_batch=other)
    # Each encoder layer is one node; both layers call one shared function, which calls the attention's.
    layers = [n for n in proto.graph.node if n.domain == "nnlite"]
    assert [n.op_type for n in layers] == ["TransformerEncoderLayer"] * 2
    assert [n.name for n in layers] == ["encoder.layers.0", "encoder.layers.1"]
    functions = {f.name: f for f in proto.functions}
    assert sorted(functions) == ["MultiheadAttention", "TransformerEncoderLayer"]
    layer_ops = {n.op_type for n in functions["TransformerEncoderLayer"].node}
    assert {"MultiheadAttention", "LayerNormalization", "Erf", "Add"} <= layer_ops
    assert {"MatMul", "Softmax"} <= {n.op_type for n in functions["MultiheadAttention"].node}
    assert "encoder.layers.1.self_attn.in_proj_weight" in layers[1].input
    # The same model with the layers' operations inline in the main graph.
    flat = _round_trip(model, ids, tmp_path, other_batch=other, functions=False)
    assert not flat.functions and {"Gather", "LayerNormalization", "Softmax", "MatMul", "Erf"} <= \
        {n.op_type for n in flat.graph.node}
    # The tied embedding/head weight is one initializer, read by Gather and by the head.
    tied = [i for i in proto.graph.initializer if i.name == "token_embedding.weight"]
    assert len(tied) == 1
    readers = [n.op_type for n in proto.graph.node if "token_embedding.weight" in n.input]
    assert sorted(readers) == ["Gather", "Gemm"]
    assert proto.graph.input[0].type.tensor_type.elem_type == 7   # int64 token ids


class Everything(nn.Module):
    """Convolutions with stride, padding, dilation and groups, the norms, the activations."""

    def __init__(self):
        super().__init__()
        self.conv1d = nn.Conv1d(3, 8, 3, stride=2, padding=1)
        self.conv = nn.Conv2d(3, 8, 3, stride=1, padding=2, dilation=2)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.gn = nn.GroupNorm(4, 8)
        self.ln = nn.LayerNorm(8)
        self.gelu_tanh = nn.GELU(approximate="tanh")
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        h = self.bn(self.conv(x))
        h = nl.nn.functional.silu(self.gn(self.depthwise(h)))
        h = nl.nn.functional.avg_pool2d(h, 2, padding=1, count_include_pad=False)
        line = self.conv1d(x.reshape(x.shape[0], 3, -1))                  # (N, 8, L)
        pooled = h.reshape(h.shape[0], 8, -1)[:, :, 0] + nl.sigmoid(line)[:, :, 1]   # (N, 8)
        z = self.gelu_tanh(self.ln(pooled))
        return nl.nn.functional.log_softmax(self.head(z), dim=-1) + nl.nn.functional.softmax(z, dim=1)[:, :5]


def test_a_lone_attention_layer_is_one_node(tmp_path):
    nl.manual_seed(0)
    attention = nn.MultiheadAttention(8, 2, batch_first=True)

    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = attention

        def forward(self, x):
            return self.attention(x, x, x, need_weights=False)[0]

    proto = _round_trip(SelfAttention(), _floats(2, 5, 8), tmp_path, other_batch=_floats(4, 5, 8, seed=1))
    assert [n.op_type for n in proto.graph.node] == ["MultiheadAttention", "Identity"]


def test_a_layer_called_twice_is_two_calls_with_their_own_node_names(tmp_path):
    # onnx.checker accepts two nodes of one name, onnxruntime refuses to load the file
    nl.manual_seed(0)

    class TwiceAttended(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            y = self.attention(x, x, x)[0]
            return self.attention(y, y, y)[0] + y

    proto = _round_trip(TwiceAttended(), _floats(2, 5, 8), tmp_path, other_batch=_floats(3, 5, 8, seed=1))
    calls = [n.name for n in proto.graph.node if n.op_type == "MultiheadAttention"]
    assert calls == ["attention", "attention_1"] and len(proto.functions) == 1


def test_packed_self_attention_is_written_as_its_operators(tmp_path):
    """Causal self-attention without weights runs packed (one PackedAttention node); it exports as
    the slices, MatMul, Softmax and merge it stands for, inside the attention's function or inline."""
    from nnlite.onnx.trace import trace
    nl.manual_seed(0)
    attention = nn.MultiheadAttention(12, 3, batch_first=True)
    with nl.no_grad():
        attention.in_proj_bias.copy_(nl.randn(36))

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = attention

        def forward(self, x):
            return self.attention(x, x, x, need_weights=False, is_causal=True)[0]

    model = CausalSelfAttention()
    assert "PackedAttention" in trace(model, (_floats(2, 6, 12),)).op_names()
    for functions in (True, False):
        proto = _round_trip(model, _floats(2, 6, 12), tmp_path, other_batch=_floats(5, 6, 12, seed=1),
                            functions=functions)
        nodes = proto.functions[0].node if functions else proto.graph.node
        assert {"Slice", "MatMul", "Softmax", "Add"} <= {n.op_type for n in nodes}


def test_norms_activations_and_convolution_options(tmp_path):
    nl.manual_seed(0)
    model = Everything()
    model.train()
    for _ in range(3):   # running statistics away from 0 and 1
        model(nl.tensor(_floats(4, 3, 6, 6, seed=2) * 3 + 1))
    proto = _round_trip(model, _floats(2, 3, 6, 6), tmp_path, other_batch=_floats(5, 3, 6, 6, seed=1))
    ops = {n.op_type for n in proto.graph.node}
    assert {"BatchNormalization", "LayerNormalization", "Conv", "Tanh", "LogSoftmax", "Softmax",
            "Sigmoid", "Slice", "AveragePool"} <= ops
    conv = next(n for n in proto.graph.node if n.op_type == "Conv" and n.input[1] == "depthwise.weight")
    assert {a.name: a.i for a in conv.attribute if a.type == 2}["group"] == 8


def test_leaky_relu_elu_and_selu_become_their_onnx_operators(tmp_path):
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.LeakyReLU(0.2), nn.Linear(8, 8), nn.ELU(0.7, inplace=True),
                          nn.Linear(8, 8), nn.SELU(), nn.Linear(8, 8), nn.LeakyReLU(-0.3, inplace=True),
                          nn.Linear(8, 3))
    x = _floats(4, 6) * 3   # far enough out that every negative branch is taken
    proto = _round_trip(model, x, tmp_path, other_batch=_floats(7, 6, seed=1) * 3)
    nodes = {n.op_type: n for n in proto.graph.node}
    assert [n.op_type for n in proto.graph.node if n.op_type != "Gemm"][:4] == ["LeakyRelu", "Elu", "Selu",
                                                                               "LeakyRelu"]
    attributes = {name: {a.name: a.f for a in nodes[name].attribute} for name in ("Elu", "Selu")}
    assert attributes["Elu"] == {"alpha": pytest.approx(0.7)}
    assert attributes["Selu"] == {"alpha": pytest.approx(1.6732632), "gamma": pytest.approx(1.0507010)}


class LearnedSlopesAndPairs(nn.Module):
    """PReLU with one slope per channel and with one for all, then a Bilinear of two feature sets."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.per_channel, self.shared = nn.PReLU(4, init=0.1), nn.PReLU()
        self.linear = nn.Linear(4, 6)
        self.pairs = nn.Bilinear(6, 4, 5)

    def forward(self, x):
        h = self.shared(self.per_channel(self.conv(x)))[:, :, 0]   # (N, 4, W): positions as a leading dim
        h = h.permute(0, 2, 1)
        return self.pairs(self.linear(h), h)


def test_prelu_and_bilinear_export_as_their_operations(tmp_path):
    nl.manual_seed(0)
    model = LearnedSlopesAndPairs()
    model.per_channel.weight.data[:] = [0.1, -0.2, 0.5, 1.5]   # slopes that differ, so a mix-up shows
    proto = _round_trip(model, _floats(2, 3, 6, 6), tmp_path, other_batch=_floats(5, 3, 6, 6, seed=1))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("PRelu") == 2 and ops.count("MatMul") == 2 and "Transpose" in ops
    names = {i.name for i in proto.graph.initializer}
    assert {"per_channel.weight", "shared.weight", "pairs.weight", "pairs.bias"} <= names
    # Bilinear with its two inputs as the graph's two inputs
    ort = _runtime()
    pairs = nn.Bilinear(3, 2, 4)
    x1, x2 = _floats(5, 3), _floats(5, 2, seed=1)
    nl.onnx.export(pairs, (x1, x2), tmp_path / "pairs.onnx")
    session = ort.InferenceSession(str(tmp_path / "pairs.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input_0": x1, "input_1": x2})[0]
    np.testing.assert_allclose(got, pairs(nl.tensor(x1), nl.tensor(x2)).data, rtol=1e-5, atol=1e-6)


def test_export_leaves_the_model_as_it_was(tmp_path):
    _runtime()
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5), nn.Linear(3, 2))
    model[0].weight.requires_grad = False
    model.train()
    before = {k: v.data.copy() for k, v in model.state_dict().items()}
    nl.onnx.export(model, _floats(2, 4), tmp_path / "m.onnx")
    assert model.training and not model[0].weight.requires_grad and model[2].weight.requires_grad
    assert all(np.array_equal(before[k], v.data) for k, v in model.state_dict().items())


def test_export_puts_back_each_layers_own_mode(tmp_path):
    _runtime()
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    model[1].eval()   # frozen statistics inside a training model
    nl.onnx.export(model, _floats(2, 4), tmp_path / "m.onnx")
    assert model.training and not model[1].training


def test_unsupported_operations_and_options_are_named(tmp_path):
    _runtime()
    model = nn.Sequential(nn.Linear(4, 4), nn.RMSNorm(4))
    with pytest.raises(nl.onnx.ExportError, match="RMSNorm"):
        nl.onnx.export(model, _floats(2, 4), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="opset must be 17"):
        nl.onnx.export(nn.Linear(2, 2), _floats(1, 2), tmp_path / "m.onnx", opset_version=11)
    with pytest.raises(ValueError, match="dynamic_axes names"):
        nl.onnx.export(nn.Linear(2, 2), _floats(1, 2), tmp_path / "m.onnx", dynamic_axes={"x": {0: "b"}})
    assert not (tmp_path / "m.onnx").exists()


def test_an_unreleased_opset_is_refused_and_the_newest_is_written(tmp_path):
    _runtime()
    import onnx
    newest = onnx.defs.onnx_opset_version()
    # onnx.checker passes a model stamped with a future opset, but onnxruntime will not load it.
    with pytest.raises(ValueError, match=f"opset must be at most {newest}.*got {newest + 1}"):
        nl.onnx.export(nn.Linear(2, 2), _floats(1, 2), tmp_path / "m.onnx", opset=newest + 1)
    assert not (tmp_path / "m.onnx").exists()
    proto = nl.onnx.export(nn.Linear(2, 2), _floats(1, 2), tmp_path / "m.onnx", opset=newest)
    assert proto.opset_import[0].version == newest and (tmp_path / "m.onnx").exists()
    # torch.onnx.export's name for it is taken too; two different choices are refused
    proto = nl.onnx.export(nn.Linear(2, 2), _floats(1, 2), tmp_path / "m.onnx", opset_version=newest)
    assert proto.opset_import[0].version == newest
    with pytest.raises(TypeError, match="opset=18 and opset_version=19"):
        nl.onnx.export(nn.Linear(2, 2), _floats(1, 2), tmp_path / "m.onnx", opset=18, opset_version=19)


def test_missing_onnx_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r'pip install "nnlite\[onnx\]"'):
        nl.onnx.export(nn.Linear(2, 2), _floats(1, 2), tmp_path / "m.onnx")


def test_export_command_from_a_trained_checkpoint(tmp_path, capsys):
    ort = _runtime()
    from nnlite.cli import main
    out = tmp_path / "run"
    assert main(["train", "digits-mlp", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    onnx_path = tmp_path / "digits.onnx"
    assert main(["export", str(out / "checkpoint.safetensors"), "--onnx", str(onnx_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    from nnlite import recipes
    recipe = recipes.build("digits-mlp")
    nl.load_checkpoint(out / "checkpoint.safetensors", model=recipe.model, restore_rng=False)
    recipe.model.eval()
    x = _floats(7, 64)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": x})[0], recipe.model(nl.tensor(x)).data,
                               rtol=1e-4, atol=1e-5)
    assert main(["export", str(tmp_path / "missing.safetensors"), "--onnx", str(onnx_path)]) == 2


def test_dynamic_int8_model_exports_with_quantize_and_dequantize(tmp_path):
    from nnlite.quantization import quantize_dynamic
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    qmodel = quantize_dynamic(model, reduce_range=False)   # 8-bit codes: ONNX's own operator
    proto = _round_trip(qmodel, _floats(16, 64), tmp_path, other_batch=3 * _floats(5, 64, seed=1), atol=1e-5)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("DynamicQuantizeLinear") == 2 and ops.count("DequantizeLinear") == 4
    codes = next(i for i in proto.graph.initializer if i.name == "0.weight_int8")
    assert codes.data_type == 3                      # int8: a quarter of the float32 bytes


def test_reduce_range_layers_export_their_7_bit_activation_codes(tmp_path):
    """DynamicQuantizeLinear has 8-bit codes only; the 7-bit ones are written out and match nnlite's."""
    from nnlite.quantization import quantize_dynamic
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    q7, q8 = quantize_dynamic(model), quantize_dynamic(model, reduce_range=False)
    x = _floats(16, 64)
    proto = _round_trip(q7, x, tmp_path, other_batch=3 * _floats(5, 64, seed=1), atol=1e-5)
    ops = [n.op_type for n in proto.graph.node]
    assert "DynamicQuantizeLinear" not in ops and ops.count("ReduceMin") == 2 and ops.count("Clip") == 4
    # The 8-bit export would be far off: half the code steps give another output.
    gap = np.abs(q7(nl.tensor(x)).data - q8(nl.tensor(x)).data).max()
    assert gap > 100 * 1e-5


def test_fused_int8_linear_relu_exports_with_its_relu(tmp_path):
    from nnlite.quantization import fuse_modules, quantize_dynamic
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    qmodel = quantize_dynamic(fuse_modules(model, [["0", "1"]]))
    assert type(qmodel[0]).__name__ == "QuantizedLinearReLU"
    proto = _round_trip(qmodel, _floats(8, 16), tmp_path, other_batch=_floats(3, 16, seed=1), atol=1e-5)
    assert [n.op_type for n in proto.graph.node].count("Relu") == 1


def test_fused_batch_norm_relu_exports_as_batch_normalization_and_relu(tmp_path):
    nl.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(16, 5),
                          nn.BatchNorm1d(5), nn.ReLU())
    model(nl.Tensor(_floats(8, 3, 4, 4)))   # running statistics away from their initial values
    nn.fuse_batch_norm_relu(model).eval()
    assert type(model[1]).__name__ == "BatchNormReLU2d"
    proto = _round_trip(model, _floats(6, 3, 4, 4, seed=1), tmp_path, other_batch=_floats(2, 3, 4, 4, seed=2))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("BatchNormalization") == 2 and ops.count("Relu") == 2


def test_fused_conv_relu_exports_as_conv_and_relu(tmp_path):
    nl.manual_seed(0)
    model = nn.fuse_conv_relu(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(2, 3),
                                            nn.Conv1d(4, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(28, 5)))
    assert [type(m).__name__ for m in model][::3] == ["ConvReLU2d", "ConvReLU1d", "Linear"]
    proto = _round_trip(model, _floats(6, 3, 4, 4), tmp_path, other_batch=_floats(2, 3, 4, 4, seed=2))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Conv") == 2 and ops.count("Relu") == 2


def test_static_int8_layer_exports_with_quantize_linear(tmp_path):
    from nnlite.quantization import QuantizedLinear
    nl.manual_seed(0)
    layer = QuantizedLinear.from_float(nn.Linear(8, 4), input_qparams=(0.05, 128))
    proto = _round_trip(layer, _floats(6, 8), tmp_path, other_batch=_floats(2, 8, seed=1), atol=1e-5)
    assert "QuantizeLinear" in [n.op_type for n in proto.graph.node]


class Detaches(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        return self.linear(x) + self.linear(x).detach()   # the second term would be frozen


def test_values_computed_outside_autograd_are_refused_not_frozen(tmp_path):
    _runtime()
    with pytest.raises(nl.onnx.ExportError, match=r"a constant of the operation Add \(shape \(3, 4\)\) changed"):
        nl.onnx.export(Detaches(), _floats(3, 4), tmp_path / "m.onnx")


@pytest.mark.parametrize("norm_type", [1.0, 2.0])
def test_power_average_pooling_exports_as_its_operations(tmp_path, norm_type):
    """LPPool2d is average pooling of powers, then a root; its sum of signed powers (p = 1 lets a
    window's sum be negative) must stay computed in the graph at any batch size, also when the
    example has one row."""
    nl.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.LPPool2d(norm_type, 2), nn.Flatten(),
                          nn.Linear(4 * 3 * 3, 2))
    proto = _round_trip(model, _floats(1, 2, 6, 6), tmp_path, other_batch=_floats(5, 2, 6, 6, seed=1))
    assert {"AveragePool", "Pow", "Relu"} <= {n.op_type for n in proto.graph.node}


class MaskedByAComparison(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        h = self.linear(x)
        return h * nl.tensor((h.data > 0).astype(np.float32))   # a mask made outside autograd


class TimesItsSign(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        h = self.linear(x)
        return h * h.sign()   # sign is recorded: the graph computes it


class ScaledByItsMax(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        h = self.linear(x)
        return h / float(h.data.max())   # a number read from the input's values


class BatchSizedZeros(nn.Module):
    """Adds a constant sized by the batch: right only for the example's batch size."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        return self.linear(x) + nl.ones(x.shape[0], 4) * x.shape[0]


class BranchesOnValues(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        h = self.linear(x)
        return nl.tanh(h) if x.data[0, 0] > x.data[0, 1] else nl.sigmoid(h)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("model, match", [
    (MaskedByAComparison, r"a constant of the operation Mul \(shape \(\d, 4\)\) changed"),
    (ScaledByItsMax, r"a constant of the operation Div \(shape \((1,)?\)\) changed"),
    (BatchSizedZeros, r"one row more\), a constant of the operation Add \(shape \(\d, 4\)\) changed"),
])
def test_values_the_input_decides_outside_autograd_are_refused_at_any_batch_size(tmp_path, batch, model,
                                                                                    match):
    """A second trace on other values, with one row more as the batch is left free, shows a
    constant that depends on the input's values or on its batch size, whatever the example's."""
    _runtime()
    nl.manual_seed(0)
    free_batch = {"input": {0: "batch"}, "output": {0: "batch"}}
    with pytest.raises(nl.onnx.ExportError, match=match):
        nl.onnx.export(model(), _floats(batch, 4), tmp_path / "m.onnx", dynamic_axes=free_batch)
    assert not (tmp_path / "m.onnx").exists()


def test_a_batch_sized_constant_is_right_in_a_graph_of_fixed_batch(tmp_path):
    """Without dynamic_axes the graph takes the example's batch size only, where the constant is right."""
    ort = _runtime()
    nl.manual_seed(0)
    model, x = BatchSizedZeros(), _floats(3, 4)
    nl.onnx.export(model, x, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    other = _floats(3, 4, seed=5)
    np.testing.assert_allclose(session.run(None, {"input": other})[0], model(nl.tensor(other)).data, rtol=1e-5)


def test_control_flow_on_the_input_values_is_refused(tmp_path):
    """[1, 2, 3, 4] takes the sigmoid branch; the second trace's values, [4, 1, 2, 3] * 1.25, the tanh one."""
    _runtime()
    with pytest.raises(nl.onnx.ExportError, match=r"ran other operations .*\['Sigmoid'.* against \['Tanh'"):
        nl.onnx.export(BranchesOnValues(), np.array([[1.0, 2.0, 3.0, 4.0]], np.float32), tmp_path / "m.onnx")


def _pytorch_set_model():
    return nn.Sequential(nn.Linear(6, 8), nn.Hardtanh(-0.5, 0.8), nn.Linear(8, 8), nn.ReLU6(inplace=True),
                         nn.Linear(8, 8), nn.Hardsigmoid(), nn.Linear(8, 8), nn.Hardswish(inplace=True),
                         nn.Linear(8, 8), nn.Softsign(), nn.Linear(8, 8), nn.LogSigmoid(), nn.Linear(8, 8), nn.Mish(),
                         nn.Linear(8, 8), nn.Softplus(2.0, 5.0), nn.Linear(8, 3))


@pytest.mark.parametrize("opset", [17, 18])
def test_hard_and_soft_activations_become_their_onnx_operators(tmp_path, opset):
    """Clip for hardtanh and relu6, HardSigmoid, HardSwish; softsign as the abs, add and div it is made of;
    log sigmoid as -softplus(-x); Mish from opset 18, its formula x tanh(softplus(x)) before; softplus
    with its threshold as a Where."""
    nl.manual_seed(0)
    x = _floats(5, 6) * 3   # far enough out that the flat pieces are reached
    proto = _round_trip(_pytorch_set_model(), x, tmp_path, other_batch=_floats(7, 6, seed=1) * 3,
                        opset_version=opset)
    ops = [n.op_type for n in proto.graph.node if n.op_type not in ("Gemm", "Identity")]
    mish = ["Mish"] if opset >= 18 else ["Softplus", "Tanh", "Mul"]
    assert ops == ["Clip", "Clip", "HardSigmoid", "HardSwish", "Abs", "Add", "Div", "Neg", "Softplus", "Neg"] + \
        mish + ["Mul", "Softplus", "Div", "Greater", "Where"]
    assert proto.opset_import[0].version == opset


def test_instance_norm_exports_as_group_norm_or_with_its_running_statistics(tmp_path):
    """Per-sample statistics (the default) run as group norm with one channel per group; with
    track_running_stats the eval layer is a BatchNormalization over the running statistics."""
    nl.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.InstanceNorm2d(4, affine=True), nn.ReLU(),
                          nn.Conv2d(4, 4, 3), nn.InstanceNorm2d(4, track_running_stats=True))
    model[1].weight.data[:] = [0.5, -1.0, 2.0, 1.5]
    model.train()
    for seed in range(3):
        model(nl.tensor(_floats(4, 3, 6, 6, seed=seed) * 2 + 1))
    proto = _round_trip(model, _floats(2, 3, 6, 6), tmp_path, other_batch=_floats(3, 3, 6, 6, seed=1))
    ops = [n.op_type for n in proto.graph.node]
    assert "LayerNormalization" in ops and "BatchNormalization" in ops
    assert {"1.weight", "1.bias", "4.running_mean", "4.running_var"} <= {i.name for i in proto.graph.initializer}


@pytest.mark.parametrize("batch", [1, 3])
def test_weight_norm_and_spectral_norm_export_their_operations(tmp_path, batch):
    """The weight is computed in the graph from the originals (ReduceSum, Sqrt, a division);
    spectral norm's vectors, which eval mode leaves as they are, are constants. A batch of 3
    meets an output width of 3, which a guess at batch-sized constants by shape would refuse."""
    from nnlite.nn.utils.parametrizations import spectral_norm, weight_norm
    nl.manual_seed(0)
    model = nn.Sequential(weight_norm(nn.Linear(4, 8)), nn.ReLU(), spectral_norm(nn.Linear(8, 3)))
    for _ in range(3):   # power iterations in training mode move the vectors
        model(nl.randn(5, 4))
    proto = _round_trip(model, _floats(batch, 4), tmp_path, other_batch=_floats(6, 4, seed=1))
    assert {"ReduceSum", "Sqrt", "Div"} <= {n.op_type for n in proto.graph.node}
    assert {"0.parametrizations.weight.original0", "0.parametrizations.weight.original1",
            "2.parametrizations.weight.original"} <= {i.name for i in proto.graph.initializer}


class FractionPositive(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, x):
        return self.linear(x) * float((x.data > 0).mean())   # a number counted from the input


class PicksAColumn(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, x):
        return self.linear(x)[:, int(np.argmax(x.data[0]))]   # an index read from the input


class OutputOutsideAutograd(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, x):
        return nl.tensor(np.abs(self.linear(x).data))


class DrawsNoise(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, x):
        return self.linear(x) + nl.randn(x.shape[0], 8)


@pytest.mark.parametrize("model, example, match", [
    (FractionPositive, np.zeros((4, 8), np.float32), r"a constant of the operation Mul \(shape \((1,)?\)\) changed"),
    (FractionPositive, _floats(4, 8), r"a constant of the operation Mul \(shape \((1,)?\)\) changed"),
    (PicksAColumn, _floats(1, 8), r"a constant of the operation GetItem"),
    (OutputOutsideAutograd, _floats(3, 8), r"a constant of the model's output \(shape \(3, 8\)\) changed"),
    (DrawsNoise, _floats(2, 8), r"a constant of the operation Add \(shape \(2, 8\)\) changed: .* drawn at random"),
], ids=["zeros", "fraction", "index", "output", "noise"])
def test_what_the_example_alone_would_decide_is_refused(tmp_path, model, example, match):
    """Random values drawn like the example's: an all-zero example, a count of positive values,
    an index, an output made outside autograd and a random draw are all found."""
    _runtime()
    nl.manual_seed(0)
    with pytest.raises(nl.onnx.ExportError, match=match):
        nl.onnx.export(model(), example, tmp_path / "m.onnx")


def test_softplus_exports_its_threshold(tmp_path):
    """Above the threshold Softplus is x itself in nnlite; the graph must say so too."""
    model = nn.Sequential(nn.Linear(3, 6), nn.Softplus(2.0, 5.0))
    x = _floats(4, 3) * 4   # some beta * x beyond 5, some below
    _round_trip(model, x, tmp_path, other_batch=_floats(7, 3, seed=2) * 4, atol=1e-6)


def test_infinities_nan_and_tensor_bounds_survive_prelu_and_clamp(tmp_path):
    """PRelu keeps -inf * slope infinite; a clamp is Max and Min, which keep +-inf and NaN and take
    per-channel bounds (ONNX's Clip would put the float32 maximum in for a missing bound)."""
    ort = _runtime()

    class Bounded(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.PReLU(3)
            self.low = nn.Parameter(nl.tensor([-1.0, -2.0, -0.5]))

        def forward(self, x):
            return nl.clamp(self.act(x), min=self.low) + nl.clamp(x, max=0.5)

    model = Bounded()
    x = np.array([[np.inf, -np.inf, np.nan], [-3.0, 0.0, 2.0]], np.float32)
    nl.onnx.export(model, _floats(2, 3), tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"input": x})[0], model(nl.tensor(x)).data)


class SlicesByTheInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, x):
        return self.linear(x)[:, :1 + int(np.argmax(x.data[0]))]   # a slice end read from the input


class FoldsTheBatch(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 2)

    def forward(self, x):
        return self.linear(x).permute(1, 0).reshape(2, -1).permute(1, 0)   # right for one batch size only


class PrependsAToken(nn.Module):
    def __init__(self):
        super().__init__()
        self.token = nn.Parameter(nl.randn(1, 1, 4))

    def forward(self, x):
        return nl.cat([self.token.expand(x.shape[0], 1, 4), x], dim=1)   # the batch written into expand


class MasksPadding(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(5, 3)

    def forward(self, ids):
        return self.embedding(ids) * nl.tensor((ids.data > 0)[..., None].astype(np.float32))


class CountsCalls(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)
        self.register_buffer("calls", nl.zeros(()))

    def forward(self, x):
        with nl.no_grad():
            self.calls += 1.0
        return self.linear(x)


@pytest.mark.parametrize("model, example, free, match", [
    (SlicesByTheInput, _floats(2, 8), False, r"on other input values of shapes \[\(2, 8\)\], "),
    (FoldsTheBatch, _floats(4, 2), True, r"one row more\), .*the operation Reshape"),
    (PrependsAToken, _floats(2, 5, 4), True, r"one row more\), .*the operation Expand"),
    (MasksPadding, np.zeros((2, 6), np.int64), False, r"a constant of the operation Mul"),
], ids=["slice", "reshape", "expand", "padding ids"])
def test_what_the_graph_would_freeze_is_refused(tmp_path, model, example, free, match):
    """Each pass on other values is written as a graph, and the graphs must be equal: an index in a
    slice, a shape or an expand written for the example's batch, a mask of all-zero ids."""
    _runtime()
    nl.manual_seed(0)
    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if free else None
    with pytest.raises(nl.onnx.ExportError, match=match):
        nl.onnx.export(model(), example, tmp_path / "m.onnx", dynamic_axes=axes)


def test_a_free_axis_other_than_the_batch_is_checked_like_the_batch(tmp_path):
    """A sequence length left free by dynamic_axes: a graph whose shapes follow it runs on other
    lengths; one that fixes the example's length (Linear's reshapes over three dimensions) is
    refused, where it used to compute a (4, 3, 3) output for a (2, 6, 4) input."""
    ort = _runtime()
    nl.manual_seed(0)
    free = {"input": {0: "batch", 1: "length"}, "output": {0: "batch", 1: "length"}}
    normed = nn.Sequential(nn.LayerNorm(4), nn.GELU())
    nl.onnx.export(normed, _floats(2, 5, 4), tmp_path / "m.onnx", dynamic_axes=free)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    other = _floats(3, 7, 4, seed=1)
    np.testing.assert_allclose(session.run(None, {"input": other})[0], normed(nl.tensor(other)).data,
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(nl.onnx.ExportError, match=r"shapes \[\(3, 4, 4\)\] \(one longer along each axis "
                                                  r"dynamic_axes leaves free\), .*the operation Reshape"):
        nl.onnx.export(nn.Linear(4, 3), _floats(2, 3, 4), tmp_path / "l.onnx", dynamic_axes=free)
    with pytest.raises(ValueError, match=r"dynamic_axes gives 'input' axes \[3\], but it has 3 dimensions "
                                         r"\(shape \(2, 5, 4\)\): axes 0..2"):
        nl.onnx.export(normed, _floats(2, 5, 4), tmp_path / "m.onnx", dynamic_axes={"input": {0: "n", 3: "x"}})


@pytest.mark.parametrize("opset", [17, 22])
@pytest.mark.parametrize("pool, shape", [
    (nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True), (2, 3, 5, 5)),
    (nn.MaxPool2d((3, 2), stride=3, padding=1, dilation=(1, 2), ceil_mode=True), (2, 3, 5, 5)),
    (nn.AvgPool2d(2, stride=2, padding=1, ceil_mode=True, count_include_pad=True), (2, 3, 7, 7)),
    (nn.AvgPool2d(2, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 3, 5, 5)),
    (nn.AvgPool2d(3, stride=(3, 2), padding=1, ceil_mode=True, count_include_pad=True), (2, 3, 5, 5)),
    (nn.AvgPool1d(2, stride=2, padding=1, ceil_mode=True), (2, 3, 5)),
    (nn.MaxPool1d(2, stride=2, padding=1, ceil_mode=True), (2, 3, 7)),
], ids=["max", "max dilated", "avg counting padding", "avg", "avg uneven", "avg 1-d", "max 1-d"])
def test_ceil_mode_pools_drop_a_last_window_that_starts_in_the_padding(tmp_path, pool, shape, opset):
    """PyTorch's ceil mode drops a last window that would start in the right padding; ONNX pools
    before opset 22 keep it, so these exports failed in onnx.checker (one output column more)."""
    ort = _runtime()
    x = _floats(*shape)
    nl.onnx.export(pool, x, tmp_path / "fixed.onnx", opset_version=opset)
    session = ort.InferenceSession(str(tmp_path / "fixed.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": x})[0], pool(nl.tensor(x)).data, rtol=1e-5, atol=1e-6)
    _round_trip(pool, x, tmp_path, other_batch=_floats(1, *shape[1:], seed=1), opset_version=opset)


def test_a_ceil_mode_pool_without_an_early_onnx_form_names_the_opset_that_has_one(tmp_path):
    _runtime()
    pool = nn.MaxPool2d((2, 1), stride=(3, 2), padding=(1, 0), dilation=2, ceil_mode=True)
    with pytest.raises(nl.onnx.ExportError, match=r"ceil_mode pool .* before opset 22; export with opset=22"):
        nl.onnx.export(pool, _floats(1, 2, 6, 8), tmp_path / "m.onnx")
    _round_trip(pool, _floats(1, 2, 6, 8), tmp_path, opset_version=22)


@pytest.mark.parametrize("output", ["relu", "gemm", "0.weight"])
def test_an_output_may_take_any_name_the_graph_would_give_a_value(tmp_path, output):
    # The graph named its own values "gemm", "relu", ... and its parameters by their state_dict
    # names; an output given one of those names made two values of one name (an SSA error).
    ort = _runtime()
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2), nn.ReLU())
    x = _floats(2, 2)
    nl.onnx.export(model, x, tmp_path / "m.onnx", output_names=[output])
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == [output]
    np.testing.assert_allclose(session.run(None, {"input": x})[0], model(nl.tensor(x)).data, rtol=1e-6)
    with pytest.raises(ValueError, match=r"every input and output needs its own name, .* repeat \['x'\]"):
        nl.onnx.export(model, x, tmp_path / "m.onnx", input_names=["x"], output_names=["x"])


def test_an_export_that_fails_while_writing_leaves_the_previous_file(tmp_path, monkeypatch):
    # onnx.save truncated the old file first: a full disk left half a model where a whole one was.
    ort = _runtime()
    from nnlite.io import format as fmt
    path = tmp_path / "m.onnx"
    nl.onnx.export(nn.Linear(2, 3), _floats(1, 2), path)
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError("no space left on device (simulated)")

    monkeypatch.setattr(fmt.os, "fsync", disk_full)
    with pytest.raises(OSError, match="no space left"):
        nl.onnx.export(nn.Linear(2, 4), _floats(1, 2), path)
    monkeypatch.undo()
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["m.onnx"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": _floats(1, 2)})[0].shape == (1, 3)


def test_the_checking_passes_leave_the_model_state_as_the_example_left_it(tmp_path):
    _runtime()
    model = CountsCalls()
    nl.onnx.export(model, _floats(2, 3), tmp_path / "m.onnx", dynamic_axes={"input": {0: "n"}, "output": {0: "n"}})
    assert float(model.calls.data) == 1.0   # the example's pass counted; the two checking passes did not


def test_sign_is_written_as_sign(tmp_path):
    nl.manual_seed(0)
    proto = _round_trip(TimesItsSign(), _floats(1, 4), tmp_path, other_batch=_floats(6, 4, seed=3))
    assert "Sign" in {n.op_type for n in proto.graph.node}


def test_constant_padding(tmp_path):
    class Padded(nn.Module):
        def forward(self, x):
            return nn.functional.pad(x, (1, 2, 0, 3), value=0.5) * 2.0

    x = _floats(2, 3, 4, 5)
    proto = _round_trip(Padded(), x, tmp_path, other_batch=_floats(3, 3, 4, 5, seed=1))
    assert "Pad" in [n.op_type for n in proto.graph.node]


@pytest.mark.parametrize("make,op", [(lambda: nn.Upsample(scale_factor=2), "Gather"),
                                     (lambda: nn.Upsample(scale_factor=2, mode="bilinear"), "Gather"),
                                     (lambda: nn.Upsample(size=(7, 9), mode="bilinear", align_corners=True), "Gather"),
                                     (lambda: nn.Sequential(nn.Conv2d(3, 8, 1), nn.PixelShuffle(2)), "Transpose"),
                                     (lambda: nn.PixelUnshuffle(1), "Transpose"),
                                     (lambda: nn.ReflectionPad2d((1, 2, 1, 0)), "Gather"),
                                     (lambda: nn.ReplicationPad2d(2), "Gather"),
                                     (lambda: nn.CircularPad2d(1), "Gather")],
                         ids=["nearest", "bilinear", "bilinear_corners", "pixel_shuffle", "pixel_unshuffle",
                              "reflect", "replicate", "circular"])
def test_resizing_shuffling_and_padding_layers_export(tmp_path, make, op):
    # rows read whole along one axis (index_select, np.ix_ grids) become Gather nodes, one per axis
    # (none for the batch axis, read whole, so another batch size runs too)
    proto = _round_trip(make(), _floats(2, 3, 5, 6), tmp_path, other_batch=_floats(3, 3, 5, 6, seed=1))
    assert op in [n.op_type for n in proto.graph.node]


def test_index_select_on_a_feature_axis_is_one_gather(tmp_path):
    class Pick(nn.Module):
        def forward(self, x):
            return nl.index_select(x, 1, nl.tensor([2, 0, 2])) * 3.0

    proto = _round_trip(Pick(), _floats(2, 3, 4), tmp_path, other_batch=_floats(5, 3, 4, seed=1))
    assert [n.op_type for n in proto.graph.node].count("Gather") == 1


def test_an_array_where_a_model_is_expected(tmp_path):
    from nnlite.onnx import export, trace
    with pytest.raises(TypeError, match="onnx: expected an nn.Module to export, got ndarray"):
        trace(np.zeros(3), (nl.randn(2, 3),))
    pytest.importorskip("onnx")   # export checks for the library first
    with pytest.raises(TypeError, match="onnx: expected an nn.Module to export, got ndarray"):
        export(np.zeros(3), nl.randn(2, 3), str(tmp_path / "model.onnx"))
