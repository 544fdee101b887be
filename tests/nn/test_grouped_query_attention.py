"""GroupedQueryAttention: shrunk K/V projections, equal to torch's MHA when G = H and to
torch's scaled_dot_product_attention(enable_gqa=True) otherwise; float64 gradient check."""
import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck


@pytest.mark.parametrize("heads,kv_heads", [(8, 8), (8, 2), (8, 1)])
def test_parameter_count_follows_the_formula(heads, kv_heads):
    E = 64
    d = E // heads
    layer = nl.nn.GroupedQueryAttention(E, heads, kv_heads)
    assert layer.k_proj.weight.shape == layer.v_proj.weight.shape == (kv_heads * d, E)
    assert layer.num_parameters() == 2 * E * E + 2 * E * kv_heads * d + 2 * E + 2 * kv_heads * d


def test_equals_torch_multihead_attention_when_every_head_has_its_keys():
    torch = pytest.importorskip("torch")
    nl.manual_seed(0)
    ours = nl.nn.GroupedQueryAttention(16, 4)
    theirs = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    w = lambda lin: torch.from_numpy(lin.weight.detach().numpy().copy())
    b = lambda lin: torch.from_numpy(lin.bias.detach().numpy().copy())
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([w(ours.q_proj), w(ours.k_proj), w(ours.v_proj)]))
        theirs.in_proj_bias.copy_(torch.cat([b(ours.q_proj), b(ours.k_proj), b(ours.v_proj)]))
        theirs.out_proj.weight.copy_(w(ours.out_proj))
        theirs.out_proj.bias.copy_(b(ours.out_proj))
    x = np.random.default_rng(0).standard_normal((2, 5, 16)).astype(np.float32)
    want, _ = theirs(*(torch.from_numpy(x),) * 3, need_weights=False)
    np.testing.assert_allclose(ours(nl.tensor(x)).detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kv_heads", [2, 1])
@pytest.mark.parametrize("causal", [False, True])
def test_grouped_and_multi_query_equal_torch_sdpa(kv_heads, causal):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    nl.manual_seed(1)
    H, E = 4, 16
    layer = nl.nn.GroupedQueryAttention(E, H, kv_heads)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6, E)).astype(np.float32)
    mem = rng.standard_normal((3, 6, E)).astype(np.float32)
    lin = lambda l, t: t @ torch.from_numpy(l.weight.detach().numpy()).T + torch.from_numpy(l.bias.detach().numpy())
    tx, tm = torch.from_numpy(x), torch.from_numpy(mem)
    split = lambda t, h: t.reshape(3, 6, h, E // H).transpose(1, 2)
    q = split(lin(layer.q_proj, tx), H)
    k, v = split(lin(layer.k_proj, tm), kv_heads), split(lin(layer.v_proj, tm), kv_heads)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    want = lin(layer.out_proj, out.transpose(1, 2).reshape(3, 6, E))
    got = layer(nl.tensor(x), nl.tensor(mem), is_causal=causal)
    np.testing.assert_allclose(got.detach().numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def test_gradient_matches_finite_differences():
    nl.manual_seed(2)
    layer = nl.nn.GroupedQueryAttention(8, 4, 2).double()
    x = nl.tensor(np.random.default_rng(2).standard_normal((2, 3, 8)), requires_grad=True)
    assert gradcheck(lambda t: layer(t, is_causal=True), [x])
    # gradcheck perturbs the weight in place, so the layer sees each perturbation
    assert gradcheck(lambda w: layer(x, is_causal=True), [layer.k_proj.weight])
    out = layer(x).sum()
    out.backward()
    assert layer.k_proj.weight.grad is not None and layer.v_proj.weight.grad is not None


def test_bad_input():
    with pytest.raises(ValueError, match="num_heads 8 is not a multiple of num_kv_heads 3"):
        nl.nn.GroupedQueryAttention(64, 8, 3)
    with pytest.raises(ValueError, match="embed_dim 10 is not divisible by num_heads 4"):
        nl.nn.GroupedQueryAttention(10, 4)
    with pytest.raises(ValueError, match=r"expected a batch-first query \(N, L, 16\)"):
        nl.nn.GroupedQueryAttention(16, 4)(nl.randn(5, 16))


@pytest.mark.parametrize("key, value, message", [
    ((5, 16), None, r"expected a batch-first key \(N, S, features\) with the query's N = 2, got shape \(5, 16\)"),
    ((3, 5, 16), None, r"expected a batch-first key .* N = 2, got shape \(3, 5, 16\)"),
    ((2, 5, 16), (2, 5), r"expected a batch-first value .* got shape \(2, 5\)"),
    ((2, 5, 16), (2, 4, 16), r"key and value must have the same number of positions, got shapes "
                             r"\(2, 5, 16\) and \(2, 4, 16\)"),
])
def test_key_and_value_shapes_are_named(key, value, message):
    # A 2-D key used to stop in a reshape, a batch size unlike the query's in a matmul.
    gqa = nl.nn.GroupedQueryAttention(16, 4, 2)
    with pytest.raises(ValueError, match=message):
        gqa(nl.randn(2, 3, 16), nl.randn(*key), None if value is None else nl.randn(*value))
