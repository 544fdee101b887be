"""Matrix products, and tensordot (one after a reshape) and the Kronecker product.

``matmul`` follows NumPy's rules for shapes (1-D, 2-D and batched, broadcasting the
batch dims); operands of two dtypes are refused, as PyTorch refuses them (``outer`` and
``kron`` promote them, :mod:`nnlite.ops.promotion`). Float products go to
the GEMM kernels (one GEMM when the second operand is a
matrix, a batched GEMM when the batch dims agree), which read transposed
operands in place: a transpose is a flag to BLAS, not a copy. The batched GEMM also
reads one or two batch dims with any strides, so permuted views (attention's heads)
are not copied either; more batch dims are first merged into one by a reshape
(which copies when their strides do not allow a view). The gradient of C = A B is
dA = dC B^T and dB = A^T dC, written with matmul itself so it can be
differentiated again. A backward that is not recorded (no ``create_graph``) of
3-D or 4-D float32/float64 operands with equal batch dims calls the batched GEMM
directly instead, with transpose flags for B^T and A^T, and writes each gradient
into an array laid out like its input, so the gradient of a permuted view
(attention's heads) comes out in the view's storage order and the transpose and
reshape above it stay views; same products, same bits. The gradient of a
transposed view (attention's K^T) stays C-contiguous: BLAS writes rows, and
computing the transposed product instead would sum in another order.
"""
import math
import numbers

import numpy as np

from .._kernels import K
from ..autograd import Function, constant, is_grad_enabled, product_saved_versions
from ..tensor import Tensor, is_bfloat16
from .dims import _dim
from .promotion import promote_types, promoted_dtype, same_dtype, tensor_input
from .broadcasting import sum_to
from .casting import cast
from .permutation import permute, transpose
from .shape import reshape


class MatMul(Function):
    _saved_versions = staticmethod(product_saved_versions)   # dA = g B^T reads B, dB = A^T g reads A

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both operands need at least 1 dim, got shapes {a.shape} and {b.shape}")
        ka = a.shape[-1]
        kb = b.shape[-2] if b.ndim > 1 else b.shape[0]
        if ka != kb:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
                             f"{ka} (last dim of the first) != {kb} (first matrix dim of the second)")
        if a.dtype == b.dtype and a.dtype.kind == "f" and a.ndim >= 2 and b.ndim >= 2:
            if b.ndim == 2:  # (..., m, k) @ (k, n): every leading row in one GEMM
                out = K.gemm(a.reshape(math.prod(a.shape[:-1]), ka), b)   # not -1: ka may be 0
                return out.reshape(a.shape[:-1] + (b.shape[-1],))
            if a.shape[:-2] == b.shape[:-2]:  # equal batch dims: one batched GEMM
                if a.ndim <= 4:   # bmm reads one or two batch dims in place, whatever their strides
                    return K.bmm(a, b)
                out = K.bmm(a.reshape((-1,) + a.shape[-2:]), b.reshape((-1,) + b.shape[-2:]))
                return out.reshape(a.shape[:-2] + out.shape[-2:])
        same_dtype("matmul", a, b)   # arrays given as constants too
        if "V" in (a.dtype.kind, b.dtype.kind) and (is_bfloat16(a.dtype) or is_bfloat16(b.dtype)):
            # ml_dtypes' bfloat16 matmul returns float32; refusing it here makes Function.apply
            # compute in float32 and round to bfloat16, as for every other bfloat16 product.
            raise TypeError(f"matmul: no bfloat16 loop (operands {a.dtype} and {b.dtype})")
        try:
            return np.matmul(a, b, casting="no")
        except ValueError:
            raise ValueError(f"matmul: batch dims of shapes {a.shape} and {b.shape} cannot be broadcast") from None

    def backward(self, grad):
        a, b = self.inputs
        if not is_grad_enabled():
            grads = _unrecorded_batched_grads(a, b, grad.data)
            if grads is not None:
                return grads
        if a.ndim == 1 and b.ndim == 1:
            return grad * b, grad * a
        a2 = a if a.ndim > 1 else reshape(a, (1, a.shape[0]))
        b2 = b if b.ndim > 1 else reshape(b, (b.shape[0], 1))
        out_shape = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1])
        g2 = reshape(grad, out_shape)
        ga = gb = None
        if a.requires_grad:
            ga = reshape(sum_to(matmul(g2, transpose(b2, -1, -2)), a2.shape), a.shape)
        if b.requires_grad:
            gb = reshape(sum_to(matmul(transpose(a2, -1, -2), g2), b2.shape), b.shape)
        return ga, gb


def _unrecorded_batched_grads(a, b, g):
    """dA = g B^T and dB = A^T g straight from K.bmm, for a backward that is not recorded.

    Only for 3-D or 4-D float32/float64 operands with equal batch dims (None
    otherwise: the general path handles the rest). The transposes are BLAS flags,
    and each gradient is written into an array laid out like its input
    (``empty_like`` keeps the memory order of a permuted view): the gradient of an
    attention head, an (N, H, L, d) view of (N, L, H, d) storage, comes out in that
    storage order, so the transpose and reshape above it stay views instead of
    copying it back. Where the input's layout is one BLAS cannot write (a transposed
    view), the gradient is a new C-contiguous array, as on the general path. The
    same BLAS calls as the general path, so the same bits.
    """
    a_arr, b_arr = _array(a), _array(b)
    nd = a_arr.ndim
    if (nd != 3 and nd != 4) or b_arr.ndim != nd or a_arr.shape[:-2] != b_arr.shape[:-2]:
        return None
    if not (a_arr.dtype == b_arr.dtype == g.dtype and (g.dtype == np.float32 or g.dtype == np.float64)):
        return None
    ga = constant(K.bmm(g, b_arr, False, True, _like(a_arr))) if _wants_grad(a) else None
    gb = constant(K.bmm(a_arr, g, True, False, _like(b_arr))) if _wants_grad(b) else None
    return ga, gb


def _like(arr):
    """An empty array in ``arr``'s memory order, if BLAS can write its items there; else None."""
    out = np.empty_like(arr)
    return out if out.strides[-1] == out.itemsize else None


def _wants_grad(t):
    # a NumPy array among the inputs (taken as a constant) wants no gradient
    return isinstance(t, Tensor) and t.requires_grad


def _array(t):
    return t.data if isinstance(t, Tensor) else t


def matmul(input, other):
    """The matrix product; operands of two dtypes are refused, as in PyTorch
    (:class:`~nnlite.ops.promotion.DTypeMismatchError`)."""
    same_dtype("matmul", input, other)   # here, not only in forward: float16 operands must not be widened first
    return MatMul.apply(input, other)


def mm(input, mat2):
    """The product of two matrices of one dtype."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise ValueError(f"mm: expected 2-D tensors, got shapes {input.shape} and {mat2.shape}")
    same_dtype("mm", input, mat2)
    return MatMul.apply(input, mat2)


def bmm(input, mat2):
    """The products of two batches of matrices of one dtype."""
    if input.ndim != 3 or mat2.ndim != 3:
        raise ValueError(f"bmm: expected 3-D tensors, got shapes {input.shape} and {mat2.shape}")
    if input.shape[0] != mat2.shape[0]:
        # bmm does not broadcast (matmul does), so a batch of 1 beside a batch of 5 is a mistake here
        raise ValueError(f"bmm: the two batches must have the same size, got shapes {input.shape} and "
                         f"{mat2.shape}; use matmul to broadcast the batch")
    same_dtype("bmm", input, mat2)
    return MatMul.apply(input, mat2)


def outer(input, vec2):
    """The outer product; unlike the other products it promotes two dtypes, as PyTorch's does."""
    tensor_input("outer", input), tensor_input("outer", vec2)
    dtype = promoted_dtype("outer", input, vec2)
    return matmul(reshape(cast(input, dtype), (-1, 1)), reshape(cast(vec2, dtype), (1, -1)))


def dot(input, tensor):
    """The inner product of two vectors of one dtype."""
    if input.ndim != 1 or tensor.ndim != 1:
        raise ValueError(f"dot: expected 1-D tensors, got shapes {input.shape} and {tensor.shape}")
    same_dtype("dot", input, tensor)
    return MatMul.apply(input, tensor)


def tensordot(a, b, dims=2):
    """Sum of products over the last ``dims`` dims of ``a`` and the first ``dims`` of ``b``.

    ``dims`` may instead name the dims to contract: a pair of lists
    ``([dims of a], [dims of b])``. Written as one matrix product between
    reshaped (and permuted) operands, so the gradient is matmul's. As in PyTorch,
    ``a`` and ``b`` have one dtype.
    """
    tensor_input("tensordot", a), tensor_input("tensordot", b)
    same_dtype("tensordot", a, b)
    if isinstance(dims, numbers.Integral):
        if not 0 <= dims <= min(a.ndim, b.ndim):
            raise ValueError(f"tensordot: dims must be in [0, {min(a.ndim, b.ndim)}] for shapes "
                             f"{a.shape} and {b.shape}, got {dims}")
        dims_a, dims_b = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        dims_a, dims_b = ([d] if isinstance(d, numbers.Integral) else list(d) for d in dims)
        if len(dims_a) != len(dims_b):
            raise ValueError(f"tensordot: the two lists of dims must have the same length, got {dims}")
        dims_a = [_dim("tensordot", d, a.ndim) for d in dims_a]
        dims_b = [_dim("tensordot", d, b.ndim) for d in dims_b]
    for da, db in zip(dims_a, dims_b):
        if a.shape[da] != b.shape[db]:
            raise ValueError(f"tensordot: dim {da} of a (size {a.shape[da]}) and dim {db} of b "
                             f"(size {b.shape[db]}) are contracted, so their sizes must agree")
    free_a = [d for d in range(a.ndim) if d not in dims_a]
    free_b = [d for d in range(b.ndim) if d not in dims_b]
    m, k = math.prod(a.shape[d] for d in free_a), math.prod(a.shape[d] for d in dims_a)
    n = math.prod(b.shape[d] for d in free_b)
    left = reshape(permute(a, *free_a, *dims_a), (m, k)) if a.ndim else reshape(a, (1, 1))
    right = reshape(permute(b, *dims_b, *free_b), (k, n)) if b.ndim else reshape(b, (1, 1))
    out_shape = tuple(a.shape[d] for d in free_a) + tuple(b.shape[d] for d in free_b)
    return reshape(matmul(left, right), out_shape)


def kron(input, other):
    """The Kronecker product: every element of ``input`` times the whole of ``other``, in blocks.

    With n dims (the shorter shape padded with leading 1s), the result has shape
    ``input.shape[i] * other.shape[i]`` in each dim. It is one broadcast product
    of the two, interleaved, so its gradient is the product's.
    """
    tensor_input("kron", input), tensor_input("kron", other)
    dtype = promote_types(input.dtype, other.dtype)   # a 0-dim operand counts fully: it is reshaped to n dims
    input, other = cast(input, dtype), cast(other, dtype)
    n = max(input.ndim, other.ndim)
    sa = (1,) * (n - input.ndim) + tuple(input.shape)
    sb = (1,) * (n - other.ndim) + tuple(other.shape)
    # interleave: input as (a0, 1, a1, 1, ...), other as (1, b0, 1, b1, ...), then merge the pairs
    a = reshape(input, tuple(x for s in sa for x in (s, 1)))
    b = reshape(other, tuple(x for s in sb for x in (1, s)))
    return reshape(a * b, tuple(p * q for p, q in zip(sa, sb)))
