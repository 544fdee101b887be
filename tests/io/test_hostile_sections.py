"""Checkpoints whose JSON sections are well-formed JSON but the wrong shape or type:
every one raises a CheckpointError naming the field, and a failed load changes nothing."""
import json
import os

import numpy as np
import pytest

import nnlite as nl
from nnlite import io as nio
from nnlite.io import format as fmt


def _training_state():
    nl.manual_seed(0)
    model = nl.nn.Sequential(nl.nn.Linear(3, 4), nl.nn.ReLU(), nl.nn.Linear(4, 2))
    opt = nl.optim.Adam(model.parameters(), lr=1e-2)
    sched = nl.optim.lr_scheduler.StepLR(opt, step_size=2)
    loss = model(nl.randn(5, 3)).pow(2).mean()
    loss.backward()
    opt.step()
    sched.step()
    return model, opt, sched


def _saved(tmp_path):
    model, opt, sched = _training_state()
    path = nl.save_checkpoint(tmp_path / "good.safetensors", model=model, optimizer=opt, scheduler=sched, step=3)
    raw = open(path, "rb").read()
    parsed = fmt.parse(raw)
    return fmt.decode(raw, parsed), dict(parsed.metadata)


def _rewrite(tmp_path, arrays, metadata, name="bad.safetensors"):
    """A file with ``metadata`` and a valid checksum, so the reader gets past the checksum."""
    meta = {k: v for k, v in metadata.items() if k not in (fmt.CHECKSUM_KEY, fmt.ALIASES_KEY)}
    path = tmp_path / name
    path.write_bytes(fmt.serialize(arrays, meta))
    return path




def _state(model, opt, sched):
    weights = {k: v.data.copy() for k, v in model.state_dict().items()}
    groups = json.dumps([{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups], default=str)
    moments = json.dumps({k: {n: np.asarray(getattr(v, "data", v)).tolist() for n, v in e.items()}
                          for k, e in opt.state_dict()["state"].items()}, default=str)
    return weights, groups, moments, json.dumps(sched.state_dict(), default=str), json.dumps(nl.random.get_rng_state())


def _assert_same(a, b):
    assert a[0].keys() == b[0].keys()
    for k in a[0]:
        np.testing.assert_array_equal(a[0][k], b[0][k])
    assert a[1:] == b[1:]


def _edit(metadata, section, change):
    blob = json.loads(metadata[section])
    change(blob)
    return dict(metadata, **{section: json.dumps(blob)})


def _set(path, value):
    def change(blob):
        target = blob
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


# (section, change, the field the message must name)
BAD_FIELDS = [
    ("nnlite.rng", _set(["state", "state"], "not a number"), "nnlite.rng"),
    ("nnlite.rng", _set(["bit_generator"], "MT19937"), "nnlite.rng"),
    ("nnlite.model", _set(["keys"], 5), "nnlite.model.keys"),
    ("nnlite.model", _set(["keys"], [1, 2]), "nnlite.model.keys"),
    ("nnlite.model", _set(["extra_state"], [1]), "nnlite.model.extra_state"),
    ("nnlite.model", _set(["parameters"], "x"), "nnlite.model.parameters"),
    ("nnlite.optimizer", _set(["state", "param_groups"], 7), "param_groups"),
    ("nnlite.optimizer", _set(["state", "param_groups"], [3]), "param_groups"),
    ("nnlite.optimizer", _set(["state", "param_groups", 0, "params"], "abc"), "params"),
    ("nnlite.optimizer", _set(["state", "param_groups", 0, "lr"], "0.1"), "lr"),
    ("nnlite.optimizer", _set(["state", "param_groups", 0, "betas"], {"__tuple__": [0.9]}), "betas"),
    ("nnlite.optimizer", _set(["state", "param_groups", 0, "amsgrad"], 3), "amsgrad"),
    ("nnlite.optimizer", _set(["state", "state"], []), "state"),
    ("nnlite.scheduler", _set(["state"], [1, 2]), "nnlite.scheduler"),
    ("nnlite.scheduler", _set(["state", "last_epoch"], "7"), "last_epoch"),
    ("nnlite.progress", _set(["step"], "3"), "nnlite.progress.step"),
    ("nnlite.format_version", None, "nnlite.format_version"),
]


@pytest.mark.parametrize("section, change, field", BAD_FIELDS, ids=[f[2] + str(i) for i, f in enumerate(BAD_FIELDS)])
def test_a_wrong_field_raises_a_checkpoint_error_naming_it_and_changes_nothing(tmp_path, section, change, field):
    arrays, metadata = _saved(tmp_path)
    if change is None:
        bad = dict(metadata, **{section: "²"})
    else:
        bad = _edit(metadata, section, change)
    path = _rewrite(tmp_path, arrays, bad)
    model, opt, sched = _training_state()
    nl.manual_seed(123)
    before = _state(model, opt, sched)
    with pytest.raises(nio.CheckpointError, match=field.replace(".", r"\.")):
        nl.load_checkpoint(path, model=model, optimizer=opt, scheduler=sched)
    _assert_same(before, _state(model, opt, sched))


@pytest.mark.parametrize("version", ["²", "1" * 5000, "-1", " 2", "0x2", "٢"],
                         ids=["superscript", "5000 digits", "negative", "space", "hex", "arabic digit"])
def test_odd_format_versions(tmp_path, version):
    path = _rewrite(tmp_path, {"w": np.zeros(1, np.float32)}, {"nnlite.format_version": version})
    for read in (nl.load_checkpoint, nl.load_state_dict, nio.read_checkpoint):
        with pytest.raises(nio.CheckpointError, match="format_version"):
            read(path)


def test_deeply_nested_json_is_a_header_error(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    for section in ("nnlite.extra", "nnlite.model", "nnlite.optimizer"):
        meta = {"nnlite.format": "checkpoint", "nnlite.format_version": "2", "nnlite.version": "0", section: deep}
        path = _rewrite(tmp_path, {"model.w": np.zeros(1, np.float32)}, meta)
        for read in (nl.load_checkpoint, nl.load_state_dict, nio.read_checkpoint):
            with pytest.raises(nio.HeaderError, match=section.replace(".", r"\.")):
                read(path)
    # Nested within JSON's limit but past the decoder's: the same error, not a RecursionError.
    meta = {"nnlite.format": "checkpoint", "nnlite.format_version": "2", "nnlite.version": "0",
            "nnlite.extra": '{"a":' * 600 + "1" + "}" * 600}
    path = _rewrite(tmp_path, {"model.w": np.zeros(1, np.float32)}, meta)
    with pytest.raises(nio.HeaderError, match="nested"):
        nl.load_checkpoint(path)


def test_a_bad_rng_section_leaves_the_model_untouched(tmp_path):
    """The issue's example: weights used to be replaced before the RNG section failed."""
    arrays, metadata = _saved(tmp_path)
    path = _rewrite(tmp_path, arrays, _edit(metadata, "nnlite.rng", _set(["has_uint32"], "yes")))
    model, opt, sched = _training_state()
    with nl.no_grad():
        for p in model.parameters():
            p.fill_(7.0)
    with pytest.raises(nio.CheckpointError, match="nnlite.rng"):
        nl.load_checkpoint(path, model=model)
    assert all(np.all(p.data == 7.0) for p in model.parameters())


def test_foreign_metadata_that_names_a_tensor_is_not_an_alias(tmp_path):
    path = str(tmp_path / "foreign.safetensors")
    import safetensors.numpy
    safetensors.numpy.save_file({"weight": np.ones((2, 2), np.float32)}, path, metadata={"note": "weight"})
    loaded = nl.load_state_dict(path)
    assert list(loaded) == ["weight"]
    info = nio.read_checkpoint(path)
    assert info.aliases == {} and info.metadata == {"note": "weight"}


def test_tied_weights_from_safetensors_torch_save_model_still_load(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")

    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(5, 3)
            self.head = torch.nn.Linear(3, 5, bias=False)
            self.head.weight = self.embed.weight

    theirs = Tied()
    path = str(tmp_path / "tied.safetensors")
    st.save_model(theirs, path)
    ours = nl.nn.Module()
    ours.embed = nl.nn.Embedding(5, 3)
    ours.head = nl.nn.Linear(3, 5, bias=False)
    ours.head.weight = ours.embed.weight
    loaded = nl.load_state_dict(path)
    assert len(loaded) == 1            # stored once, no invented keys
    ours.load_state_dict(loaded, strict=True)   # the tie fills the other name
    np.testing.assert_array_equal(ours.head.weight.data, theirs.embed.weight.detach().numpy())


# ------------------------------------------------------------- temporaries --
def _interrupted_temporaries(directory, target):
    """Leftovers of saves killed between writing and renaming, named as atomic_write names them."""
    names = [f".{os.path.basename(target)}.{i:012x}.tmp" for i in range(3)]
    for n in names:
        (directory / n).write_bytes(b"x" * 1000)
    return names


def test_stale_temporaries_of_our_naming_are_removed_by_the_next_save(tmp_path):
    model, opt, _ = _training_state()
    template = str(tmp_path / "ckpt-{step:04d}.safetensors")
    stale = _interrupted_temporaries(tmp_path, tmp_path / "ckpt-0001.safetensors")
    others = [".notes.txt.tmp", "keep.tmp", ".ckpt-0001.safetensors.zz.tmp", ".other.aabbccddeeff.tmp.bak"]
    for n in others:
        (tmp_path / n).write_text("not ours")
    old = 10**9   # long ago: no save could still be writing them
    for n in stale + others:
        os.utime(tmp_path / n, (old, old))
    nl.save_checkpoint(template, model=model, optimizer=opt, step=2, keep_last=2)
    left = set(os.listdir(tmp_path))
    assert not left & set(stale)
    assert set(others) <= left
    assert "ckpt-0002.safetensors" in left


def test_temporaries_of_killed_savers_are_removed_at_once(tmp_path):
    import subprocess
    import sys
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    name = f".w.safetensors.{dead}.{'ab' * 6}.tmp"
    (tmp_path / name).write_bytes(b"x" * 100)
    model, _, _ = _training_state()
    nl.save_state_dict(model.state_dict(), tmp_path / "w.safetensors")
    assert name not in os.listdir(tmp_path)
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == []


def test_a_fresh_temporary_of_a_save_in_progress_is_kept(tmp_path):
    model, _, _ = _training_state()
    fresh = _interrupted_temporaries(tmp_path, tmp_path / "w.safetensors")
    nl.save_state_dict(model.state_dict(), tmp_path / "w.safetensors")
    assert set(fresh) <= set(os.listdir(tmp_path))
