"""The training loop, written out so that a student can read it top to bottom.

:func:`fit` repeats, for every epoch::

    for inputs, targets in train_loader:
        loss = loss_fn(model(inputs), targets)    # forward
        loss.backward()                           # gradients into every parameter's .grad
        clip, then optimizer.step()               # move the parameters
        optimizer.zero_grad()                     # forget the gradients
    evaluate on val_loader; step the LR schedule; let callbacks look

and keeps a ``history`` of the metrics. Everything else is an option around
that core: gradient accumulation (several batches per step), gradient
clipping, a learning-rate scheduler stepped per epoch or per batch, and
callbacks — a progress bar, early stopping and periodic checkpoints from which
:func:`fit` resumes bit for bit (model, optimizer, scheduler, the data
loader's position and the random generator are all saved).
"""
import os
import sys
import time

import numpy as np

from ._kernels.checks import is_int
from .autograd import no_grad
from .io import load_checkpoint, read_checkpoint, save_checkpoint
from .io.card import file_sha256, model_card
from .io.checkpoint import check_rotation, list_checkpoints, rotate
from .nn.module import modes_kept
from .nn.utils import clip_grad_norm_
from .optim.lr_scheduler import ReduceLROnPlateau
from .optim.optimizer import number

__all__ = ["fit", "evaluate", "accuracy", "TrainingState", "Callback", "ProgressBar", "EarlyStopping", "ModelCheckpoint"]


# Measurements that guide the choice of learning rate and batch size live in their own files.
from .lr_finder import LRFinderResult, lr_finder  # noqa: E402
from .noise_scale import NoiseScale, gradient_noise_scale  # noqa: E402

__all__ += ["lr_finder", "LRFinderResult", "gradient_noise_scale", "NoiseScale"]


# ------------------------------------------------------------------ helpers --
def _split_batch(batch):
    """A batch is ``(inputs, targets)``; anything else is a mistake worth naming."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch
    raise TypeError(f"fit: each batch must be an (inputs, targets) pair, got {type(batch).__name__}"
                    + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""))


def _count_correct(output, target):
    """How many predictions (argmax over the last axis) equal the integer targets."""
    if target.dtype.kind not in "iu" or output.ndim != target.ndim + 1:
        return None
    return int(np.count_nonzero(output.data.argmax(axis=-1) == target.data))


def _accumulation_groups(loader, first_batch, size):
    """``(index, batch, weight, last_of_group)`` for each batch, in groups of ``size`` batches.

    ``loss_fn`` gives each batch's *mean* loss; the step should follow the mean
    over every example of the group. So batch b of a group of N examples gets
    the weight n_b / N, and a short last batch counts for what it holds instead
    of as much as a full one. A group is read ahead (its batches, not their
    activations) to know N before its first backward.
    """
    batches = enumerate(loader, start=first_batch)
    while True:
        group = []
        for item in batches:
            group.append(item)
            if len(group) == size:
                break
        if not group:
            return
        counts = [_split_batch(batch)[1].numel() for _, batch in group]
        total = sum(counts)
        for k, ((i, batch), n) in enumerate(zip(group, counts)):
            yield i, batch, (n / total if len(group) > 1 else 1.0), k == len(group) - 1
        if len(group) < size:
            return


METRICS = ("loss", "accuracy")


def _check_metrics(where, metrics):
    """``metrics`` must name only what the loop measures: a misspelt one would silently measure nothing."""
    if isinstance(metrics, str):
        raise TypeError(f"{where}: metrics must be a tuple of names from {METRICS}, got the string {metrics!r}")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"{where}: unknown metric {unknown[0]!r}; expected names from {METRICS}")


# ----------------------------------------------------------------- evaluate --
def evaluate(model, loss_fn, loader, metrics=("loss", "accuracy")):
    """Average loss and accuracy of ``model`` over ``loader``, in eval mode and without gradients.

    The loss is weighted by the number of target elements in each batch, so a
    smaller last batch counts for what it holds. Accuracy needs integer class
    targets; for other targets it is left out. Without ``"loss"`` in
    ``metrics`` the loss is not computed, and ``loss_fn`` may be None.
    """
    _check_metrics("evaluate", metrics)
    total_loss, correct, count = 0.0, 0, 0
    with modes_kept(model), no_grad():
        model.eval()
        for batch in loader:
            inputs, targets = _split_batch(batch)
            output = model(inputs)
            n = targets.numel()
            if "loss" in metrics:
                total_loss += float(loss_fn(output, targets).item()) * n
            hits = _count_correct(output, targets) if "accuracy" in metrics else None
            correct = None if hits is None or correct is None else correct + hits
            count += n
    if count == 0:
        raise ValueError("evaluate: the loader produced no batches")
    results = {}
    if "loss" in metrics:
        results["loss"] = total_loss / count
    if "accuracy" in metrics and correct is not None:
        results["accuracy"] = correct / count
    return results


def accuracy(model, inputs, targets, batch_size=None):
    """Fraction of ``inputs`` whose predicted class (argmax of the last axis) equals the integer ``targets``.

    :func:`evaluate` for data held in two arrays or Tensors: ``batch_size``
    rows at a time (None: all in one batch), in eval mode and without
    gradients, the model's mode restored afterwards.

    >>> import numpy as np, nnlite as nl
    >>> model = nl.nn.Linear(2, 2, bias=False)
    >>> model.weight.data[...] = np.eye(2)          # the class of the larger input
    >>> nl.train.accuracy(model, np.array([[1., 0.], [0., 1.], [1., 0.]], np.float32), np.array([0, 1, 1]))
    0.6666666666666666
    """
    from .data import DataLoader, TensorDataset
    dataset = TensorDataset(inputs, targets)
    target_dtype = dataset.arrays[1].dtype
    if target_dtype.kind not in "iu":
        raise TypeError(f"accuracy: targets must be integer class labels, got {target_dtype}")
    loader = DataLoader(dataset, batch_size=max(len(dataset), 1) if batch_size is None else batch_size)
    return evaluate(model, None, loader, metrics=("accuracy",))["accuracy"]


# ---------------------------------------------------------------- callbacks --
class TrainingState:
    """What callbacks see: the objects being trained and where the loop is."""

    def __init__(self, model, optimizer, scheduler, train_loader, epochs, history):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.train_loader = train_loader
        self.epochs = epochs
        self.history = history
        self.epoch = 0              # the epoch running now (0-based)
        self.step = 0               # optimizer steps taken so far
        self.batch_loss = None      # loss of the latest batch
        self.stop_training = False  # set by a callback: ends fit after this epoch, or at once mid-epoch
        self.running = {"loss_sum": 0.0, "correct": 0, "count": 0}  # sums over the epoch so far
        self.callbacks = []

    def lr(self):
        """The first param group's learning rate, as a float.

        A Tensor lr (which PyTorch's optimizers take) is read now: schedulers change it in
        place, so keeping the Tensor would make every epoch's entry show the latest rate.
        """
        return float(number(self.optimizer.param_groups[0]["lr"]))


class Callback:
    """Hooks called by :func:`fit`; override the ones you need.

    A callback with ``state_dict``/``load_state_dict`` is saved in checkpoints.
    """

    def on_fit_start(self, state):
        pass

    def on_epoch_start(self, state):
        pass

    def on_batch_end(self, state):
        pass

    def on_step_end(self, state):
        pass

    def on_epoch_end(self, state, logs):
        pass

    def on_fit_end(self, state):
        pass


def _format_logs(logs):
    parts = []
    for key, value in logs.items():
        if key in ("epoch", "epoch_time_s"):
            continue
        parts.append(f"{key} {value:.3e}" if key == "lr" else f"{key} {value:.4f}")
    return "  ".join(parts)


class ProgressBar(Callback):
    """A tqdm bar per epoch when output is a terminal; otherwise one plain line per epoch."""

    def __init__(self, stream=None, use_tqdm=None):
        self.stream = stream or sys.stdout
        if use_tqdm is None:
            use_tqdm = getattr(self.stream, "isatty", lambda: False)()
        self.tqdm = None
        if use_tqdm:
            try:
                from tqdm import tqdm
                self.tqdm = tqdm
            except ImportError:  # plain lines are a fine fallback for a bar
                self.tqdm = None
        self.bar = None

    def on_epoch_start(self, state):
        if self.tqdm is not None:
            # A loader over an IterableDataset has no length: the bar then counts without a total.
            try:
                total = len(state.train_loader)
            except TypeError:
                total = None
            self.bar = self.tqdm(total=total, desc=f"epoch {state.epoch + 1}/{state.epochs}",
                                 file=self.stream, leave=False, dynamic_ncols=True)

    def on_batch_end(self, state):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{state.batch_loss:.4f}", refresh=False)

    def on_epoch_end(self, state, logs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        print(f"epoch {state.epoch + 1}/{state.epochs}  {_format_logs(logs)}  "
              f"({logs['epoch_time_s']:.1f}s)", file=self.stream, flush=True)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    ``mode`` is "min" for losses and "max" for accuracies ("auto" picks by name).
    """

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, mode="auto"):
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min', 'max' or 'auto', got {mode!r}")
        if not is_int(patience):
            raise TypeError(f"EarlyStopping: patience must be an int, got {type(patience).__name__}")
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0, got {patience}")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, min_delta, mode
        self.best = None
        self.wait = 0
        self.stopped_epoch = None

    def on_epoch_end(self, state, logs):
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping: no metric {self.monitor!r} this epoch; have {sorted(logs)}")
        value = logs[self.monitor]
        sign = 1 if self.mode == "min" else -1
        if self.best is None or sign * (self.best - value) > self.min_delta:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                state.stop_training = True
                self.stopped_epoch = state.epoch

    def state_dict(self):
        return {"best": self.best, "wait": self.wait, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state):
        self.best, self.wait, self.stopped_epoch = state["best"], state["wait"], state["stopped_epoch"]


class ModelCheckpoint(Callback):
    """Save a checkpoint every ``every_n_steps`` optimizer steps into ``dirpath``, keeping the last few.

    Files are ``checkpoint-<step>.safetensors``; ``keep_last`` deletes older
    ones. Each holds what :func:`fit` needs to resume exactly where it was.
    """

    def __init__(self, dirpath, every_n_steps, keep_last=3, prefix="checkpoint"):
        if not is_int(every_n_steps):
            raise TypeError(f"ModelCheckpoint: every_n_steps must be an int, got {type(every_n_steps).__name__}")
        if every_n_steps < 1:
            raise ValueError(f"ModelCheckpoint: every_n_steps must be >= 1, got {every_n_steps}")
        self.dirpath = os.fspath(dirpath)
        self.every_n_steps, self.keep_last = int(every_n_steps), keep_last
        self.template = os.path.join(self.dirpath, prefix + "-{step:08d}.safetensors")
        if keep_last is not None:   # refused now, not at the first save after steps of training
            check_rotation(self.template, keep_last)
        self.last_path = None

    def on_fit_start(self, state):
        os.makedirs(self.dirpath, exist_ok=True)

    def on_step_end(self, state):
        if state.step % self.every_n_steps == 0:
            self.last_path = save_training_checkpoint(self.template.format(step=state.step), state)
            if self.keep_last is not None:
                rotate(self.template, self.keep_last, keep=self.last_path)

    def latest(self):
        found = list_checkpoints(self.template) if os.path.isdir(self.dirpath) else []
        return found[-1][1] if found else None


def _callback_keys(callbacks):
    """``(key, older key, callback)``: the name a callback's state is saved under in a checkpoint.

    The key is the class and how many callbacks of that class come before it
    (``EarlyStopping:0``), so a resumed run finds the state whatever other
    callbacks it adds or leaves out (``fit(progress=True)`` puts a progress bar
    first). Older checkpoints keyed by position in the list (``1:EarlyStopping``).
    """
    seen = {}
    for i, cb in enumerate(callbacks):
        name = type(cb).__name__
        yield f"{name}:{seen.get(name, 0)}", f"{i}:{name}", cb
        seen[name] = seen.get(name, 0) + 1


def save_training_checkpoint(path, state):
    """Write everything :func:`fit` needs to continue from ``state``."""
    callbacks = {key: cb.state_dict() for key, _, cb in _callback_keys(state.callbacks)
                 if hasattr(cb, "state_dict")}
    extra = {"fit": {"epoch": state.epoch, "step": state.step, "history": state.history,
                     "running": state.running, "callbacks": callbacks}}
    # The model card: how these parameters were trained, and the file they continue (lineage).
    last = {k: v[-1] for k, v in state.history.items() if isinstance(v, list) and v and k != "epoch"}
    extra["card"] = model_card(state.model, optimizer=state.optimizer, metrics=last,
                               hyperparameters={"epochs": state.epochs, "step": state.step},
                               data=repr(state.train_loader), parent=getattr(state, "parent_checkpoint", None))
    path = save_checkpoint(path, model=state.model, optimizer=state.optimizer, scheduler=state.scheduler,
                           dataloader=state.train_loader, extra=extra, step=state.step, epoch=state.epoch)
    state.parent_checkpoint = {"path": path, "sha256": file_sha256(path)}
    return path


def _resume(path, state):
    """Load a checkpoint written by :func:`fit` into ``state`` (also restores the global generator)."""
    if os.path.isdir(path):  # a checkpoint directory: take its newest file
        found = list_checkpoints(os.path.join(path, "checkpoint-{step:08d}.safetensors"))
        if not found:
            raise FileNotFoundError(f"fit(resume=...): no checkpoint-*.safetensors in {path}")
        path = found[-1][1]
    if "fit" not in (read_checkpoint(path).extra or {}):
        raise ValueError(f"fit(resume={path!r}): the checkpoint was not written by fit (no 'fit' entry in extra)")
    info = load_checkpoint(path, model=state.model, optimizer=state.optimizer, scheduler=state.scheduler,
                           dataloader=state.train_loader)
    saved = info.extra["fit"]
    state.epoch, state.step = saved["epoch"], saved["step"]
    state.history.update(saved["history"])
    state.running = saved["running"]
    for key, old_key, cb in _callback_keys(state.callbacks):
        if not hasattr(cb, "load_state_dict"):
            continue
        found = saved["callbacks"].get(key, saved["callbacks"].get(old_key))
        if found is not None:
            cb.load_state_dict(found)
    state.parent_checkpoint = {"path": path, "sha256": file_sha256(path)}
    return path


# ---------------------------------------------------------------------- fit --
def fit(model, loss_fn, optimizer, train_loader, *, epochs, val_loader=None, scheduler=None,
        scheduler_step="epoch", clip_grad_norm=None, accumulate_grad_batches=1, callbacks=(),
        checkpoint_every=None, checkpoint_dir=None, resume=None, progress=True,
        metrics=("loss", "accuracy")):
    """Train ``model`` for ``epochs`` passes over ``train_loader``; return the history.

    Parameters
    ----------
    loss_fn : callable ``loss_fn(output, targets)`` returning the mean loss of a batch.
    scheduler, scheduler_step : an LR scheduler, stepped after every epoch
        (``"epoch"``) or after every optimizer step (``"batch"``).
        ``ReduceLROnPlateau`` is stepped per epoch with the validation loss.
    clip_grad_norm : clip the joint gradient norm to this value before each step.
    accumulate_grad_batches : add up the gradients of this many batches per
        optimizer step (a larger effective batch in the same memory). Each
        batch is weighted by its share of the group's examples, so the step
        equals the one a single batch of the whole group would take, also when
        the last batch of an epoch is shorter.
    checkpoint_every, checkpoint_dir : save a resumable checkpoint every N steps.
    resume : a checkpoint file (or directory) written by ``fit``: continue from it.
    progress : show a progress bar (or one line per epoch when not on a terminal).
    metrics : which of ``"loss"`` and ``"accuracy"`` to measure, on the training
        batches and on ``val_loader`` (accuracy needs integer class targets).

    Returns ``history``: a dict of per-epoch lists — ``epoch``, ``train_loss``,
    ``train_accuracy``, ``val_loss``, ``val_accuracy``, ``lr``, ``epoch_time_s`` —
    plus ``steps`` and ``stopped_early``.
    """
    if scheduler_step not in ("epoch", "batch"):
        raise ValueError(f"fit: scheduler_step must be 'epoch' or 'batch', got {scheduler_step!r}")
    # Counts must be whole numbers: 1.5 batches per step would make the whole epoch one group.
    counts = {"epochs": (epochs, 0), "accumulate_grad_batches": (accumulate_grad_batches, 1)}
    if checkpoint_every is not None:
        counts["checkpoint_every"] = (checkpoint_every, 1)
    for name, (value, least) in counts.items():
        if not is_int(value):
            raise TypeError(f"fit: {name} must be an int, got {type(value).__name__}")
        if value < least:
            raise ValueError(f"fit: {name} must be >= {least}, got {value}")
    if (checkpoint_every is None) != (checkpoint_dir is None):
        raise ValueError("fit: checkpoint_every and checkpoint_dir go together")
    _check_metrics("fit", metrics)

    history = {"epoch": [], "lr": [], "epoch_time_s": []}
    state = TrainingState(model, optimizer, scheduler, train_loader, epochs, history)
    callbacks = list(callbacks)
    if progress and not any(isinstance(cb, ProgressBar) for cb in callbacks):
        callbacks.insert(0, ProgressBar())
    if checkpoint_every is not None:
        callbacks.append(ModelCheckpoint(checkpoint_dir, checkpoint_every))
    state.callbacks = callbacks
    if isinstance(scheduler, ReduceLROnPlateau) and scheduler_step == "batch":
        raise ValueError("fit: ReduceLROnPlateau needs a metric, so it steps per epoch (scheduler_step='epoch')")
    if isinstance(scheduler, ReduceLROnPlateau) and "loss" not in metrics:
        raise ValueError(f"fit: ReduceLROnPlateau steps on the epoch's loss, so metrics must include 'loss', "
                         f"got metrics={tuple(metrics)}")
    # Resuming continues the interrupted epoch from the loader's saved position.
    first_batch = 0
    if resume is not None:
        _resume(os.fspath(resume), state)
        first_batch = getattr(train_loader, "batch_index", 0)

    for cb in callbacks:
        cb.on_fit_start(state)
    model.train()
    optimizer.zero_grad()  # gradients left over from before fit must not leak into the first step

    while state.epoch < epochs and not state.stop_training:
        for cb in callbacks:
            cb.on_epoch_start(state)
        run = state.running
        t_start = time.perf_counter()

        # ---- one pass over the training data
        for i, batch, weight, last_of_group in _accumulation_groups(train_loader, first_batch,
                                                                    accumulate_grad_batches):
            inputs, targets = _split_batch(batch)
            output = model(inputs)
            loss = loss_fn(output, targets)
            # The gradient of the mean over every example of the group that makes one step.
            (loss * weight if weight != 1.0 else loss).backward()

            state.batch_loss = float(loss.item())
            n = targets.numel()
            run["loss_sum"] += state.batch_loss * n
            run["count"] += n
            hits = _count_correct(output, targets) if "accuracy" in metrics else None
            run["correct"] = None if hits is None or run["correct"] is None else run["correct"] + hits
            for cb in callbacks:
                cb.on_batch_end(state)
            if state.stop_training:   # a callback saw something wrong (a diverged loss): no further step
                break

            if last_of_group:     # the group is complete: take a step
                if clip_grad_norm is not None:
                    # a non-finite norm means the loss diverged: stop with a clear error
                    clip_grad_norm_(model.parameters(), clip_grad_norm, error_if_nonfinite=True)
                optimizer.step()
                optimizer.zero_grad()
                if scheduler is not None and scheduler_step == "batch":
                    scheduler.step()
                state.step += 1
                for cb in callbacks:
                    cb.on_step_end(state)
                if state.stop_training:
                    break

        # ---- end of the epoch: metrics, validation, schedule, callbacks
        logs = {"epoch": state.epoch + 1}
        if run["count"]:
            if "loss" in metrics:
                logs["train_loss"] = run["loss_sum"] / run["count"]
            if "accuracy" in metrics and run["correct"] is not None:
                logs["train_accuracy"] = run["correct"] / run["count"]
        if val_loader is not None:
            logs.update({"val_" + k: v for k, v in evaluate(model, loss_fn, val_loader, metrics).items()})
        logs["lr"] = state.lr()
        if scheduler is not None and scheduler_step == "epoch":
            if isinstance(scheduler, ReduceLROnPlateau):
                scheduler.step(logs.get("val_loss", logs.get("train_loss")))
            else:
                scheduler.step()
        logs["epoch_time_s"] = time.perf_counter() - t_start
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        for cb in callbacks:
            cb.on_epoch_end(state, logs)
        state.epoch += 1
        state.running = {"loss_sum": 0.0, "correct": 0, "count": 0}
        first_batch = 0

    for cb in callbacks:
        cb.on_fit_end(state)
    history["steps"] = state.step
    history["stopped_early"] = state.stop_training
    return history
