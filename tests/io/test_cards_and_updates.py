"""Model cards, parameter diffs and hot swaps: the documentation, versioning and updating of parameters."""
import os

import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.data import DataLoader, TensorDataset
from nnlite.nn import functional as F
from nnlite.train import fit


def _model(seed=0):
    nl.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.LayerNorm(8), nn.Linear(8, 3))


def _loader():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    return DataLoader(TensorDataset(nl.tensor(x), nl.tensor((x[:, 0] > 0).astype(np.int64))), batch_size=16)


def test_card_records_training_setup_versions_and_init_rationale():
    model = _model()
    opt = nl.optim.AdamW(nl.optim.param_groups_by_kind(model, weight_decay=0.1), lr=1e-3)
    card = nl.io.model_card(model, recipe="toy", hyperparameters={"epochs": 3}, optimizer=opt, seed=7,
                            data="64 random points", metrics={"val_loss": 0.5})
    t = card["training"]
    assert t["seed"] == 7 and t["threads"] == nl.get_num_threads() and t["numpy_version"] == np.__version__
    assert t["nnlite_version"] == nl.__version__ and t["machine"]["machine"]
    assert [g["weight_decay"] for g in t["optimizer"]["param_groups"]] == [0.1, 0.0]
    assert card["parameters"]["0.weight"]["init"] == "kaiming_uniform_"
    assert "He et al." in card["parameters"]["0.weight"]["rationale"]
    assert card["parameters"]["2.weight"]["kind"] == "scale"
    assert card["lineage"]["parent_sha256"] is None
    text = nl.io.card_markdown(card)
    assert "| 0.weight | weight | 8x4 | yes | kaiming_uniform_ |" in text and "## Lineage" in text


def test_fit_writes_cards_that_chain_checkpoints(tmp_path):
    model = _model()
    opt = nl.optim.SGD(model.parameters(), lr=0.1)
    fit(model, F.cross_entropy, opt, _loader(), epochs=2, checkpoint_every=4, checkpoint_dir=tmp_path,
        progress=False)
    files = sorted(f for f in os.listdir(tmp_path) if f.endswith(".safetensors"))
    assert len(files) == 2
    first, second = (os.path.join(tmp_path, f) for f in files)
    card1 = nl.io.card_of(nl.io.read_checkpoint(first))
    card2 = nl.io.card_of(nl.io.read_checkpoint(second))
    assert card1["lineage"]["parent_sha256"] is None
    assert card2["lineage"]["parent_sha256"] == nl.io.card.file_sha256(first)
    assert "train_loss" in card2["metrics"]
    d = nl.io.diff(first, second)
    assert d.lineage == "A -> B" and nl.io.diff(second, first).lineage == "B -> A"


def test_diff_distances_and_key_changes(tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    model = _model()
    nl.save_state_dict(model.state_dict(), a)
    w0 = model[0].weight.data.astype(np.float64).copy()
    with nl.no_grad():
        model[0].weight.data[:] *= 2.0
        model[3].bias.data[:] += 1.0
    state = model.state_dict()
    state["extra.weight"] = nl.ones(2)
    state["3.weight"] = nl.zeros(3, 9)
    nl.save_state_dict(state, b)
    d = nl.io.diff(a, b)
    rows = {r["name"]: r for r in d.rows}
    assert rows["0.weight"]["distance"] == pytest.approx(np.linalg.norm(w0), rel=1e-6)
    assert rows["0.weight"]["relative"] == pytest.approx(1.0, rel=1e-6)
    assert rows["0.weight"]["cosine"] == pytest.approx(1.0, abs=1e-9)   # same direction, twice as long
    assert rows["3.bias"]["distance"] == pytest.approx(np.sqrt(3), rel=1e-6)
    assert sorted(d.changed()) == ["0.weight", "3.bias"]
    assert d.added == ["extra.weight"] and d.removed == [] and d.reshaped == {"3.weight": ((3, 8), (3, 9))}
    assert d.lineage == "unknown" and not d.identical
    assert nl.io.diff(a, a).identical
    assert "shape changed: 3.weight [3, 8] -> [3, 9]" in d.format()


def _checkpoint_with_parent(model, path, parent=None):
    card = nl.io.model_card(model, parent=parent)
    return nl.save_checkpoint(path, model=model, extra={"card": card})


def test_hot_swap_replaces_everything_after_checking_everything(tmp_path):
    live = _model(0)
    opt = nl.optim.Adam(live.parameters(), lr=1e-2)           # the arena views must survive the swap
    v1 = _checkpoint_with_parent(live, tmp_path / "v1.safetensors")
    newer = _model(1)
    v2 = _checkpoint_with_parent(newer, tmp_path / "v2.safetensors", parent=v1)
    result = nl.io.hot_swap(live, v2, parent=v1)
    assert result["lineage"]["parent_sha256"] == nl.io.card.file_sha256(v1)
    for (name, p), q in zip(live.named_parameters(), newer.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    x = nl.randn(5, 4)
    np.testing.assert_array_equal(live(x).data, newer(x).data)
    slot = opt.arenas[0][0].slots[0]
    assert np.shares_memory(slot.param.data, opt.arenas[0][0].params)


@pytest.mark.parametrize("damage", ["shape", "dtype", "missing", "lineage", "checksum", "version"])
def test_hot_swap_refuses_and_leaves_the_model_unchanged(tmp_path, damage):
    live = _model(0)
    before = [p.data.copy() for p in live.parameters()]
    v1 = _checkpoint_with_parent(live, tmp_path / "v1.safetensors")
    other = _model(1)
    parent = v1
    if damage == "shape":
        other[3] = nn.Linear(8, 4)
    elif damage == "dtype":
        other = other.double()
    elif damage == "missing":
        other[3] = nn.Linear(8, 3, bias=False)
    elif damage == "lineage":
        parent = None      # the new file claims no parent
    path = _checkpoint_with_parent(other, tmp_path / "v2.safetensors", parent=parent)
    if damage in ("checksum", "version"):
        raw = bytearray(open(path, "rb").read())
        if damage == "checksum":
            raw[-1] ^= 0xFF                                # one flipped bit in the last tensor
        else:
            raw = raw.replace(b'"nnlite.format_version":"2"', b'"nnlite.format_version":"9"')
        open(path, "wb").write(bytes(raw))
    errors = {"shape": nl.io.ShapeMismatchError, "dtype": nl.io.DTypeError, "missing": nl.io.MissingKeysError,
              "lineage": nl.io.LineageError, "checksum": nl.io.ChecksumError, "version": nl.io.VersionError}
    with pytest.raises(errors[damage]):
        nl.io.hot_swap(live, path, parent=v1)
    for p, b in zip(live.parameters(), before):
        np.testing.assert_array_equal(p.data, b)


def test_card_and_diff_commands(tmp_path, capsys):
    from nnlite.cli import main
    model = _model()
    a = nl.save_checkpoint(tmp_path / "a.safetensors", model=model,
                           extra={"recipe": "toy", "card": nl.io.model_card(model, recipe="toy", seed=3)})
    with nl.no_grad():
        model[0].bias.data[:] += 0.5
    b = _checkpoint_with_parent(model, tmp_path / "b.safetensors", parent=a)
    assert main(["card", str(a)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Model card: toy") and "- seed: 3" in out
    assert main(["card", str(a), "--out", str(tmp_path / "card.md")]) == 0
    assert (tmp_path / "card.md").read_text().startswith("# Model card")
    assert main(["inspect", str(a)]) == 0
    assert "card: recipe toy" in capsys.readouterr().out
    assert main(["diff", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "lineage: A -> B" in out and "0.bias" in out and "1 of 6 shared tensors changed" in out
    plain = nl.save_state_dict(model.state_dict(), tmp_path / "plain.safetensors") or tmp_path / "plain.safetensors"
    assert main(["card", str(plain)]) == 2
    assert main(["diff", str(a), str(tmp_path / "missing.safetensors")]) == 2
