"""Property test: whatever a checkpoint's JSON sections hold, both loaders either load it or
raise a CheckpointError, and a failed load_checkpoint leaves model, optimizer, scheduler and
generator as they were. Files are re-checksummed, so the fuzzing reaches past the checksum."""
import json

import numpy as np
import pytest

import nnlite as nl
from nnlite import io as nio
from nnlite.io import format as fmt

SECTIONS = ["nnlite.model", "nnlite.optimizer", "nnlite.scheduler", "nnlite.rng", "nnlite.progress",
            "nnlite.extra", "nnlite.aliases", "nnlite.format_version", "nnlite.format", "nnlite.keys"]

def _strategies(st):
    scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=6)
               | st.floats(allow_nan=False, allow_infinity=False))
    names = st.sampled_from(["state", "params", "lr", "__tensor__", "as", "__tuple__", "keys", "class", "seed"])
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(names | st.text(max_size=4), inner, max_size=3), max_leaves=8)


def _setup():
    nl.manual_seed(0)
    model = nl.nn.Sequential(nl.nn.Linear(2, 3), nl.nn.Linear(3, 1))
    opt = nl.optim.Adam(model.parameters(), lr=0.01)
    sched = nl.optim.lr_scheduler.StepLR(opt, step_size=3)
    model(nl.randn(4, 2)).sum().backward()
    opt.step()
    return model, opt, sched


def _state(model, opt, sched):
    return (json.dumps({k: v.data.tolist() for k, v in model.state_dict().items()}),
            json.dumps([{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups], default=str),
            json.dumps({k: {n: np.asarray(getattr(v, "data", v)).tolist() for n, v in e.items()}
                        for k, e in opt.state_dict()["state"].items()}),
            json.dumps(sched.state_dict(), default=str), json.dumps(nl.random.get_rng_state()))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model, opt, sched = _setup()
    path = nl.save_checkpoint(tmp_path_factory.mktemp("fuzz") / "ok.safetensors", model=model, optimizer=opt,
                              scheduler=sched, step=1, extra={"note": [1, 2]})
    raw = open(path, "rb").read()
    parsed = fmt.parse(raw)
    meta = {k: v for k, v in parsed.metadata.items() if k != fmt.CHECKSUM_KEY}
    return fmt.decode(raw, parsed), meta


def _mutate(st, data, value, json_values):
    """Replace a randomly chosen part of ``value`` (parsed JSON) with random JSON."""
    if isinstance(value, (dict, list)) and value and data.draw(st.booleans()):
        keys = list(value) if isinstance(value, dict) else list(range(len(value)))
        k = data.draw(st.sampled_from(keys))
        value[k] = _mutate(st, data, value[k], json_values)
        return value
    return data.draw(json_values)


def test_fuzzed_sections_load_or_raise_a_checkpoint_error(tmp_path_factory, saved):
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    json_values = _strategies(st)

    @hypothesis.settings(max_examples=200, deadline=None, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(data=st.data())
    def check(data):
        _one_case(tmp_path_factory, saved, st, data, json_values)

    check()


def _one_case(tmp_path_factory, saved, st, data, json_values):
    arrays, meta = saved
    meta = dict(meta)
    section = data.draw(st.sampled_from(SECTIONS))
    if section in meta and data.draw(st.booleans()):
        try:
            parsed = json.loads(meta[section])
        except ValueError:
            parsed = meta[section]
        meta[section] = json.dumps(_mutate(st, data, parsed, json_values))
    else:
        meta[section] = data.draw(st.text(max_size=12) | json_values.map(json.dumps))
    path = tmp_path_factory.mktemp("case") / "c.safetensors"
    path.write_bytes(fmt.serialize(arrays, meta))

    model, opt, sched = _setup()
    nl.manual_seed(5)
    before = _state(model, opt, sched)
    try:
        nl.load_checkpoint(path, model=model, optimizer=opt, scheduler=sched)
    except nio.CheckpointError:
        assert _state(model, opt, sched) == before, "a failed load changed something"
    for read in (nl.load_state_dict, nio.read_checkpoint):
        try:
            read(path)
        except nio.CheckpointError:
            pass


@pytest.mark.parametrize("extra_state", [{"__tuple__": [None]}, {"__tuple__": "0"}])
def test_extra_state_that_decodes_to_no_mapping_is_a_header_error(tmp_path, saved, extra_state):
    # A JSON object can decode to a tuple; found by the property test above.
    arrays, meta = saved
    meta = dict(meta)
    section = json.loads(meta["nnlite.model"])
    section["extra_state"] = extra_state
    meta["nnlite.model"] = json.dumps(section)
    path = tmp_path / "c.safetensors"
    path.write_bytes(fmt.serialize(arrays, meta))
    model, opt, sched = _setup()
    with pytest.raises(nio.HeaderError, match="extra_state must decode to a mapping"):
        nl.load_checkpoint(path, model=model)
