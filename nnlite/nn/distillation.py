r"""Knowledge distillation (Hinton, Vinyals & Dean 2015): a small student learns from a teacher.

The teacher's softmax at a *temperature* :math:`T > 1` spreads its probability
over the wrong classes too, and how it spreads it ("a 7 looks a bit like a 1")
is information the hard labels do not carry. The student matches those soft
targets at the same temperature, and still sees the labels:

.. math::

    \mathcal{L} = \alpha\, T^2\, \mathrm{KL}\big(\mathrm{softmax}(z_t / T)\,\big\|\,
                  \mathrm{softmax}(z_s / T)\big) + (1 - \alpha)\, \mathrm{CE}(z_s, y)

with :math:`z_s, z_t` the student's and teacher's logits. The gradient of the
soft term with respect to :math:`z_s` shrinks like :math:`1/T^2`; the factor
:math:`T^2` keeps the two terms on the same scale whatever :math:`T` is. The KL
divergence is averaged over the batch (``reduction="batchmean"``), the
cross-entropy likewise. The teacher's logits are treated as constants.
"""
from ..ops import log_softmax
from ..ops.loss import cross_entropy, kl_div
from .module import Module

__all__ = ["distillation_loss", "DistillationLoss"]


def distillation_loss(student_logits, teacher_logits, target, T=4.0, alpha=0.9):
    """The distillation loss above, for logits of shape ``(batch, classes)`` and class indices ``target``.

    ``alpha=1`` learns from the teacher alone, ``alpha=0`` is plain cross-entropy.

    >>> import nnlite as nl
    >>> z = nl.tensor([[2.0, 0.5, -1.0]])
    >>> round(float(nl.nn.functional.distillation_loss(z, z, nl.tensor([0]), T=2.0, alpha=1.0)), 6)
    0.0
    """
    T, alpha = float(T), float(alpha)
    if T <= 0:
        raise ValueError(f"distillation_loss: temperature T must be > 0, got {T}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"distillation_loss: alpha must be in [0, 1], got {alpha}")
    if tuple(student_logits.shape) != tuple(teacher_logits.shape):
        raise ValueError(f"distillation_loss: student and teacher logits must have the same shape, got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    soft_teacher = log_softmax(teacher_logits.detach() / T, dim=-1)
    soft_student = log_softmax(student_logits / T, dim=-1)
    soft = kl_div(soft_student, soft_teacher, reduction="batchmean", log_target=True) * (T * T)
    if alpha == 1.0:
        return soft
    return soft * alpha + cross_entropy(student_logits, target) * (1.0 - alpha)


class DistillationLoss(Module):
    """:func:`distillation_loss` as a module: ``DistillationLoss(T, alpha)(student, teacher, target)``."""

    def __init__(self, T=4.0, alpha=0.9):
        super().__init__()
        self.T, self.alpha = T, alpha

    def forward(self, student_logits, teacher_logits, target):
        return distillation_loss(student_logits, teacher_logits, target, self.T, self.alpha)

    def extra_repr(self):
        return f"T={self.T}, alpha={self.alpha}"
