"""Transfer learning: start a new task from parameters trained on another one.

A network trained on a *source* task has, in its lower layers, turned raw
inputs into features that are useful well beyond that task. With few labelled
examples of a *target* task, reusing those parameters beats learning all of
them again. The strategies differ only in which parameters move and how fast:

* **feature extraction** — freeze the pre-trained body, train a new head;
* **fine-tuning** — train everything, starting from the pre-trained values;
* **discriminative learning rates** — fine-tuning with a learning rate that
  shrinks by a factor (2.6 in ULMFiT, Howard & Ruder 2018) for every block
  further from the head: lower layers hold the most general features;
* **gradual unfreezing** — start with only the head trainable and unfreeze
  one more block, top down, at each epoch (:class:`GradualUnfreezing`);
* **head re-initialisation** — the source head's classes are not the
  target's, so its parameters are replaced by freshly initialised ones.

The task shift shipped here is MNIST-1D: a CNN pre-trained on classes 0–4
(:func:`pretrained_mnist1d_cnn`, cached after its first training) is moved to
classes 5–9 with a handful of labels per class (:func:`mnist1d_shift`).
"""
import hashlib
import json
import os

import numpy as np

from ._kernels.checks import is_int
from . import nn, optim
from .data import MNIST1D, DataLoader, TensorDataset
from .data.datasets import cache_dir
from .io import load_state_dict, save_state_dict
from .nn import functional as F
from .nn._checks import require_module
from .random import Generator, get_rng_state, manual_seed, set_rng_state
from .train import Callback, evaluate, fit

__all__ = ["blocks", "reinitialize_head", "feature_extraction", "fine_tuning", "discriminative_param_groups",
           "GradualUnfreezing", "mnist1d_shift", "pretrained_mnist1d_cnn", "SOURCE_CLASSES", "TARGET_CLASSES",
           "STRATEGIES", "compare_strategies", "run"]

SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)


# --------------------------------------------------------------- strategies --
def blocks(model):
    """The model's top-level sub-modules that hold parameters, input side first: the units to unfreeze."""
    require_module(model, "blocks")
    return [(name, m) for name, m in model.named_children() if any(True for _ in m.parameters())]


def _block_parameters(model, caller):
    """``[(name, parameters)]`` of the model's ``blocks``, each parameter in one of them only: one
    shared by several blocks (an embedding tied to the output layer) goes with the block nearest
    the head, which is trained first and fastest, since an optimizer refuses a parameter in two
    groups. A parameter of the model's own, in no block, would be in no group and never trained."""
    seen, out = set(), []
    for name, block in reversed(blocks(model)):
        params = [p for p in block.parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        out.append((name, params))
    outside = [name for name, p in model.named_parameters() if id(p) not in seen]
    if outside:
        raise ValueError(f"{caller}: {type(model).__name__} holds parameters outside its blocks (its top-level "
                         f"sub-modules), {outside}, which no group would train; move them into a sub-module")
    return out[::-1]


def reinitialize_head(model, num_classes, head="linear"):
    """Replace the classifier ``model.<head>`` (a Linear) by a new one with ``num_classes`` outputs.

    The new layer is initialised as ``nn.Linear`` always is; its parameters'
    ``init`` records say so, while the body keeps its "loaded" records.
    """
    if not is_int(num_classes) or num_classes < 1:
        raise ValueError(f"reinitialize_head: num_classes must be a positive integer, got {num_classes!r}")
    old = getattr(model, head, None)
    if not isinstance(old, nn.Linear):
        raise TypeError(f"reinitialize_head: model.{head} must be an nn.Linear, got {type(old).__name__}")
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None, dtype=old.weight.dtype)
    setattr(model, head, new)
    return new


def feature_extraction(model, num_classes, head="linear"):
    """Freeze every pre-trained parameter and put a new trainable head on top; return the head's parameters."""
    require_module(model, "feature_extraction")
    model.freeze()
    return list(reinitialize_head(model, num_classes, head).parameters())


def fine_tuning(model, num_classes, head="linear"):
    """A new head and every parameter trainable; return all of them."""
    reinitialize_head(model, num_classes, head)
    model.unfreeze()
    return list(model.parameters())


def _check_rates(lr, decay, caller):
    if not 0 < lr < float("inf"):
        raise ValueError(f"{caller}: lr must be a finite number > 0, got {lr}")
    if not 1 <= decay < float("inf"):   # below 1 the lower blocks would learn faster than the head
        raise ValueError(f"{caller}: decay must be a finite number >= 1, got {decay}")


def discriminative_param_groups(model, lr, decay=2.6):
    """One param group per block; block ``l`` of ``L`` (head last) gets ``lr / decay ** (L - 1 - l)``.

    A parameter shared by several blocks is in the group of the one nearest the head;
    a parameter of the model's own, in no block, is refused (no group would train it).

    >>> from nnlite.recipes import MNIST1DCNN
    >>> groups = discriminative_param_groups(MNIST1DCNN(), lr=1e-2, decay=2.0)
    >>> [round(g["lr"], 5) for g in groups]
    [0.00125, 0.0025, 0.005, 0.01]
    """
    _check_rates(lr, decay, "discriminative_param_groups")
    units = _block_parameters(model, "discriminative_param_groups")
    return [{"params": params, "lr": lr / decay ** (len(units) - 1 - i), "name": name}
            for i, (name, params) in enumerate(units)]


class GradualUnfreezing(Callback):
    """Unfreeze one block per epoch, top down, adding its parameters to the optimizer as a new group.

    Build the optimizer over the head only and freeze the rest; at the start of
    epoch ``e`` (``e >= 1``) the ``e``-th block below the head becomes trainable
    with learning rate ``lr / decay ** e`` (``decay=1`` gives one rate for all).
    With ``every=k`` a block is unfrozen every k epochs instead. The names of
    the unfrozen blocks go into ``fit``'s checkpoints (``state_dict``), as a
    record: resuming such a run is not supported, since the optimizer's groups
    would have to be rebuilt before its state could be loaded.

    >>> import nnlite as nl
    >>> from nnlite.recipes import MNIST1DCNN
    >>> model = MNIST1DCNN()
    >>> callback = GradualUnfreezing(model, lr=1e-2)
    >>> opt = nl.optim.Adam(callback.initial_param_groups(), lr=1e-2)
    >>> [name for name, _ in callback.frozen]
    ['conv3', 'conv2', 'conv1']
    """

    def __init__(self, model, lr, decay=1.0, every=1):
        units = blocks(model)
        _check_rates(lr, decay, "GradualUnfreezing")
        if not is_int(every) or every < 1:
            raise ValueError(f"GradualUnfreezing: every must be an integer >= 1, got {every!r}")
        if len(units) < 2:
            raise ValueError(f"GradualUnfreezing: need at least two blocks with parameters, got {len(units)}")
        self.model, self.lr, self.decay, self.every = model, lr, decay, int(every)
        self.head = units[-1]
        self.frozen = list(reversed(units[:-1]))   # the next to unfreeze first
        # each block's group; a shared parameter goes with the block nearest the head, trained first
        self._params = dict(_block_parameters(model, "GradualUnfreezing"))
        self.unfrozen = []

    def initial_param_groups(self):
        """Freeze the body; return the head's group, to build the optimizer with."""
        self.model.freeze()
        name, block = self.head
        block.unfreeze()
        return [{"params": self._params[name], "lr": self.lr, "name": name}]

    def on_epoch_start(self, state):
        if state.epoch == 0 or state.epoch % self.every or not self.frozen:
            return
        name, block = self.frozen.pop(0)
        block.unfreeze()
        self.unfrozen.append(name)
        state.optimizer.add_param_group({"params": self._params[name], "name": name,
                                         "lr": self.lr / self.decay ** len(self.unfrozen)})

    def state_dict(self):
        return {"unfrozen": list(self.unfrozen)}


# ---------------------------------------------------------- MNIST-1D shift --
def _arrays(train):
    return MNIST1D(train=train).arrays


def mnist1d_shift(labels_per_class=20, seed=0, source=SOURCE_CLASSES, target=TARGET_CLASSES):
    """The task shift: ``(source_train, target_train, target_test)`` TensorDatasets of MNIST-1D.

    The source set holds every training example of the ``source`` classes; the
    target training set ``labels_per_class`` examples of each ``target`` class,
    drawn with ``seed``; the target test set all test examples of the target
    classes. Labels are renumbered 0, 1, ... within each task.
    """
    if set(source) & set(target) or not set(source) | set(target) <= set(range(10)) or not source or not target:
        raise ValueError(f"mnist1d_shift: source and target must be disjoint, non-empty sets of the classes 0..9, "
                         f"got {tuple(source)} and {tuple(target)}")
    if not is_int(labels_per_class) or labels_per_class < 1:
        raise ValueError(f"mnist1d_shift: labels_per_class must be a positive integer, got {labels_per_class!r}")
    (x, y), (x_test, y_test) = _arrays(True), _arrays(False)
    rng = np.random.default_rng(seed)
    relabel = np.full(10, -1)
    relabel[list(source)] = np.arange(len(source))
    in_source = np.isin(y, source)
    picked = []
    for c in target:
        candidates = np.flatnonzero(y == c)
        if labels_per_class > len(candidates):
            raise ValueError(f"mnist1d_shift: class {c} has {len(candidates)} training examples, "
                             f"asked for labels_per_class={labels_per_class}")
        picked.append(rng.choice(candidates, labels_per_class, replace=False))
    picked = np.concatenate(picked)
    target_relabel = np.full(10, -1)
    target_relabel[list(target)] = np.arange(len(target))
    in_target_test = np.isin(y_test, target)
    return (TensorDataset(x[in_source], relabel[y[in_source]]),
            TensorDataset(x[picked], target_relabel[y[picked]]),
            TensorDataset(x_test[in_target_test], target_relabel[y_test[in_target_test]]))


def pretrained_mnist1d_cnn(epochs=40, seed=0, path=None, progress=False):
    """The MNIST-1D CNN trained on the source classes 0–4, loaded from its cached weights file.

    Trained (about a second) on first use and written atomically to
    ``path`` (default: the nnlite cache directory); later calls load the file,
    so the parameters' ``init`` records name it and its SHA-256.
    """
    from .recipes import MNIST1DCNN
    settings = {"model": "MNIST1DCNN", "classes": list(SOURCE_CLASSES), "epochs": epochs, "seed": seed,
                "optimizer": "Adam(lr=1e-2)", "batch_size": 100}
    if path is None:
        key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        path = os.path.join(cache_dir(), f"mnist1d-cnn-source-{key}.safetensors")
    model = MNIST1DCNN(output_size=len(SOURCE_CLASSES))
    if not os.path.exists(path):
        # Seeded, so every cache holds the same weights; the caller's global generator is left as it was.
        saved_state = get_rng_state()
        try:
            manual_seed(seed)
            trained = MNIST1DCNN(output_size=len(SOURCE_CLASSES))
            source, _, _ = mnist1d_shift(seed=seed)
            fit(trained, F.cross_entropy, optim.Adam(trained.parameters(), lr=1e-2),
                DataLoader(source, batch_size=100, shuffle=True, generator=Generator(seed)), epochs=epochs,
                progress=progress)
        finally:
            set_rng_state(saved_state)
        save_state_dict(trained, path, metadata={"trained_on": json.dumps(settings)})
    model.load_state_dict(load_state_dict(path))
    return model


# --------------------------------------------------------------- comparison --
STRATEGIES = ("from_scratch", "feature_extraction", "fine_tuning", "discriminative_lr", "gradual_unfreezing")


def _train_target(strategy, target_train, target_test, *, epochs, lr, seed, pretrained_path=None):
    """Train one strategy on the target set; return its test accuracy."""
    from .recipes import MNIST1DCNN
    manual_seed(seed)
    num_classes = len(TARGET_CLASSES)
    if strategy == "from_scratch":
        model = MNIST1DCNN(output_size=num_classes)
    else:
        model = pretrained_mnist1d_cnn(path=pretrained_path)
    callbacks = []
    if strategy == "from_scratch":
        groups = [{"params": list(model.parameters())}]
    elif strategy == "feature_extraction":
        groups = [{"params": feature_extraction(model, num_classes)}]
    elif strategy == "fine_tuning":
        groups = [{"params": fine_tuning(model, num_classes)}]
    elif strategy == "discriminative_lr":
        reinitialize_head(model, num_classes)
        groups = discriminative_param_groups(model, lr)
    elif strategy == "gradual_unfreezing":
        reinitialize_head(model, num_classes)
        unfreezing = GradualUnfreezing(model, lr, decay=2.6)
        groups = unfreezing.initial_param_groups()
        callbacks.append(unfreezing)
    else:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    loader = DataLoader(target_train, batch_size=25, shuffle=True, generator=Generator(seed))
    fit(model, F.cross_entropy, optim.Adam(groups, lr=lr), loader, epochs=epochs, callbacks=callbacks,
        progress=False)
    return evaluate(model, F.cross_entropy, DataLoader(target_test, batch_size=500))["accuracy"]


def compare_strategies(labels_per_class=20, seeds=(0, 1, 2), epochs=40, lr=3e-3, strategies=STRATEGIES,
                       pretrained_path=None):
    """Target test accuracy of each strategy for each seed: ``{strategy: [accuracy per seed]}``.

    Each seed draws a different small target training set and new head; the
    pre-trained body is the same file for all. The global generator is
    seeded with each seed in turn, so a run repeats exactly.
    """
    results = {s: [] for s in strategies}
    for seed in seeds:
        _, target_train, target_test = mnist1d_shift(labels_per_class, seed=seed)
        for s in strategies:
            results[s].append(_train_target(s, target_train, target_test, epochs=epochs, lr=lr, seed=seed,
                                            pretrained_path=pretrained_path))
    return results


def run(*, seed, epochs=None, progress=True):
    """Experiment ``mnist1d-transfer``: the five strategies on 20 labels per target class, 3 seeds."""
    seeds = (seed, seed + 1, seed + 2)
    pretrained_mnist1d_cnn(progress=progress)  # train and cache once, outside the timing of the strategies
    results = compare_strategies(20, seeds=seeds, epochs=epochs or 40)
    table = {s: {"mean": float(np.mean(a)), "std": float(np.std(a)), "per_seed": [float(v) for v in a]}
             for s, a in results.items()}
    lines = [f"{s:<20} {t['mean']:.3f} ± {t['std']:.3f}" for s, t in table.items()]
    return {"source_classes": list(SOURCE_CLASSES), "target_classes": list(TARGET_CLASSES),
            "labels_per_class": 20, "seeds": list(seeds), "test_accuracy": table,
            "summary": "target test accuracy (mean ± std over seeds " + ", ".join(map(str, seeds)) + ")\n"
                       + "\n".join(lines)}
