"""bfloat16 storage and inference: ``Module.bfloat16()`` / ``.to(nl.bfloat16)``, against torch, checkpoints.

bfloat16 comes from the optional ml_dtypes package, so every test that needs it skips
on its own without it. The mechanism is float16's (``autograd._forward_in_float32``):
the kernels compute in float32 and each operation rounds its output to bfloat16.
"""
import sys

import numpy as np
import pytest

import nnlite as nl
import nnlite.nn.functional as F
from nnlite.recipes import MNIST1DCNN, MNIST1DMLP, CharTransformer

EPS_BF16 = 2.0 ** -7   # bfloat16 keeps 8 significant bits


def _bf16(rng, *shape):
    pytest.importorskip("ml_dtypes")
    return rng.standard_normal(shape).astype(np.float32).astype(nl.bfloat16)


def _to_torch(torch, array):
    """The same bits as a torch tensor (torch.from_numpy has no bfloat16)."""
    if array.dtype == nl.bfloat16:
        return torch.from_numpy(array.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(np.array(array))


def _from_torch(tensor):
    import torch
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(nl.bfloat16)
    return tensor.numpy()


def _torch_twin(torch, name):
    """torch modules with MNIST1DMLP's and MNIST1DCNN's parameters and state_dict keys."""
    tnn = torch.nn

    class MLP(tnn.Module):
        def __init__(self):
            super().__init__()
            self.linear1, self.linear2, self.linear3 = tnn.Linear(40, 100), tnn.Linear(100, 100), tnn.Linear(100, 10)

        def forward(self, x):
            h = torch.relu(self.linear1(x))
            return self.linear3(h + torch.relu(self.linear2(h)))

    class CNN(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv1d(1, 25, 5, stride=2, padding=1)
            self.conv2 = tnn.Conv1d(25, 25, 3, stride=2, padding=1)
            self.conv3 = tnn.Conv1d(25, 25, 3, stride=2, padding=1)
            self.linear = tnn.Linear(125, 10)

        def forward(self, x):
            h = x.reshape(x.shape[0], 1, x.shape[-1])
            for conv in (self.conv1, self.conv2, self.conv3):
                h = torch.relu(conv(h))
            return self.linear(h.reshape(h.shape[0], -1))

    return {"mlp": MLP, "cnn": CNN}[name]()


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_bfloat16_models_match_torch_bfloat16_modules_from_the_same_weights(rng, name):
    torch = pytest.importorskip("torch")
    x = _bf16(rng, 64, 40)
    nl.manual_seed(0)
    ours = {"mlp": MNIST1DMLP, "cnn": MNIST1DCNN}[name]().eval().bfloat16()
    theirs = _torch_twin(torch, name).to(torch.bfloat16).eval()
    theirs.load_state_dict({k: _to_torch(torch, v.data) for k, v in ours.state_dict().items()})
    with nl.no_grad():
        got = ours(nl.tensor(x))
    with torch.no_grad():
        want = theirs(_to_torch(torch, x)).float().numpy()
    assert got.dtype == nl.bfloat16
    got = got.data.astype(np.float32)
    assert np.abs(got - want).max() <= 2 * EPS_BF16 * np.abs(want).max()
    assert (got.argmax(-1) == want.argmax(-1)).mean() >= 0.9


@pytest.mark.parametrize("name", ["mlp", "cnn", "char_transformer", "lstm"])
def test_bfloat16_models_give_the_float32_outputs_to_bfloat16_precision(rng, name):
    pytest.importorskip("ml_dtypes")
    make, x = {
        "mlp": (MNIST1DMLP, rng.standard_normal((16, 40))),
        "cnn": (MNIST1DCNN, rng.standard_normal((16, 40))),
        "char_transformer": (lambda: CharTransformer(30, block_size=16), rng.integers(0, 30, (4, 16))),
        "lstm": (lambda: nl.nn.LSTM(5, 8, num_layers=2, batch_first=True), rng.standard_normal((3, 12, 5))),
    }[name]
    nl.manual_seed(0)
    narrow = make().eval().bfloat16()
    nl.manual_seed(0)
    wide = make().eval()
    wide.load_state_dict({k: v.data.astype(np.float32) for k, v in narrow.state_dict().items()})
    assert {p.dtype for p in narrow.parameters()} == {nl.bfloat16}
    with nl.no_grad():
        if x.dtype.kind == "f":
            got, want = narrow(nl.tensor(x).to(nl.bfloat16)), wide(nl.tensor(x.astype(np.float32)))
        else:
            got, want = narrow(nl.tensor(x)), wide(nl.tensor(x))
    got, want = (got[0], want[0]) if isinstance(got, tuple) else (got, want)
    assert got.dtype == nl.bfloat16
    error = np.abs(got.data.astype(np.float32) - want.data).max()
    assert error <= 4 * EPS_BF16 * np.abs(want.data).max(), (name, error)


@pytest.mark.parametrize("case", ["linear", "matmul_1d", "conv1d", "layer_norm", "softmax", "embedding",
                                  "batch_norm"])
def test_one_operation_equals_float32_rounded_once(rng, case):
    a, b, c = _bf16(rng, 4, 6), _bf16(rng, 5, 6), _bf16(rng, 5)
    x3, w3, b3 = _bf16(rng, 2, 3, 7), _bf16(rng, 4, 3, 3), _bf16(rng, 3)
    calls = {
        "linear": lambda t: F.linear(t(a), t(b), t(c)),
        "matmul_1d": lambda t: nl.matmul(t(a), t(a[0])),   # NumPy's own product, not a kernel's
        "conv1d": lambda t: F.conv1d(t(x3), t(w3), t(c[:4]), padding=1),
        "layer_norm": lambda t: F.layer_norm(t(a), (6,), t(a[0]), t(a[1])),
        "softmax": lambda t: F.softmax(t(a), dim=-1),
        "embedding": lambda t: F.embedding(nl.tensor(np.array([3, 0, 3])), t(b)),
        "batch_norm": lambda t: F.batch_norm(t(x3), t(b3 * 0), t(np.abs(b3) + 1), training=False),
    }
    with nl.no_grad():
        narrow = calls[case](lambda arr: nl.tensor(arr))
        wide = calls[case](lambda arr: nl.tensor(arr.astype(np.float32)))
    assert narrow.dtype == nl.bfloat16 and wide.dtype == nl.float32
    assert narrow.data.tobytes() == wide.data.astype(nl.bfloat16).tobytes()


@pytest.mark.parametrize("op", ["sum", "mean", "var", "logsumexp", "norm"])
def test_sums_add_in_float32_and_round_once(rng, op):
    """NumPy's bfloat16 sum (ml_dtypes') rounds every partial sum: 1000 ones would add up to 256."""
    x = np.abs(_bf16(rng, 3, 1000)) + nl.bfloat16.type(1)
    call = {"sum": lambda t: t.sum(-1), "mean": lambda t: t.mean(-1), "var": lambda t: t.var(-1),
            "logsumexp": lambda t: nl.logsumexp(t, -1), "norm": lambda t: t.norm(dim=-1)}[op]
    with nl.no_grad():
        narrow, wide = call(nl.tensor(x)), call(nl.tensor(x.astype(np.float32)))
    assert narrow.dtype == nl.bfloat16
    # sum and logsumexp: one rounding; the others round between their steps too
    np.testing.assert_allclose(narrow.data.astype(np.float32), wide.data, rtol=3 * EPS_BF16)
    if op in ("sum", "logsumexp"):
        assert narrow.data.tobytes() == wide.data.astype(nl.bfloat16).tobytes()


def test_to_bfloat16_is_bfloat16_and_a_float32_input_is_refused(rng):
    pytest.importorskip("ml_dtypes")
    nl.manual_seed(0)
    model = MNIST1DMLP().to(nl.bfloat16)
    nl.manual_seed(0)
    narrowed = MNIST1DMLP().bfloat16()
    for p, q in zip(model.parameters(), narrowed.parameters()):
        assert p.dtype == q.dtype == nl.bfloat16 and p.data.tobytes() == q.data.tobytes()
    x = rng.standard_normal((3, 40)).astype(np.float32)
    with nl.no_grad():
        model(nl.tensor(x).to(nl.bfloat16))
        with pytest.raises(TypeError, match="linear: input is float32 but weight is bfloat16"):
            model(nl.tensor(x))
        with pytest.raises(TypeError, match="float16.*bfloat16"):   # the two narrow dtypes do not mix either
            model(nl.tensor(x.astype(np.float16)))
    assert {p.dtype for p in model.float().parameters()} == {nl.float32}   # and back


def test_backward_through_a_bfloat16_model_is_a_clear_error(rng):
    """As for float16: storage and inference only, so training in bfloat16 is refused by name."""
    x = nl.tensor(_bf16(rng, 2, 40))
    nl.manual_seed(0)
    model = MNIST1DMLP().bfloat16()
    out = model(x)   # gradients enabled: the graph is recorded
    assert out.grad_fn.name == "Bfloat16LinearBackward"
    with pytest.raises(RuntimeError, match=r"Linear: its inputs were bfloat16.*model\.bfloat16\(\)"):
        out.backward(nl.ones(out.shape).to(nl.bfloat16))
    with pytest.raises(RuntimeError, match=r"Sum: its inputs were bfloat16"):   # a loss's sum is refused first
        out.sum().backward()


def test_batch_norm_in_training_updates_bfloat16_running_statistics(rng):
    x = _bf16(rng, 8, 3) + nl.bfloat16.type(2)
    bn = nl.nn.BatchNorm1d(3).bfloat16()
    with nl.no_grad():
        bn(nl.tensor(x))
    assert bn.running_mean.dtype == nl.bfloat16
    want = (0.1 * x.astype(np.float32).mean(0)).astype(nl.bfloat16)
    assert bn.running_mean.data.tobytes() == want.tobytes()


def test_checkpoints_keep_bfloat16(rng, tmp_path):
    x = nl.tensor(_bf16(rng, 4, 40))
    nl.manual_seed(0)
    model = MNIST1DCNN().bfloat16()
    path = tmp_path / "bf16.ckpt"
    nl.save_checkpoint(path, model)
    nl.manual_seed(1)
    restored = MNIST1DCNN().bfloat16()
    nl.load_checkpoint(path, restored)
    for (name, a), b in zip(model.state_dict().items(), restored.state_dict().values()):
        assert b.dtype == a.dtype == nl.bfloat16, name
        assert b.data.tobytes() == a.data.tobytes(), name
    with nl.no_grad():
        assert model.eval()(x).data.tobytes() == restored.eval()(x).data.tobytes()


def test_a_bfloat16_state_dict_moves_between_nnlite_and_torch_bit_for_bit(rng, tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    pytest.importorskip("ml_dtypes")
    nl.manual_seed(0)
    ours = MNIST1DMLP().bfloat16()
    path = tmp_path / "ours.safetensors"
    nl.save_state_dict(ours.state_dict(), path)
    loaded = st.load_file(str(path))
    for name, value in ours.state_dict().items():
        assert loaded[name].dtype == torch.bfloat16, name
        assert _from_torch(loaded[name]).tobytes() == value.data.tobytes(), name
    # and the reverse: torch writes BF16, nnlite reads the same bits as bfloat16
    theirs = _torch_twin(torch, "mlp").to(torch.bfloat16)
    st.save_file(theirs.state_dict(), str(tmp_path / "theirs.safetensors"))
    state = nl.load_state_dict(tmp_path / "theirs.safetensors")
    for name, value in theirs.state_dict().items():
        assert state[name].dtype == nl.bfloat16, name
        assert np.asarray(state[name].data if isinstance(state[name], nl.Tensor) else state[name]).tobytes() \
            == _from_torch(value).tobytes(), name
    ours.load_state_dict(state)
    assert ours.linear2.weight.data.tobytes() == _from_torch(theirs.linear2.weight.detach()).tobytes()


def test_without_ml_dtypes_bfloat16_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)   # an import of it now fails, as when not installed
    with pytest.raises(ImportError, match=r'pip install "nnlite\[bf16\]"'):
        nl.bfloat16
    with pytest.raises(ImportError, match="ml_dtypes"):
        nl.nn.Linear(2, 2).bfloat16()


def test_reading_a_bf16_file_without_ml_dtypes_names_the_extra(tmp_path, monkeypatch):
    pytest.importorskip("ml_dtypes")
    nl.save_state_dict(nl.nn.Linear(2, 2).bfloat16().state_dict(), tmp_path / "bf16.safetensors")
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)
    with pytest.raises(ImportError, match=r"ml_dtypes.*nnlite\[bf16\]"):
        nl.load_state_dict(tmp_path / "bf16.safetensors")


def test_the_docstring_example_runs():
    pytest.importorskip("ml_dtypes")
    import doctest
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    for test in finder.find(nl.nn.Module.bfloat16, "Module.bfloat16", globs={}):
        runner.run(test)
    assert runner.tries >= 4 and runner.failures == 0
