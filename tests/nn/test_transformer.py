"""TransformerEncoderLayer and TransformerEncoder against PyTorch (float64)."""
import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip


def _pair(num_layers=None, final_norm=False, torch_activation=None, **kw):
    torch = torch_or_skip()
    kw = {"d_model": 8, "nhead": 2, "dim_feedforward": 16, "dropout": 0.0, **kw}
    m = nl.nn.TransformerEncoderLayer(**kw).double()
    if torch_activation is not None:
        kw["activation"] = getattr(torch.nn.functional, torch_activation)
    t = torch.nn.TransformerEncoderLayer(**kw).double()
    if num_layers:
        m = nl.nn.TransformerEncoder(m, num_layers, norm=nl.nn.LayerNorm(8).double() if final_norm else None)
        # no nested tensors: torch's fast path would zero padded positions in eval mode
        t = torch.nn.TransformerEncoder(t, num_layers, norm=torch.nn.LayerNorm(8).double() if final_norm else None,
                                        enable_nested_tensor=False)
    assert list(m.state_dict()) == list(t.state_dict())
    m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    return m, t


def _compare(m, t, x, training, **fw):
    torch = torch_or_skip()
    m.train(training)
    t.train(training)
    xn, xt = nl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out = m(xn, **{k: nl.tensor(v) if isinstance(v, np.ndarray) else v for k, v in fw.items()})
    ref = t(xt, **{k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in fw.items()})
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    (out * out * out).sum().backward()
    (ref * ref * ref).sum().backward()
    np.testing.assert_allclose(xn.grad.data, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    tp = dict(t.named_parameters())
    assert [n for n, _ in m.named_parameters()] == list(tp)
    for n, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.data, tp[n].grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=n)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("training", [True, False])
def test_layer_matches_torch(rng, norm_first, batch_first, training):
    m, t = _pair(norm_first=norm_first, batch_first=batch_first)
    _compare(m, t, rng.standard_normal((3, 5, 8)), training)


@pytest.mark.parametrize("kw", [dict(activation="gelu"), dict(bias=False), dict(layer_norm_eps=1e-3),
                                dict(activation=nl.nn.functional.silu, torch_activation="silu")])
def test_layer_options_match_torch(rng, kw):
    m, t = _pair(**kw)
    _compare(m, t, rng.standard_normal((5, 3, 8)), True)


def test_layer_masks_match_torch(rng):
    m, t = _pair(batch_first=True)
    pad = np.zeros((3, 5), bool)
    pad[0, 3:] = True
    causal = np.triu(np.ones((5, 5), bool), k=1)
    _compare(m, t, rng.standard_normal((3, 5, 8)), True, src_mask=causal, src_key_padding_mask=pad)
    _compare(m, t, rng.standard_normal((3, 5, 8)), False, src_mask=causal, is_causal=True)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("training", [True, False])
def test_encoder_matches_torch(rng, norm_first, training):
    m, t = _pair(num_layers=3, final_norm=True, norm_first=norm_first)
    pad = np.zeros((2, 5))
    pad[1, 4] = -np.inf
    causal = np.where(np.triu(np.ones((5, 5), bool), k=1), -np.inf, 0.0)
    _compare(m, t, rng.standard_normal((5, 2, 8)), training, mask=causal, src_key_padding_mask=pad)


def test_encoder_layers_are_independent_deep_copies():
    layer = nl.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    enc = nl.nn.TransformerEncoder(layer, 2)
    a, b = enc.layers[0], enc.layers[1]
    assert a is not layer and a is not b
    assert a.linear1.weight is not b.linear1.weight
    np.testing.assert_array_equal(a.linear1.weight.data, b.linear1.weight.data)   # same start, like torch
    a.linear1.weight.data[...] = 0
    assert b.linear1.weight.data.any() and layer.linear1.weight.data.any()
    assert enc.num_parameters() == 2 * layer.num_parameters()
    assert sorted({k.split(".")[0] + "." + k.split(".")[1] for k in enc.state_dict()}) == ["layers.0", "layers.1"]


def test_submodule_names_and_kinds():
    layer = nl.nn.TransformerEncoderLayer(8, 2)
    assert [n for n, _ in layer.named_children()] == ["self_attn", "linear1", "dropout", "linear2", "norm1",
                                                      "norm2", "dropout1", "dropout2"]
    assert layer.linear1.weight.shape == (2048, 8)            # torch's dim_feedforward default
    assert layer.dropout.p == 0.1
    kinds = {n: p.kind for n, p in layer.named_parameters()}
    assert kinds["norm1.weight"] == "scale" and kinds["norm1.bias"] == "shift"
    assert kinds["self_attn.in_proj_weight"] == "weight"


def test_dropout_active_in_training_only(rng):
    layer = nl.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.5).double()
    x = nl.tensor(rng.standard_normal((5, 2, 8)))
    assert not np.allclose(layer(x).data, layer(x).data)
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, layer(x).data)


def test_errors():
    with pytest.raises(ValueError, match="activation must be 'relu', 'gelu' or a callable, got 'tanh'"):
        nl.nn.TransformerEncoderLayer(8, 2, activation="tanh")
    with pytest.raises(ValueError, match="embed_dim 8 is not divisible by num_heads 3"):
        nl.nn.TransformerEncoderLayer(8, 3)
    with pytest.raises(ValueError, match=r"query has 6 features, expected 8"):
        nl.nn.TransformerEncoderLayer(8, 2)(nl.randn(5, 2, 6))
    with pytest.raises(ValueError, match="num_layers must be >= 1"):
        nl.nn.TransformerEncoder(nl.nn.TransformerEncoderLayer(8, 2), 0)


def test_generate_square_subsequent_mask_matches_torch():
    torch = torch_or_skip()
    from nnlite.nn.transformer import generate_square_subsequent_mask
    m = generate_square_subsequent_mask(4)
    assert m.dtype == nl.float32
    np.testing.assert_array_equal(m.data, torch.nn.Transformer.generate_square_subsequent_mask(4).numpy())
