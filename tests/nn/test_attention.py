"""scaled_dot_product_attention and MultiheadAttention against PyTorch (float64), gradcheck, errors."""
import math

import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip
from nnlite.autograd import gradcheck
from nnlite.nn import functional as F
from nnlite.ops.attention import attention_with_weights



def _nl(a, grad=False):
    return nl.tensor(a, requires_grad=grad) if isinstance(a, np.ndarray) else a


def _th(a, grad=False):
    torch = torch_or_skip()
    return torch.tensor(a, requires_grad=grad) if isinstance(a, np.ndarray) else a


# ------------------------------------------------------------------ sdpa ---

def _sdpa_case(rng, mask_kind):
    q, k, v = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((2, 3, 6, 7))
    kw = {}
    if mask_kind == "bool":
        m = rng.random((4, 6)) > 0.4
        m[1] = False                      # a query that may see nothing: zero output, as torch
        m[0, 0] = True
        kw["attn_mask"] = m
    elif mask_kind == "float":
        kw["attn_mask"] = rng.standard_normal((2, 1, 4, 6))
    elif mask_kind == "causal":
        kw["is_causal"] = True
    elif mask_kind == "scale":
        kw["scale"] = 0.37
    return (q, k, v), kw


@pytest.mark.parametrize("mask_kind", ["none", "bool", "float", "causal", "scale"])
def test_sdpa_matches_torch(rng, mask_kind):
    torch = torch_or_skip()
    (q, k, v), kw = _sdpa_case(rng, mask_kind)
    xs = [nl.tensor(a, requires_grad=True) for a in (q, k, v)]
    ts = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*xs, **{n: _nl(a) for n, a in kw.items()})
    ref = torch.nn.functional.scaled_dot_product_attention(*ts, **{n: _th(a) for n, a in kw.items()})
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(nl.tensor(g))
    ref.backward(torch.tensor(g))
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_sdpa_causal_is_top_left_aligned_for_rectangular_scores(rng):
    torch = torch_or_skip()
    q, k, v = rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    out = F.scaled_dot_product_attention(nl.tensor(q), nl.tensor(k), nl.tensor(v), is_causal=True)
    ref = torch.nn.functional.scaled_dot_product_attention(torch.tensor(q), torch.tensor(k), torch.tensor(v),
                                                           is_causal=True)
    np.testing.assert_allclose(out.data, ref.numpy(), rtol=1e-12, atol=1e-12)
    # the first query sees only the first key: its output is that key's value
    np.testing.assert_allclose(out.data[0], v[0], rtol=1e-12)


def test_sdpa_learned_float_mask_gets_a_gradient(rng):
    torch = torch_or_skip()
    (q, k, v), _ = _sdpa_case(rng, "none")
    bias = rng.standard_normal((4, 6))
    b, bt = nl.tensor(bias, requires_grad=True), torch.tensor(bias, requires_grad=True)
    F.scaled_dot_product_attention(nl.tensor(q), nl.tensor(k), nl.tensor(v), attn_mask=b).sum().backward()
    torch.nn.functional.scaled_dot_product_attention(torch.tensor(q), torch.tensor(k), torch.tensor(v),
                                                     attn_mask=bt).sum().backward()
    np.testing.assert_allclose(b.grad.data, bt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mask_kind", ["none", "bool", "causal"])
def test_sdpa_gradcheck(rng, mask_kind):
    q, k, v = (nl.tensor(rng.standard_normal(s), requires_grad=True) for s in ((2, 3, 4), (2, 5, 4), (2, 5, 3)))
    kw = {}
    if mask_kind == "bool":
        m = rng.random((3, 5)) > 0.3
        m[:, 0] = True
        kw["attn_mask"] = nl.tensor(m)
    elif mask_kind == "causal":
        q = nl.tensor(rng.standard_normal((2, 5, 4)), requires_grad=True)
        kw["is_causal"] = True
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, **kw), [q, k, v])


def test_sdpa_dropout_is_seeded_and_keeps_expectation(rng):
    q, k, v = (nl.tensor(rng.standard_normal((1, 8, 4))) for _ in range(3))
    nl.manual_seed(3)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    nl.manual_seed(3)
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    c = F.scaled_dot_product_attention(q, k, v)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.allclose(a.data, c.data)
    # Averaging many dropout draws approaches the undropped output.
    mean = np.mean([F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).data for _ in range(400)], axis=0)
    np.testing.assert_allclose(mean, c.data, atol=0.2)


def test_sdpa_errors(rng):
    q, k = nl.tensor(rng.standard_normal((2, 4, 5))), nl.tensor(rng.standard_normal((2, 6, 5)))
    with pytest.raises(ValueError, match=r"query has 5 features but key has 3"):
        F.scaled_dot_product_attention(q, nl.randn(2, 6, 3), nl.randn(2, 6, 3))
    with pytest.raises(ValueError, match=r"key has 6 positions but value has 7"):
        F.scaled_dot_product_attention(q, k, nl.randn(2, 7, 3))
    with pytest.raises(ValueError, match=r"attn_mask of shape \(4, 5\).*\(4, 6\)"):
        F.scaled_dot_product_attention(q, k, k, attn_mask=nl.ones(4, 5))
    with pytest.raises(ValueError, match="not both"):
        F.scaled_dot_product_attention(q, k, k, attn_mask=nl.ones(4, 6), is_causal=True)
    with pytest.raises(ValueError, match="dropout_p"):
        F.scaled_dot_product_attention(q, k, k, dropout_p=1.5)
    with pytest.raises(ValueError, match="at least 2 dims"):
        F.scaled_dot_product_attention(nl.randn(5), k, k)


# ------------------------------------------------------------------- MHA ---

def _pair(rng, **kw):
    torch = torch_or_skip()
    m = nl.nn.MultiheadAttention(**kw).double()
    t = torch.nn.MultiheadAttention(**kw).double()
    assert list(m.state_dict()) == list(t.state_dict())
    m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    return m, t


def _inputs(rng, m, L, S, N, unbatched=False):
    def shape(n, f):
        return (n, f) if unbatched else ((N, n, f) if m.batch_first else (n, N, f))
    return [rng.standard_normal(shape(L, m.embed_dim)), rng.standard_normal(shape(S, m.kdim)),
            rng.standard_normal(shape(S, m.vdim))]


def _compare(m, t, arrays, **fw):
    torch = torch_or_skip()
    xs = [nl.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, w = m(*xs, **{n: _nl(a) for n, a in fw.items()})
    ref, wt = t(*ts, **{n: _th(a) for n, a in fw.items()})
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert (w is None) == (wt is None)
    loss, loss_t = (out * out).sum(), (ref * ref).sum()
    if w is not None:
        np.testing.assert_allclose(w.data, wt.detach().numpy(), rtol=1e-10, atol=1e-12)
        loss, loss_t = loss + (w * w).sum(), loss_t + (wt * wt).sum()
    loss.backward()
    loss_t.backward()
    for x, tx in zip(xs, ts):
        np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    tp = dict(t.named_parameters())
    assert [n for n, _ in m.named_parameters()] == list(tp)
    for n, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.data, tp[n].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=n)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("average", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_mha_matches_torch(rng, batch_first, average, training):
    m, t = _pair(rng, embed_dim=8, num_heads=2, batch_first=batch_first)
    m.train(training)
    t.train(training)
    _compare(m, t, _inputs(rng, m, 4, 5, 3), average_attn_weights=average)


@pytest.mark.parametrize("kw", [dict(kdim=3, vdim=5), dict(bias=False), dict(add_bias_kv=True),
                                dict(add_zero_attn=True), dict(num_heads=1), dict(num_heads=4)])
def test_mha_variants_match_torch(rng, kw):
    m, t = _pair(rng, **{"embed_dim": 8, "num_heads": 2, **kw})
    _compare(m, t, _inputs(rng, m, 4, 5, 2), average_attn_weights=False)


def _masks(rng, N=2, H=2, L=4, S=5):
    bool_2d = rng.random((L, S)) < 0.3
    bool_2d[:, 0] = False                 # every query keeps one key (torch's explicit path gives NaN otherwise)
    bool_3d = rng.random((N * H, L, S)) < 0.3
    bool_3d[..., 1] = False
    pad = np.zeros((N, S), bool)
    pad[0, 3:] = True
    return {"bool_2d": dict(attn_mask=bool_2d), "float_2d": dict(attn_mask=rng.standard_normal((L, S))),
            "bool_3d": dict(attn_mask=bool_3d), "float_3d": dict(attn_mask=rng.standard_normal((N * H, L, S))),
            "padding": dict(key_padding_mask=pad),
            "float_padding": dict(key_padding_mask=rng.standard_normal((N, S))),
            "both": dict(attn_mask=bool_2d, key_padding_mask=pad),
            "no_weights": dict(attn_mask=bool_3d, key_padding_mask=pad, need_weights=False)}


@pytest.mark.parametrize("case", ["bool_2d", "float_2d", "bool_3d", "float_3d", "padding", "float_padding",
                                  "both", "no_weights"])
def test_mha_masks_match_torch(rng, case):
    m, t = _pair(rng, embed_dim=8, num_heads=2, batch_first=True)
    _compare(m, t, _inputs(rng, m, 4, 5, 2), **_masks(rng)[case])


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_is_causal_matches_torch(rng, need_weights):
    m, t = _pair(rng, embed_dim=8, num_heads=2)
    causal = np.triu(np.ones((5, 5), bool), k=1)
    _compare(m, t, _inputs(rng, m, 5, 5, 2), attn_mask=causal, is_causal=True, need_weights=need_weights)
    # nnlite builds the causal mask itself when none is given
    x = nl.tensor(_inputs(rng, m, 5, 5, 2)[0])
    a, _ = m(x, x, x, attn_mask=causal)
    b, _ = m(x, x, x, is_causal=True)
    np.testing.assert_allclose(a.data, b.data, rtol=1e-14)


def test_mha_unbatched_matches_torch(rng):
    m, t = _pair(rng, embed_dim=8, num_heads=2)
    _compare(m, t, _inputs(rng, m, 4, 5, 1, unbatched=True),
             attn_mask=rng.random((2, 4, 5)) < 0.2, key_padding_mask=np.array([0, 0, 0, 1, 1], bool))


def test_mha_dropout_in_training_only(rng):
    m = nl.nn.MultiheadAttention(8, 2, dropout=0.5).double()
    x = nl.tensor(rng.standard_normal((4, 2, 8)))
    nl.manual_seed(0)
    a, wa = m(x, x, x)
    nl.manual_seed(1)
    b, _ = m(x, x, x)
    assert not np.allclose(a.data, b.data)
    assert np.any(wa.data == 0)             # dropped weights, returned after dropout as torch does
    m.eval()
    c, wc = m(x, x, x)
    d, _ = m(x, x, x)
    np.testing.assert_array_equal(c.data, d.data)
    np.testing.assert_allclose(wc.data.sum(-1), 1.0, rtol=1e-12)


def test_mha_parameters_kinds_and_init(rng):
    nl.manual_seed(0)
    m = nl.nn.MultiheadAttention(16, 4)
    kinds = {n: p.kind for n, p in m.named_parameters()}
    assert kinds == {"in_proj_weight": "weight", "in_proj_bias": "bias", "out_proj.weight": "weight",
                     "out_proj.bias": "bias"}
    assert m.in_proj_weight.shape == (48, 16)
    assert m.in_proj_weight.init["scheme"] == "xavier_uniform_"
    bound = (6 / (16 + 48)) ** 0.5
    assert np.abs(m.in_proj_weight.data).max() <= bound
    assert np.abs(m.in_proj_weight.data).max() > 0.8 * bound
    assert not m.in_proj_bias.data.any() and not m.out_proj.bias.data.any()
    sep = nl.nn.MultiheadAttention(16, 4, kdim=6, vdim=7, add_bias_kv=True)
    assert [n for n, _ in sep.named_parameters()] == ["q_proj_weight", "k_proj_weight", "v_proj_weight",
                                                      "in_proj_bias", "bias_k", "bias_v",
                                                      "out_proj.weight", "out_proj.bias"]
    assert sep.k_proj_weight.shape == (16, 6) and sep.v_proj_weight.shape == (16, 7)
    assert sep.bias_k.kind == "bias" and sep.bias_k.init["scheme"] == "xavier_normal_"
    nl.manual_seed(0)
    again = nl.nn.MultiheadAttention(16, 4)
    np.testing.assert_array_equal(again.in_proj_weight.data, m.in_proj_weight.data)


def test_mha_errors():
    with pytest.raises(ValueError, match="embed_dim 64 is not divisible by num_heads 5"):
        nl.nn.MultiheadAttention(64, 5)
    m = nl.nn.MultiheadAttention(64, 4)
    x = nl.randn(10, 2, 64)
    with pytest.raises(ValueError, match=r"MultiheadAttention\(embed_dim=64\): query has 60 features, "
                                         r"expected 64 \(shape \(10, 2, 60\)\)"):
        m(nl.randn(10, 2, 60), x, x)
    with pytest.raises(ValueError, match=r"key has 32 features, expected 64"):
        m(x, nl.randn(10, 2, 32), x)
    with pytest.raises(ValueError, match=r"key and value must have the same sequence"):
        m(x, x, nl.randn(9, 2, 64))
    with pytest.raises(ValueError, match=r"different batch sizes"):
        m(x, nl.randn(10, 3, 64), nl.randn(10, 3, 64))
    with pytest.raises(ValueError, match=r"attn_mask has shape \(10, 9\), expected \(10, 10\) or \(8, 10, 10\)"):
        m(x, x, x, attn_mask=nl.zeros(10, 9))
    with pytest.raises(ValueError, match=r"key_padding_mask has shape \(10, 2\), expected \(2, 10\)"):
        m(x, x, x, key_padding_mask=nl.zeros(10, 2))
    with pytest.raises(TypeError, match="bool or float"):
        m(x, x, x, attn_mask=nl.tensor(np.zeros((10, 10), np.int64)))
    with pytest.raises(ValueError, match="3 dims"):
        m(nl.randn(64), nl.randn(64), nl.randn(64))


def test_mha_float32_with_float64_masks_stays_float32(rng):
    torch = torch_or_skip()
    t = torch.nn.MultiheadAttention(8, 2)
    m = nl.nn.MultiheadAttention(8, 2)
    m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    x = rng.standard_normal((4, 2, 8)).astype(np.float32)
    mask = rng.standard_normal((4, 4))                        # float64 additive mask
    out, w = m(nl.tensor(x), nl.tensor(x), nl.tensor(x), attn_mask=mask)
    ref, wt = t(torch.tensor(x), torch.tensor(x), torch.tensor(x), attn_mask=torch.tensor(mask, dtype=torch.float32))
    assert out.dtype == nl.float32 and w.dtype == nl.float32
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w.data, wt.detach().numpy(), rtol=1e-4, atol=1e-5)
    q = nl.tensor(x[:, 0])
    y = F.scaled_dot_product_attention(q, q, q, attn_mask=nl.tensor(mask))
    assert y.dtype == nl.float32


def test_sdpa_grouped_query_attention_matches_torch(rng):
    torch = torch_or_skip()
    q, k, v = rng.standard_normal((2, 6, 4, 5)), rng.standard_normal((2, 2, 3, 5)), rng.standard_normal((2, 2, 3, 7))
    xs = [nl.tensor(a, requires_grad=True) for a in (q, k, v)]
    ts = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*xs, enable_gqa=True)
    ref = torch.nn.functional.scaled_dot_product_attention(*ts, enable_gqa=True)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    out.sum().backward()
    ref.sum().backward()
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match=r"query heads \(6\) must be a multiple of key heads \(4\)"):
        F.scaled_dot_product_attention(xs[0], nl.randn(2, 4, 3, 5), nl.randn(2, 4, 3, 7), enable_gqa=True)


def test_mha_matches_torch_inference_fast_path(rng):
    """Under no_grad in eval mode torch runs its fused native kernel; the numbers must still agree."""
    torch = torch_or_skip()
    m, t = _pair(rng, embed_dim=8, num_heads=2, batch_first=True)
    m.eval()
    t.eval()
    x = rng.standard_normal((2, 5, 8))
    pad = np.zeros((2, 5), bool)
    pad[1, 3:] = True
    with nl.no_grad():
        out, _ = m(nl.tensor(x), nl.tensor(x), nl.tensor(x), key_padding_mask=nl.tensor(pad), need_weights=False)
    with torch.no_grad():
        ref, _ = t(*(torch.tensor(x),) * 3, key_padding_mask=torch.tensor(pad), need_weights=False)
    np.testing.assert_allclose(out.data, ref.numpy(), rtol=1e-10, atol=1e-12)


def test_sdpa_second_derivatives(rng):
    from nnlite.autograd import gradgradcheck
    q, k, v = (nl.tensor(rng.standard_normal(s), requires_grad=True) for s in ((3, 4), (5, 4), (5, 2)))
    assert gradgradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True), [q, k, v])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fixed_mask_and_scale_in_the_softmax_pass_give_the_unfused_bits(rng, dtype):
    """With no mask or a fixed (L, S) one, the weights come from one scaled-softmax pass: the same
    bits as scaling, adding the mask and taking softmax one op at a time, and the same gradient bits."""
    q, k = (nl.tensor(rng.standard_normal((2, 3, 5, 8)).astype(dtype), requires_grad=True) for _ in range(2))
    v = nl.tensor(rng.standard_normal((2, 3, 5, 8)).astype(dtype))
    g = rng.standard_normal((2, 3, 5, 5)).astype(dtype)
    mask = rng.random((5, 5)) < 0.7
    mask[:, 0] = True                                               # every query sees a key
    bias = np.where(mask, dtype(0), dtype(-np.inf))
    causal_bias = np.where(np.tril(np.ones((5, 5), bool)), dtype(0), dtype(-np.inf))
    for attn_mask, add in ((None, 0), (mask, bias), ("causal", causal_bias)):
        causal = isinstance(attn_mask, str)
        _, w = attention_with_weights(q, k, v, None if causal else attn_mask, is_causal=causal)
        gq, gk = nl.grad((w * nl.tensor(g)).sum(), [q, k])
        scores = nl.matmul(q, nl.ops.transpose(k, -2, -1)) * (1 / math.sqrt(8)) + add
        w_ref = F.softmax(scores, dim=-1)
        assert w.data.tobytes() == w_ref.data.tobytes()
        rq, rk = nl.grad((w_ref * nl.tensor(g)).sum(), [q, k])
        assert gq.data.tobytes() == rq.data.tobytes() and gk.data.tobytes() == rk.data.tobytes()


# ------------------------------------------- what the one-pass softmax may take ---

def _learned_scale_case(rng, mask_kind):
    """q, k, v, a learned scale and the mask: none, a fixed bool one, or a learned float one."""
    q, k, v = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((2, 3, 6, 7))
    mask = None
    if mask_kind == "fixed":
        mask = rng.random((4, 6)) > 0.3
        mask[:, 0] = True
    elif mask_kind == "learned":
        mask = rng.standard_normal((4, 6))
    return q, k, v, np.array(0.37), mask


@pytest.mark.parametrize("mask_kind", ["none", "fixed", "learned"])
def test_sdpa_learned_scale_and_mask_get_torchs_gradients(rng, mask_kind):
    """A scale Tensor that requires grad (with any mask) and a learned float mask get their gradients.

    torch's sdpa takes only a float scale, so its reference is the formula in torch ops."""
    torch = torch_or_skip()
    q, k, v, s, mask = _learned_scale_case(rng, mask_kind)
    learned = [q, k, v, s] + ([mask] if mask_kind == "learned" else [])
    xs = [nl.tensor(a, requires_grad=True) for a in learned]
    ts = [torch.tensor(a, requires_grad=True) for a in learned]
    fixed_mask = nl.tensor(mask) if mask_kind == "fixed" else None
    out = F.scaled_dot_product_attention(*xs[:3], attn_mask=xs[4] if mask_kind == "learned" else fixed_mask,
                                         scale=xs[3])
    scores = ts[0] @ ts[1].transpose(-2, -1) * ts[3]
    if mask_kind == "fixed":
        scores = scores.masked_fill(~torch.tensor(mask), -math.inf)
    elif mask_kind == "learned":
        scores = scores + ts[4]
    ref = torch.softmax(scores, dim=-1) @ ts[2]
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(nl.tensor(g))
    ref.backward(torch.tensor(g))
    for x, t in zip(xs, ts):
        assert x.grad is not None
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mask_kind", ["none", "fixed", "learned"])
def test_sdpa_learned_scale_and_mask_gradients_match_central_differences(rng, mask_kind):
    q, k, v, s, mask = _learned_scale_case(rng, mask_kind)
    q, k, v = (nl.tensor(a) for a in (q, k, v))
    s = nl.tensor(s, requires_grad=True)
    if mask_kind == "learned":
        m = nl.tensor(mask, requires_grad=True)
        assert gradcheck(lambda s, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=s), [s, m])
    else:
        m = None if mask is None else nl.tensor(mask)
        assert gradcheck(lambda s: F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=s), [s])


def test_scaled_softmax_refuses_a_learned_scale_or_bias(rng):
    """The one pass sends no gradient to scale or bias: a Tensor that wants one is an error, not a None grad."""
    from nnlite.ops.softmax import scaled_softmax
    x = nl.tensor(rng.standard_normal((2, 4, 4)), requires_grad=True)
    bias = rng.standard_normal((4, 4))
    with pytest.raises(TypeError, match=r"scale must be a real number \(a constant\), got a Tensor that "
                                        r"requires grad; .*softmax\(input \* scale \+ bias"):
        scaled_softmax(x, nl.tensor(0.5, requires_grad=True))
    with pytest.raises(TypeError, match=r"scale must be a real number \(a constant\), got a Tensor; "
                                        r"pass float\(scale\)"):
        scaled_softmax(x, nl.tensor(0.5))
    with pytest.raises(TypeError, match=r"bias must be a constant \(an ndarray or a Tensor that does not "
                                        r"require grad\), got a Tensor that requires grad"):
        scaled_softmax(x, 0.5, nl.tensor(bias, requires_grad=True))
    with pytest.raises(TypeError, match=r"scale must be a real number \(int, float or NumPy scalar\), got str"):
        scaled_softmax(x, "0.5")
    # a Tensor bias that wants no gradient is its array; x still gets its gradient
    y = scaled_softmax(x, 0.5, nl.tensor(bias))
    assert y.data.tobytes() == scaled_softmax(x, 0.5, bias).data.tobytes()
    (gx,) = nl.grad((y * nl.tensor(rng.standard_normal((2, 4, 4)))).sum(), [x])
    assert np.abs(gx.data).sum() > 0


def test_scaled_softmax_gradients_by_central_differences(rng):
    """The one pass on its own: softmax(x * scale + bias) with an (L, S) bias repeated over N*H blocks."""
    from nnlite.autograd import gradgradcheck
    from nnlite.ops.softmax import scaled_softmax
    x = nl.tensor(rng.standard_normal((2, 3, 4, 5)), requires_grad=True)
    bias = rng.standard_normal((4, 5))
    bias[1, 3] = -np.inf
    assert gradcheck(lambda a: scaled_softmax(a, 0.7, bias), [x])
    assert gradgradcheck(lambda a: scaled_softmax(a, 0.7, bias), [x])


def test_scaled_softmax_matches_torch(rng):
    from nnlite.ops.softmax import scaled_softmax
    torch = torch_or_skip()
    x = nl.tensor(rng.standard_normal((2, 3, 4, 5)), requires_grad=True)
    bias = rng.standard_normal((4, 5))
    bias[1, 3] = -np.inf
    w = rng.standard_normal((2, 3, 4, 5))
    (gx,) = nl.grad((scaled_softmax(x, 0.7, bias) * nl.tensor(w)).sum(), [x])
    t = torch.tensor(x.data, requires_grad=True)
    y = torch.softmax(t * 0.7 + torch.tensor(bias), dim=-1)
    (y * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(scaled_softmax(x, 0.7, bias).data, y.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gx.data, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def _narrow(name):
    if name == "bfloat16":
        pytest.importorskip("ml_dtypes")
        return nl.bfloat16
    return nl.float16


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_attention_in_a_storage_dtype_rounds_as_the_steps_do(rng, name):
    """float16 and bfloat16 scores round to their dtype after the scaling and after the mask, as
    ``softmax(scores * scale + mask)`` does it; the weights are those of the steps, bit for bit."""
    dtype = _narrow(name)
    q, k, v = (nl.tensor(rng.standard_normal((2, 3, 5, 8)).astype(np.float32).astype(dtype)) for _ in range(3))
    mask = rng.random((5, 5)) < 0.7
    mask[:, 0] = True                                               # every query sees a key
    bias = np.where(mask, 0.0, -np.inf).astype(dtype)
    causal_bias = np.where(np.tril(np.ones((5, 5), bool)), 0.0, -np.inf).astype(dtype)
    for attn_mask, add in ((None, 0), (mask, bias), ("causal", causal_bias)):
        causal = isinstance(attn_mask, str)
        out, w = attention_with_weights(q, k, v, None if causal else attn_mask, is_causal=causal)
        scores = nl.matmul(q, nl.ops.transpose(k, -2, -1)) * (1 / math.sqrt(8)) + add
        w_ref = F.softmax(scores, dim=-1)
        assert w.dtype == dtype and out.dtype == dtype
        assert w.data.tobytes() == w_ref.data.tobytes()
        assert out.data.tobytes() == nl.matmul(w_ref, v).data.tobytes()


def test_attention_over_no_keys_gives_zeros_and_empty_weights_as_pytorch():
    # A source of length 0: each query attends to nothing, so its output is the zero vector
    # (then the output projection's bias), its weights an (L, 0) block, and no gradient flows.
    mha = nl.nn.MultiheadAttention(8, 2, batch_first=True)
    q, k = nl.randn(2, 3, 8, requires_grad=True), nl.randn(2, 0, 8)
    out, weights = mha(q, k, k)
    assert out.shape == (2, 3, 8) and weights.shape == (2, 3, 0)
    np.testing.assert_array_equal(out.data, np.broadcast_to(mha.out_proj.bias.data, (2, 3, 8)))
    out.sum().backward()
    assert not q.grad.data.any() and not mha.in_proj_weight.grad.data.any()
    assert not F.scaled_dot_product_attention(nl.randn(2, 3, 4), nl.randn(2, 0, 4), nl.randn(2, 0, 4)).data.any()
