"""NumPy twins of the kernels in ``nnlite/_kernels/_gemm.pyx``.

Matrix products: GEMM, batched GEMM, the fused Linear layer, bias gradients.

Each public function has the signature and results of the compiled kernel of the
same name; see :mod:`nnlite._kernels.reference` for what "equal" promises.
"""
import numpy as np

from .. import checks
from ..blocking import gemm_blocking

__all__ = ["bias_grad", "bmm", "gemm", "gemm_tiled", "linear_forward"]

_GEMM_BIAS_GRAD_BLOCK = 256   # rows per partial sum in bias_grad (fixed: thread-count independent)


def _gemm_float_operands(op, arrays, names):
    """Check that ``arrays`` are float32/float64 ndarrays of one dtype; return that dtype."""
    return checks.float_operands(op, arrays, names)


def _gemm_ndim(op, arr, name, ndim):
    if arr.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D, got shape {arr.shape}")


def gemm(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) for 2-D ``a``, ``b``; ``op`` transposes when its flag is set."""
    _gemm_float_operands("gemm", (a, b), ("a", "b"))
    _gemm_ndim("gemm", a, "a", 2)
    _gemm_ndim("gemm", b, "b", 2)
    trans_a, trans_b = checks.flag("gemm", "trans_a", trans_a), checks.flag("gemm", "trans_b", trans_b)
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    if opa.shape[1] != opb.shape[0]:
        raise ValueError(f"gemm: inner dimensions differ: op(a) has shape {opa.shape} "
                         f"(a {a.shape}, trans_a={bool(trans_a)}), op(b) has shape {opb.shape} "
                         f"(b {b.shape}, trans_b={bool(trans_b)})")
    return np.ascontiguousarray(np.matmul(opa, opb))


def bmm(a, b, trans_a=False, trans_b=False, out=None):
    """Batched gemm over the one or two leading (batch) dims of 3-D or 4-D ``a`` and ``b``;
    written into ``out`` when given (checks.product_out says which arrays can take it)."""
    _gemm_float_operands("bmm", (a, b), ("a", "b"))
    if a.ndim not in (3, 4) or b.ndim != a.ndim:
        raise ValueError(f"bmm: a and b must both be 3-D or both 4-D (batch dims, then the matrix), "
                         f"got shapes {a.shape} and {b.shape}")
    trans_a, trans_b = checks.flag("bmm", "trans_a", trans_a), checks.flag("bmm", "trans_b", trans_b)
    opa = np.swapaxes(a, -1, -2) if trans_a else a
    opb = np.swapaxes(b, -1, -2) if trans_b else b
    if a.shape[:-2] != b.shape[:-2] or opa.shape[-1] != opb.shape[-2]:
        raise ValueError(f"bmm: cannot multiply op(a) of shape {opa.shape} (a {a.shape}, "
                         f"trans_a={bool(trans_a)}) by op(b) of shape {opb.shape} "
                         f"(b {b.shape}, trans_b={bool(trans_b)})")
    if out is None:
        return np.ascontiguousarray(np.matmul(opa, opb))
    checks.product_out("bmm", out, opa.shape[:-1] + opb.shape[-1:], a.dtype)
    checks.separate("bmm", [("out", out), ("a", a), ("b", b)], written={"out"})
    out[...] = np.matmul(opa, opb)
    return out


def linear_forward(x, weight, bias, activation):
    """act(x @ weight.T + bias): x (N, in_features), weight (out_features, in_features)."""
    arrays, names = (x, weight), ("x", "weight")
    if bias is not None:
        arrays, names = arrays + (bias,), names + ("bias",)
    _gemm_float_operands("linear_forward", arrays, names)
    _gemm_ndim("linear_forward", x, "x", 2)
    _gemm_ndim("linear_forward", weight, "weight", 2)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"linear_forward: weight of shape {weight.shape} expects "
                         f"in_features={weight.shape[1]}, input has shape {x.shape}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear_forward: bias must have shape ({weight.shape[0]},) to match "
                         f"weight {weight.shape}, got {bias.shape}")
    relu = checks.fused_relu("linear_forward", activation)
    y = np.matmul(x, weight.T)
    if bias is not None:
        y += bias
    if relu:
        y = np.where(y < 0, y.dtype.type(0), y)
    return np.ascontiguousarray(y)


def bias_grad(g):
    """Column sums of 2-D ``g``: rows summed in fixed blocks of 256, blocks added in order."""
    _gemm_float_operands("bias_grad", (g,), ("g",))
    _gemm_ndim("bias_grad", g, "g", 2)
    total = np.zeros(g.shape[1], dtype=g.dtype)
    for start in range(0, g.shape[0], _GEMM_BIAS_GRAD_BLOCK):
        block = np.ascontiguousarray(g[start:start + _GEMM_BIAS_GRAD_BLOCK])
        partial = np.zeros(g.shape[1], dtype=g.dtype)
        for row in block:           # row after row, as the compiled loop does
            partial += row
        total += partial
    return total


# The blocking of the compiled gemm_tiled (see the essay above its code in _gemm.pyx).
_TILED_MR = 6                                      # rows of a micro-tile
_TILED_NR = {np.dtype(np.float32): 16, np.dtype(np.float64): 8}   # columns of a micro-tile
# depth of one block of the sum, and rows of A per block: from this machine's caches,
# the same values the compiled kernel reads (blocking.py)
_TILED_KC, _TILED_MC = gemm_blocking()["kc"], gemm_blocking()["mc"]


def gemm_tiled(a, b):
    """a @ b for 2-D operands, by the same blocked loops as the compiled teaching kernel.

    The sum over k is cut into KC-deep blocks taken in order; inside a block, C is
    cut into MR x NR micro-tiles, and each tile is built by one rank-1 update per k
    (``tile += outer(a[:, p], b[p, :])``: a multiply, then an add, in k order). The
    first block stores its tile, later blocks add theirs. Every element therefore
    sees the same operations in the same order as in the compiled kernel, and the
    result is equal to it bit for bit. (The compiled kernel packs the blocks into
    contiguous buffers first and keeps the tile in registers; that changes where
    the numbers are, not the arithmetic.) Slow in Python: it is for reading and
    for small test matrices.
    """
    _gemm_float_operands("gemm_tiled", (a, b), ("a", "b"))
    _gemm_ndim("gemm_tiled", a, "a", 2)
    _gemm_ndim("gemm_tiled", b, "b", 2)
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"gemm_tiled: cannot multiply a of shape {a.shape} by b of shape {b.shape}")
    (m, k), n = a.shape, b.shape[1]
    mr, nr, kc, mc = _TILED_MR, _TILED_NR[a.dtype], _TILED_KC, _TILED_MC
    c = np.zeros((m, n), dtype=a.dtype)
    for pc in range(0, k, kc):                              # KC blocks of the sum, in order
        for ic in range(0, m, mc):                          # MC rows of A
            for jr in range(0, n, nr):                      # an NR-wide sliver of B
                b_sliver = b[pc:pc + kc, jr:jr + nr]
                for ir in range(ic, min(ic + mc, m), mr):   # an MR-tall sliver of A
                    a_sliver = a[ir:ir + mr, pc:pc + kc]
                    tile = np.zeros((a_sliver.shape[0], b_sliver.shape[1]), dtype=a.dtype)
                    for p in range(a_sliver.shape[1]):      # the micro-kernel
                        tile += np.multiply.outer(a_sliver[:, p], b_sliver[p])
                    if pc == 0:
                        c[ir:ir + mr, jr:jr + nr] = tile
                    else:
                        c[ir:ir + mr, jr:jr + nr] += tile
    return c
