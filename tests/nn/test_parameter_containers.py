"""ParameterList and ParameterDict: registration, list and dict behaviour, errors, all as in PyTorch.

Most tests run the same operations on nnlite's and PyTorch's containers side by
side; the ones about nnlite's own parameter metadata (names, kinds, ties, the
optimizer arena, checkpoints) need no PyTorch.
"""
from collections import OrderedDict

import numpy as np
import pytest

import nnlite as nl
from nnlite import io as nio

nn = nl.nn


def _frameworks():
    """(nn namespace, tensor maker) for nnlite and for torch."""
    torch = pytest.importorskip("torch")
    return [(nn, nl.zeros), (torch.nn, torch.zeros)]


def _error(fn, types=(IndexError, KeyError, TypeError, ValueError, RuntimeError, AttributeError)):
    """The first of ``types`` that the error ``fn()`` raises is an instance of (None if nothing is raised)."""
    try:
        fn()
    except Exception as error:  # noqa: BLE001 - the type is what is compared
        return next(t for t in types if isinstance(error, t))
    return None


# ------------------------------------------------------------- ParameterList --
def _list_story(mod, zeros):
    """The same list operations in either framework, and what they give."""
    model = mod.Module()
    model.scales = mod.ParameterList([zeros(3), mod.Parameter(zeros(2, 2))])
    model.scales.append(zeros(4))
    model.scales.extend([zeros(1), zeros(5)])
    model.scales += [zeros(6)]
    model.scales[1] = zeros(7)
    entries = model.scales
    return [len(entries), {type(p).__name__ for p in entries}, [tuple(p.shape) for p in entries],
            [n for n, _ in model.named_parameters()], list(model.state_dict()),
            sum(int(np.prod(p.shape)) for p in model.parameters()),
            type(entries[1:4]).__name__, [tuple(p.shape) for p in entries[::-2]],
            tuple(entries[-1].shape), entries[-2] is entries[4], entries[1:4][0] is entries[1]]


def test_parameter_list_registers_by_position():
    names = ["scales.0", "scales.1", "scales.2", "scales.3", "scales.4", "scales.5"]
    assert _list_story(nn, nl.zeros) == [
        6, {"Parameter"}, [(3,), (7,), (4,), (1,), (5,), (6,)], names, names, 26,
        "ParameterList", [(6,), (1,), (7,)], (6,), True, True]


def test_parameter_list_registers_like_torch():
    torch = pytest.importorskip("torch")
    assert _list_story(nn, nl.zeros) == _list_story(torch.nn, torch.zeros)


def test_parameter_list_errors_match_torch():
    torch = pytest.importorskip("torch")
    for mod, zeros in _frameworks():
        plist = mod.ParameterList([zeros(2), zeros(2), zeros(2)])
        errors = [_error(f) for f in (lambda: plist[3], lambda: plist[-4], lambda: plist["0"], lambda: plist[1.0],
                                      lambda: plist.__setitem__(3, zeros(1)), lambda: plist.extend(zeros(2)),
                                      lambda: plist.extend(3), lambda: plist.__setitem__(0, 3),
                                      lambda: plist(zeros(2)))]
        assert errors == [IndexError, IndexError, TypeError, TypeError, IndexError, TypeError, TypeError, TypeError,
                          RuntimeError], mod
        assert len(plist) == 3
    assert _error(lambda: torch.nn.ParameterList([torch.arange(3)])) is RuntimeError
    with pytest.raises(TypeError, match="only floating point"):  # nnlite's Parameter says TypeError
        nn.ParameterList([nl.arange(3)])


def test_parameter_list_errors_name_the_index_and_the_length():
    plist = nn.ParameterList([nl.zeros(1), nl.zeros(1)])
    with pytest.raises(IndexError, match="index 5 is out of range for a list of length 2"):
        plist[5]
    with pytest.raises(IndexError, match="index -3 is out of range for a list of length 2"):
        plist[-3] = nl.zeros(1)
    with pytest.raises(TypeError, match="iterable of values, got Tensor"):
        plist.extend(nl.zeros(3))
    with pytest.raises(RuntimeError, match="should not be called"):
        plist(nl.zeros(1))
    # An integer tensor cannot be a parameter; the failed append leaves the list as it was.
    with pytest.raises(TypeError):
        plist.append(nl.arange(3))
    assert len(plist) == 2 and list(plist.state_dict()) == ["0", "1"]


def test_parameter_list_wraps_tensors_and_keeps_other_objects():
    data = nl.ones(3)
    buffer = nn.Buffer(nl.zeros(2))
    linear = nn.Linear(2, 1)
    plist = nn.ParameterList([data, buffer, "note", None, linear])
    assert isinstance(plist[0], nn.Parameter) and plist[0].requires_grad and plist[0].kind == "other"
    assert np.shares_memory(plist[0].data, data.data)      # Parameter(tensor) shares memory, as in PyTorch
    assert isinstance(plist[1], nn.Parameter) and np.shares_memory(plist[1].data, buffer.data)
    assert plist[2] == "note" and plist[3] is None and plist[4] is linear
    assert list(plist.state_dict()) == ["0", "1", "4.weight", "4.bias"]
    assert [type(v).__name__ for v in plist] == ["Parameter", "Parameter", "str", "NoneType", "Linear"]
    assert plist.num_parameters() == 3 + 2 + 2 + 1
    plist[3] = nl.zeros(4)                                   # None -> a parameter, registered in place
    assert list(plist.state_dict())[:3] == ["0", "1", "3"]


def test_parameter_list_repr_is_torch_layout_with_nnlite_dtype_names():
    torch = pytest.importorskip("torch")
    ours = nn.ParameterList([nl.zeros(3), nl.zeros(2, 4, dtype=nl.float64), "note", nn.Linear(2, 3)])
    theirs = torch.nn.ParameterList([torch.zeros(3), torch.zeros(2, 4, dtype=torch.float64), "note",
                                     torch.nn.Linear(2, 3)])
    assert repr(ours) == repr(theirs).replace("torch.", "")
    assert repr(nn.ParameterList([nl.zeros(3)])) == repr(torch.nn.ParameterList([torch.zeros(3)])).replace("torch.", "")
    assert repr(nn.ParameterList()) == "ParameterList()"
    parent, parent_t = nn.Module(), torch.nn.Module()
    parent.scales, parent_t.scales = ours, theirs                 # nested: indented as PyTorch indents it
    assert repr(parent) == repr(parent_t).replace("torch.", "")


# ------------------------------------------------------------- ParameterDict --
def _dict_story(mod, zeros):
    """The same dict operations in either framework, and what they give."""
    bias = mod.ParameterDict({"zeta": zeros(1), "alpha": zeros(2)})    # a plain dict: sorted keys
    ordered = mod.ParameterDict(OrderedDict([("zeta", zeros(1)), ("alpha", zeros(2))]))
    pairs = mod.ParameterDict([("zeta", zeros(1)), ("alpha", zeros(2))])
    bias["mid"] = zeros(3)
    bias.update({"b": zeros(1), "a": zeros(1)})
    record = [list(bias), list(ordered), list(pairs), len(bias), "mid" in bias, 3 in bias, list(reversed(bias)),
              {type(v).__name__ for v in bias.values()}, [k for k, _ in bias.items()]]
    popped = bias.pop("mid")
    record += [tuple(popped.shape), list(bias.keys()), bias.popitem()[0], list(bias)]
    record += [bias.get("none") is None, bias.get("none", 5), tuple(bias.get("alpha").shape)]
    record += [tuple(bias.setdefault("alpha", zeros(9)).shape), tuple(bias.setdefault("new", zeros(8)).shape)]
    copy = bias.copy()
    record += [type(copy).__name__, list(copy), copy["alpha"] is bias["alpha"]]
    merged = bias | mod.ParameterDict({"x": zeros(1)})
    record += [list(merged), list(bias)]
    bias |= {"y": zeros(1)}
    record += [list(bias), list(bias.fromkeys(["q", "p"], zeros(2)))]
    model = mod.Module()
    model.bias = bias
    record += [[n for n, _ in model.named_parameters()], list(model.state_dict())]
    bias.clear()
    record += [len(bias), list(model.state_dict())]
    return record


def test_parameter_dict_is_an_ordered_dict_of_parameters():
    names = ["bias.alpha", "bias.zeta", "bias.a", "bias.new", "bias.y"]
    assert _dict_story(nn, nl.zeros) == [
        ["alpha", "zeta", "mid", "a", "b"], ["zeta", "alpha"], ["zeta", "alpha"], 5, True, False,
        ["b", "a", "mid", "zeta", "alpha"], {"Parameter"}, ["alpha", "zeta", "mid", "a", "b"],
        (3,), ["alpha", "zeta", "a", "b"], "b", ["alpha", "zeta", "a"],
        True, 5, (2,), (2,), (8,), "ParameterDict", ["alpha", "zeta", "a", "new"], True,
        ["alpha", "zeta", "a", "new", "x"], ["alpha", "zeta", "a", "new"],
        ["alpha", "zeta", "a", "new", "y"], ["q", "p"],
        names, names, 0, []]


def test_parameter_dict_behaves_like_torch():
    torch = pytest.importorskip("torch")
    assert _dict_story(nn, nl.zeros) == _dict_story(torch.nn, torch.zeros)


def test_parameter_dict_errors_match_torch():
    torch = pytest.importorskip("torch")
    for mod, zeros in _frameworks():
        bias = mod.ParameterDict({"a": zeros(1)})
        put = bias.__setitem__
        errors = [_error(f) for f in (lambda: put(1, zeros(1)), lambda: put("a.b", zeros(1)),
                                      lambda: put("", zeros(1)), lambda: put("keys", zeros(1)),
                                      lambda: bias.__delitem__("z"), lambda: bias[1], lambda: bias.update(3),
                                      lambda: bias.update([("a",)]), lambda: bias.update([1]),
                                      lambda: put("a", 3), lambda: mod.ParameterDict().popitem(),
                                      lambda: bias(zeros(1)))]
        assert errors == [TypeError, KeyError, KeyError, KeyError, KeyError, TypeError, TypeError, ValueError,
                          TypeError, TypeError, KeyError, RuntimeError], mod
    # A missing key: PyTorch raises AttributeError (its lookup is getattr); nnlite's error is
    # both that and the KeyError a dict raises.
    assert _error(lambda: torch.nn.ParameterDict()["z"]) is AttributeError
    with pytest.raises(AttributeError):
        nn.ParameterDict()["z"]
    with pytest.raises(KeyError, match=r"no key 'z' \(its keys: \['a'\]\)"):
        nn.ParameterDict({"a": nl.zeros(1)}).pop("z")


def test_parameter_dict_rejects_bad_keys_and_stays_unchanged():
    bias = nn.ParameterDict({"a": nl.zeros(1)})
    with pytest.raises(TypeError, match="keys must be strings, got int"):
        bias[1] = nl.zeros(1)
    with pytest.raises(KeyError, match="without '.'"):
        bias["head.b"] = nl.zeros(1)
    for name in ("keys", "training", "forward", "_parameters"):
        with pytest.raises(KeyError, match="would hide the module's attribute"):
            bias[name] = nl.zeros(1)
    with pytest.raises(TypeError, match="cannot assign int as parameter 'a'"):
        bias["a"] = 3
    with pytest.raises(ValueError, match="element #0 has length 1; 2 is required"):
        bias.update([("b",)])
    assert list(bias) == ["a"] and list(bias.state_dict()) == ["a"]
    assert callable(bias.keys) and bias.training is True


def test_parameter_dict_wraps_tensors_and_keeps_other_objects():
    bias = nn.ParameterDict({"scale": nl.ones(2), "note": "per task", "off": None})
    assert isinstance(bias["scale"], nn.Parameter) and bias["note"] == "per task" and bias["off"] is None
    assert list(bias.state_dict()) == ["scale"] and len(bias) == 3
    bias["off"] = nl.zeros(1)
    # "off" became a parameter after "scale" did: the dict keeps its key order, the registry its own (as torch).
    assert list(bias) == ["note", "off", "scale"] and list(bias.state_dict()) == ["scale", "off"]
    shared = nn.ParameterDict.fromkeys(["a", "b"], nn.Parameter(nl.zeros(2), kind="temperature"))
    assert shared["a"] is shared["b"] and shared.num_parameters() == 2


def test_parameter_dict_repr_is_torch_layout_with_nnlite_dtype_names():
    torch = pytest.importorskip("torch")
    ours = nn.ParameterDict({"b": nl.zeros(2, 3), "a": "note"})
    theirs = torch.nn.ParameterDict({"b": torch.zeros(2, 3), "a": "note"})
    assert repr(ours) == repr(theirs).replace("torch.FloatTensor", "float32")


# --------------------------------------------------------- a model using both --
class _PerTask(nn.Module):
    """One shared layer, a learned scale per layer position and a learned bias per task."""

    def __init__(self, tasks, layers=2):
        super().__init__()
        self.body = nn.Linear(3, 3)
        self.scales = nn.ParameterList([nn.Parameter(nl.ones(3), kind="scale") for _ in range(layers)])
        self.bias = nn.ParameterDict({t: nn.Parameter(nl.zeros(3), kind="shift") for t in tasks})

    def forward(self, x, task):
        for scale in self.scales:
            x = nl.tanh(self.body(x) * scale)
        return x + self.bias[task]


def _torch_per_task(torch, tasks, layers=2):
    class PerTask(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Linear(3, 3)
            self.scales = torch.nn.ParameterList([torch.ones(3) for _ in range(layers)])
            self.bias = torch.nn.ParameterDict({t: torch.zeros(3) for t in tasks})

        def forward(self, x, task):
            for scale in self.scales:
                x = torch.tanh(self.body(x) * scale)
            return x + self.bias[task]
    return PerTask()


def _scramble(model, seed):
    g = np.random.default_rng(seed)
    for p in model.parameters():
        p.data[...] = g.standard_normal(p.shape)


def test_gradients_reach_container_parameters_as_in_torch(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    ours, theirs = _PerTask(["sum", "mean"]), _torch_per_task(torch, ["sum", "mean"])
    _scramble(ours, 0)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == [
        "body.weight", "body.bias", "scales.0", "scales.1", "bias.mean", "bias.sum"]
    path = tmp_path / "per_task.safetensors"
    nl.save_state_dict(ours.state_dict(), path)
    theirs.load_state_dict(st.load_file(str(path)), strict=True)
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    out = ours(nl.tensor(x), "sum")
    out_t = theirs(torch.from_numpy(x), "sum")
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=1e-6, atol=1e-6)
    (out * out).sum().backward()
    (out_t * out_t).sum().backward()
    torch_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        if name == "bias.mean":                 # the other task's bias took no part
            assert p.grad is None and torch_params[name].grad is None
            continue
        np.testing.assert_allclose(p.grad.data, torch_params[name].grad.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def test_torch_state_dict_loads_strictly_into_the_same_structure(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    ours, theirs = _PerTask(["a", "b"], layers=3), _torch_per_task(torch, ["a", "b"], layers=3)
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_()
    path = tmp_path / "from_torch.safetensors"
    st.save_file(theirs.state_dict(), str(path))
    ours.load_state_dict(nl.load_state_dict(path), strict=True)
    assert ours.scales[2].init["scheme"] == "loaded" and ours.scales[2].kind == "scale"
    x = np.random.default_rng(2).standard_normal((2, 3)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x), "b").numpy()
    np.testing.assert_allclose(ours(nl.tensor(x), "b").data, expected, rtol=1e-6, atol=1e-6)


def test_an_optimizer_step_matches_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = _PerTask(["a"]), _torch_per_task(torch, ["a"])
    _scramble(ours, 3)
    theirs.load_state_dict({k: torch.from_numpy(v.data.copy()) for k, v in ours.state_dict().items()})
    opt = nl.optim.Adam(ours.parameters(), lr=0.1)
    opt_t = torch.optim.Adam(theirs.parameters(), lr=0.1)
    x = np.random.default_rng(4).standard_normal((5, 3)).astype(np.float32)
    for _ in range(3):
        opt.zero_grad()
        opt_t.zero_grad()
        (ours(nl.tensor(x), "a") ** 2).sum().backward()
        (theirs(torch.from_numpy(x), "a") ** 2).sum().backward()
        opt.step()
        opt_t.step()
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name].data, value.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


# ------------------------------------------------- nnlite's parameter metadata --
def test_parameters_in_containers_carry_names_kinds_and_ties():
    model = _PerTask(["a", "b"])
    assert [model.scales[0].name, model.bias["b"].name] == ["0", "b"]      # the name in the container
    model.name_parameters()
    assert [model.scales[0].name, model.bias["b"].name] == ["scales.0", "bias.b"]
    assert model.get_parameter("bias.a") is model.bias["a"]
    assert model.num_parameters() == 12 + 2 * 3 + 2 * 3
    model.scales.append(model.scales[0])                                   # one scale used twice: tied
    assert model.tied_parameters() == [["scales.0", "scales.2"]]
    assert model.num_parameters() == 24 and list(model.state_dict())[2:5] == ["scales.0", "scales.1", "scales.2"]
    groups = nl.optim.param_groups_by_kind(model, weight_decay=0.1)
    assert [len(g["params"]) for g in groups] == [1, 5]                    # only body.weight is decayed
    assert all(p.kind in ("scale", "shift", "bias") for p in groups[1]["params"])
    model.scales.freeze()
    assert model.num_parameters(trainable_only=True) == 12 + 6 and not model.scales[1].trainable


def test_mode_and_dtype_reach_container_parameters():
    model = _PerTask(["a"])
    scale = model.scales[0]
    model.double()
    assert model.scales[0] is scale and scale.dtype == np.float64 and model.bias["a"].dtype == np.float64
    model.to(nl.float32)
    assert scale.dtype == np.float32
    model.eval()
    assert not model.scales.training and not model.bias.training
    model.train()
    assert model.scales.training and model.bias.training


def test_optimizer_arena_holds_container_parameters():
    model = _PerTask(["a", "b"])
    opt = nl.optim.SGD(model.parameters(), lr=0.5)
    [buf] = opt._arenas[0]
    assert [slot.param for slot in buf.slots] == list(model.parameters())
    assert all(np.shares_memory(p.data, buf.params) for p in model.parameters())
    before = model.bias["a"].data.copy()
    model(nl.ones(2, 3), "a").sum().backward()
    assert np.shares_memory(model.bias["a"].grad.data, buf.grads)
    opt.step()
    np.testing.assert_allclose(model.bias["a"].data, before - 0.5 * 2.0)   # d(sum)/d(bias) = batch size
    assert np.array_equal(model.bias["b"].data, np.zeros(3))               # no gradient, no step


def test_checkpoint_round_trip_keeps_values_kinds_and_optimizer_state(tmp_path):
    model = _PerTask(["a", "b"])
    _scramble(model, 5)
    opt = nl.optim.Adam(model.parameters(), lr=0.01)
    model(nl.ones(2, 3), "b").sum().backward()
    opt.step()
    path = nl.save_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=opt)
    info = nio.read_checkpoint(path)
    kinds = {name: entry["kind"] for name, entry in info.model["parameters"].items()}
    assert kinds == {"body.weight": "weight", "body.bias": "bias", "scales.0": "scale", "scales.1": "scale",
                     "bias.a": "shift", "bias.b": "shift"}
    restored = _PerTask(["a", "b"])
    restored_opt = nl.optim.Adam(restored.parameters(), lr=0.01)
    nl.load_checkpoint(path, model=restored, optimizer=restored_opt)
    for name, value in model.state_dict().items():
        assert np.array_equal(restored.state_dict()[name].data, value.data), name
    assert model.bias["a"] not in opt.state and restored.bias["a"] not in restored_opt.state   # no gradient yet
    for p, q in zip(model.parameters(), restored.parameters()):
        if p in opt.state:
            assert np.array_equal(opt.state[p]["exp_avg"].data, restored_opt.state[q]["exp_avg"].data)
    wrong = _PerTask(["a", "c"])
    with pytest.raises(Exception, match="bias"):
        nl.load_checkpoint(path, model=wrong)
