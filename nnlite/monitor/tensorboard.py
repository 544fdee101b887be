"""TensorBoard event files written through tensorboardX, from :func:`nnlite.train.fit` or by hand.

TensorBoard reads a directory of event files and draws every scalar,
histogram and image logged in it, over training steps. nnlite writes those
files with ``tensorboardX`` (no TensorFlow or PyTorch needed), so the usual
viewer works::

    nnlite train mnist1d-mlp --tensorboard runs/tb
    tensorboard --logdir runs/tb

Tag names, a stable contract, with every step counted in optimizer steps:

* ``train/loss`` (each batch's loss, at the step the batch goes into: with
  ``accumulate_grad_batches`` several batches share a step), ``train/accuracy`` (per epoch),
  ``val/loss``, ``val/accuracy`` (per epoch, with a validation loader),
  ``lr`` (the learning rate each step used, at that step);
* ``params/<name>`` and ``grads/<name>`` — histograms of each parameter's
  values and of its gradient, ``<name>`` as in ``named_parameters()``;
* ``weights/<name>`` — convolution filters and embedding matrices as images.
"""
import numpy as np

from ..train import Callback

__all__ = ["TensorBoardLogger", "weight_image"]

_INSTALL = 'TensorBoardLogger needs tensorboardX: pip install "nnlite[monitor]"'


def _summary_writer():
    try:
        from tensorboardX import SummaryWriter
    except ImportError as e:
        raise ImportError(f"{_INSTALL} ({e})") from None
    return SummaryWriter


def weight_image(weight):
    """A 2-D array in [0, 1] that shows ``weight`` as a grey-scale picture.

    * a 2-D matrix (an embedding table, a Linear weight) is shown as it is;
    * a 1-D convolution's weight ``(out, in, k)`` as ``out`` rows of ``in * k``;
    * a 2-D convolution's weight ``(out, in, kh, kw)`` as a grid of its
      ``out * in`` kernels, one row per output channel, a one-pixel gap between.

    Values are scaled by the largest magnitude, so 0.5 is zero.
    """
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim == 2:
        grid = w
    elif w.ndim == 3:
        grid = w.reshape(w.shape[0], -1)
    elif w.ndim == 4:
        out, inp, kh, kw = w.shape
        grid = np.full((out * (kh + 1) - 1, inp * (kw + 1) - 1), 0.0)
        for o in range(out):
            for i in range(inp):
                grid[o * (kh + 1):o * (kh + 1) + kh, i * (kw + 1):i * (kw + 1) + kw] = w[o, i]
    else:
        raise ValueError(f"weight_image: expected a 2-, 3- or 4-D weight, got shape {w.shape}")
    scale = np.abs(w).max()
    return 0.5 + 0.5 * grid / scale if scale > 0 else np.full(grid.shape, 0.5)


def _is_image_weight(param):
    return (param.kind == "weight" and param.ndim in (3, 4)) or (param.kind == "embedding" and param.ndim == 2)


class TensorBoardLogger(Callback):
    """Write training to TensorBoard event files in ``logdir``; a callback of :func:`~nnlite.train.fit`.

    The methods work on their own too, outside ``fit``::

        logger = nl.monitor.TensorBoardLogger("runs/by-hand")
        logger.add_scalar("train/loss", 0.7, step=1)
        logger.log_parameters(model, step=1)
        logger.close()

    Parameters
    ----------
    logdir
        The run's directory (``tensorboard --logdir`` its parent to compare runs).
    histograms
        Log ``params/<name>`` and ``grads/<name>`` once an epoch (gradients
        of the epoch's last step).
    images
        Log convolution filters and embedding matrices as ``weights/<name>``
        images once an epoch.
    bins
        Histogram buckets (passed to ``numpy.histogram``).
    """

    def __init__(self, logdir, *, histograms=True, images=True, bins=30, flush_secs=30):
        self.logdir = str(logdir)
        self.writer = _summary_writer()(self.logdir, flush_secs=flush_secs)
        self.histograms, self.images, self.bins = histograms, images, bins
        self._batches_left = None
        self._step_lr = None

    # ------------------------------------------------------------ by hand --
    def add_scalar(self, tag, value, step):
        self.writer.add_scalar(tag, float(value), int(step))

    def add_histogram(self, tag, values, step):
        values = np.asarray(values.data if hasattr(values, "data") else values, dtype=np.float64).ravel()
        if values.size and np.isfinite(values).all():  # a histogram of NaNs has no buckets
            self.writer.add_histogram(tag, values, int(step), bins=self.bins)

    def log_parameters(self, model, step):
        """Histograms ``params/<name>`` of every parameter's values."""
        for name, p in model.named_parameters():
            self.add_histogram(f"params/{name}", p.data, step)

    def log_gradients(self, model, step):
        """Histograms ``grads/<name>`` of every gradient present now."""
        for name, p in model.named_parameters():
            if p.grad is not None:
                self.add_histogram(f"grads/{name}", p.grad.data, step)

    def log_images(self, model, step):
        """Images ``weights/<name>`` of convolution filters and embedding matrices (:func:`weight_image`)."""
        for name, p in model.named_parameters():
            if _is_image_weight(p):
                self.writer.add_image(f"weights/{name}", weight_image(p.data), int(step), dataformats="HW")

    def log_hparams(self, hparams, metrics):
        """One hyperparameter record (``hparams``: name to number or string) with its final ``metrics``.

        TensorBoard's HParams tab reads it from the run's ``hparams``
        subdirectory, where the metrics are written as scalars too.
        """
        clean = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in hparams.items()}
        self.writer.add_hparams(clean, {k: float(v) for k, v in metrics.items()}, name="hparams")

    def flush(self):
        self.writer.flush()

    def close(self):
        self.writer.close()

    # ------------------------------------------------------------ in fit --
    def on_epoch_start(self, state):
        try:
            self._batches_left = len(state.train_loader)
        except TypeError:  # a loader without a length: gradients are then not logged
            self._batches_left = None

    def on_batch_end(self, state):
        self.add_scalar("train/loss", state.batch_loss, state.step + 1)
        # Read before the step: a per-batch scheduler changes the rate right after it, and
        # the value then would be the next step's.
        self._step_lr = state.lr()
        if self._batches_left is None:
            return
        self._batches_left -= 1
        # The gradients exist only between backward and the optimizer's zero_grad: catch the epoch's last.
        if self.histograms and self._batches_left == 0:
            self.log_gradients(state.model, state.step + 1)

    def on_step_end(self, state):
        self.add_scalar("lr", self._step_lr, state.step)

    def on_epoch_end(self, state, logs):
        for key, tag in (("train_accuracy", "train/accuracy"), ("val_loss", "val/loss"),
                         ("val_accuracy", "val/accuracy")):
            if key in logs:
                self.add_scalar(tag, logs[key], state.step)
        if self.histograms:
            self.log_parameters(state.model, state.step)
        if self.images:
            self.log_images(state.model, state.step)
        self.flush()

    def on_fit_end(self, state):
        self.flush()
