"""Self-attention from one packed [Q | K | V] projection: MultiheadAttention's packed path.

The packed path (one (N, L, 3E) product, one PackedAttention node) against the
composed one (three projections, per-head views, MatMul/ScaledSoftmax/MatMul, a
merge), against PyTorch, by central differences, across thread counts; and the
calls that must keep the composed path.
"""
import numpy as np
import pytest

import nnlite as nl
from helpers import compare_output_and_grads, node_names, packed_heads, same_bytes_across_threads, torch_or_skip
from nnlite.autograd import gradcheck, gradgradcheck
from nnlite.ops.attention import attention_with_weights
from nnlite.ops.packed_attention import PackedAttention, packed_attention


def _composed(m):
    """Force ``m`` (a MultiheadAttention) onto the composed path, as every call the packed one refuses."""
    m._packs = lambda *args: False
    return m


def _causal(L, dtype):
    return np.where(np.tril(np.ones((L, L), bool)), dtype(0), dtype(-np.inf))


def _step(m, x0, **kw):
    """Output, input gradient and parameter gradients of sum(out**2), from fresh gradients."""
    m.zero_grad()
    x = nl.tensor(x0, requires_grad=True)
    out, w = m(x, x, x, **kw)
    assert w is None
    (out * out).sum().backward()
    return [out.data, x.grad.data] + [p.grad.data for p in m.parameters()]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["none", "causal", "float_mask", "seq_first", "unbatched", "one_head"])
def test_packed_path_equals_the_composed_path(rng, dtype, case):
    """Same outputs and gradients to rounding. The one (N*L, E) x (E, 3E) product may round Q, K and V
    differently from three (E, E) ones, and the input gradient is one product over 3E where the
    composed path adds three; given the same qkv, the attention itself is compared bit for bit below."""
    heads = 1 if case == "one_head" else 4
    kw = dict(need_weights=False)
    if case in ("causal", "seq_first", "unbatched"):
        kw["is_causal"] = True
    if case == "float_mask":
        kw["attn_mask"] = rng.standard_normal((7, 7))
    nl.manual_seed(0)
    m = nl.nn.MultiheadAttention(16, heads, batch_first=case != "seq_first").to(dtype)
    shape = {"seq_first": (7, 3, 16), "unbatched": (7, 16)}.get(case, (3, 7, 16))
    x0 = rng.standard_normal(shape).astype(dtype)
    x = nl.tensor(x0, requires_grad=True)
    assert "PackedAttentionBackward" in node_names(m(x, x, x, **kw)[0])
    packed = _step(m, x0, **kw)
    composed = _step(_composed(m), x0, **kw)
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    for a, b in zip(packed, composed):
        assert a.dtype == dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_attention_gives_the_composed_attentions_bits(rng, dtype):
    """Given one qkv, PackedAttention's output and its gradients of Q and V are the composed path's
    bits (the same kernels in the same order); dK = dS^T Q, where the composed path forms
    (Q^T dS)^T, agrees to rounding."""
    N, L, H, d = 3, 6, 2, 4
    qkv = nl.tensor(rng.standard_normal((N, L, 3 * H * d)).astype(dtype), requires_grad=True)
    g = nl.tensor(rng.standard_normal((N, L, H * d)).astype(dtype))
    for bias in (None, _causal(L, dtype)):
        out = packed_attention(qkv, H, bias)
        (d_packed,) = nl.grad(out, qkv, grad_outputs=g)
        q, k, v = (nl.tensor(t.copy(), requires_grad=True) for t in packed_heads(qkv.data, H))
        ref, _ = attention_with_weights(q, k, v, bias)
        ref = ref.transpose(1, 2).reshape(N, L, H * d)
        assert out.data.tobytes() == ref.data.tobytes()
        dq, dk, dv = nl.grad(ref, [q, k, v], grad_outputs=g)
        got = packed_heads(d_packed.data, H)
        assert np.ascontiguousarray(got[0]).tobytes() == dq.data.tobytes()
        assert np.ascontiguousarray(got[2]).tobytes() == dv.data.tobytes()
        np.testing.assert_allclose(got[1], dk.data, rtol=1e-5 if dtype == np.float32 else 1e-13,
                                   atol=1e-6 if dtype == np.float32 else 1e-15)


@pytest.mark.parametrize("batch_first", [True, False])
def test_packed_path_matches_torch_self_attention_with_a_causal_mask(rng, batch_first):
    torch = torch_or_skip()
    t = torch.nn.MultiheadAttention(16, 4, batch_first=batch_first).double()
    with torch.no_grad():
        t.in_proj_bias.normal_()
        t.out_proj.bias.normal_()
    m = nl.nn.MultiheadAttention(16, 4, batch_first=batch_first).double()
    m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    x0 = rng.standard_normal((3, 6, 16) if batch_first else (6, 3, 16))
    causal = np.triu(np.ones((6, 6), bool), k=1)                   # True: may not attend (MHA's convention)
    x, tx = nl.tensor(x0, requires_grad=True), torch.tensor(x0, requires_grad=True)
    out, _ = m(x, x, x, attn_mask=causal, need_weights=False)
    ref, _ = t(tx, tx, tx, attn_mask=torch.tensor(causal), need_weights=False)
    assert "PackedAttentionBackward" in node_names(out)
    compare_output_and_grads(m, t, x, tx, out, ref, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_packed_path_by_central_differences(rng, causal):
    """First and second derivatives of the whole layer (input and in_proj_weight) in float64."""
    nl.manual_seed(0)
    m = nl.nn.MultiheadAttention(6, 2, batch_first=True).double()
    with nl.no_grad():
        m.in_proj_bias.copy_(nl.tensor(rng.standard_normal(18)))
    x = nl.tensor(rng.standard_normal((2, 4, 6)), requires_grad=True)

    def layer(x, w):
        m.in_proj_weight.data = w.data   # the perturbed copy gradcheck hands in
        qkv = nl.nn.functional.linear(x, w, m.in_proj_bias)
        return m.out_proj(packed_attention(qkv, 2, _causal(4, np.float64) if causal else None))

    w = nl.tensor(m.in_proj_weight.data.copy(), requires_grad=True)
    assert gradcheck(layer, [x, w], atol=1e-6, rtol=1e-5)
    assert gradgradcheck(layer, [x, w], atol=1e-5, rtol=1e-4)
    x2 = nl.tensor(x.data.copy(), requires_grad=True)
    out, _ = m(x2, x2, x2, need_weights=False, is_causal=causal)
    assert "PackedAttentionBackward" in node_names(out)
    assert gradgradcheck(lambda x: m(x, x, x, need_weights=False, is_causal=causal)[0], [x2], atol=1e-5, rtol=1e-4)


def test_second_derivatives_through_the_layer_equal_the_composed_paths(rng):
    """A gradient penalty: d/dW of |d loss/d x|^2, packed and composed."""
    nl.manual_seed(0)
    m = nl.nn.MultiheadAttention(8, 2, batch_first=True).double()
    x0 = rng.standard_normal((2, 5, 8))
    results = []
    for force in (False, True):
        if force:
            _composed(m)
        m.zero_grad()
        x = nl.tensor(x0, requires_grad=True)
        out, _ = m(x, x, x, need_weights=False, is_causal=True)
        (gx,) = nl.grad((out * out).sum(), x, create_graph=True)
        (gx * gx).sum().backward()
        results.append([p.grad.data for p in m.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 1, 6), (1, 5, 6), (0, 4, 6), (3, 7, 18)])
def test_packed_attention_on_small_and_odd_shapes_matches_torch(rng, shape):
    torch = torch_or_skip()
    heads = 3 if shape[2] == 18 else 1
    for causal in (False, True):
        a = rng.standard_normal(shape)
        qkv, tq = nl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        out = packed_attention(qkv, heads, _causal(shape[1], np.float64) if causal else None)
        n, length, width = shape
        q, k, v = (t.transpose(1, 2) for t in tq.reshape(n, length, 3, heads, width // (3 * heads)).unbind(2))
        ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
        ref = ref.transpose(1, 2).reshape(n, length, width // 3)
        np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=1e-14)
        g = rng.standard_normal(out.shape)
        (out * nl.tensor(g)).sum().backward()
        (ref * torch.tensor(g)).sum().backward()
        np.testing.assert_allclose(qkv.grad.data, tq.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_packed_attention_reads_a_non_contiguous_qkv(rng):
    a = rng.standard_normal((5, 2, 12))
    strided = nl.tensor(a, requires_grad=True)
    packed = nl.tensor(np.ascontiguousarray(a.transpose(1, 0, 2)), requires_grad=True)
    out = packed_attention(strided.transpose(0, 1), 2, _causal(5, np.float64))
    ref = packed_attention(packed, 2, _causal(5, np.float64))
    assert out.data.tobytes() == ref.data.tobytes()
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_array_equal(strided.grad.data, packed.grad.data.transpose(1, 0, 2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_attention_is_bit_identical_across_thread_counts(rng, dtype, restore_threads):
    qkv0 = rng.standard_normal((4, 33, 48)).astype(dtype)
    g = rng.standard_normal((4, 33, 16)).astype(dtype)

    def forward_backward(a):
        qkv = nl.tensor(a, requires_grad=True)
        out = packed_attention(qkv, 4, _causal(33, dtype))
        out.backward(nl.tensor(g))
        return out.data, qkv.grad.data

    same_bytes_across_threads(forward_backward, qkv0)


def test_packed_layer_step_is_bit_identical_across_thread_counts(rng, restore_threads):
    nl.manual_seed(0)
    m = nl.nn.MultiheadAttention(32, 4, batch_first=True)

    def layer_step(x0):
        return tuple(_step(m, x0, need_weights=False, is_causal=True))

    same_bytes_across_threads(layer_step, rng.standard_normal((5, 17, 32)).astype(np.float32))


def test_packed_path_runs_on_the_reference_backend(rng):
    nl.manual_seed(0)
    m = nl.nn.MultiheadAttention(16, 4, batch_first=True)
    x0 = rng.standard_normal((2, 9, 16)).astype(np.float32)
    results = []
    for backend in ("cython", "reference"):
        nl.set_backend(backend)
        results.append(_step(m, x0, need_weights=False, is_causal=True))
    nl.set_backend("cython")
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _fallback_calls(rng):
    """(module kwargs, a function calling the module) that must keep the composed path."""
    x = nl.tensor(rng.standard_normal((2, 5, 8)), requires_grad=True)
    y = nl.tensor(rng.standard_normal((2, 5, 8)))
    blocked = np.zeros((5, 5), bool)
    blocked[2] = True                                  # query 2 may see nothing: zero weights
    pad = np.zeros((2, 5), bool)
    pad[1, 3:] = True
    learned = nl.tensor(rng.standard_normal((5, 5)), requires_grad=True)
    return {
        "need_weights": ({}, lambda m: m(x, x, x)[0]),
        "cross_attention": ({}, lambda m: m(x, y, y, need_weights=False)[0]),
        "separate_key": ({}, lambda m: m(x, x * 1.0, x, need_weights=False)[0]),
        "key_padding_mask": ({}, lambda m: m(x, x, x, key_padding_mask=pad, need_weights=False)[0]),
        "per_head_mask": ({}, lambda m: m(x, x, x, attn_mask=rng.random((4, 5, 5)) < 0.3,
                                          need_weights=False)[0]),
        "learned_mask": ({}, lambda m: m(x, x, x, attn_mask=learned, need_weights=False)[0]),
        "blocked_query": ({}, lambda m: m(x, x, x, attn_mask=blocked, need_weights=False)[0]),
        "dropout": (dict(dropout=0.5), lambda m: m.train()(x, x, x, need_weights=False)[0]),
        "bias_kv": (dict(add_bias_kv=True), lambda m: m(x, x, x, need_weights=False)[0]),
        "zero_attn": (dict(add_zero_attn=True), lambda m: m(x, x, x, need_weights=False)[0]),
        "kdim": (dict(kdim=8, vdim=6), None),
    }


@pytest.mark.parametrize("case", ["need_weights", "cross_attention", "separate_key", "key_padding_mask",
                                  "per_head_mask", "learned_mask", "blocked_query", "dropout", "bias_kv",
                                  "zero_attn", "kdim", "float16"])
def test_calls_the_packed_path_does_not_cover_keep_the_composed_path(rng, case):
    if case == "float16":
        m = nl.nn.MultiheadAttention(8, 2, batch_first=True).half()
        x = nl.tensor(rng.standard_normal((2, 5, 8)).astype(np.float16))
        with nl.no_grad():
            out, _ = m(x, x, x, need_weights=False)
        assert out.dtype == nl.float16   # ran (composed) without a packed path for float16
        m2 = nl.nn.MultiheadAttention(8, 2, batch_first=True).half()
        assert not m2._packs(x, None)
        return
    if case == "kdim":
        m = nl.nn.MultiheadAttention(8, 2, kdim=8, vdim=6, batch_first=True).double()
        x = nl.tensor(rng.standard_normal((2, 5, 8)), requires_grad=True)
        v = nl.tensor(rng.standard_normal((2, 5, 6)))
        out = m(x, x, v, need_weights=False)[0]
    else:
        kw, call = _fallback_calls(rng)[case]
        m = nl.nn.MultiheadAttention(8, 2, batch_first=True, **kw).double()
        out = call(m)
    names = node_names(out)
    assert "PackedAttentionBackward" not in names and "MatMulBackward" in names


def test_packed_attention_errors(rng):
    qkv = nl.randn(2, 5, 12)
    with pytest.raises(ValueError, match=r"qkv must be \(batch, sequence, 3 \* embed_dim\).*num_heads=3.*"
                                         r"\(2, 5, 12\)"):
        packed_attention(qkv, 3)
    with pytest.raises(ValueError, match=r"got shape \(5, 12\)"):
        packed_attention(nl.randn(5, 12), 2)
    with pytest.raises(TypeError, match="float32 or float64, got float16"):
        packed_attention(qkv.to(nl.float16), 2)
    with pytest.raises(ValueError, match=r"bias must be an \(5, 5\) float32 array, got \(5, 4\)"):
        packed_attention(qkv, 2, np.zeros((5, 4), np.float32))
    with pytest.raises(ValueError, match=r"bias must be an \(5, 5\) float32 array, got \(5, 5\) float64"):
        packed_attention(qkv, 2, np.zeros((5, 5)))
    with pytest.raises(TypeError, match="bias must be a constant"):
        packed_attention(qkv, 2, nl.zeros(5, 5, requires_grad=True))
    dead = _causal(5, np.float32)
    dead[3] = -np.inf
    with pytest.raises(ValueError, match="blocks every key for some query"):
        packed_attention(qkv, 2, dead)
    with pytest.raises(TypeError, match="scale must be a real number, got Tensor"):
        packed_attention(qkv, 2, scale=nl.tensor(0.5))
    # a constant Tensor mask is read as its array
    np.testing.assert_array_equal(packed_attention(qkv, 2, nl.tensor(_causal(5, np.float32))).data,
                                  packed_attention(qkv, 2, _causal(5, np.float32)).data)


def test_the_weights_are_kept_only_for_a_recorded_call(rng):
    qkv = nl.tensor(rng.standard_normal((2, 4, 6)))
    fn = PackedAttention()
    fn.recording = False
    fn.forward(qkv.data, 1, None, 0.5)
    assert fn.weights is None
    leaf = nl.tensor(qkv.data, requires_grad=True)
    assert packed_attention(leaf, 1).grad_fn.weights.shape == (2, 1, 4, 4)


@pytest.mark.parametrize("shape", [(2, 0, 6), (0, 0, 6)])
def test_packed_attention_on_an_empty_sequence(shape):
    """No queries and no keys: an empty output and an empty gradient, forward and backward."""
    qkv = nl.tensor(np.zeros(shape), requires_grad=True)
    out = packed_attention(qkv, 2)
    assert out.shape == shape[:2] + (shape[2] // 3,)
    out.backward(nl.tensor(np.ones(out.shape)))
    assert qkv.grad.shape == shape


def test_packed_attention_names_a_wrong_head_count_and_byte_order():
    qkv = np.zeros((2, 5, 12), np.float32)
    with pytest.raises(TypeError, match=r"num_heads must be a positive int, got 2.0 \(float\)"):
        packed_attention(qkv, 2.0)
    with pytest.raises(ValueError, match=r"num_heads must be a positive int, got 0"):
        packed_attention(qkv, 0)
    with pytest.raises(TypeError, match=r"float32 or float64 in the machine's byte order, got >f4"):
        packed_attention(qkv.astype(">f4"), 2)
