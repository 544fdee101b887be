"""Reductions: what sum, mean, var, std, max, min, logsumexp, norm, prod, all and any share.

Each reduction folds the dims named by ``dim`` (PyTorch's ``dim``/``keepdim``) into
one value each, and each has a file of its own: sums.py, variance.py, extrema.py,
logsumexp.py, vector_norm.py, product.py and all_any.py. This module holds what
they share: which dims ``dim`` names, and the first step of every backward.

The gradient of a reduction is spread back over the reduced elements: equally for
sum and mean, to the winners for max and min, by softmax weights for logsumexp,
and to each element by the product of the others for prod. all and any give bool
tensors and no gradient. The spreading starts the same way everywhere
(``_grad_back``): the reduced dims come back with size 1 and the gradient is
broadcast over them; each reduction then weighs what each element gets.
"""
from ..tensor import is_bfloat16
from .broadcasting import expand
from .dims import _dims
from .shape import reshape


def _reduced_dims(dim, ndim):
    """The dims a reduction reduces: ``dim`` normalised, with an empty list meaning every dim.

    PyTorch reads ``sum(dim=())`` (and ``dim=[]``) as "no dims named, so all of them", as it
    reads ``dim=None``.
    """
    if dim is not None and type(dim) in (tuple, list) and not dim:
        dim = None
    return _dims(dim, ndim)


def _keepdim_shape(shape, dims):
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


def _grad_back(grad, in_shape, dims):
    """Reshape a reduced gradient so it broadcasts against the input, then expand."""
    return expand(reshape(grad, _keepdim_shape(in_shape, dims)), in_shape)


def _refuse_bfloat16_sums(a, op):
    """Raise TypeError for bfloat16, whose NumPy sums (ml_dtypes') round every partial sum to bfloat16.

    Added one at a time in bfloat16, 1000 ones sum to 256. The TypeError makes
    ``Function.apply`` sum in float32 and round once, as NumPy's float16 sum does
    (its partial sums are float32).
    """
    if is_bfloat16(a.dtype):
        raise TypeError(f"{op}: no bfloat16 sum (its partial sums would be rounded to bfloat16)")
