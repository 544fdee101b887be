"""Teacher → student distillation on MNIST-1D: the experiment behind ``nnlite train mnist1d-distill``.

The design follows Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in
a Neural Network":

* the **teacher**, the 25-channel MNIST-1D CNN, is trained on all 4000
  labelled training examples;
* the **student** is the same CNN with 8 channels. It learns from 3500 of
  those examples; the other 500 are a validation split, the only data used to
  choose the distillation weight ``alpha`` (the test set is used once, to
  report);
* the student **alone** minimises the cross-entropy on the 3500 labelled examples;
* the **distilled** student minimises
  :func:`~nnlite.nn.functional.distillation_loss` (teacher's outputs softened
  at temperature ``T``) on a *transfer set*: the same 3500 labelled examples
  plus ``transfer_size`` unlabelled MNIST-1D signals, drawn by the dataset's
  own generator with another seed (their labels are never read; the hard
  term uses the teacher's prediction there);
* every student starts from the same initialisation and takes the same number
  of optimizer steps (Adam, batches of 100).

A third student, distilled on the 3500 labelled examples only (``alpha=0.9``),
shows how much of the gain the soft targets bring without extra signals. Each
seed repeats everything, teacher included; :func:`run` reports the per-seed
accuracies, their means and standard deviations.
"""
import numpy as np

from ._kernels.checks import is_int
from . import optim
from .autograd import no_grad
from .data import MNIST1D, DataLoader
from .nn import functional as F
from .random import Generator, manual_seed
from .recipes import MNIST1DCNN
from .tensor import Tensor
from .train import accuracy, fit

__all__ = ["train_teacher", "train_student", "transfer_signals", "compare", "run"]

VALIDATION = 500          # labelled training examples held out to choose alpha
BATCH = 100


def _predict(model, x):
    """The model's outputs on ``x`` in eval mode; every module's mode is put back after (the
    teacher ``train_teacher`` returns is in eval mode and stays there)."""
    from .analysis._batches import modes_kept
    with modes_kept(model), no_grad():
        model.eval()
        return model(Tensor(x)).numpy()


def train_teacher(seed=0, epochs=30, lr=1e-2):
    """The MNIST-1D CNN of :mod:`nnlite.recipes` (25 channels), trained on all 4000 labelled examples."""
    manual_seed(seed)
    teacher = MNIST1DCNN()
    loader = DataLoader(MNIST1D(train=True), batch_size=BATCH, shuffle=True, generator=Generator(seed))
    fit(teacher, F.cross_entropy, optim.Adam(teacher.parameters(), lr=lr), loader, epochs=epochs, progress=False)
    return teacher.eval()


def transfer_signals(n, seed=1):
    """``n`` unlabelled MNIST-1D signals (float32, n x 40) from the dataset's generator with ``seed``.

    The published dataset uses the generator's default seed, so these are new
    draws of the same distribution, not copies of training or test examples.
    """
    if not is_int(n) or n < 1:
        raise ValueError(f"transfer_signals: n must be a positive integer, got {n!r}")
    # MNIST-1D makes num_samples // 10 signals of each of its 10 classes and keeps 80% for training:
    # 10 * ceil(n / 8) samples give at least n training signals.
    data = MNIST1D(train=True, args={"seed": seed, "num_samples": 10 * int(np.ceil(n / 8))})
    return data.tensors[0].numpy()[:n]


def train_student(student, x, y, teacher_logits=None, *, seed=0, steps=6000, lr=1e-2, T=4.0, alpha=0.9,
                  unlabelled=None, unlabelled_logits=None):
    """Train ``student`` for ``steps`` Adam steps on batches of 100; returns it.

    Without ``teacher_logits`` the loss is the cross-entropy on ``(x, y)``.
    With them (the teacher's outputs for ``x``) it is
    :func:`~nnlite.nn.functional.distillation_loss` at ``T`` and ``alpha``;
    ``unlabelled`` signals with their ``unlabelled_logits`` join the batches,
    the teacher's prediction standing in for their label. Batch order comes
    from ``numpy.random.default_rng(seed)``, so two students trained on the same
    set see the same batches.
    """
    for name, given in (("y", y), ("teacher_logits", teacher_logits)):
        if given is not None and len(given) != len(x):
            raise ValueError(f"train_student: {name} needs one row per example of x ({len(x)}), got {len(given)}")
    pool_x, pool_y, pool_t = x, y, teacher_logits
    if unlabelled is not None:
        if teacher_logits is None or unlabelled_logits is None:
            raise ValueError("train_student: unlabelled signals need teacher_logits and unlabelled_logits")
        pool_x = np.concatenate([x, unlabelled])
        pool_y = np.concatenate([y, unlabelled_logits.argmax(axis=1)])
        pool_t = np.concatenate([teacher_logits, unlabelled_logits])
    if len(pool_x) < BATCH:   # no full batch: the loop below would never take a step
        raise ValueError(f"train_student: needs at least {BATCH} examples (one batch), got {len(pool_x)}")
    rng = np.random.default_rng(seed)
    opt = optim.Adam(student.parameters(), lr=lr)
    step = 0
    student.train()
    while step < steps:
        order = rng.permutation(len(pool_x))
        for i in range(0, len(order) - BATCH + 1, BATCH):
            b = order[i:i + BATCH]
            opt.zero_grad()
            out = student(Tensor(pool_x[b]))
            if pool_t is None:
                loss = F.cross_entropy(out, Tensor(pool_y[b]))
            else:
                loss = F.distillation_loss(out, Tensor(pool_t[b]), Tensor(pool_y[b]), T=T, alpha=alpha)
            loss.backward()
            opt.step()
            step += 1
            if step == steps:
                break
    return student


def compare(seeds=(0, 1, 2), teacher_epochs=30, student_steps=6000, T=4.0, alphas=(0.5, 0.9),
            student_channels=8, transfer_size=16000):
    """Per seed: test accuracies of the teacher and the students, and the alpha validation chose.

    Returns a dict of lists: ``teacher``, ``student_alone``,
    ``student_distilled`` (transfer set, alpha chosen on the validation split),
    ``student_distilled_labelled_only`` (no transfer set, alpha 0.9) and ``alpha``.
    """
    if not alphas or not seeds:
        raise ValueError(f"compare: needs at least one alpha to choose from and one seed, got alphas={alphas!r}, "
                         f"seeds={seeds!r}")
    train, test = MNIST1D(train=True), MNIST1D(train=False)
    x_all, y_all = (t.numpy() for t in train.tensors)
    x_test, y_test = (t.numpy() for t in test.tensors)
    extra = transfer_signals(transfer_size) if transfer_size else None
    keys = ("teacher", "student_alone", "student_distilled", "student_distilled_labelled_only", "alpha")
    results = {k: [] for k in keys}
    for seed in seeds:
        teacher = train_teacher(seed, teacher_epochs)
        results["teacher"].append(accuracy(teacher, x_test, y_test))
        split = np.random.default_rng(1000 + seed).permutation(len(x_all))
        val, lab = split[:VALIDATION], split[VALIDATION:]
        x, y, logits = x_all[lab], y_all[lab], _predict(teacher, x_all[lab])
        extra_logits = _predict(teacher, extra) if extra is not None else None

        def student():
            manual_seed(seed)                      # every student starts from the same weights
            return MNIST1DCNN(channels=student_channels)

        common = dict(seed=seed, steps=student_steps)
        alone = train_student(student(), x, y, **common)
        results["student_alone"].append(accuracy(alone, x_test, y_test))
        plain = train_student(student(), x, y, logits, T=T, alpha=0.9, **common)
        results["student_distilled_labelled_only"].append(accuracy(plain, x_test, y_test))
        best = None
        for alpha in alphas:
            s = train_student(student(), x, y, logits, T=T, alpha=alpha, unlabelled=extra,
                              unlabelled_logits=extra_logits, **common)
            score = accuracy(s, x_all[val], y_all[val])
            if best is None or score > best[0]:
                best = (score, alpha, s)
        results["alpha"].append(best[1])
        results["student_distilled"].append(accuracy(best[2], x_test, y_test))
    return results


def run(*, seed, epochs=None, progress=True):
    """``nnlite train mnist1d-distill``: the comparison over seeds ``seed, seed+1, seed+2``.

    ``epochs`` sets the students' budget in epochs of the 3500 labelled examples
    (35 steps each); by default 6000 steps. The CLI prints ``summary``.
    """
    seeds = (seed, seed + 1, seed + 2)
    steps = 35 * epochs if epochs else 6000
    results = compare(seeds, student_steps=steps)
    accuracies = {k: v for k, v in results.items() if k != "alpha"}
    means = {k: float(np.mean(v)) for k, v in accuracies.items()}
    stds = {k: float(np.std(v)) for k, v in accuracies.items()}
    gains = [d - a for d, a in zip(results["student_distilled"], results["student_alone"])]
    summary = (f"MNIST-1D distillation, seeds {list(seeds)}, {steps} steps per student: teacher CNN "
               f"{means['teacher']:.1%}; student CNN (8 channels) alone {means['student_alone']:.1%} "
               f"± {stds['student_alone']:.1%}, distilled with a transfer set "
               f"{means['student_distilled']:.1%} ± {stds['student_distilled']:.1%} "
               f"(gain {100 * np.mean(gains):+.1f} points, per seed "
               f"{', '.join(f'{100 * g:+.1f}' for g in gains)}); distilled on the labelled examples only "
               f"{means['student_distilled_labelled_only']:.1%}")
    return {"experiment": "mnist1d-distill", "seeds": list(seeds), "student_steps": steps,
            "accuracy": results, "mean_accuracy": means, "std_accuracy": stds, "summary": summary}
