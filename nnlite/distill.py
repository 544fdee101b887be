"""Teacher → student distillation on MNIST-1D: the experiment behind ``nnlite train mnist1d-distill``.

A CNN teacher is trained first. The same small student is then trained twice
from the same initialisation, on the same batches: once on the labels alone
(cross-entropy) and once on :func:`~nnlite.nn.functional.distillation_loss`,
which mixes the labels with the teacher's outputs softened at temperature
``T``. The difference in the student's test accuracy is what the teacher's
"dark knowledge" (how it ranks the wrong classes) is worth. Each seed repeats
the whole comparison; :func:`run` reports the per-seed accuracies and means.

The method is Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural
Network" (2015).
"""
import numpy as np

from . import optim
from .autograd import no_grad
from .data import MNIST1D, DataLoader, TensorDataset
from .nn import functional as F
from .random import Generator, manual_seed
from .recipes import MNIST1DCNN
from .tensor import Tensor
from .train import accuracy

__all__ = ["train_teacher", "train_student", "compare", "run"]


def train_teacher(seed=0, epochs=30, lr=1e-2):
    """The MNIST-1D CNN of :mod:`nnlite.recipes` (25 channels), trained with Adam; returns the model."""
    from .train import fit
    manual_seed(seed)
    teacher = MNIST1DCNN()
    loader = DataLoader(MNIST1D(train=True), batch_size=100, shuffle=True, generator=Generator(seed))
    fit(teacher, F.cross_entropy, optim.Adam(teacher.parameters(), lr=lr), loader, epochs=epochs, progress=False)
    return teacher.eval()


def train_student(student, teacher_logits=None, *, seed=0, epochs=40, lr=1e-2, T=4.0, alpha=0.9):
    """Train ``student`` on MNIST-1D: on the labels alone, or distilled from ``teacher_logits``.

    ``teacher_logits`` (4000 × 10, the teacher's outputs on the training set) turns
    on :func:`~nnlite.nn.functional.distillation_loss`; batches come from
    ``Generator(seed)``, so both students of a comparison see the same ones.
    Returns the student's test accuracy.
    """
    train, test = MNIST1D(train=True), MNIST1D(train=False)
    x, y = train.tensors
    soft = teacher_logits if teacher_logits is not None else Tensor(np.zeros((len(train), 10), np.float32))
    loader = DataLoader(TensorDataset(x, y, soft), batch_size=100, shuffle=True, generator=Generator(seed))
    opt = optim.Adam(student.parameters(), lr=lr)
    for _ in range(epochs):
        for xb, yb, tb in loader:
            opt.zero_grad()
            out = student(xb)
            if teacher_logits is None:
                loss = F.cross_entropy(out, yb)
            else:
                loss = F.distillation_loss(out, tb, yb, T=T, alpha=alpha)
            loss.backward()
            opt.step()
    return accuracy(student, *test.tensors)


def compare(seeds=(0, 1, 2), teacher_epochs=30, student_epochs=40, T=4.0, alpha=0.9, student_channels=4):
    """Per seed: teacher, student alone and distilled student test accuracies (a dict of lists).

    The student is the same CNN with ``student_channels`` channels instead of 25
    (4 channels: 338 parameters against the teacher's 5,210).
    """
    results = {"teacher": [], "student_alone": [], "student_distilled": []}
    test = MNIST1D(train=False)
    for seed in seeds:
        teacher = train_teacher(seed, teacher_epochs)
        results["teacher"].append(accuracy(teacher, *test.tensors))
        with no_grad():
            logits = teacher(MNIST1D(train=True).tensors[0]).detach()
        manual_seed(seed)
        alone = MNIST1DCNN(channels=student_channels)
        distilled = MNIST1DCNN(channels=student_channels)
        distilled.load_state_dict(alone.state_dict())          # the same starting point
        results["student_alone"].append(train_student(alone, seed=seed, epochs=student_epochs))
        results["student_distilled"].append(train_student(distilled, logits, seed=seed, epochs=student_epochs,
                                                          T=T, alpha=alpha))
    return results


def run(*, seed, epochs=None, progress=True):
    """``nnlite train mnist1d-distill``: the comparison over seeds ``seed, seed+1, seed+2``.

    ``epochs`` sets the students' epochs (40 by default); the CLI prints ``summary``.
    """
    seeds = (seed, seed + 1, seed + 2)
    student_epochs = epochs or 40
    results = compare(seeds, student_epochs=student_epochs)
    means = {k: float(np.mean(v)) for k, v in results.items()}
    summary = (f"MNIST-1D distillation, seeds {list(seeds)}: teacher CNN {means['teacher']:.1%}; "
               f"student CNN (4 channels) alone {means['student_alone']:.1%}, "
               f"distilled {means['student_distilled']:.1%} "
               f"(gain {100 * (means['student_distilled'] - means['student_alone']):+.1f} points)")
    return {"experiment": "mnist1d-distill", "seeds": list(seeds), "student_epochs": student_epochs,
            "accuracy": results, "mean_accuracy": means, "summary": summary}
