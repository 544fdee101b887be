"""nnlite <-> PyTorch through safetensors: same keys, same layouts, equal outputs."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import io as nio


def _models(torch):
    """(name, nnlite model, equivalent torch model, input shape, input kind) for each architecture."""
    tnn = torch.nn
    nn = nl.nn
    return [
        ("cnn",
         nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(100, 3)),
         tnn.Sequential(tnn.Conv2d(2, 4, 3, padding=1), tnn.BatchNorm2d(4), tnn.ReLU(), tnn.Flatten(),
                        tnn.Linear(100, 3)),
         (3, 2, 5, 5), "float"),
        ("conv1d",
         nn.Sequential(nn.Conv1d(3, 4, 3, stride=2), nn.GroupNorm(2, 4), nn.Tanh(), nn.Flatten(), nn.Linear(12, 2)),
         tnn.Sequential(tnn.Conv1d(3, 4, 3, stride=2), tnn.GroupNorm(2, 4), tnn.Tanh(), tnn.Flatten(),
                        tnn.Linear(12, 2)),
         (2, 3, 7), "float"),
        ("mlp",
         nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.GELU(), nn.LayerNorm(8), nn.Linear(8, 2, bias=False)),
         tnn.Sequential(tnn.Linear(6, 8), tnn.BatchNorm1d(8), tnn.GELU(), tnn.LayerNorm(8),
                        tnn.Linear(8, 2, bias=False)),
         (4, 6), "float"),
        ("embedding",
         nn.Sequential(nn.Embedding(10, 8), nn.LayerNorm(8), nn.Linear(8, 4)),
         tnn.Sequential(tnn.Embedding(10, 8), tnn.LayerNorm(8), tnn.Linear(8, 4)),
         (2, 5), "index"),
    ]


def _input(shape, kind):
    g = np.random.default_rng(7)
    return g.integers(0, 10, shape) if kind == "index" else g.standard_normal(shape).astype(np.float32)


def _scramble_nnlite(model, seed):
    g = np.random.default_rng(seed)
    for name, value in model.state_dict(keep_vars=True).items():
        if name.endswith("num_batches_tracked"):
            value.data[...] = 17
        elif name.endswith("running_var"):
            value.data[...] = g.uniform(0.5, 2.0, value.shape)
        else:
            value.data[...] = g.standard_normal(value.shape)


def _scramble_torch(torch, model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                value.fill_(17)
            elif name.endswith("running_var"):
                value.copy_(torch.rand(value.shape, generator=g) + 0.5)
            else:
                value.copy_(torch.randn(value.shape, generator=g))


@pytest.mark.parametrize("index", range(4))
def test_nnlite_file_loads_into_torch_with_equal_outputs(tmp_path, index):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    name, ours, theirs, shape, kind = _models(torch)[index]
    _scramble_nnlite(ours, index)
    path = tmp_path / f"{name}.safetensors"
    nl.save_state_dict(ours.state_dict(), path)
    loaded = st.load_file(str(path))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict(loaded, strict=True)
    if "1.num_batches_tracked" in loaded:
        assert loaded["1.num_batches_tracked"].dtype == torch.int64 and int(loaded["1.num_batches_tracked"]) == 17
    ours.eval()
    theirs.eval()
    x = _input(shape, kind)
    expected = ours(nl.tensor(x)).data
    with torch.no_grad():
        got = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(expected, 0)


@pytest.mark.parametrize("index", range(4))
def test_torch_file_initialises_an_nnlite_model_with_equal_outputs(tmp_path, index):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    name, ours, theirs, shape, kind = _models(torch)[index]
    _scramble_torch(torch, theirs, index)
    path = tmp_path / f"{name}.safetensors"
    st.save_file(theirs.state_dict(), str(path))
    loaded = nl.load_state_dict(path)
    assert nio.read_checkpoint(path).format is None  # a foreign file, read without nnlite metadata
    assert sorted(loaded) == sorted(theirs.state_dict())  # a foreign file keeps no key order
    before = {k: v.data.copy() for k, v in ours.state_dict().items()}
    ours.load_state_dict(loaded, strict=True)
    assert any(not np.array_equal(before[k], v.data) for k, v in ours.state_dict().items())
    ours.eval()
    theirs.eval()
    x = _input(shape, kind)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(nl.tensor(x)).data, expected, rtol=1e-5, atol=1e-5)


def test_nnlite_checkpoint_model_part_reads_in_torch(tmp_path):
    """A full checkpoint is a safetensors file too: PyTorch sees model.* and optimizer.* tensors."""
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    ours = nl.nn.Sequential(nl.nn.Linear(4, 3))
    opt = nl.optim.Adam(ours.parameters())
    ours(nl.randn(2, 4)).sum().backward()
    opt.step()
    path = nl.save_checkpoint(tmp_path / "c.safetensors", model=ours, optimizer=opt)
    flat = st.load_file(path)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3))
    theirs.load_state_dict({k[len("model."):]: v for k, v in flat.items() if k.startswith("model.")})
    assert torch.equal(theirs[0].weight, torch.from_numpy(ours[0].weight.data))
    exp_avg = opt.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(flat["optimizer.state.0.exp_avg"], torch.from_numpy(np.asarray(exp_avg.data)))


class _TiedNL(nl.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nl.nn.Embedding(7, 4)
        self.head = nl.nn.Linear(4, 7, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, idx):
        return self.head(self.embed(idx))


def test_tied_weights_both_ways(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")

    class TiedTorch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(7, 4)
            self.head = torch.nn.Linear(4, 7, bias=False)
            self.head.weight = self.embed.weight

        def forward(self, idx):
            return self.head(self.embed(idx))

    idx = np.array([[0, 3, 6]])
    ours = _TiedNL()
    nl.save_state_dict(ours.state_dict(), tmp_path / "ours.safetensors")
    theirs = TiedTorch()
    missing, unexpected = st.load_model(theirs, str(tmp_path / "ours.safetensors"))  # strict, ties understood
    assert not missing and not unexpected
    with torch.no_grad():
        np.testing.assert_allclose(theirs(torch.from_numpy(idx)).numpy(), ours(nl.tensor(idx)).data,
                                   rtol=1e-5, atol=1e-6)

    theirs = TiedTorch()
    st.save_model(theirs, str(tmp_path / "theirs.safetensors"))  # drops the duplicate, notes it in metadata
    loaded = nl.load_state_dict(tmp_path / "theirs.safetensors")
    # Stored once; nnlite invents no key from another writer's metadata, and the tie fills the other name.
    assert len(loaded) == 1 and set(loaded) < {"embed.weight", "head.weight"}
    fresh = _TiedNL()
    fresh.load_state_dict(loaded, strict=True)
    with torch.no_grad():
        np.testing.assert_allclose(fresh(nl.tensor(idx)).data, theirs(torch.from_numpy(idx)).numpy(),
                                   rtol=1e-5, atol=1e-6)
