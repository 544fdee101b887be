"""Distance modules: ``nn.functional.cosine_similarity`` and ``pairwise_distance`` with their options stored."""
from . import functional as F
from .module import Module

__all__ = ["CosineSimilarity", "PairwiseDistance"]


class CosineSimilarity(Module):
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim``, each norm raised to at least ``eps``.

    >>> import nnlite as nl
    >>> round(nl.nn.CosineSimilarity(dim=0)(nl.tensor([1.0, 0.0]), nl.tensor([1.0, 1.0])).item(), 6)   # cos 45 degrees
    0.707107
    """

    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)

    def extra_repr(self):
        return f"dim={self.dim}, eps={self.eps}"


class PairwiseDistance(Module):
    """``||x1 - x2 + eps||_p`` along the last dim; ``p`` is stored as ``norm``, PyTorch's attribute name."""

    def __init__(self, p=2.0, eps=1e-6, keepdim=False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)

    def extra_repr(self):
        return f"p={self.norm}, eps={self.eps}, keepdim={self.keepdim}"
