"""Optimizer update kernels: compiled == twin bit for bit, both == torch.optim, clear errors."""
import itertools

import numpy as np
import pytest
from helpers import same_bytes_across_threads

from nnlite._kernels import _optim, reference

IMPLS = [pytest.param(_optim, id="compiled"), pytest.param(reference, id="twin")]

# Every option combination of each optimizer, as torch.optim keyword arguments.
SGD_OPTIONS = [dict(momentum=m, dampening=d, nesterov=n, weight_decay=wd, maximize=mx)
               for m, d, n, wd, mx in itertools.product([0.0, 0.9], [0.0, 0.3], [False, True],
                                                        [0.0, 0.01], [False, True])
               if not (n and (m == 0 or d != 0))]
ADAGRAD_OPTIONS = [dict(lr_decay=ld, weight_decay=wd, maximize=mx, initial_accumulator_value=iv)
                   for ld, wd, mx, iv in itertools.product([0.0, 0.01], [0.0, 0.01],
                                                           [False, True], [0.0, 0.1])]
RMSPROP_OPTIONS = [dict(centered=c, momentum=m, weight_decay=wd, maximize=mx)
                   for c, m, wd, mx in itertools.product([False, True], [0.0, 0.5],
                                                         [0.0, 0.01], [False, True])]
ADAM_OPTIONS = [dict(amsgrad=a, weight_decay=wd, maximize=mx, decoupled=dec)
                for a, wd, mx, dec in itertools.product([False, True], [0.0, 0.01],
                                                        [False, True], [False, True])]


class Runner:
    """Drives one optimizer kernel over a flat buffer, holding its state like torch does."""

    def __init__(self, impl, kind, options, param, lr):
        self.impl, self.kind, self.opt, self.lr = impl, kind, dict(options), lr
        self.param = param
        n, dt = param.shape[0], param.dtype
        self.step = 0
        init = self.opt.pop("initial_accumulator_value", 0.0)
        self.a = np.full(n, init, dtype=dt)
        self.b = np.zeros(n, dtype=dt)
        self.c = np.zeros(n, dtype=dt)

    def __call__(self, grad):
        self.step += 1
        o, impl = self.opt, self.impl
        if self.kind == "sgd":
            impl.sgd_step(self.param, grad, self.a if o["momentum"] else None, self.lr,
                          o["momentum"], o["dampening"], o["nesterov"], o["weight_decay"],
                          o["maximize"], self.step == 1)
        elif self.kind == "adagrad":
            impl.adagrad_step(self.param, grad, self.a, self.step, self.lr, o["lr_decay"],
                              o["weight_decay"], 1e-10, o["maximize"])
        elif self.kind == "rmsprop":
            impl.rmsprop_step(self.param, grad, self.a, self.b if o["centered"] else None,
                              self.c if o["momentum"] else None, self.lr, 0.99, 1e-8,
                              o["weight_decay"], o["momentum"], o["centered"], o["maximize"])
        else:
            impl.adam_step(self.param, grad, self.a, self.b, self.c if o["amsgrad"] else None,
                           self.step, self.lr, 0.9, 0.999, 1e-8, o["weight_decay"],
                           o["decoupled"], o["amsgrad"], o["maximize"])
        return self.param, self.a, self.b, self.c


ALL_CASES = ([("sgd", o) for o in SGD_OPTIONS] + [("adagrad", o) for o in ADAGRAD_OPTIONS]
             + [("rmsprop", o) for o in RMSPROP_OPTIONS] + [("adam", o) for o in ADAM_OPTIONS])
LR = {"sgd": 0.05, "adagrad": 0.1, "rmsprop": 0.01, "adam": 0.01}


def _case_id(case):
    kind, o = case
    return kind + "-" + "-".join(f"{k}={v}" for k, v in o.items())


# ----------------------------------------------------- compiled == twin -----

@pytest.mark.parametrize("case", ALL_CASES, ids=_case_id)
def test_compiled_equals_twin_bitwise_float64(case, rng):
    kind, options = case
    p0 = rng.standard_normal(203)
    fast = Runner(_optim, kind, options, p0.copy(), LR[kind])
    slow = Runner(reference, kind, options, p0.copy(), LR[kind])
    for _ in range(50):
        grad = rng.standard_normal(203)
        for a, b in zip(fast(grad), slow(grad)):
            assert a.tobytes() == b.tobytes()


EVERYTHING_ON = {
    "sgd": dict(momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.01, maximize=True),
    "adagrad": dict(lr_decay=0.01, weight_decay=0.01, maximize=True, initial_accumulator_value=0.1),
    "rmsprop": dict(centered=True, momentum=0.5, weight_decay=0.01, maximize=True),
    "adam": dict(amsgrad=True, weight_decay=0.01, maximize=True, decoupled=True),
}


@pytest.mark.parametrize("kind", sorted(EVERYTHING_ON))
def test_compiled_equals_twin_float32(kind, rng):
    options = EVERYTHING_ON[kind]
    p0 = rng.standard_normal(101).astype(np.float32)
    fast = Runner(_optim, kind, options, p0.copy(), LR[kind])
    slow = Runner(reference, kind, options, p0.copy(), LR[kind])
    for _ in range(20):
        grad = rng.standard_normal(101).astype(np.float32)
        for a, b in zip(fast(grad), slow(grad)):
            assert a.dtype == np.float32 and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("kind", sorted(EVERYTHING_ON))
@pytest.mark.parametrize("size", [0, 1])
def test_empty_and_single_element_buffers_match_the_twin(kind, size, rng):
    p0 = rng.standard_normal(size)
    fast = Runner(_optim, kind, EVERYTHING_ON[kind], p0.copy(), LR[kind])
    slow = Runner(reference, kind, EVERYTHING_ON[kind], p0.copy(), LR[kind])
    for _ in range(3):
        grad = rng.standard_normal(size)
        for a, b in zip(fast(grad), slow(grad)):
            assert a.shape == (size,) and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("impl", IMPLS)
def test_non_contiguous_grad_is_read_correctly(impl, rng):
    p0, g = rng.standard_normal(50), rng.standard_normal(100)
    a = Runner(impl, "adam", ADAM_OPTIONS[0], p0.copy(), 0.1)(g[::2])
    b = Runner(impl, "adam", ADAM_OPTIONS[0], p0.copy(), 0.1)(g[::2].copy())
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("case", [c for c in ALL_CASES if c[1].get("maximize")][::3], ids=_case_id)
def test_same_bytes_across_threads(case, rng):
    kind, options = case
    n = 40_003

    def run(param, state, grad):
        runner = Runner(_optim, kind, options, param, LR[kind])
        runner.a[:] = state
        runner.step = 3
        return runner(grad)

    same_bytes_across_threads(run, rng.standard_normal(n), rng.random(n), rng.standard_normal(n))


# ---------------------------------------------------------- vs torch.optim -----

def _torch_optimizer(torch, kind, options, tensor, lr):
    o = dict(options)
    if kind == "sgd":
        return torch.optim.SGD([tensor], lr=lr, foreach=False, **o)
    if kind == "adagrad":
        return torch.optim.Adagrad([tensor], lr=lr, eps=1e-10, foreach=False, **o)
    if kind == "rmsprop":
        return torch.optim.RMSprop([tensor], lr=lr, alpha=0.99, eps=1e-8, foreach=False, **o)
    cls = torch.optim.AdamW if o.pop("decoupled") else torch.optim.Adam
    return cls([tensor], lr=lr, betas=(0.9, 0.999), eps=1e-8, foreach=False, **o)


@pytest.mark.parametrize("case", ALL_CASES, ids=_case_id)
def test_matches_torch_optim_over_200_steps(case, rng):
    torch = pytest.importorskip("torch")
    kind, options = case
    n, steps = 64, 200
    p0 = rng.standard_normal(n)
    grads = rng.standard_normal((steps, n))
    tensor = torch.tensor(p0.copy(), requires_grad=True)
    opt = _torch_optimizer(torch, kind, options, tensor, LR[kind])
    ours = Runner(_optim, kind, options, p0.copy(), LR[kind])
    for i in range(steps):
        tensor.grad = torch.tensor(grads[i])
        opt.step()
        ours(grads[i])
        if i == 0:  # a single step must already agree
            np.testing.assert_allclose(ours.param, tensor.detach().numpy(), rtol=1e-6, atol=1e-12)
    expected = tensor.detach().numpy()
    assert not np.allclose(expected, p0)  # the trajectory really moved
    np.testing.assert_allclose(ours.param, expected, rtol=1e-6, atol=1e-10)
    state = opt.state[tensor]
    buffers = {"sgd": [("momentum_buffer", ours.a)], "adagrad": [("sum", ours.a)],
               "rmsprop": [("square_avg", ours.a), ("grad_avg", ours.b),
                           ("momentum_buffer", ours.c)],
               "adam": [("exp_avg", ours.a), ("exp_avg_sq", ours.b),
                        ("max_exp_avg_sq", ours.c)]}[kind]
    for key, mine in buffers:
        if key in state and state[key] is not None and state[key].numel():
            np.testing.assert_allclose(mine, state[key].numpy(), rtol=1e-6, atol=1e-12)


# -------------------------------------------------------------- bad input -----

@pytest.mark.parametrize("impl", IMPLS)
def test_refuses_non_contiguous_or_read_only_state(impl):
    p, g, m, v = np.zeros(8), np.ones(4), np.zeros(4), np.zeros(4)
    with pytest.raises(ValueError, match="param is updated in place.*C-contiguous"):
        impl.adam_step(p[::2], g, m, v, None, 1, 0.1, 0.9, 0.999, 1e-8, 0.0, False, False, False)
    frozen = np.zeros(4)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="exp_avg is updated in place.*writable=False"):
        impl.adam_step(np.zeros(4), g, frozen, v, None, 1, 0.1, 0.9, 0.999, 1e-8, 0.0, False,
                       False, False)
    with pytest.raises(ValueError, match="momentum_buffer is updated in place"):
        impl.sgd_step(np.zeros(4), g, np.zeros(8)[::2], 0.1, 0.9, 0.0, False, 0.0, False, True)


@pytest.mark.parametrize("impl", IMPLS)
def test_refuses_mismatched_buffers(impl):
    g = np.ones(4)
    with pytest.raises(TypeError, match="param is float64 but grad is float32"):
        impl.adagrad_step(np.zeros(4), g.astype(np.float32), np.zeros(4), 1, 0.1, 0, 0, 1e-10, False)
    with pytest.raises(ValueError, match="state_sum has 5 elements but param has 4"):
        impl.adagrad_step(np.zeros(4), g, np.zeros(5), 1, 0.1, 0, 0, 1e-10, False)
    with pytest.raises(ValueError, match="1-D"):
        impl.adagrad_step(np.zeros((2, 2)), g, np.zeros(4), 1, 0.1, 0, 0, 1e-10, False)
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        impl.sgd_step(np.zeros(4, dtype=np.int64), g, None, 0.1, 0.0, 0.0, False, 0.0, False, True)
    with pytest.raises(TypeError, match="grad must be a NumPy array, got list"):
        impl.sgd_step(np.zeros(4), [1.0] * 4, None, 0.1, 0.0, 0.0, False, 0.0, False, True)
    shared = np.zeros(4)
    with pytest.raises(ValueError, match="exp_avg and exp_avg_sq overlap"):
        impl.adam_step(np.zeros(4), g, shared, shared, None, 1, 0.1, 0.9, 0.999, 1e-8, 0, False,
                       False, False)


@pytest.mark.parametrize("impl", IMPLS)
def test_names_a_byte_swapped_or_missing_buffer_alike(impl):
    # a '>f4' buffer is float32 in the wrong byte order, not a wrong dtype (the twin said
    # "must be float32 or float64, got >f4"); None is named by its type, as any other object
    g = np.ones(4)
    with pytest.raises(TypeError, match=r"sgd_step: grad has non-native byte order \(dtype '>f8'\)"):
        impl.sgd_step(np.zeros(4), g.astype(">f8"), None, 0.1, 0.0, 0.0, False, 0.0, False, True)
    with pytest.raises(TypeError, match="sgd_step: param must be a NumPy array, got NoneType$"):
        impl.sgd_step(None, g, None, 0.1, 0.0, 0.0, False, 0.0, False, True)
    with pytest.raises(TypeError, match="adam_step: grad must be a NumPy array, got NoneType$"):
        impl.adam_step(np.zeros(4), None, np.zeros(4), np.zeros(4), None, 1, 0.1, 0.9, 0.99, 1e-8, 0, False,
                       False, False)


@pytest.mark.parametrize("impl", IMPLS)
def test_refuses_bad_hyperparameters_and_missing_state(impl):
    p, g = np.zeros(4), np.ones(4)
    with pytest.raises(ValueError, match="invalid learning rate: -0.1"):
        impl.sgd_step(p, g, None, -0.1, 0.0, 0.0, False, 0.0, False, True)
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        impl.sgd_step(p, g, np.zeros(4), 0.1, 0.9, 0.5, True, 0.0, False, True)
    with pytest.raises(ValueError, match="needs a momentum_buffer"):
        impl.sgd_step(p, g, None, 0.1, 0.9, 0.0, False, 0.0, False, True)
    with pytest.raises(ValueError, match="beta parameter at index 1: 1.0"):
        impl.adam_step(p, g, np.zeros(4), np.zeros(4), None, 1, 0.1, 0.9, 1.0, 1e-8, 0, False,
                       False, False)
    with pytest.raises(ValueError, match="amsgrad=True needs a max_exp_avg_sq"):
        impl.adam_step(p, g, np.zeros(4), np.zeros(4), None, 1, 0.1, 0.9, 0.99, 1e-8, 0, False,
                       True, False)
    with pytest.raises(ValueError, match="step must be an int >= 1"):
        impl.adam_step(p, g, np.zeros(4), np.zeros(4), None, 0, 0.1, 0.9, 0.99, 1e-8, 0, False,
                       False, False)
    with pytest.raises(ValueError, match="centered=True needs a grad_avg"):
        impl.rmsprop_step(p, g, np.zeros(4), None, None, 0.1, 0.99, 1e-8, 0, 0, True, False)
    with pytest.raises(ValueError, match="invalid weight_decay value"):
        impl.adagrad_step(p, g, np.zeros(4), 1, 0.1, 0, -1.0, 1e-10, False)
    assert not p.any()  # nothing was written by a refused call
