"""`nnlite train RECIPE --tensorboard DIR` writes the contract's tags."""
import pytest

import nnlite
from nnlite.cli import main


def test_train_with_tensorboard_writes_events(tmp_path, capsys):
    pytest.importorskip("sklearn")
    pytest.importorskip("tensorboardX")
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    before = nnlite.get_num_threads()
    try:
        code = main(["train", "digits-mlp", "--epochs", "1", "--out", str(tmp_path / "run"), "--threads", "1",
                     "--quiet", "--batch-size", "512", "--tensorboard", str(tmp_path / "tb")])
    finally:
        nnlite.set_num_threads(before)
    assert code == 0, capsys.readouterr().err
    acc = event_accumulator.EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"train/loss", "val/loss", "val/accuracy", "lr"} <= set(tags["scalars"])
    assert len(acc.Scalars("val/loss")) == 1 and len(acc.Scalars("train/loss")) == len(acc.Scalars("lr"))
    assert any(t.startswith("params/") for t in tags["histograms"])
    assert any(t.startswith("grads/") for t in tags["histograms"])
