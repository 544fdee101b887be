"""After each way of loading weights, a parameter's ``init`` says where its values came from."""
import hashlib

import numpy as np

import nnlite as nl
from nnlite.cli import main
from nnlite.nn import functional as F


def _model():
    return nl.nn.Sequential(nl.nn.Linear(4, 3), nl.nn.ReLU(), nl.nn.Linear(3, 2))


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_in_memory_state_dict_is_recorded_as_such():
    model = _model()
    assert model[0].weight.init["scheme"] == "kaiming_uniform_"
    model.load_state_dict(_model().state_dict())
    assert all(p.init == {"scheme": "loaded", "source": "state_dict"} for p in model.parameters())


def test_a_parameter_passed_in_memory_keeps_its_own_record_as_previous():
    source = _model()
    model = _model()
    model.load_state_dict(source.state_dict(keep_vars=True))
    assert model[2].bias.init == {"scheme": "loaded", "source": "state_dict", "previous": source[2].bias.init}


def test_weights_file_records_path_and_sha256(tmp_path):
    path = tmp_path / "w.safetensors"
    source = _model()
    nl.save_state_dict(source, path)
    model = _model()
    model.load_state_dict(nl.io.load_state_dict(path))
    for p in model.parameters():
        assert p.init == {"scheme": "loaded", "source": str(path), "sha256": _sha256(path)}
    np.testing.assert_array_equal(model[0].weight.data, source[0].weight.data)


def test_checkpoint_records_the_file_and_the_lineage_survives_fine_tuning(tmp_path):
    first, second = tmp_path / "pretrained.safetensors", tmp_path / "finetuned.safetensors"
    nl.save_state_dict(_model(), first)
    model = _model()
    model.load_state_dict(nl.load_state_dict(first))
    # fine-tune: the values move, the record of where they started stays
    opt = nl.optim.SGD(model.parameters(), lr=0.1)
    F.cross_entropy(model(nl.randn(8, 4)), nl.tensor([0, 1] * 4)).backward()
    opt.step()
    assert model[0].weight.init["source"] == str(first)
    nl.save_checkpoint(second, model=model)
    for load in ("checkpoint", "state_dict"):
        again = _model()
        if load == "checkpoint":
            nl.load_checkpoint(second, model=again)
        else:
            again.load_state_dict(nl.load_state_dict(second))
        record = again[0].weight.init
        assert record["scheme"] == "loaded" and record["source"] == str(second)
        assert record["sha256"] == _sha256(second)
        assert record["previous"] == {"scheme": "loaded", "source": str(first), "sha256": _sha256(first)}


def test_inspect_reports_loaded_weights_not_their_old_initialiser(tmp_path, capsys):
    first, second = tmp_path / "pretrained.safetensors", tmp_path / "model.safetensors"
    nl.save_state_dict(_model(), first)
    model = _model()
    model.load_state_dict(nl.load_state_dict(first))
    model[2] = nl.nn.Linear(3, 2)   # a new head: freshly initialised
    nl.save_checkpoint(second, model=model)
    assert main(["inspect", str(second)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines if line.startswith(("0.", "2."))}
    assert "loaded" in rows["0.weight"] and "kaiming_uniform_" not in rows["0.weight"]
    assert "kaiming_uniform_" in rows["2.weight"]
