"""MatMul's unrecorded backward: K.bmm with transpose flags, gradients laid out like their inputs."""
import numpy as np
import pytest

import nnlite as nl
from helpers import node_names


def _heads(rng, N, L, H, d, dtype, requires_grad=True):
    """An (N, H, L, d) view of (N, L, H, d) storage, as MultiheadAttention reads its heads."""
    store = nl.tensor(rng.standard_normal((N, L, H, d)).astype(dtype), requires_grad=requires_grad)
    return store, store.transpose(1, 2)


CASES = {
    # name: (a, b) from rng and dtype
    "3d": lambda rng, dt: (nl.tensor(rng.standard_normal((3, 5, 4)).astype(dt), requires_grad=True),
                           nl.tensor(rng.standard_normal((3, 4, 7)).astype(dt), requires_grad=True)),
    "4d": lambda rng, dt: (nl.tensor(rng.standard_normal((2, 3, 5, 4)).astype(dt), requires_grad=True),
                           nl.tensor(rng.standard_normal((2, 3, 4, 1)).astype(dt), requires_grad=True)),
    # scores = Q K^T over head views, then weights @ V
    "scores": lambda rng, dt: (_heads(rng, 2, 6, 3, 4, dt)[1], _heads(rng, 2, 5, 3, 4, dt)[1].mT),
    "values": lambda rng, dt: (nl.tensor(rng.standard_normal((2, 3, 6, 5)).astype(dt), requires_grad=True),
                               _heads(rng, 2, 5, 3, 4, dt)[1]),
    "empty": lambda rng, dt: (nl.tensor(np.zeros((2, 0, 3), dt), requires_grad=True),
                              nl.tensor(rng.standard_normal((2, 3, 4)).astype(dt), requires_grad=True)),
    "one": lambda rng, dt: (nl.tensor(rng.standard_normal((1, 1, 1)).astype(dt), requires_grad=True),
                            nl.tensor(rng.standard_normal((1, 1, 1)).astype(dt), requires_grad=True)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("wanted", ["both", "a", "b"])
def test_unrecorded_backward_has_the_recorded_bytes(case, dtype, wanted):
    """Without create_graph, MatMul's gradients come straight from K.bmm; the bytes are those of
    the recorded (differentiable) backward, also for an incoming gradient stored transposed."""
    rng = np.random.default_rng(len(case))
    a, b = CASES[case](rng, dtype)
    inputs = {"both": [a, b], "a": [a], "b": [b]}[wanted]
    out = nl.matmul(a, b)
    g = nl.tensor(np.swapaxes(rng.standard_normal(out.shape[:-2] + out.shape[:-3:-1]), -1, -2).astype(dtype))
    first = nl.grad(nl.matmul(a, b), inputs, grad_outputs=g, retain_graph=True)   # views: keep their nodes
    recorded = nl.grad(nl.matmul(a, b), inputs, grad_outputs=g, create_graph=True)
    assert len(first) == len(inputs)
    for x, f, r in zip(inputs, first, recorded):
        assert f.grad_fn is None and f.shape == x.shape and f.dtype == x.dtype
        assert np.ascontiguousarray(f.data).tobytes() == np.ascontiguousarray(r.data).tobytes()
        np.testing.assert_allclose(f.data, r.data, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_head_gradients_are_laid_out_like_the_heads(dtype):
    """dQ and dV of views of (N, L, H, d) storage come back in that storage order, so the
    transpose back to (N, L, H, d) is C-contiguous and the reshape to (N, L, E) a view;
    the gradient of a transposed key (B = K^T), which BLAS cannot write in K's order,
    is a new C-contiguous array. Each has the bytes of the general path's gradient."""
    rng = np.random.default_rng(0)
    q_store, q = _heads(rng, 2, 6, 3, 4, dtype)
    k_store, k = _heads(rng, 2, 5, 3, 4, dtype)
    v_store, v = _heads(rng, 2, 5, 3, 4, dtype)
    kt = k.mT
    g = nl.tensor(rng.standard_normal((2, 3, 6, 4)).astype(dtype))
    dq, dkt, dv = nl.grad(nl.matmul(nl.matmul(q, kt), v), [q, kt, v], grad_outputs=g, retain_graph=True)
    for grad in (dq, dv):
        assert np.swapaxes(grad.data, 1, 2).flags.c_contiguous
    assert dkt.data.flags.c_contiguous
    wanted = nl.grad(nl.matmul(nl.matmul(q, kt), v), [q, kt, v], grad_outputs=g, create_graph=True)
    for got, want in zip((dq, dkt, dv), wanted):
        assert np.ascontiguousarray(got.data).tobytes() == np.ascontiguousarray(want.data).tobytes()
    # and the whole chain to the (N, L, H, d) leaves: the same bytes as the recorded backward
    first = nl.grad(nl.matmul(nl.matmul(q, kt), v).sum(), [q_store, k_store, v_store], retain_graph=True)
    again = nl.grad(nl.matmul(nl.matmul(q, kt), v).sum(), [q_store, k_store, v_store], create_graph=True)
    for f, r in zip(first, again):
        assert f.data.tobytes() == np.ascontiguousarray(r.data).tobytes()


def test_other_operands_keep_the_general_path():
    """Broadcast batch dims, 2-D and mixed dtypes still get correct gradients (unchanged path)."""
    rng = np.random.default_rng(1)
    a = nl.tensor(rng.standard_normal((2, 1, 3, 4)), requires_grad=True)
    b = nl.tensor(rng.standard_normal((5, 4, 2)), requires_grad=True)
    ga, gb = nl.grad(nl.matmul(a, b).sum(), [a, b])
    ones = np.ones((2, 5, 3, 2))
    np.testing.assert_allclose(ga.data, (ones @ np.swapaxes(b.data, -1, -2)).sum(1, keepdims=True))
    np.testing.assert_allclose(gb.data, (np.swapaxes(a.data, -1, -2) @ ones).sum(0))


def test_multihead_attention_gradients_have_the_recorded_bytes():
    """A MultiheadAttention layer's parameter and input gradients: the unrecorded backward
    (kernels, head gradients in place) gives the bytes of the recorded one. need_weights=True
    keeps the call on the composed path, whose products are MatMuls (self-attention without
    weights would run packed, as one PackedAttention node, and never reach MatMul's backward)."""
    nl.manual_seed(3)
    mha = nl.nn.MultiheadAttention(12, 3, batch_first=True)
    x = nl.randn(2, 7, 12, requires_grad=True)
    mask = np.triu(np.ones((7, 7), dtype=bool), 1)
    wanted = [x] + list(mha.parameters())
    loss = lambda: (mha(x, x, x, attn_mask=mask, need_weights=True)[0] ** 2).sum()
    assert "MatMulBackward" in node_names(loss())
    first = nl.grad(loss(), wanted)
    recorded = nl.grad(loss(), wanted, create_graph=True)
    for f, r in zip(first, recorded):
        assert f.data.tobytes() == np.ascontiguousarray(r.data).tobytes()



@pytest.mark.parametrize("a_shape, b_shape", [((3, 0), (0, 8)), ((2, 4, 0), (0, 5)), ((0, 3), (3, 2)),
                                              ((2, 0, 3), (3, 4))])
def test_empty_products_and_their_gradients(a_shape, b_shape):
    """An inner dimension of 0 gives zeros (the empty sum); an empty row count, an empty result."""
    rng = np.random.default_rng(0)
    a = nl.tensor(rng.standard_normal(a_shape), requires_grad=True)
    b = nl.tensor(rng.standard_normal(b_shape), requires_grad=True)
    out = a @ b
    np.testing.assert_array_equal(out.data, a.data @ b.data)
    out.sum().backward()
    assert a.grad.shape == a_shape and b.grad.shape == b_shape
    rows = a.data.reshape(int(np.prod(a_shape[:-1])), a_shape[-1])
    np.testing.assert_allclose(b.grad.data, rows.T @ np.ones((rows.shape[0], b_shape[-1])), rtol=1e-12)
    np.testing.assert_allclose(a.grad.data, np.ones(out.shape) @ b.data.T, rtol=1e-12)
