"""Recipes: a dataset, a model, an optimizer and a schedule that work well together.

Each recipe is a small function that builds everything ``nnlite train NAME``
needs and returns it as a :class:`Recipe`; :func:`run` trains it with
:func:`nnlite.train.fit` and measures it on the test set.

* ``mnist1d-logistic``, ``mnist1d-mlp``, ``mnist1d-cnn`` — the published
  MNIST-1D baselines (Greydanus, 2020): the same models as the MNIST-1D
  repository, trained as there with Adam at a constant lr 1e-2, batch 100,
  for 6000 steps (150 epochs of 4000 examples). Reference test accuracies:
  32%, 68% and 94%.
* ``digits-mlp``, ``digits-cnn`` — scikit-learn's 8x8 digits.
* ``char-transformer`` — a small causal transformer over characters of the
  bundled *Hamlet*, with the output layer tied to the input embedding.

Experiments (:data:`EXPERIMENTS`, more than one ``fit`` each):

* ``mnist1d-transfer`` — five transfer strategies from MNIST-1D classes 0–4 to
  classes 5–9 with 20 labels per class (:mod:`nnlite.transfer`).
* ``continual-mnist1d`` — forgetting and its remedies on split and permuted
  MNIST-1D (:mod:`nnlite.continual`).
* ``mnist1d-distill`` — an 8-channel CNN student trained alone and distilled from
  the 25-channel CNN on a transfer set with unlabelled signals, over three seeds
  (:mod:`nnlite.distill`).
* ``maml-sinusoid`` — MAML, first-order MAML, Reptile and a pre-trained
  baseline on few-shot sinusoid regression (:mod:`nnlite.meta`).
* ``darts-mnist1d`` — a DARTS architecture search on MNIST-1D, the derived cell
  retrained, and a latency-weighted search sweep (:mod:`nnlite.nas`).
* ``digits-tune`` — successive halving against random search over the learning
  rate and weight decay of a digits MLP, at the same budget (:mod:`nnlite.tune`).
"""
import math

import numpy as np

from . import nn, optim
from .autograd import no_grad
from .data import (MNIST1D, CharDataset, CharVocab, DataLoader, Digits, load_text)
from .nn import functional as F
from .nn.module import modes_kept
from .random import Generator, manual_seed
from .tensor import Tensor

__all__ = ["Recipe", "RECIPES", "build", "run", "names", "EXPERIMENTS", "run_experiment", "parameters_by_kind", "MNIST1DMLP", "MNIST1DCNN", "DigitsCNN",
           "CharTransformer"]


class Recipe:
    """Everything one training run needs; ``task`` is "classification" or "language-model"."""

    def __init__(self, name, model, loss_fn, optimizer, train_loader, test_loader, epochs, *, scheduler=None,
                 scheduler_step="epoch", clip_grad_norm=None, task="classification", description="",
                 finish=None):
        self.name, self.model, self.loss_fn, self.optimizer = name, model, loss_fn, optimizer
        self.train_loader, self.test_loader, self.epochs = train_loader, test_loader, epochs
        self.scheduler, self.scheduler_step, self.clip_grad_norm = scheduler, scheduler_step, clip_grad_norm
        self.task, self.description = task, description
        self.finish = finish  # model -> dict of extra results (e.g. a generated sample)

    def fit_kwargs(self):
        return dict(epochs=self.epochs, val_loader=self.test_loader, scheduler=self.scheduler,
                    scheduler_step=self.scheduler_step, clip_grad_norm=self.clip_grad_norm)


# ------------------------------------------------------------------- MNIST-1D --
class MNIST1DMLP(nn.Module):
    """The MNIST-1D repository's MLP: two hidden layers of 100, the second with a residual."""

    def __init__(self, input_size=40, hidden_size=100, output_size=10):
        super().__init__()
        self.linear1 = nn.Linear(input_size, hidden_size)
        self.linear2 = nn.Linear(hidden_size, hidden_size)
        self.linear3 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        h = F.relu(self.linear1(x))
        h = h + F.relu(self.linear2(h))
        return self.linear3(h)


class MNIST1DCNN(nn.Module):
    """The MNIST-1D repository's CNN: three stride-2 convolutions of 25 channels, then a linear layer.

    Lengths 40 -> 19 -> 10 -> 5, so the classifier sees 25 * 5 = 125 features.
    """

    def __init__(self, channels=25, length=40, output_size=10):
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        for conv in (self.conv1, self.conv2, self.conv3):
            length = (length + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1
        self.linear = nn.Linear(channels * length, output_size)

    def forward(self, x):
        h = x.reshape(x.shape[0], 1, x.shape[-1])
        h = F.relu(self.conv1(h))
        h = F.relu(self.conv2(h))
        h = F.relu(self.conv3(h))
        return self.linear(h.reshape(h.shape[0], -1))


def _mnist1d(name, model, epochs, lr, batch_size, description):
    train, test = MNIST1D(train=True), MNIST1D(train=False)
    loader = DataLoader(train, batch_size=batch_size, shuffle=True)
    test_loader = DataLoader(test, batch_size=1000)
    opt = optim.Adam(model.parameters(), lr=lr)
    return Recipe(name, model, F.cross_entropy, opt, loader, test_loader, epochs, description=description)


# The published setups train for 6000 steps of 100 examples: 150 epochs.
MNIST1D_EPOCHS = 150


def mnist1d_logistic(epochs=None, lr=None, batch_size=None):
    """Logistic regression (one Linear layer) on MNIST-1D; reference ~32%."""
    return _mnist1d("mnist1d-logistic", nn.Linear(40, 10), epochs or MNIST1D_EPOCHS, lr or 1e-2, batch_size or 100,
                    "logistic regression on MNIST-1D (published: ~32%)")


def mnist1d_mlp(epochs=None, lr=None, batch_size=None):
    """The published MLP on MNIST-1D; reference ~68%."""
    return _mnist1d("mnist1d-mlp", MNIST1DMLP(), epochs or MNIST1D_EPOCHS, lr or 1e-2, batch_size or 100,
                    "MLP 40-100-100-10 on MNIST-1D (published: ~68%)")


def mnist1d_cnn(epochs=None, lr=None, batch_size=None):
    """The published CNN on MNIST-1D; reference ~94%."""
    return _mnist1d("mnist1d-cnn", MNIST1DCNN(), epochs or MNIST1D_EPOCHS, lr or 1e-2, batch_size or 100,
                    "CNN 3x Conv1d(25) + Linear on MNIST-1D (published: ~94%)")


# --------------------------------------------------------------------- digits --
class DigitsCNN(nn.Module):
    """Two 3x3 convolutions, a 2x2 max-pool and two linear layers for 8x8 images."""

    def __init__(self, channels=32, hidden=64, output_size=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels // 2, 3, padding=1)
        self.conv2 = nn.Conv2d(channels // 2, channels, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.linear1 = nn.Linear(channels * 4 * 4, hidden)
        self.linear2 = nn.Linear(hidden, output_size)

    def forward(self, x):
        h = F.relu(self.conv1(x))
        h = self.pool(F.relu(self.conv2(h)))
        h = F.relu(self.linear1(h.reshape(h.shape[0], -1)))
        return self.linear2(h)


def digits_mlp(epochs=None, lr=None, batch_size=None):
    """An MLP 64-128-128-10 on the 8x8 digits."""
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
    train, test = Digits(train=True), Digits(train=False)
    epochs = epochs or 40
    loader = DataLoader(train, batch_size=batch_size or 32, shuffle=True)
    opt = optim.Adam(model.parameters(), lr=lr or 2e-3)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    return Recipe("digits-mlp", model, F.cross_entropy, opt, loader, DataLoader(test, batch_size=512), epochs,
                  scheduler=sched, description="MLP 64-128-128-10 on scikit-learn's 8x8 digits")


def digits_cnn(epochs=None, lr=None, batch_size=None):
    """A small CNN on the 8x8 digits."""
    model = DigitsCNN()
    train, test = Digits(train=True, flatten=False), Digits(train=False, flatten=False)
    epochs = epochs or 20
    loader = DataLoader(train, batch_size=batch_size or 32, shuffle=True)
    opt = optim.Adam(model.parameters(), lr=lr or 2e-3)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    return Recipe("digits-cnn", model, F.cross_entropy, opt, loader, DataLoader(test, batch_size=512), epochs,
                  scheduler=sched, description="CNN (2 conv, max-pool, 2 linear) on scikit-learn's 8x8 digits")


# ------------------------------------------------------------ char transformer --
class CharTransformer(nn.Module):
    """A causal (GPT-style, pre-norm) transformer over characters with a tied output layer.

    The output layer computes ``h @ embedding.weight.T``: its weight IS the
    embedding's Parameter (``head.weight is token_embedding.weight``), so the
    vectors that represent a character going in also score it coming out, and
    the model has ``vocab_size * d_model`` fewer numbers to learn.
    """

    def __init__(self, vocab_size, block_size=64, d_model=64, nhead=4, num_layers=2, dim_feedforward=256,
                 dropout=0.0):
        super().__init__()
        self.block_size = block_size
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        self.position_embedding = nn.LearnedPositionalEmbedding(block_size, d_model)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout=dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model))
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.token_embedding.weight  # weight tying: one Parameter, two uses

    def forward(self, ids):
        if ids.shape[-1] > self.block_size:
            raise ValueError(f"CharTransformer(block_size={self.block_size}): got {ids.shape[-1]} positions")
        h = self.dropout(self.position_embedding(self.token_embedding(ids)))
        h = self.encoder(h, is_causal=True)
        return self.head(h)

    @no_grad()
    def generate(self, ids, length, temperature=0.8, generator=None):
        """Continue ``ids`` (a 1-D int array) by ``length`` characters sampled from the model."""
        rng = (generator or Generator(0)).np
        ids = list(np.asarray(ids, dtype=np.int64))
        with modes_kept(self):
            self.eval()
            for _ in range(length):
                context = Tensor._make(np.asarray(ids[-self.block_size:], dtype=np.int64)[None], None)
                logits = self(context).data[0, -1].astype(np.float64) / temperature
                p = np.exp(logits - logits.max())
                ids.append(int(rng.choice(len(p), p=p / p.sum())))
        return np.asarray(ids)


def _lm_loss(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def unigram_loss(train_ids, test_ids, vocab_size):
    """Cross-entropy (nats per character) of predicting test characters by their training frequency."""
    counts = np.bincount(train_ids, minlength=vocab_size) + 1.0  # add-one: no zero probabilities
    p = counts / counts.sum()
    return float(-np.log(p[test_ids]).mean())


def char_transformer(epochs=None, lr=None, batch_size=None, block_size=64):
    """A 2-layer causal transformer on the bundled Hamlet; reports test loss against the unigram baseline."""
    text = load_text("hamlet")
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    split = int(len(ids) * 0.9)
    train_ids, test_ids = ids[:split], ids[split:]
    train = CharDataset(train_ids, block_size, stride=block_size // 2)
    test = CharDataset(test_ids, block_size, stride=block_size)
    model = CharTransformer(len(vocab), block_size=block_size)
    epochs = epochs or 5
    loader = DataLoader(train, batch_size=batch_size or 32, shuffle=True, drop_last=True)
    if len(loader) == 0:   # drop_last leaves nothing, and the schedule needs a step per epoch
        raise ValueError(f"batch_size {loader.batch_size} is more than the {len(train)} training windows of "
                         f"{block_size} characters: no full batch to train on")
    lr = lr or 3e-3
    decay = [p for n, p in model.named_parameters() if p.kind == "weight"]
    no_decay = [p for n, p in model.named_parameters() if p.kind != "weight"]
    opt = optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                      lr=lr, betas=(0.9, 0.99))
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=epochs, steps_per_epoch=len(loader),
                                          pct_start=0.1)
    baseline = unigram_loss(train_ids, test_ids, len(vocab))

    def finish(model):
        prompt = "HAMLET:\n"
        sample = vocab.decode(model.generate(vocab.encode(prompt), 300, generator=Generator(0)))
        return {"unigram_loss": baseline, "sample": sample}

    return Recipe("char-transformer", model, _lm_loss, opt, loader, DataLoader(test, batch_size=64), epochs,
                  scheduler=sched, scheduler_step="batch", clip_grad_norm=1.0, task="language-model",
                  description=f"causal transformer (2 layers, d_model 64, tied embedding) on Hamlet; "
                              f"unigram baseline {baseline:.3f} nats/char", finish=finish)


RECIPES = {"mnist1d-logistic": mnist1d_logistic, "mnist1d-mlp": mnist1d_mlp, "mnist1d-cnn": mnist1d_cnn,
           "digits-mlp": digits_mlp, "digits-cnn": digits_cnn, "char-transformer": char_transformer}


# Experiments: recipes whose run is more than one call to ``fit`` (a sequence of tasks, a
# meta-learning loop, an architecture search). Each entry names, as "module:function", a function
# ``run(*, seed, epochs=None, progress=True) -> dict`` that is imported only when it runs;
# ``nnlite train NAME`` writes the dict it returns to ``metrics.json``.
EXPERIMENTS = {
    "mnist1d-transfer": "nnlite.transfer:run",
    "continual-mnist1d": "nnlite.continual.experiment:run",
    "mnist1d-distill": "nnlite.distill:run",
    "maml-sinusoid": "nnlite.meta.experiment:run",
    "darts-mnist1d": "nnlite.nas.experiment:run",
    "digits-tune": "nnlite.tune.experiment:run",
}


def names():
    return list(RECIPES) + list(EXPERIMENTS)


def run_experiment(name, *, seed=0, epochs=None, progress=True):
    """Run experiment ``name`` of :data:`EXPERIMENTS` and return its results (a JSON-able dict)."""
    import importlib
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; choose one of: {', '.join(EXPERIMENTS)}")
    module_name, function_name = EXPERIMENTS[name].split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    manual_seed(seed)
    return function(seed=seed, epochs=epochs, progress=progress)


def build(name, *, epochs=None, lr=None, batch_size=None, seed=0):
    """Seed the generator, then build recipe ``name`` (None keeps the recipe's default)."""
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}")
    for label, value in (("epochs", epochs), ("batch_size", batch_size)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    if lr is not None and not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    manual_seed(seed)
    return RECIPES[name](epochs=epochs, lr=lr, batch_size=batch_size)


def parameters_by_kind(model):
    """{kind: number of values} over the model's parameters (a tied parameter counted once)."""
    counts = {}
    for _, p in model.named_parameters():
        counts[p.kind] = counts.get(p.kind, 0) + int(p.data.size)
    return counts


def run(recipe, *, resume=None, checkpoint_every=None, checkpoint_dir=None, progress=True, callbacks=()):
    """Train ``recipe`` with :func:`nnlite.train.fit`, then measure it on its test set.

    Returns a dict with ``test_accuracy`` (a fraction, classification and
    per-character for language models), ``test_loss``, ``train_time_s``,
    ``num_parameters``, ``parameters_by_kind``, ``history`` and whatever the
    recipe's ``finish`` adds (the language model's sample and baseline).
    """
    import time

    from .train import evaluate, fit
    start = time.perf_counter()
    history = fit(recipe.model, recipe.loss_fn, recipe.optimizer, recipe.train_loader, resume=resume,
                  checkpoint_every=checkpoint_every, checkpoint_dir=checkpoint_dir, progress=progress,
                  callbacks=callbacks, **recipe.fit_kwargs())
    train_time = time.perf_counter() - start
    test = evaluate(recipe.model, recipe.loss_fn, recipe.test_loader)
    results = {"recipe": recipe.name, "task": recipe.task, "test_accuracy": test.get("accuracy"),
               "test_loss": test["loss"], "train_time_s": train_time,
               "num_parameters": recipe.model.num_parameters(),
               "parameters_by_kind": parameters_by_kind(recipe.model),
               "epochs": recipe.epochs, "steps": history["steps"], "history": history}
    if recipe.finish is not None:
        results.update(recipe.finish(recipe.model))
    return results
