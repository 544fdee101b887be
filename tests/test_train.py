"""The training loop: it learns, stops early, accumulates, clips, and resumes bit for bit."""
import io
import os

import numpy as np
import pytest

import nnlite as nl
from nnlite.data import DataLoader, TensorDataset
from nnlite.nn.utils import clip_grad_norm_
from nnlite.train import Callback, EarlyStopping, ProgressBar, evaluate, fit

F = nl.nn.functional


@pytest.fixture(autouse=True)
def one_thread():
    """Small models gain nothing from a second thread, and a busy machine makes spinning threads slow."""
    before = nl.get_num_threads()
    nl.set_num_threads(1)
    yield
    nl.set_num_threads(before)


def blobs(n=64, seed=0, dtype=np.float32):
    """Three well separated Gaussian blobs in 4-D: an easy classification task."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = np.array([[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], dtype)
    x = centers[y] + 0.5 * rng.standard_normal((n, 4)).astype(dtype)
    return TensorDataset(x.astype(dtype), y.astype(np.int64))


def mlp(seed=0, dropout=0.0):
    nl.manual_seed(seed)
    layers = [nl.nn.Linear(4, 16), nl.nn.ReLU()]
    if dropout:
        layers.append(nl.nn.Dropout(dropout))
    return nl.nn.Sequential(*layers, nl.nn.Linear(16, 3))


def params(model):
    return [p.data.copy() for p in model.parameters()]


def test_fit_reduces_loss_and_reports_history():
    model = mlp()
    loader = DataLoader(blobs(), batch_size=16, shuffle=True, generator=nl.Generator(0))
    val = DataLoader(blobs(seed=1), batch_size=32)
    before = evaluate(model, F.cross_entropy, val)
    opt = nl.optim.Adam(model.parameters(), lr=0.02)
    history = fit(model, F.cross_entropy, opt, loader, epochs=8, val_loader=val, progress=False)
    assert history["epoch"] == list(range(1, 9))
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert history["val_loss"][-1] < 0.5 * before["loss"]
    assert history["val_accuracy"][-1] >= 0.9
    assert history["steps"] == 8 * 4 and history["stopped_early"] is False
    after = evaluate(model, F.cross_entropy, val)
    assert after["loss"] == pytest.approx(history["val_loss"][-1])
    assert model.training  # evaluate restores the mode


def test_early_stopping_stops_when_nothing_improves():
    model = mlp()
    loader = DataLoader(blobs(), batch_size=16)
    opt = nl.optim.SGD(model.parameters(), lr=0.0)  # the loss cannot improve
    stopper = EarlyStopping(monitor="val_loss", patience=2)
    history = fit(model, F.cross_entropy, opt, loader, epochs=20, val_loader=loader,
                  callbacks=[stopper], progress=False)
    assert len(history["epoch"]) == 3 and history["stopped_early"]
    assert stopper.stopped_epoch == 2
    with pytest.raises(KeyError, match="no metric 'val_loss'"):
        fit(mlp(), F.cross_entropy, nl.optim.SGD(mlp().parameters(), lr=0.1), loader, epochs=1,
            callbacks=[EarlyStopping()], progress=False)


def test_early_stopping_max_mode_keeps_going_while_accuracy_rises():
    stopper = EarlyStopping(monitor="val_accuracy", patience=1)
    assert stopper.mode == "max"

    class S:
        stop_training = False
        epoch = 0

    s = S()
    for acc in (0.5, 0.6, 0.7):
        stopper.on_epoch_end(s, {"val_accuracy": acc})
    assert not s.stop_training
    stopper.on_epoch_end(s, {"val_accuracy": 0.7})
    assert s.stop_training


def test_gradient_accumulation_equals_a_bigger_batch():
    data = blobs(n=32, dtype=np.float64)
    big, small = mlp().double(), mlp().double()
    fit(big, F.cross_entropy, nl.optim.SGD(big.parameters(), lr=0.1), DataLoader(data, batch_size=8),
        epochs=2, progress=False)
    history = fit(small, F.cross_entropy, nl.optim.SGD(small.parameters(), lr=0.1),
                  DataLoader(data, batch_size=4), epochs=2, accumulate_grad_batches=2, progress=False)
    assert history["steps"] == 8
    for a, b in zip(params(big), params(small)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_accumulation_with_a_partial_last_group():
    data = blobs(n=40, dtype=np.float64)  # 5 batches of 8: groups of 2, 2 and 1
    history = fit(mlp().double(), F.cross_entropy, nl.optim.SGD(mlp().double().parameters(), lr=0.1),
                  DataLoader(data, batch_size=8), epochs=1, accumulate_grad_batches=2, progress=False)
    assert history["steps"] == 3


def test_clip_grad_norm():
    w = nl.nn.Parameter(nl.zeros(3))
    b = nl.nn.Parameter(nl.zeros(1))
    w.grad, b.grad = nl.tensor([3.0, 0.0, 0.0]), nl.tensor([4.0])
    norm = clip_grad_norm_([w, b], max_norm=1.0)
    assert float(norm) == pytest.approx(5.0)
    assert np.linalg.norm(np.concatenate([w.grad.data, b.grad.data])) == pytest.approx(1.0, rel=1e-5)
    assert float(clip_grad_norm_([w, b], max_norm=10.0)) == pytest.approx(1.0, rel=1e-5)
    b.grad = nl.tensor([np.inf])
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_([w, b], 1.0, error_if_nonfinite=True)


def test_fit_clips_gradients_before_each_step():
    model = mlp()
    seen = []

    class Spy(Callback):
        def on_batch_end(self, state):
            seen.append(np.sqrt(sum(float((p.grad.data ** 2).sum()) for p in model.parameters())))

    opt = nl.optim.SGD(model.parameters(), lr=0.0)
    norms = []
    orig = opt.step

    def step(*a):
        norms.append(np.sqrt(sum(float((p.grad.data ** 2).sum()) for p in model.parameters())))
        return orig(*a)

    opt.step = step
    fit(model, F.cross_entropy, opt, DataLoader(blobs(), batch_size=16), epochs=1, clip_grad_norm=0.01,
        callbacks=[Spy()], progress=False)
    assert max(seen) > 0.01 and max(norms) <= 0.0100001


def test_scheduler_per_epoch_and_per_batch():
    model = mlp()
    opt = nl.optim.SGD(model.parameters(), lr=1.0)
    sched = nl.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    history = fit(model, F.cross_entropy, opt, DataLoader(blobs(), batch_size=16), epochs=3,
                  scheduler=sched, progress=False)
    assert history["lr"] == [1.0, 0.5, 0.25]
    opt = nl.optim.SGD(model.parameters(), lr=1.0)
    sched = nl.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    fit(model, F.cross_entropy, opt, DataLoader(blobs(), batch_size=16), epochs=1, scheduler=sched,
        scheduler_step="batch", progress=False)
    assert opt.param_groups[0]["lr"] == 0.5 ** 4
    with pytest.raises(ValueError, match="scheduler_step"):
        fit(model, F.cross_entropy, opt, DataLoader(blobs()), epochs=1, scheduler_step="step")


def test_progress_prints_one_line_per_epoch_off_a_terminal():
    stream = io.StringIO()
    fit(mlp(), F.cross_entropy, nl.optim.SGD(mlp().parameters(), lr=0.1), DataLoader(blobs(), batch_size=16),
        epochs=2, callbacks=[ProgressBar(stream)])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2") and "train_loss" in lines[0]


def test_bad_batches_are_named():
    loader = DataLoader(TensorDataset(np.zeros((4, 4), np.float32)), batch_size=2)
    with pytest.raises(TypeError, match=r"\(inputs, targets\) pair, got tuple of length 1"):
        fit(mlp(), F.cross_entropy, nl.optim.SGD(mlp().parameters(), lr=0.1), loader, epochs=1, progress=False)


def run_resumable(tmp_path, resume=None, init_seed=0):
    """Dropout, shuffling from the global generator, accumulation and a per-batch schedule."""
    model = mlp(seed=init_seed, dropout=0.2)
    opt = nl.optim.AdamW(model.parameters(), lr=0.01)
    sched = nl.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=12)
    loader = DataLoader(blobs(n=50), batch_size=8, shuffle=True)  # 7 batches: 4 steps per epoch
    nl.manual_seed(123)
    history = fit(model, F.cross_entropy, opt, loader, epochs=3, scheduler=sched, scheduler_step="batch",
                  accumulate_grad_batches=2, checkpoint_every=3, checkpoint_dir=tmp_path / "ckpt",
                  callbacks=[EarlyStopping("train_loss", patience=10)], resume=resume, progress=False)
    return model, history


def test_resume_from_a_mid_epoch_checkpoint_is_exact(tmp_path):
    model, history = run_resumable(tmp_path)
    files = sorted(os.listdir(tmp_path / "ckpt"))
    assert files == ["checkpoint-00000006.safetensors", "checkpoint-00000009.safetensors",
                     "checkpoint-00000012.safetensors"]  # keep_last=3 rotated step 3 away
    # Step 6 is in the middle of epoch 1 (4 steps per epoch). A differently initialised model,
    # resumed from it, must end bit-identical to the uninterrupted run.
    resumed, history2 = run_resumable(tmp_path / "again", resume=tmp_path / "ckpt" / files[0], init_seed=9)
    for a, b in zip(params(model), params(resumed)):
        assert np.array_equal(a, b)
    assert history2["train_loss"] == history["train_loss"]
    assert history2["lr"] == history["lr"] and history2["steps"] == 12


def test_resume_from_directory_and_errors(tmp_path):
    model, _ = run_resumable(tmp_path)
    _, history = run_resumable(tmp_path / "b", resume=tmp_path / "ckpt")  # newest: already finished
    assert history["steps"] == 12 and len(history["epoch"]) == 3
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run_resumable(tmp_path / "c", resume=tmp_path)
    plain = tmp_path / "plain.safetensors"
    nl.save_checkpoint(plain, model=model)
    with pytest.raises(ValueError, match="not written by fit"):
        run_resumable(tmp_path / "d", resume=plain)


def test_accuracy_counts_argmax_hits_in_any_batch_size_and_restores_the_mode():
    from nnlite.train import accuracy
    nl.manual_seed(0)
    model = nl.nn.Sequential(nl.nn.Linear(5, 4), nl.nn.Dropout(0.5))
    x = np.random.default_rng(0).standard_normal((23, 5)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 4, 23)
    with nl.no_grad():
        expected = float(np.mean(model[0](nl.tensor(x)).data.argmax(1) == y))   # dropout is off in eval mode
    assert model.training
    assert accuracy(model, x, y) == pytest.approx(expected)
    assert accuracy(model, nl.tensor(x), nl.tensor(y), batch_size=5) == pytest.approx(expected)
    assert model.training
    # The loss is not needed for accuracy alone, so evaluate takes no loss function then.
    assert evaluate(model, None, DataLoader(TensorDataset(x, y), batch_size=7), metrics=("accuracy",)) == {
        "accuracy": pytest.approx(expected)}
    with pytest.raises(TypeError, match="targets must be integer class labels, got float32"):
        accuracy(model, x, x[:, 0])
    with pytest.raises(ValueError, match="same first dimension"):
        accuracy(model, x, y[:3])


def test_evaluate_puts_back_each_layers_own_mode():
    # A BatchNorm kept in eval mode inside a training model (frozen statistics) stays in eval mode.
    model = nl.nn.Sequential(nl.nn.Linear(3, 4), nl.nn.BatchNorm1d(4), nl.nn.Linear(4, 2))
    model[1].eval()
    data = DataLoader(TensorDataset(nl.randn(6, 3), nl.tensor(np.arange(6) % 2)), batch_size=3)
    evaluate(model, nl.nn.functional.cross_entropy, data)
    assert model.training and model[0].training and not model[1].training


class Stream(nl.data.IterableDataset):
    """The blobs, four batches of 16 as a stream: a loader over it has no length."""

    def __iter__(self):
        x, y = blobs().arrays
        for i in range(0, 64, 16):
            yield nl.tensor(x[i:i + 16]), nl.tensor(y[i:i + 16])


def test_the_progress_bar_counts_batches_of_a_loader_without_a_length():
    # the terminal's bar asked len() of such a loader and stopped fit with a TypeError
    pytest.importorskip("tqdm")
    stream = io.StringIO()
    model = mlp()
    history = fit(model, F.cross_entropy, nl.optim.SGD(model.parameters(), lr=0.1),
                  DataLoader(Stream(), batch_size=None), epochs=2,
                  callbacks=[ProgressBar(stream, use_tqdm=True)])
    out = stream.getvalue()
    assert history["steps"] == 8
    assert "epoch 1/2: 0it" in out and "epoch 2/2  train_loss" in out   # a bar without a total, then the line


@pytest.mark.parametrize("name,value,error,message", [
    ("accumulate_grad_batches", 1.5, TypeError, "accumulate_grad_batches must be an int, got float"),
    ("epochs", 1.5, TypeError, "epochs must be an int, got float"),
    ("epochs", -1, ValueError, "epochs must be >= 0, got -1"),
    ("checkpoint_every", 0, ValueError, "checkpoint_every must be >= 1, got 0"),
    ("checkpoint_every", 2.5, TypeError, "checkpoint_every must be an int, got float"),
])
def test_counts_that_are_not_whole_numbers_are_refused(tmp_path, name, value, error, message):
    # accumulate_grad_batches=1.5 made the whole epoch one step, epochs=1.5 ran two epochs,
    # and checkpoint_every=0 was refused under another name (ModelCheckpoint's every_n_steps)
    model = mlp()
    kwargs = {"epochs": 1, name: value}
    if name == "checkpoint_every":
        kwargs["checkpoint_dir"] = tmp_path
    with pytest.raises(error, match=f"^fit: {message}$"):
        fit(model, F.cross_entropy, nl.optim.SGD(model.parameters(), lr=0.1), DataLoader(blobs(), batch_size=16),
            progress=False, **kwargs)


def test_reduce_on_plateau_without_the_loss_among_the_metrics_is_refused():
    # it stepped the schedule with None at the first epoch's end: a TypeError from float()
    model = mlp()
    opt = nl.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"metrics must include 'loss', got metrics=\('accuracy',\)$"):
        fit(model, F.cross_entropy, opt, DataLoader(blobs(), batch_size=16), epochs=1, progress=False,
            scheduler=nl.optim.lr_scheduler.ReduceLROnPlateau(opt), metrics=("accuracy",))


def test_an_unknown_metric_is_named_instead_of_measuring_nothing():
    # a misspelt metric left the history without it, and a string was read as its letters
    model = mlp()
    loader = DataLoader(blobs(), batch_size=16)
    opt = nl.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"^fit: unknown metric 'acc'; expected names from \('loss', 'accuracy'\)$"):
        fit(model, F.cross_entropy, opt, loader, epochs=1, progress=False, metrics=("loss", "acc"))
    with pytest.raises(ValueError, match="^evaluate: unknown metric 'Loss'"):
        evaluate(model, F.cross_entropy, loader, metrics=("Loss",))
    with pytest.raises(TypeError, match="metrics must be a tuple of names .* got the string 'loss'"):
        evaluate(model, F.cross_entropy, loader, metrics="loss")
    assert evaluate(model, F.cross_entropy, loader, metrics=["loss"]).keys() == {"loss"}


def test_early_stopping_names_a_patience_that_is_not_a_count():
    # None stopped with "'<' not supported between NoneType and int"
    for bad in (None, 2.5, "3"):
        with pytest.raises(TypeError, match=f"^EarlyStopping: patience must be an int, got {type(bad).__name__}$"):
            EarlyStopping(patience=bad)


def test_the_history_keeps_each_epochs_rate_when_the_rate_is_a_tensor():
    # the history held the optimizer's lr Tensor itself, which the schedule changes in place:
    # every epoch showed the last rate, and the history was not JSON
    model = mlp()
    opt = nl.optim.Adam(model.parameters(), lr=nl.tensor(0.01))
    sched = nl.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    history = fit(model, F.cross_entropy, opt, DataLoader(blobs(), batch_size=16), epochs=3, scheduler=sched,
                  progress=False)
    assert history["lr"] == pytest.approx([0.01, 0.005, 0.0025], rel=1e-6)   # a float32 Tensor
    assert all(type(lr) is float for lr in history["lr"])


def test_a_resumed_run_restores_early_stopping_whatever_callbacks_come_before_it(tmp_path):
    # callback state was saved by position in the list: resuming with a progress bar in front
    # (fit(progress=True) puts one first) silently started EarlyStopping afresh
    class Interrupt(Callback):
        def on_step_end(self, state):
            if state.step == 6:
                raise KeyboardInterrupt

    def run(before=(), after=(), resume=None):
        model = mlp()
        stopping = EarlyStopping("train_loss", patience=50, mode="max")   # the loss falls: it waits
        try:
            fit(model, F.cross_entropy, nl.optim.SGD(model.parameters(), lr=0.1),
                DataLoader(blobs(n=40), batch_size=10), epochs=3, progress=False, checkpoint_every=1,
                checkpoint_dir=tmp_path / "ckpt", resume=resume, callbacks=[*before, stopping, *after])
        except KeyboardInterrupt:
            pass
        return stopping

    whole = run()
    assert whole.wait == 2
    os.rename(tmp_path / "ckpt", tmp_path / "whole")
    run(after=[Interrupt()])
    resumed = run(before=[ProgressBar(io.StringIO())], resume=tmp_path / "ckpt")
    assert (resumed.best, resumed.wait) == (whole.best, whole.wait)

    # A checkpoint written when the keys were positions ("0:EarlyStopping") still resumes.
    os.rename(tmp_path / "ckpt", tmp_path / "new-keys")
    positional = nl.train._callback_keys
    nl.train._callback_keys = lambda callbacks: ((f"{i}:{type(cb).__name__}", None, cb)
                                                 for i, cb in enumerate(callbacks))
    try:
        run(after=[Interrupt()])
    finally:
        nl.train._callback_keys = positional
    resumed = run(after=[Callback()], resume=tmp_path / "ckpt")
    assert (resumed.best, resumed.wait) == (whole.best, whole.wait)


def test_model_checkpoint_refuses_bad_counts_when_made_not_at_its_first_save(tmp_path):
    # keep_last=0 trained until the first save and stopped there; every_n_steps=1.5 saved every step
    with pytest.raises(ValueError, match="keep_last must be a positive integer, got 0"):
        nl.train.ModelCheckpoint(tmp_path, every_n_steps=2, keep_last=0)
    with pytest.raises(ValueError, match="keep_last must be a positive integer, got 2.5"):
        nl.train.ModelCheckpoint(tmp_path, every_n_steps=2, keep_last=2.5)
    with pytest.raises(TypeError, match="^ModelCheckpoint: every_n_steps must be an int, got float$"):
        nl.train.ModelCheckpoint(tmp_path, every_n_steps=1.5)
    assert nl.train.ModelCheckpoint(tmp_path, every_n_steps=2, keep_last=None).keep_last is None
