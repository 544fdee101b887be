"""Parts of matrices: triangles (tril, triu) and diagonals (diagonal, diag_embed, diag, trace).

Each keeps some entries of its input and drops the rest, so each gradient puts
the incoming gradient back where the kept entries came from and zeros
elsewhere. tril and triu are their own adjoints; taking a diagonal and writing
one into zeros are each other's. All of them work on the last two dims of a
batch of matrices (tril, triu) or on any two dims (diagonal, diag_embed).
"""
import numpy as np

from ..autograd import Function
from .promotion import tensor_input
from .dims import _dim, int_argument


class Triangle(Function):
    """Keep the entries on and below (``lower``) or above diagonal ``k`` of the last two dims."""
    saves_inputs = False

    def forward(self, a, k, lower):
        self.k, self.lower = k, lower
        return np.tril(a, k) if lower else np.triu(a, k)

    def backward(self, grad):
        return Triangle.apply(grad, self.k, self.lower), None, None


def _triangle(op, input, diagonal, lower):
    if tensor_input(op, input).ndim < 2:
        raise ValueError(f"{op}: input must have at least 2 dims (a matrix or a batch of them), "
                         f"got shape {input.shape}")
    return Triangle.apply(input, int_argument(op, "diagonal", diagonal), lower)


def tril(input, diagonal=0):
    """The lower triangle: entries (i, j) with ``j - i <= diagonal``, zeros elsewhere."""
    return _triangle("tril", input, diagonal, True)


def triu(input, diagonal=0):
    """The upper triangle: entries (i, j) with ``j - i >= diagonal``, zeros elsewhere."""
    return _triangle("triu", input, diagonal, False)


def _diagonal_positions(rows, cols, offset):
    """Row and column indices of diagonal ``offset`` of a rows x cols matrix."""
    start_r, start_c = max(-offset, 0), max(offset, 0)
    n = max(min(rows - start_r, cols - start_c), 0)
    return start_r + np.arange(n), start_c + np.arange(n)


class Diagonal(Function):
    """Diagonal ``offset`` of the matrices spanned by dims ``dim1``, ``dim2``, as a new last dim."""
    saves_inputs = False
    is_view = True   # as in PyTorch: x.diagonal().fill_(0) writes into x

    def forward(self, a, offset, dim1, dim2):
        self.shape, self.offset, self.dim1, self.dim2 = a.shape, offset, dim1, dim2
        out = np.diagonal(a, offset, dim1, dim2)
        if a.flags.writeable:   # NumPy hands the view out read-only; it is as writeable as a
            out.flags.writeable = True
        return out

    def backward(self, grad):
        return DiagonalScatter.apply(grad, self.shape, self.offset, self.dim1, self.dim2), None, None, None


class DiagonalScatter(Function):
    """Zeros of ``shape`` with ``values`` (diagonal along its last dim) written on diagonal ``offset``."""
    saves_inputs = False

    def forward(self, values, shape, offset, dim1, dim2):
        self.offset, self.dim1, self.dim2 = offset, dim1, dim2
        out = np.zeros(shape, values.dtype)
        rows, cols = _diagonal_positions(shape[dim1], shape[dim2], offset)
        # move the two dims last: then out[..., r, c] = values[..., i] writes diagonal entry i
        np.moveaxis(out, (dim1, dim2), (-2, -1))[..., rows, cols] = values
        return out

    def backward(self, gg):
        return Diagonal.apply(gg, self.offset, self.dim1, self.dim2), None, None, None, None


def _two_dims(op, ndim, dim1, dim2):
    d1, d2 = _dim(op, dim1, ndim), _dim(op, dim2, ndim)
    if d1 == d2:
        raise ValueError(f"{op}: dim1 and dim2 must be different dims, got {dim1} and {dim2}")
    return d1, d2


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The diagonal ``offset`` (above the main one if positive) of the matrices on ``dim1``, ``dim2``.

    Those two dims are removed and the diagonal becomes the last dim, as in
    PyTorch. The result is a view, as in PyTorch: writing into it (``fill_``,
    ``mul_``) writes into ``input``.
    """
    if tensor_input("diagonal", input).ndim < 2:
        raise ValueError(f"diagonal: input must have at least 2 dims, got shape {input.shape}")
    d1, d2 = _two_dims("diagonal", input.ndim, dim1, dim2)
    return Diagonal.apply(input, int_argument("diagonal", "offset", offset), d1, d2)


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """Matrices with the last dim of ``input`` on their diagonal ``offset``, zeros elsewhere.

    The new matrices span dims ``dim1`` and ``dim2`` of the result (which has
    one more dim than ``input``).
    """
    if tensor_input("diag_embed", input).ndim < 1:
        raise ValueError("diag_embed: input must have at least 1 dim, got a 0-dim tensor")
    ndim = input.ndim + 1
    d1, d2 = _two_dims("diag_embed", ndim, dim1, dim2)
    offset = int_argument("diag_embed", "offset", offset)
    n = input.shape[-1] + abs(offset)
    batch = list(input.shape[:-1])
    shape = []
    for d in range(ndim):
        shape.append(n if d in (d1, d2) else batch.pop(0))
    return DiagonalScatter.apply(input, tuple(shape), offset, d1, d2)


def diag(input, diagonal=0):
    """A 1-D input becomes a square matrix with it on diagonal ``diagonal``; a 2-D input gives
    that diagonal back as a 1-D tensor (PyTorch's ``torch.diag``)."""
    if tensor_input("diag", input).ndim == 1:
        return diag_embed(input, diagonal, 0, 1)
    if input.ndim == 2:   # a copy, as torch.diag's (diagonal() is the view)
        return Diagonal.apply(input, int_argument("diag", "diagonal", diagonal), 0, 1).clone()
    raise ValueError(f"diag: input must be 1-D or 2-D, got shape {input.shape}")


def trace(input):
    """The sum of the main diagonal of a 2-D input."""
    if tensor_input("trace", input).ndim != 2:
        raise ValueError(f"trace: input must be 2-D, got shape {input.shape}")
    return Diagonal.apply(input, 0, 0, 1).sum()
