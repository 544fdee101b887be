"""TensorBoardLogger: the event files tensorboard reads back hold the contract's tags and the right numbers."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.monitor import TensorBoardLogger, weight_image
from nnlite.train import fit


def _events(logdir):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0,
                                                                        "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def _data(n=64, seed=0):
    g = np.random.default_rng(seed)
    x = g.normal(size=(n, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return nl.data.TensorDataset(nl.tensor(x), nl.tensor(y))


def _model():
    nl.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))


def test_fit_writes_the_contract_tags(tmp_path):
    pytest.importorskip("tensorboardX")
    model = _model()
    train = nl.data.DataLoader(_data(), batch_size=16)
    val = nl.data.DataLoader(_data(32, seed=1), batch_size=16)
    logger = TensorBoardLogger(tmp_path)
    history = fit(model, nn.functional.cross_entropy, nl.optim.SGD(model.parameters(), lr=0.1), train,
                  epochs=3, val_loader=val, callbacks=[logger], progress=False)
    logger.close()
    acc = _events(tmp_path)
    scalars = set(acc.Tags()["scalars"])
    assert {"train/loss", "val/loss", "val/accuracy", "lr", "train/accuracy"} <= scalars
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    histograms = set(acc.Tags()["histograms"])
    assert histograms == {f"params/{n}" for n in names} | {f"grads/{n}" for n in names}
    # one train/loss per batch, one lr per step, one val value and one histogram per epoch
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(1, 13))
    assert len(acc.Scalars("lr")) == 12 and len(acc.Scalars("val/loss")) == 3
    assert [e.step for e in acc.Scalars("val/loss")] == [4, 8, 12]
    assert np.allclose([e.value for e in acc.Scalars("val/loss")], history["val_loss"], rtol=1e-6)
    assert np.allclose([e.value for e in acc.Scalars("val/accuracy")], history["val_accuracy"])
    assert len(acc.Histograms("params/0.weight")) == 3 and len(acc.Histograms("grads/2.bias")) == 3


def test_lr_at_each_step_is_the_rate_that_step_used(tmp_path):
    # A per-batch scheduler changes the rate right after each step; the rate logged at step
    # k is the one step k took, 1 / k here, starting with the optimizer's own lr.
    pytest.importorskip("tensorboardX")
    model = _model()
    optimizer = nl.optim.SGD(model.parameters(), lr=1.0)
    scheduler = nl.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    logger = TensorBoardLogger(tmp_path, histograms=False, images=False)
    fit(model, nn.functional.cross_entropy, optimizer, nl.data.DataLoader(_data(), batch_size=16), epochs=2,
        scheduler=scheduler, scheduler_step="batch", callbacks=[logger], progress=False)
    logger.close()
    logged = _events(tmp_path).Scalars("lr")
    assert [e.step for e in logged] == list(range(1, 9))
    np.testing.assert_allclose([e.value for e in logged], [1.0 / k for k in range(1, 9)], rtol=1e-6)


def test_histogram_buckets_equal_numpys_histogram(tmp_path):
    pytest.importorskip("tensorboardX")
    model = _model()
    logger = TensorBoardLogger(tmp_path, bins=17)
    loss = nn.functional.cross_entropy(model(_data().tensors[0]), _data().tensors[1])
    loss.backward()
    logger.log_parameters(model, step=5)
    logger.log_gradients(model, step=5)
    logger.close()
    acc = _events(tmp_path)
    for prefix, get in (("params", lambda p: p.data), ("grads", lambda p: p.grad.data)):
        for name, p in model.named_parameters():
            (event,) = acc.Histograms(f"{prefix}/{name}")
            assert event.step == 5
            values = get(p).astype(np.float64).ravel()
            counts, edges = np.histogram(values, bins=17)
            h = event.histogram_value
            assert h.num == values.size and h.min == values.min() and h.max == values.max()
            assert sum(h.bucket) == values.size
            # tensorboard drops empty buckets at both ends and keeps right edges only
            assert np.trim_zeros(np.array(h.bucket)).tolist() == np.trim_zeros(counts).tolist()
            assert np.isin(np.array(h.bucket_limit[1:]), edges).all()


def test_images_of_filters_and_embeddings_and_hparams(tmp_path):
    pytest.importorskip("tensorboardX")
    nl.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    embedding = nn.Embedding(10, 5)
    logger = TensorBoardLogger(tmp_path)
    logger.log_images(model, step=1)
    logger.log_images(embedding, step=1)
    logger.log_hparams({"lr": 0.1, "optimizer": "SGD"}, {"val/accuracy": 0.5})
    logger.close()
    acc = _events(tmp_path)
    assert set(acc.Tags()["images"]) == {"weights/0.weight", "weights/weight"}
    (image,) = acc.Images("weights/0.weight")
    # 4 output channels of one 3x3 kernel, one-pixel gaps: 4*4-1 rows, 3 columns
    assert (image.height, image.width) == (15, 3)
    plugin_data_pb2 = pytest.importorskip("tensorboard.plugins.hparams.plugin_data_pb2")
    hparams = _events(tmp_path / "hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(
        hparams.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["lr"].number_value == 0.1 and start.hparams["optimizer"].string_value == "SGD"
    assert [e.value for e in hparams.Scalars("val/accuracy")] == [0.5]


def test_weight_image_scales_to_unit_range_with_zero_at_half():
    w = np.array([[-2.0, 0.0], [1.0, 2.0]])
    assert np.array_equal(weight_image(w), [[0.0, 0.5], [0.75, 1.0]])
    conv = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2) - 11.5
    grid = weight_image(conv)
    assert grid.shape == (2 * 3 - 1, 3 * 3 - 1)
    assert np.allclose(grid[3:5, 6:8], 0.5 + 0.5 * conv[1, 2] / 11.5)
    with pytest.raises(ValueError, match="2-, 3- or 4-D weight, got shape"):
        weight_image(np.zeros(3))


def test_missing_tensorboardx_names_the_extra(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r'pip install "nnlite\[monitor\]"'):
        TensorBoardLogger("unused")
