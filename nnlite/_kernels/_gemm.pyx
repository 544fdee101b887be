# cython: language_level=3
"""Matrix products: BLAS-backed ``gemm``/``bmm``/``linear_forward``, ``bias_grad``,
and ``gemm_tiled``, a readable cache-blocked matrix multiply.

BLAS is Fortran, so it sees every row-major array as its transpose. To get the
row-major ``C = op(A) @ op(B)`` we ask BLAS for the column-major
``C^T = op(B)^T @ op(A)^T``: swap the operands, keep the flags. A transposed or
column-major operand is never copied: it is handed to BLAS with the transpose
flag flipped, and a row-sliced one with its row stride as the leading dimension.

Every product goes through ``_blas.pyx``: one-thread BLAS calls on fixed
blocks shared among OpenMP threads, so ``gemm``, ``bmm`` and ``linear_forward``
are bit-identical for any thread count, like ``gemm_tiled`` and ``bias_grad``.
Twins: ``reference/_gemm.py``.
"""
import numpy as np
cimport numpy as cnp
cimport cython
from cython.parallel cimport parallel, prange, threadid
from libc.limits cimport INT_MAX

from nnlite._kernels._blas cimport (blas_pin_one_thread, gemm_min_split_work, blas_restore_threads,
                                    dgemm_rowmajor, dgemm_serial, dlinear_rowmajor, fill_bias, gemv_row,
                                    relu_block, sgemm_rowmajor, sgemm_serial, slinear_rowmajor)

from nnlite._kernels._threads cimport threads_for, threads_for_streaming
from nnlite._kernels._checks cimport c_contiguous as _c, flag as _flag, float_type as _float_type, separate

cnp.import_array()

__all__ = ["gemm", "bmm", "linear_forward", "bias_grad", "gemm_tiled"]

ctypedef fused floating:
    float
    double

cdef enum:
    BIAS_GRAD_BLOCK = 256    # rows per partial column sum; fixed, so any thread count agrees
    BIAS_GRAD_CHUNK = 64     # columns per thread task in bias_grad


# ------------------------------------------------------------ validation -----

cdef int _pair_type(str op, object a, str name_a, object b, str name_b, int ndim) except -1:
    cdef int t = _float_type(op, a, name_a)
    if _float_type(op, b, name_b) != t:
        raise TypeError(f"{op}: all operands must share one dtype, got {a.dtype} ({name_a}) "
                        f"and {b.dtype} ({name_b})")
    if ndim == 0:   # the caller checks the dims itself
        return t
    if cnp.PyArray_NDIM(<cnp.ndarray>a) != ndim:   # both are ndarrays: _float_type checked
        raise ValueError(f"{op}: {name_a} must be {ndim}-D, got shape {a.shape}")
    if cnp.PyArray_NDIM(<cnp.ndarray>b) != ndim:
        raise ValueError(f"{op}: {name_b} must be {ndim}-D, got shape {b.shape}")
    return t


cdef inline cnp.ndarray _new_matrix(Py_ssize_t rows, Py_ssize_t cols, int t, bint zeroed):
    """A fresh C-contiguous (rows, cols) array, straight from the NumPy C API (~0.1 us)."""
    cdef cnp.npy_intp dims[2]
    dims[0] = rows
    dims[1] = cols
    if zeroed:
        return cnp.PyArray_ZEROS(2, dims, t, 0)
    return cnp.PyArray_EMPTY(2, dims, t, 0)


cdef int _blas_int(str op, Py_ssize_t v) except -1:
    if v > INT_MAX:
        raise ValueError(f"{op}: dimension {v} is too large for 32-bit BLAS")
    return <int>v


# ------------------------------------------------------------------ BLAS -----

cdef struct BlasOperand:
    char *data      # first element of op's stored matrix (batch 0 for bmm)
    int ld          # distance between stored rows, in elements
    bint trans      # whether BLAS must transpose the stored matrix


cdef object _blas_operand(cnp.ndarray arr, int axis, bint trans, BlasOperand *out):
    """Describe the matrix in axes (axis, axis + 1) of ``arr`` for BLAS; return the array
    actually read (``arr`` itself, or a C-contiguous copy when no stride fits). The axes
    before ``axis`` are batch axes: any stride that is a whole number of elements will do."""
    cdef Py_ssize_t item = cnp.PyArray_ITEMSIZE(arr)
    # dims and strides read through the C API: ``arr.shape`` would build a tuple per call
    cdef cnp.npy_intp *dims = cnp.PyArray_DIMS(arr)
    cdef cnp.npy_intp *strides = cnp.PyArray_STRIDES(arr)
    cdef Py_ssize_t rows = dims[axis], cols = dims[axis + 1]
    cdef Py_ssize_t s0 = strides[axis], s1 = strides[axis + 1]
    cdef int d
    cdef bint whole_items = True
    for d in range(axis):
        whole_items = whole_items and strides[d] % item == 0
    if cnp.PyArray_ISALIGNED(arr) and whole_items:
        # stored row-major with a row stride BLAS can use as its leading dimension
        if (cols <= 1 or s1 == item) and (rows <= 1 or (s0 % item == 0 and s0 >= item * cols and s0 > 0)):
            out.data, out.trans = <char*>cnp.PyArray_DATA(arr), trans
            out.ld = _blas_int("gemm", s0 // item if rows > 1 else max(cols, 1))
            return arr
        # stored column-major (a transpose): read it as the transpose, flip the flag
        if (rows <= 1 or s0 == item) and (cols <= 1 or (s1 % item == 0 and s1 >= item * rows and s1 > 0)):
            out.data, out.trans = <char*>cnp.PyArray_DATA(arr), not trans
            out.ld = _blas_int("gemm", s1 // item if cols > 1 else max(rows, 1))
            return arr
    arr = np.ascontiguousarray(arr)
    out.data, out.trans = <char*>cnp.PyArray_DATA(arr), trans
    out.ld = _blas_int("gemm", max(cols, 1))
    return arr


cdef void _blas_gemm(floating *dummy, BlasOperand a, BlasOperand b, int m, int n, int k,
                     floating beta, floating *c, int ldc) noexcept nogil:
    """Row-major c (m x n, rows ldc elements apart) = op(a) @ op(b) + beta c, as column-major
    c^T = op(b)^T op(a)^T. The row stride only says where BLAS writes; the sums are the same."""
    # One row (batch-1 inference): GEMV reads the matrix once; GEMM would pack all of it first.
    cdef int saved[4]
    if m == 1 and k > 0:
        blas_pin_one_thread(saved)  # a one-thread GEMV: the same bits for any thread count
        gemv_row(b.trans, n, k, <floating*>a.data, a.ld if a.trans else 1, <floating*>b.data, b.ld, beta, c)
        blas_restore_threads(saved)
        return
    if floating is float:
        sgemm_rowmajor(a.trans, b.trans, m, n, k, <float*>a.data, a.ld, <float*>b.data, b.ld,
                       beta, c, ldc)
    else:
        dgemm_rowmajor(a.trans, b.trans, m, n, k, <double*>a.data, a.ld, <double*>b.data, b.ld,
                       beta, c, ldc)


cdef tuple _op_shape(object arr, bint trans):
    shape = arr.shape
    cdef Py_ssize_t nd = len(shape)
    return (shape[nd - 1], shape[nd - 2]) if trans else (shape[nd - 2], shape[nd - 1])


def gemm(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) for 2-D ``a``, ``b``, where op transposes when its flag is set."""
    cdef int t = _pair_type("gemm", a, "a", b, "b", 2)
    cdef bint ta = _flag("gemm", trans_a, "trans_a"), tb = _flag("gemm", trans_b, "trans_b")
    m, ka = _op_shape(a, ta)
    kb, n = _op_shape(b, tb)
    if ka != kb:
        raise ValueError(f"gemm: inner dimensions differ: op(a) has shape {(m, ka)} "
                         f"(a {a.shape}, trans_a={ta}), op(b) has shape {(kb, n)} "
                         f"(b {b.shape}, trans_b={tb})")
    if m == 0 or n == 0 or ka == 0:
        return _new_matrix(m, n, t, True)
    cdef BlasOperand oa, ob
    keep_a = _blas_operand(a, 0, ta, &oa)
    keep_b = _blas_operand(b, 0, tb, &ob)
    cdef int im = _blas_int("gemm", m), in_ = _blas_int("gemm", n), ik = _blas_int("gemm", ka)
    cdef cnp.ndarray c = _new_matrix(m, n, t, False)
    if t == cnp.NPY_FLOAT32:
        with nogil:
            _blas_gemm(<float*>NULL, oa, ob, im, in_, ik, 0, <float*>cnp.PyArray_DATA(c), in_)
    else:
        with nogil:
            _blas_gemm(<double*>NULL, oa, ob, im, in_, ik, 0, <double*>cnp.PyArray_DATA(c), in_)
    return c


def bmm(a, b, trans_a=False, trans_b=False, out=None):
    """Batched gemm: op(a[i]) @ op(b[i]) for every batch index i of 3-D or 4-D ``a`` and ``b``.

    The batch dims (one, or two) are the leading ones and must be equal; each
    operand may have any strides there, so a permuted view, such as attention's
    (N, H, L, head_dim) heads of an (N, L, E) array, is read in place (and its last
    two dims too, when one of them has unit stride). Each item is one BLAS call.
    Items too small for the BLAS door to share (attention heads, say) are shared
    out whole among the threads instead, each a one-thread call, and so are 8 or
    more items up to 8 times that size (``_share_items_whole``); other items run
    one after another, each cut among the threads by the door.

    The result is a new C-contiguous (*batch, m, n) array, or ``out`` when given:
    an array of the result's shape and dtype, writable, that shares no memory with
    ``a`` or ``b``, with any batch strides, and its last two dims stored row by row
    the way BLAS writes them (unit column stride, a row stride of at least n
    elements; checks.product_out has the exact rule). A permuted view of an
    (N, L, H, d) buffer, say, receives (N, H, L, d) products in place. The row
    stride only tells BLAS where to write, so the result has the same bits with
    or without ``out``. Measured on a two-core AMD EPYC (AVX2+FMA, 2 threads, three
    runs), float32 (32, 4, 64, 64) @ heads (32, 4, 64, 32): into a fresh head view
    of (N, L, H, d) storage 16-20% faster than into a new array copied into that
    order afterwards, and 3-12% slower than into a new array left as it is (the
    rows written are spread over the storage).
    """
    cdef int t = _pair_type("bmm", a, "a", b, "b", 0)
    cdef int nd = cnp.PyArray_NDIM(<cnp.ndarray>a), d
    if (nd != 3 and nd != 4) or cnp.PyArray_NDIM(<cnp.ndarray>b) != nd:
        raise ValueError(f"bmm: a and b must both be 3-D or both 4-D (batch dims, then the matrix), "
                         f"got shapes {a.shape} and {b.shape}")
    cdef cnp.npy_intp *da = cnp.PyArray_DIMS(<cnp.ndarray>a)
    cdef cnp.npy_intp *db = cnp.PyArray_DIMS(<cnp.ndarray>b)
    cdef bint ta = _flag("bmm", trans_a, "trans_a"), tb = _flag("bmm", trans_b, "trans_b")
    cdef Py_ssize_t m = da[nd - 1] if ta else da[nd - 2], ka = da[nd - 2] if ta else da[nd - 1]
    cdef Py_ssize_t kb = db[nd - 1] if tb else db[nd - 2], n = db[nd - 2] if tb else db[nd - 1]
    if da[0] != db[0] or da[nd - 3] != db[nd - 3] or ka != kb:
        raise ValueError(f"bmm: cannot multiply op(a) of shape {a.shape[:nd - 2] + (m, ka)} (a {a.shape}, "
                         f"trans_a={ta}) by op(b) of shape {b.shape[:nd - 2] + (kb, n)} (b {b.shape}, "
                         f"trans_b={tb})")
    cdef cnp.npy_intp dims[4]   # of the result: the batch dims, then (m, n)
    for d in range(nd - 2):
        dims[d] = da[d]
    dims[nd - 2], dims[nd - 1] = m, n
    # Two batch dims (outer, inner); a 3-D batch is one outer item of `inner` items.
    cdef Py_ssize_t inner = da[nd - 3], outer = da[0] if nd == 4 else 1
    cdef Py_ssize_t batch = outer * inner
    cdef cnp.ndarray c
    if out is not None:
        _check_product_out(out, nd, dims, t)
        separate("bmm", [("out", out), ("a", a), ("b", b)], 1)
        c = <cnp.ndarray>out
        if batch == 0 or m == 0 or n == 0 or ka == 0:
            cnp.PyArray_FillWithScalar(c, 0)
            return c
    elif batch == 0 or m == 0 or n == 0 or ka == 0:
        return cnp.PyArray_ZEROS(nd, dims, t, 0)
    else:
        c = cnp.PyArray_EMPTY(nd, dims, t, 0)
    cdef BlasOperand oa, ob
    cdef cnp.ndarray ka_arr = _blas_operand(a, nd - 2, ta, &oa)
    cdef cnp.ndarray kb_arr = _blas_operand(b, nd - 2, tb, &ob)
    cdef Py_ssize_t sa[2]
    cdef Py_ssize_t sb[2]
    cdef Py_ssize_t sc[2]   # byte strides between items: (outer, inner)
    sa[0] = ka_arr.strides[0] if nd == 4 else 0
    sb[0] = kb_arr.strides[0] if nd == 4 else 0
    sa[1], sb[1] = ka_arr.strides[nd - 3], kb_arr.strides[nd - 3]
    cdef int im = _blas_int("bmm", m), in_ = _blas_int("bmm", n), ik = _blas_int("bmm", ka)
    cdef int ldc = in_   # elements between rows of an item of c
    if out is None:
        sc[1] = m * n * cnp.PyArray_ITEMSIZE(c)
        sc[0] = inner * sc[1]
    else:
        sc[0] = c.strides[0] if nd == 4 else 0
        sc[1] = c.strides[nd - 3]
        if m > 1:   # (one row: any ldc >= n will do)
            ldc = _blas_int("bmm", c.strides[nd - 2] // cnp.PyArray_ITEMSIZE(c))
    # the one float/double choice of bmm: _bmm_items is written once, on `floating`
    with nogil:
        if t == cnp.NPY_FLOAT32:
            _bmm_items(<float*>cnp.PyArray_DATA(c), oa, ob, batch, inner, sa, sb, sc, ldc, im, in_, ik)
        else:
            _bmm_items(<double*>cnp.PyArray_DATA(c), oa, ob, batch, inner, sa, sb, sc, ldc, im, in_, ik)
    return c


cdef int _check_product_out(object out, int nd, const cnp.npy_intp *dims, int t) except -1:
    """checks.product_out's fast path: ``out`` can take the (dims) product of type t as it is."""
    if not _writable_product(out, nd, dims, t):
        from nnlite._kernels.checks import product_out
        shape = tuple([dims[d] for d in range(nd)])
        product_out("bmm", out, shape, np.dtype(np.float32 if t == cnp.NPY_FLOAT32 else np.float64))
        raise ValueError(f"bmm: out cannot hold the result (shape {shape}), got shape {out.shape}, "
                         f"strides {out.strides}")
    return 0


cdef bint _writable_product(object out, int nd, const cnp.npy_intp *dims, int t):
    """The rule of checks.product_out, without building any Python object."""
    if not cnp.PyArray_Check(out):
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>out
    if (cnp.PyArray_TYPE(arr) != t or cnp.PyArray_ISBYTESWAPPED(arr) or cnp.PyArray_NDIM(arr) != nd
            or not cnp.PyArray_ISWRITEABLE(arr)):
        return False
    cdef Py_ssize_t item = cnp.PyArray_ITEMSIZE(arr), extent = item, stride, size
    cdef Py_ssize_t sizes[4]
    cdef Py_ssize_t steps[4]   # |stride| of the dims longer than 1, sorted by insertion
    cdef int d, j, used = 0
    for d in range(nd):
        if cnp.PyArray_DIM(arr, d) != dims[d]:
            return False
    if cnp.PyArray_SIZE(arr) == 0:   # nothing is written
        return True
    if not cnp.PyArray_ISALIGNED(arr):
        return False
    for d in range(nd):
        if cnp.PyArray_STRIDE(arr, d) % item != 0:
            return False
    if dims[nd - 1] > 1 and cnp.PyArray_STRIDE(arr, nd - 1) != item:
        return False
    if dims[nd - 2] > 1 and cnp.PyArray_STRIDE(arr, nd - 2) < item * dims[nd - 1]:
        return False
    for d in range(nd):   # no two elements in one place: each stride clears what the smaller span
        if dims[d] <= 1:
            continue
        stride = abs(cnp.PyArray_STRIDE(arr, d))
        j = used
        while j > 0 and steps[j - 1] > stride:
            steps[j], sizes[j] = steps[j - 1], sizes[j - 1]
            j -= 1
        steps[j], sizes[j] = stride, dims[d]
        used += 1
    for j in range(used):
        if steps[j] < extent:
            return False
        extent += (sizes[j] - 1) * steps[j]
    return True


cdef inline char *_item(char *first, Py_ssize_t i, Py_ssize_t inner, const Py_ssize_t *strides) noexcept nogil:
    """The first byte of batch item i, counted in C order over (outer, inner) items."""
    cdef Py_ssize_t i0 = i // inner
    return first + i0 * strides[0] + (i - i0 * inner) * strides[1]


cdef enum:
    SHARED_ITEMS = 8        # this many items or more are shared out whole...
    SHARED_ITEM_FACTOR = 8  # ...up to this many times the work the door would cut


cdef inline bint _share_items_whole(Py_ssize_t batch, Py_ssize_t work) noexcept nogil:
    """True when each item is one one-thread call and the threads share the items; False when
    the items run one after another, each cut among the threads by the door. From the shape
    alone, so the bytes do not depend on the thread count. A product too small for the door
    to cut is always shared whole; a bigger one is when there are enough items to keep every
    thread busy (at most one item more on one thread than on another: an eighth of the work
    at 8 items) and each is small enough that the wake-up of the sleeping threads at every
    item (tens of microseconds) would cost more than that."""
    cdef Py_ssize_t split = gemm_min_split_work()
    return work < split or (batch >= SHARED_ITEMS and work < SHARED_ITEM_FACTOR * split)


cdef void _bmm_items(floating *c, BlasOperand oa, BlasOperand ob, Py_ssize_t batch, Py_ssize_t inner,
                     const Py_ssize_t *sa, const Py_ssize_t *sb, const Py_ssize_t *sc, int ldc, int im,
                     int in_, int ik) noexcept nogil:
    """c[i] = op(a[i]) @ op(b[i]) for the ``batch`` items; sa, sb, sc: (outer, inner) item strides
    in bytes from oa.data, ob.data and c; ldc: elements between rows of an item of c."""
    cdef Py_ssize_t i
    cdef int saved[4]
    cdef int nt = threads_for(batch * <Py_ssize_t>im * in_ * ik // 16)
    cdef char *a0 = oa.data
    cdef char *b0 = ob.data
    cdef char *c0 = <char*>c
    if _share_items_whole(batch, <Py_ssize_t>im * in_ * ik):
        blas_pin_one_thread(saved)
        for i in prange(batch, nogil=True, num_threads=nt, schedule='static'):
            if floating is float:
                sgemm_serial(oa.trans, ob.trans, im, in_, ik, <float*>_item(a0, i, inner, sa), oa.ld,
                             <float*>_item(b0, i, inner, sb), ob.ld, 0, <float*>_item(c0, i, inner, sc), ldc)
            else:
                dgemm_serial(oa.trans, ob.trans, im, in_, ik, <double*>_item(a0, i, inner, sa), oa.ld,
                             <double*>_item(b0, i, inner, sb), ob.ld, 0, <double*>_item(c0, i, inner, sc),
                             ldc)
        blas_restore_threads(saved)
        return
    for i in range(batch):   # serial: each product is big enough for the door to share
        oa.data = _item(a0, i, inner, sa)
        ob.data = _item(b0, i, inner, sb)
        _blas_gemm(c, oa, ob, im, in_, ik, 0, <floating*>_item(c0, i, inner, sc), ldc)


# ------------------------------------------------------------- linear layer -----

def linear_forward(x, weight, bias, activation):
    """act(x @ weight.T + bias); x (N, in_features), weight (out_features, in_features).

    The output starts as the broadcast bias (or zeros) and BLAS adds the product
    onto it (beta = 1); relu then clamps it in place. The same bytes for any
    thread count. x and weight are read in place in any layout BLAS can read
    (a transposed weight included) and copied once otherwise. How it runs
    depends on the shape:

    * one row (batch-1 inference): the bias copy, one single-thread GEMV (it reads
      the weight once; GEMM would pack all of it first) and the ReLU, all on the
      calling thread, without a parallel region;
    * more rows, through ``slinear_rowmajor`` in ``_blas.pyx``: when the output is
      cut in blocks of rows or of columns, each thread does all three on its own
      block, in one parallel region, while the block is still in its cache, with no
      temporary array; when the inner dimension is cut instead (long beside both
      sides of the output), the bias is filled first, the chunks' products go into
      the output and a scratch buffer, and the ReLU is applied as their ordered sum
      is written: up to three regions; a product too small to share is one call.
    """
    op = "linear_forward"
    cdef int t = _pair_type(op, x, "x", weight, "weight", 2)
    if bias is not None and _float_type(op, bias, "bias") != t:
        raise TypeError(f"{op}: all operands must share one dtype, got {x.dtype} (x) "
                        f"and {bias.dtype} (bias)")
    # dims through the C API: at batch 1 this wrapper's own cost is a share of the call
    cdef cnp.npy_intp *x_dims = cnp.PyArray_DIMS(<cnp.ndarray>x)
    cdef cnp.npy_intp *w_dims = cnp.PyArray_DIMS(<cnp.ndarray>weight)
    cdef Py_ssize_t batch = x_dims[0], in_features = w_dims[1], out_features = w_dims[0]
    if x_dims[1] != in_features:
        raise ValueError(f"{op}: weight of shape {weight.shape} expects in_features={in_features}, "
                         f"input has shape {x.shape}")
    if bias is not None and (cnp.PyArray_NDIM(<cnp.ndarray>bias) != 1
                             or cnp.PyArray_DIMS(<cnp.ndarray>bias)[0] != out_features):
        raise ValueError(f"{op}: bias must have shape ({out_features},) to match weight "
                         f"{weight.shape}, got {bias.shape}")
    # checks.fused_relu's rule, written out: this wrapper is on batch-1 inference's path
    cdef bint relu = activation is not None
    if relu and not (isinstance(activation, str) and activation == "relu"):
        raise ValueError(f"{op}: activation must be None or 'relu', got {activation!r}")
    cdef cnp.ndarray y
    cdef cnp.ndarray bc = None
    cdef BlasOperand ox, ow
    if bias is not None:
        bc = _c(bias)
    # only the one-row path adds the product onto y without writing it first
    y = _new_matrix(batch, out_features, t, bias is None and batch == 1)
    if batch == 0 or out_features == 0:
        return y
    keep_x = _blas_operand(x, 0, False, &ox)
    keep_w = _blas_operand(weight, 0, True, &ow)
    cdef int im = _blas_int(op, batch), in_ = _blas_int(op, out_features)
    cdef int ik = _blas_int(op, in_features)
    # the one float/double choice of linear_forward: _linear is written once, on `floating`
    if t == cnp.NPY_FLOAT32:
        _linear(<float*>cnp.PyArray_DATA(y), bc, ox, ow, im, in_, ik, relu)
    else:
        _linear(<double*>cnp.PyArray_DATA(y), bc, ox, ow, im, in_, ik, relu)
    return y


cdef void _linear(floating* y, object bias, BlasOperand ox, BlasOperand ow, int batch,
                  int out_features, int in_features, bint relu) noexcept:
    """y = act(x @ weight.T + bias) into y, for linear_forward after its checks."""
    cdef const floating* b = NULL
    if bias is not None:
        b = <floating*>cnp.PyArray_DATA(<cnp.ndarray>bias)
    with nogil:
        if batch > 1:
            # bias, product and ReLU through the BLAS door, which cuts the work by the shape
            if floating is float:
                slinear_rowmajor(ox.trans, ow.trans, batch, out_features, in_features,
                                 <float*>ox.data, ox.ld, <float*>ow.data, ow.ld, b, relu, y, out_features)
            else:
                dlinear_rowmajor(ox.trans, ow.trans, batch, out_features, in_features,
                                 <double*>ox.data, ox.ld, <double*>ow.data, ow.ld, b, relu, y, out_features)
            return
        # one row: even a one-thread OpenMP region would cost more than these two loops
        if b != NULL:
            fill_bias(y, out_features, 1, out_features, b)
        if in_features > 0:
            _blas_gemm(y, ox, ow, batch, out_features, in_features, 1, y, out_features)
        if relu:
            relu_block(y, out_features, 1, out_features)


# ---------------------------------------------------------------- bias_grad -----

cdef void _bias_grad_columns(const floating *g, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t j0,
                             Py_ssize_t j1, floating *out) noexcept nogil:
    # Rows are summed in blocks of BIAS_GRAD_BLOCK, row after row, and the block
    # sums are added in order: the k-th bit of the result never depends on how
    # the columns were shared between threads.
    cdef floating partial[BIAS_GRAD_CHUNK]
    cdef Py_ssize_t start, r, j, width = j1 - j0
    for j in range(width):
        out[j0 + j] = 0
    start = 0
    while start < rows:
        for j in range(width):
            partial[j] = 0
        for r in range(start, min(start + BIAS_GRAD_BLOCK, rows)):
            for j in range(width):
                partial[j] += g[r * cols + j0 + j]
        for j in range(width):
            out[j0 + j] += partial[j]
        start += BIAS_GRAD_BLOCK


cdef void _bias_grad(const floating *g, Py_ssize_t rows, Py_ssize_t cols,
                     floating *out) noexcept nogil:
    cdef Py_ssize_t chunk, n_chunks = (cols + BIAS_GRAD_CHUNK - 1) // BIAS_GRAD_CHUNK
    cdef Py_ssize_t j0
    for chunk in prange(n_chunks, num_threads=threads_for_streaming(rows * cols), schedule='static'):
        j0 = chunk * BIAS_GRAD_CHUNK
        _bias_grad_columns(g, rows, cols, j0, min(j0 + BIAS_GRAD_CHUNK, cols), out)


def bias_grad(g):
    """Column sums of 2-D ``g`` (N, M) -> (M,): the gradient of a broadcast bias."""
    cdef int t = _float_type("bias_grad", g, "g")
    if g.ndim != 2:
        raise ValueError(f"bias_grad: g must be 2-D, got shape {g.shape}")
    cdef cnp.ndarray gc = _c(g)
    cdef Py_ssize_t rows = gc.shape[0], cols = gc.shape[1]
    cdef cnp.ndarray out = np.empty(cols, dtype=gc.dtype)
    if t == cnp.NPY_FLOAT32:
        with nogil:
            _bias_grad(<float*>cnp.PyArray_DATA(gc), rows, cols, <float*>cnp.PyArray_DATA(out))
    else:
        with nogil:
            _bias_grad(<double*>cnp.PyArray_DATA(gc), rows, cols, <double*>cnp.PyArray_DATA(out))
    return out


# --------------------------------------------------------------- gemm_tiled -----
#
# How a fast matrix multiply is built (after Goto & van de Geijn, and BLIS).
#
# C (M x N) += A (M x K) @ B (K x N) does 2MNK flops on only MK + KN + MN
# numbers, so each number can be reused ~N (or M) times. The trick is to reuse
# it while it is still close to the arithmetic units:
#
# * Registers. The micro-kernel keeps an MR x NR tile of C in registers
#   (6 x 16 floats = 12 AVX registers) and, for each k, loads MR numbers of A
#   and NR of B to do MR*NR multiply-adds: 2 loads per ~5 fused multiply-adds.
# * L1 cache. One KC x NR sliver of B (16 KiB for floats: half of a 32 KiB L1)
#   stays in L1 while the micro-kernel sweeps down the MC rows of the A block.
# * L2 cache. One MC x KC block of A (96 KiB: 3/16 of a 512 KiB L2) stays in
#   L2 while we sweep across the NR slivers of the B panel.
# KC and MC come from the machine's own cache sizes (blocking.py).
# * L3 / memory. The KC x NC panel of B is packed once and reused for all of M.
#
# Packing copies each block into the exact order the micro-kernel reads it
# (A in MR-tall column slivers, B in NR-wide row slivers, edges zero-padded),
# so the innermost loop walks memory contiguously and never sees a stride.
#
# Threads take whole column panels of C. Each C element is computed by one
# thread, through the same micro-kernel, over k in the same order (KC blocks
# in order, k within a block in order), so the result does not depend on the
# thread count -- a matrix multiply with no reduction across threads.

cdef extern from *:
    """
    /* The micro-kernel, in C. Each row of the MR x NR accumulator tile is NR/W
       SIMD vectors of W = 32 bytes / sizeof(T) numbers (GCC/Clang vector
       extension; other compilers get the same loops on scalars). For each k it
       broadcasts one number of A per row and multiplies it into the NR numbers
       of B: 2 MR NR/W vector operations on MR + NR loaded numbers, with the 12
       accumulator vectors never leaving registers.

       setup.py builds for the build machine (-march=native) unless
       NNLITE_MARCH says otherwise; for a baseline x86-64 build (SSE2, where a
       32-byte vector is two 16-byte halves) GCC on x86-64 Linux also compiles
       the kernel for AVX2 and picks the faster copy at load time. Either way
       -ffp-contract=off keeps a separate multiply and add (no FMA), which round
       the same way in every copy, so the result has the same bits on every
       x86-64 machine. */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
    #define NNL_CLONES __attribute__((target_clones("avx2", "default")))
    #else
    #define NNL_CLONES
    #endif
    #define NNL_MR 6
    #define NNL_NR_F32 16
    #define NNL_NR_F64 8

    #if defined(__GNUC__)
    /* tile (MR x NR, row-major) = sum over p < kc of a[:, p] b[p, :] */
    #define NNL_MICRO_KERNEL(NAME, T, NR)                                           \
    NNL_CLONES static void NAME(Py_ssize_t kc, const T *restrict a,                \
                                const T *restrict b, T *restrict tile)             \
    {                                                                               \
        typedef T vec __attribute__((vector_size(32)));                             \
        enum { W = 32 / sizeof(T), NV = NR / W };                                   \
        vec acc[NNL_MR][NV];                                                        \
        for (int i = 0; i < NNL_MR; ++i)                                            \
            for (int v = 0; v < NV; ++v)                                            \
                acc[i][v] = (vec){0};                                               \
        for (Py_ssize_t p = 0; p < kc; ++p) {   /* one rank-1 update per k */       \
            vec bv[NV];                                                             \
            for (int v = 0; v < NV; ++v)                                            \
                memcpy(&bv[v], b + p * NR + v * W, sizeof(vec));                    \
            for (int i = 0; i < NNL_MR; ++i) {                                      \
                T ai = a[p * NNL_MR + i];   /* scalar * vector broadcasts it */     \
                for (int v = 0; v < NV; ++v)                                        \
                    acc[i][v] += ai * bv[v];                                        \
            }                                                                       \
        }                                                                           \
        for (int i = 0; i < NNL_MR; ++i)                                            \
            for (int v = 0; v < NV; ++v)                                            \
                memcpy(tile + i * NR + v * W, &acc[i][v], sizeof(vec));             \
    }
    #else
    #define NNL_MICRO_KERNEL(NAME, T, NR)                                           \
    static void NAME(Py_ssize_t kc, const T *a, const T *b, T *tile)               \
    {                                                                               \
        T acc[NNL_MR][NR] = {{0}};                                                  \
        for (Py_ssize_t p = 0; p < kc; ++p)                                         \
            for (int i = 0; i < NNL_MR; ++i)                                        \
                for (int j = 0; j < NR; ++j)                                        \
                    acc[i][j] += a[p * NNL_MR + i] * b[p * NR + j];                 \
        for (int i = 0; i < NNL_MR; ++i)                                            \
            for (int j = 0; j < NR; ++j)                                            \
                tile[i * NR + j] = acc[i][j];                                       \
    }
    #endif
    NNL_MICRO_KERNEL(nnl_micro_kernel_f32, float, NNL_NR_F32)
    NNL_MICRO_KERNEL(nnl_micro_kernel_f64, double, NNL_NR_F64)
    """
    int NR_F32 "NNL_NR_F32"
    int NR_F64 "NNL_NR_F64"
    void nnl_micro_kernel_f32(Py_ssize_t kc, const float *a, const float *b,
                              float *tile) noexcept nogil
    void nnl_micro_kernel_f64(Py_ssize_t kc, const double *a, const double *b,
                              double *tile) noexcept nogil

cdef enum:
    MR = 6         # micro-tile rows; must equal NNL_MR above
    NC_MAX = 1024  # widest column panel one thread takes

# The cache blocks, from this machine's caches at import (blocking.py; the twin reads the
# same values, since KC decides the order of the sum). With 32 KiB of L1 and 512 KiB of L2:
cdef Py_ssize_t KC = 256   # depth of a packed block: a KC x NR sliver of B fills half of L1
cdef Py_ssize_t MC = 96    # rows of A per packed block (a multiple of MR): 3/16 of L2


def _use_blocking():
    global KC, MC
    from nnlite._kernels.blocking import gemm_blocking
    chosen = gemm_blocking()
    KC, MC = chosen["kc"], chosen["mc"]


_use_blocking()


def tiled_blocks():
    """gemm_tiled's cache blocks in use: (KC, MC)."""
    return KC, MC


cdef inline int _nr(floating *dummy) noexcept nogil:
    if floating is float:
        return NR_F32
    else:
        return NR_F64


cdef void _pack_a(const floating *a, Py_ssize_t lda, Py_ssize_t mc, Py_ssize_t kc,
                  floating *ap) noexcept nogil:
    """A[0:mc, 0:kc] -> MR-tall slivers, each stored k-major (MR numbers per k)."""
    cdef Py_ssize_t s, i0, i, p
    for s in range((mc + MR - 1) // MR):
        i0 = s * MR
        for p in range(kc):
            for i in range(MR):
                ap[p * MR + i] = a[(i0 + i) * lda + p] if i0 + i < mc else 0
        ap += MR * kc


cdef void _pack_b(const floating *b, Py_ssize_t ldb, Py_ssize_t kc, Py_ssize_t nc,
                  floating *bp) noexcept nogil:
    """B[0:kc, 0:nc] -> NR-wide slivers, each stored row by row (NR numbers per k)."""
    cdef int nr = _nr(bp)
    cdef Py_ssize_t s, j0, j, p
    for s in range((nc + nr - 1) // nr):
        j0 = s * nr
        for p in range(kc):
            for j in range(nr):
                bp[p * nr + j] = b[p * ldb + j0 + j] if j0 + j < nc else 0
        bp += nr * kc


cdef inline void _store_tile(const floating *tile, int nr_full, floating *c, Py_ssize_t ldc,
                             Py_ssize_t mr, Py_ssize_t nr, bint accumulate) noexcept nogil:
    """C += tile (C = tile for the first KC block); edge tiles store only mr x nr."""
    cdef Py_ssize_t i, j
    for i in range(mr):
        for j in range(nr):
            if accumulate:
                c[i * ldc + j] += tile[i * nr_full + j]
            else:
                c[i * ldc + j] = tile[i * nr_full + j]


cdef void _tiled_panel(const floating *a, const floating *b, floating *c, Py_ssize_t m,
                       Py_ssize_t n, Py_ssize_t k, Py_ssize_t jc, Py_ssize_t nc,
                       floating *ap, floating *bp) noexcept nogil:
    """C[:, jc:jc+nc] = A @ B[:, jc:jc+nc], by one thread, in a fixed k-order."""
    cdef int nr = _nr(ap)
    cdef floating tile[MR * 16]     # one micro-tile (MR x NR), NR <= 16
    cdef Py_ssize_t pc, kc, ic, mc, jr, ir, kb, ib, js, is_
    for kb in range((k + KC - 1) // KC):                # KC blocks of k, in order
        pc = kb * KC
        kc = min(KC, k - pc)
        _pack_b(&b[pc * n + jc], n, kc, nc, bp)
        for ib in range((m + MC - 1) // MC):            # MC blocks of rows
            ic = ib * MC
            mc = min(MC, m - ic)
            _pack_a(&a[ic * k + pc], k, mc, kc, ap)
            for js in range((nc + nr - 1) // nr):       # NR slivers of the B panel
                jr = js * nr
                for is_ in range((mc + MR - 1) // MR):  # MR slivers of the A block
                    ir = is_ * MR
                    if floating is float:
                        nnl_micro_kernel_f32(kc, &ap[ir * kc], &bp[jr * kc], tile)
                    else:
                        nnl_micro_kernel_f64(kc, &ap[ir * kc], &bp[jr * kc], tile)
                    _store_tile(tile, nr, &c[(ic + ir) * n + jc + jr], n,
                                min(MR, mc - ir), min(nr, nc - jr), kb > 0)


cdef void _tiled(const floating *a, const floating *b, floating *c, Py_ssize_t m,
                 Py_ssize_t n, Py_ssize_t k, Py_ssize_t panel, Py_ssize_t n_panels,
                 floating *work, Py_ssize_t per_thread, int nt) noexcept nogil:
    cdef Py_ssize_t p, jc
    cdef floating *ap = NULL
    cdef floating *bp = NULL
    with parallel(num_threads=nt):
        ap = work + threadid() * per_thread      # each thread packs into its own buffers
        bp = ap + MC * KC
        for p in prange(n_panels, schedule='static'):
            jc = p * panel
            _tiled_panel(a, b, c, m, n, k, jc, min(panel, n - jc), ap, bp)


def gemm_tiled(a, b):
    """a @ b for 2-D ``a`` (M, K) and ``b`` (K, N): the cache-blocked teaching kernel."""
    cdef int t = _pair_type("gemm_tiled", a, "a", b, "b", 2)
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"gemm_tiled: cannot multiply a of shape {a.shape} by b of shape {b.shape}")
    cdef Py_ssize_t m = a.shape[0], k = a.shape[1], n = b.shape[1]
    if m == 0 or n == 0 or k == 0:
        return _new_matrix(m, n, t, True)
    cdef cnp.ndarray ac = _c(a), bc = _c(b)
    cdef cnp.ndarray c = _new_matrix(m, n, t, False)
    # the one float/double choice of gemm_tiled: _tiled_run is written once, on `floating`
    if t == cnp.NPY_FLOAT32:
        _tiled_run(<float*>cnp.PyArray_DATA(c), ac, bc, m, n, k)
    else:
        _tiled_run(<double*>cnp.PyArray_DATA(c), ac, bc, m, n, k)
    return c


cdef _tiled_run(floating *c, cnp.ndarray ac, cnp.ndarray bc, Py_ssize_t m, Py_ssize_t n,
                Py_ssize_t k):
    """Cut C into column panels, give each thread its packing buffers, run _tiled."""
    cdef int nr = _nr(c)
    cdef int nt = threads_for(m * n * k // 16)
    # Panels: at least one per thread, none wider than NC_MAX, a multiple of NR wide.
    # How C is cut into panels changes who computes an element, never how.
    cdef Py_ssize_t n_panels = max(nt, (n + NC_MAX - 1) // NC_MAX)
    cdef Py_ssize_t panel = ((n + n_panels - 1) // n_panels + nr - 1) // nr * nr
    n_panels = (n + panel - 1) // panel
    cdef Py_ssize_t per_thread = MC * KC + KC * panel + 64
    cdef cnp.ndarray work = np.empty(per_thread * nt, dtype=ac.dtype)
    with nogil:
        _tiled(<floating*>cnp.PyArray_DATA(ac), <floating*>cnp.PyArray_DATA(bc), c, m, n, k,
               panel, n_panels, <floating*>cnp.PyArray_DATA(work), per_thread, nt)
