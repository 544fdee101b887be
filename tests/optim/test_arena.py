"""The parameter arena: aligned views into flat buffers, invisible to the model."""
import numpy as np
import pytest

import nnlite as nl
from nnlite._kernels import K
from nnlite.nn import Parameter
from nnlite.optim.arena import ALIGNMENT, aligned_zeros, build_arena


def _mlp(dtype=np.float64):
    nl.manual_seed(0)
    return nl.nn.Sequential(nl.nn.Linear(5, 7, dtype=dtype), nl.nn.Tanh(),
                            nl.nn.Linear(7, 3, dtype=dtype))


def test_aligned_zeros_is_aligned_and_zero():
    for n in (0, 1, 7, 100):
        for dtype in (np.float32, np.float64):
            a = aligned_zeros(n, dtype)
            assert a.shape == (n,) and a.dtype == dtype and not a.any()
            assert n == 0 or a.ctypes.data % ALIGNMENT == 0   # an empty array has no address


def test_parameters_become_aligned_views_of_one_buffer():
    model = _mlp()
    params = list(model.parameters())
    opt = nl.optim.Adam(model.parameters(), lr=0.01)
    [buf] = opt._arenas[0]
    assert len(buf.slots) == len(params)
    for slot, p in zip(buf.slots, params):
        assert slot.param is p
        assert np.shares_memory(p.data, buf.params)
        assert p.data.ctypes.data == buf.params.ctypes.data + slot.offset * 8
        assert p.data.ctypes.data % 64 == 0
        assert p._grad_slot.ctypes.data % 64 == 0 and np.shares_memory(p._grad_slot, buf.grads)
    # Writing through the buffer is writing the parameter: they are one memory.
    buf.params[buf.slots[1].offset] = 42.0
    assert params[1].data.flat[0] == 42.0


def test_model_outputs_unchanged_after_building():
    model = _mlp()
    x = nl.tensor(np.random.default_rng(0).standard_normal((4, 5)))
    before = model(x).data.copy()
    state_before = {k: v.data.copy() for k, v in model.state_dict().items()}
    nl.optim.SGD(model.parameters(), lr=0.1)
    np.testing.assert_array_equal(model(x).data, before)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.data, state_before[k])


def test_gradients_accumulate_into_the_grad_buffer():
    model = _mlp()
    opt = nl.optim.SGD(model.parameters(), lr=0.1)
    [buf] = opt._arenas[0]
    x = nl.tensor(np.random.default_rng(1).standard_normal((4, 5)))
    model(x).sum().backward()
    first = [p.grad.data.copy() for p in model.parameters()]
    for slot in buf.slots:
        assert slot.param.grad.data is slot.grad
        np.testing.assert_array_equal(slot.view(buf.grads), slot.param.grad.data)
    model(x).sum().backward()                     # a second backward adds into the same memory
    for p, g in zip(model.parameters(), first):
        np.testing.assert_allclose(p.grad.data, 2 * g, rtol=1e-15)
        assert np.shares_memory(p.grad.data, buf.grads)
    # The same gradients as without any optimizer.
    fresh = _mlp()
    fresh(x).sum().backward()
    for p, q in zip(model.parameters(), fresh.parameters()):
        np.testing.assert_allclose(p.grad.data, 2 * q.grad.data, rtol=1e-15)


def test_tied_parameter_takes_one_slot():
    w = Parameter(np.ones((3, 3)), kind="weight")
    b = Parameter(np.zeros(3), kind="bias")
    with pytest.warns(UserWarning, match="duplicate parameters; each is kept once"):   # PyTorch warns too
        opt = nl.optim.SGD([w, b, w], lr=0.5)
    [buf] = opt._arenas[0]
    assert [s.param for s in buf.slots] == [w, b]
    assert len(opt.param_groups[0]["params"]) == 2
    # Used twice in the graph, the gradient of both uses lands in the one slot.
    x = nl.tensor(np.arange(3.0))
    ((w @ x) + b + (w @ x)).sum().backward()
    np.testing.assert_array_equal(w.grad.data, 2 * np.tile(np.arange(3.0), (3, 1)))
    opt.step()
    np.testing.assert_array_equal(w.data, 1 - np.tile(np.arange(3.0), (3, 1)))


def test_one_kernel_call_per_group_and_dtype(monkeypatch):
    calls = []
    original = K.adam_step

    def counting(param, grad, *args, **kwargs):
        calls.append(param.size)
        return original(param, grad, *args, **kwargs)

    monkeypatch.setattr(K, "adam_step", counting)
    p64 = [Parameter(np.ones(s)) for s in [(4, 3), (3,), (5,)]]
    p32 = [Parameter(np.ones(s, np.float32)) for s in [(2, 2), (7,)]]
    extra = [Parameter(np.ones((6,)))]
    opt = nl.optim.Adam([{"params": p64 + p32}, {"params": extra, "lr": 0.1}])
    assert [len(arena) for arena in opt._arenas] == [2, 1]   # group 0 holds two dtypes
    for p in p64 + p32 + extra:
        p.grad = nl.ones_like(p)
    opt.step()
    assert calls == [buf.size for arena in opt._arenas for buf in arena]   # whole buffers
    calls.clear()
    p64[1].grad = None   # a hole in the middle: two runs around it
    opt.step()
    assert len(calls) == 4


def test_frozen_and_gradless_parameters_are_untouched():
    a, b, c, d = (Parameter(np.full(s, 1.0)) for s in [(3,), (4,), (2, 2), (5,)])
    opt = nl.optim.AdamW([a, b, c, d], lr=0.1, weight_decay=0.5)
    b.requires_grad = False
    b.grad = nl.ones(4).double()  # a stale gradient on a frozen parameter is ignored
    for step in range(5):
        a.grad = nl.ones(3).double()
        d.grad = nl.ones(5).double()
        opt.step()
    np.testing.assert_array_equal(b.data, 1.0)
    np.testing.assert_array_equal(c.data, 1.0)
    assert (a.data < 1).all() and (d.data < 1).all()
    state = opt.state_dict()["state"]
    assert sorted(state) == [0, 3] and float(state[0]["step"].data) == 5
    [buf] = opt._arenas[0]
    for name in ("exp_avg", "exp_avg_sq"):
        assert not buf.slots[1].view(buf.state[name]).any()
        assert not buf.slots[2].view(buf.state[name]).any()
    # Unfrozen later, it starts its own step count at 1 (Adam's bias correction).
    b.requires_grad = True
    opt.step()
    assert float(opt.state_dict()["state"][1]["step"].data) == 1
    assert (b.data < 1).all()


def test_padding_stays_zero_in_every_buffer():
    params = [Parameter(np.full(s, 2.0)) for s in [(3,), (9,), (1,)]]
    for eps in (1e-8, 0.0):   # eps = 0 would compute 0/0 in the padding
        for opt in (nl.optim.Adam(params, eps=eps, weight_decay=0.1, amsgrad=True),
                    nl.optim.RMSprop(params, eps=eps, momentum=0.9, centered=True),
                    nl.optim.Adagrad(params, eps=eps, initial_accumulator_value=0.5)):
            for _ in range(3):
                for p in params:
                    p.grad = nl.ones_like(p)
                opt.step()
            [buf] = opt._arenas[0]
            mask = np.ones(buf.size, bool)
            for s in buf.slots:
                mask[s.offset:s.offset + s.numel] = False
            assert buf.padding == mask.sum() == 8 - 3 + 16 - 9 + 8 - 1
            for array in [buf.params, buf.grads, *buf.state.values()]:
                assert not array[mask].any(), type(opt).__name__
            assert np.isfinite(buf.params).all()


def test_state_views_alias_state_buffers_and_are_aligned():
    params = [Parameter(np.ones(s)) for s in [(3, 3), (2,)]]
    opt = nl.optim.Adam(params, lr=0.1)
    for p in params:
        p.grad = nl.ones_like(p)
    opt.step()
    [buf] = opt._arenas[0]
    for p in params:
        for name in ("exp_avg", "exp_avg_sq"):
            view = opt.state[p][name].data
            assert np.shares_memory(view, buf.state[name]) and view.ctypes.data % 64 == 0
    np.testing.assert_allclose(opt.state[params[0]]["exp_avg"].data, 0.1)


def test_replaced_data_is_readopted_and_dtype_change_is_an_error():
    w = Parameter(np.zeros(4))
    opt = nl.optim.SGD([w], lr=1.0)
    w.data = np.arange(4.0)             # storage swapped behind the optimizer's back
    w.grad = nl.ones(4).double()
    opt.step()
    np.testing.assert_array_equal(w.data, np.arange(4.0) - 1)
    assert np.shares_memory(w.data, opt._arenas[0][0].params)
    w.data = w.data.astype(np.float32)
    with pytest.raises(RuntimeError, match="float64.*float32"):
        opt.step()


def test_build_arena_on_request_and_bad_dtypes():
    w = Parameter(np.arange(6.0).reshape(2, 3))
    v = Parameter(np.arange(3, dtype=np.float32))
    bufs = build_arena([w, v, w])
    assert [b.dtype for b in bufs] == [np.float64, np.float32]
    assert bufs[0].size == 8 and bufs[1].size == 16
    np.testing.assert_array_equal(w.data, np.arange(6.0).reshape(2, 3))
    assert w.data.base is not None and np.shares_memory(w.data, bufs[0].params)
    with pytest.raises(TypeError, match="float32 or float64.*int64"):
        build_arena([nl.tensor([1, 2])])


def test_grad_set_by_hand_is_used():
    w = Parameter(np.ones(3))
    opt = nl.optim.SGD([w], lr=0.5)
    g = nl.tensor(np.array([1.0, 2.0, 3.0]))
    w.grad = g                          # not the arena's slot: copied in at step
    opt.step()
    np.testing.assert_array_equal(w.data, [0.5, 0.0, -0.5])
    assert w.grad is g


def test_plain_tensor_leaves_can_be_optimized():
    x = nl.tensor(np.array([2.0, -2.0]), requires_grad=True)
    opt = nl.optim.SGD([x], lr=0.25)
    for _ in range(2):
        opt.zero_grad()
        (x * x).sum().backward()
        opt.step()
    np.testing.assert_array_equal(x.data, [0.5, -0.5])


def test_arena_layout_is_printable():
    model = _mlp().name_parameters()
    opt = nl.optim.AdamW(nl.optim.param_groups_by_kind(model, weight_decay=0.1))
    weights, biases = (arena[0] for arena in opt.arenas)
    text = repr(weights)
    assert text.startswith("ArenaBuffer(float64, 2 parameters, 64 elements")
    assert "0.weight" in text and "2.weight" in text and "(7, 5)" in text
    assert "[       40,        61)" in text      # 35 elements padded to 40 (a multiple of 8)
    assert [s.param.kind for s in biases.slots] == ["bias", "bias"]


def test_adopt_storage_refuses_views_that_do_not_match_the_parameter():
    from nnlite.parameter import adopt_storage
    w = Parameter(np.ones(1, np.float32))
    good = np.zeros(1, np.float32)
    with pytest.raises(ValueError, match=r"data must have the parameter's shape \(1,\), got \(4,\)"):
        adopt_storage(w, np.zeros(4, np.float32), good)   # copyto would broadcast 1 -> 4
    with pytest.raises(TypeError, match="grad must be a float32 numpy.ndarray.*got float64"):
        adopt_storage(w, good, np.zeros(1))
    with pytest.raises(TypeError, match="data must be a float32 numpy.ndarray.*got list"):
        adopt_storage(w, [0.0], good)
    assert w.data is not good and w.data.tolist() == [1.0]   # nothing adopted on refusal
