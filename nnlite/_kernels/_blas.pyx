"""BLAS for the kernels, with results that do not depend on the thread count.

OpenBLAS splits a product between its threads differently for each thread
count, and the split decides the summation order of each output element: the
last bits change with ``nl.set_num_threads``. nnlite promises bit-identical
results for any thread count, so here

* OpenBLAS is pinned to one thread for the duration of each call (and
  restored after, so other users of the same BLAS are unaffected), and
* the parallelism is ours: the product is cut into fixed-size blocks of rows
  or columns of C (or, when C is small and the inner dimension long, of the
  inner dimension, with the partial products added in a fixed order), and the
  blocks are shared among OpenMP threads. The cut depends only on the shape.

So BLAS threads and OpenMP threads never multiply: each OpenMP thread runs a
one-thread BLAS call on its own block.
"""
from cython.parallel cimport prange
from libc.stdlib cimport free, malloc
from libc.string cimport memset
from scipy.linalg.cython_blas cimport dgemm, sgemm

from nnlite._kernels._threads cimport threads_for

ctypedef fused floating:
    float
    double

# The block sizes (BLOCK, MIN_SPLIT, MIN_SPLIT_WORK, K_BLOCK) are in _blas.pxd.


# ------------------------------------------------------ BLAS thread pinning -----

ctypedef int (*_get_threads_t)() noexcept nogil
ctypedef void (*_set_threads_t)(int) noexcept nogil

cdef _get_threads_t _blas_get[4]
cdef _set_threads_t _blas_set[4]
cdef int _n_blas = 0


def _find_openblas_thread_controls():
    """Addresses of (get, set)_num_threads of each loaded OpenBLAS, found through threadpoolctl."""
    import ctypes
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # then BLAS keeps its own thread count; results may vary in the last bits
        return []
    import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS our GEMMs call)
    found = []
    for lib in ThreadpoolController().lib_controllers:
        if lib.internal_api != "openblas":
            continue
        dll = ctypes.CDLL(lib.filepath)
        for prefix in ("", "scipy_"):
            for suffix in ("", "64_", "_64"):
                get = getattr(dll, f"{prefix}openblas_get_num_threads{suffix}", None)
                put = getattr(dll, f"{prefix}openblas_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    found.append((ctypes.cast(get, ctypes.c_void_p).value,
                                  ctypes.cast(put, ctypes.c_void_p).value))
                    break
            else:
                continue
            break
    return found[:4]


cdef void _install_thread_controls():
    global _n_blas
    cdef size_t get_address, set_address
    for get_address, set_address in _find_openblas_thread_controls():
        _blas_get[_n_blas] = <_get_threads_t><void*>get_address
        _blas_set[_n_blas] = <_set_threads_t><void*>set_address
        _n_blas += 1


_install_thread_controls()


cdef void blas_pin_one_thread(int* saved) noexcept nogil:
    # ``saved`` lives on the caller's stack: two Python threads in here must not share it.
    cdef int i
    for i in range(_n_blas):
        saved[i] = _blas_get[i]()
        if saved[i] != 1:
            _blas_set[i](1)


cdef void blas_restore_threads(const int* saved) noexcept nogil:
    cdef int i
    for i in range(_n_blas):
        if saved[i] != 1:
            _blas_set[i](saved[i])


def blas_threads_pinned():
    """True when BLAS can be pinned to one thread (the determinism guarantee holds)."""
    return _n_blas > 0


# -------------------------------------------------------------------- GEMM -----

cdef void _call(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                const floating* a, Py_ssize_t lda, const floating* b, Py_ssize_t ldb,
                floating beta, floating* c, Py_ssize_t ldc) noexcept nogil:
    """One BLAS call: row-major c = op(a) op(b) + beta c, as column-major c^T = op(b)^T op(a)^T."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef int im = <int>m, in_ = <int>n, ik = <int>k
    cdef int ilda = <int>(lda if lda > 1 else 1)
    cdef int ildb = <int>(ldb if ldb > 1 else 1)
    cdef int ildc = <int>(ldc if ldc > 1 else 1)
    cdef floating one = 1
    if floating is float:
        sgemm(&tb, &ta, &in_, &im, &ik, &one, <float*>b, &ildb, <float*>a, &ilda, &beta, c, &ildc)
    else:
        dgemm(&tb, &ta, &in_, &im, &ik, &one, <double*>b, &ildb, <double*>a, &ilda, &beta, c, &ildc)


cdef inline Py_ssize_t _block_size(Py_ssize_t dim) noexcept nogil:
    """Split ``dim`` (>= MIN_SPLIT) into at least two near-equal blocks of about BLOCK.

    Fewer, larger blocks keep each BLAS call efficient (every call packs its
    own panels); the split depends on the shape alone, never on the threads.
    """
    cdef Py_ssize_t nblocks = (dim + BLOCK - 1) // BLOCK
    if nblocks < 2:
        nblocks = 2
    return (dim + nblocks - 1) // nblocks


cdef void _call_one_thread(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                           const floating* a, Py_ssize_t lda, const floating* b, Py_ssize_t ldb,
                           floating beta, floating* c, Py_ssize_t ldc) noexcept nogil:
    """``_call`` that also takes empty shapes (BLAS rejects zero leading dimensions)."""
    cdef Py_ssize_t r, j
    if m <= 0 or n <= 0:
        return
    if k <= 0:  # an empty sum
        for r in range(m):
            if beta == 0:
                memset(c + r * ldc, 0, n * sizeof(floating))
            else:
                for j in range(n):
                    c[r * ldc + j] *= beta
        return
    _call(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)


cdef void _gemm_inner_chunks(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                             const floating* a, Py_ssize_t lda, const floating* b, Py_ssize_t ldb,
                             floating beta, floating* c, Py_ssize_t ldc, int nt) noexcept nogil:
    """C small, inner dimension long (a weight gradient summed over a batch): chunks of K_BLOCK.

    Chunk 0 goes straight into C, the others into scratch, then they are added in
    chunk order. Each thread packs only its own slices of A and B; cutting C
    instead would have every thread pack the whole of the shared operand.
    """
    cdef Py_ssize_t blk, start, width, chunk, i
    cdef Py_ssize_t nblocks = (k + K_BLOCK - 1) // K_BLOCK
    cdef floating acc
    cdef floating* partial = <floating*>malloc((nblocks - 1) * m * n * sizeof(floating))
    if partial == NULL:
        _call(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)
        return
    for blk in prange(nblocks, num_threads=nt, schedule='static'):
        start = blk * K_BLOCK
        width = min(K_BLOCK, k - start)
        if blk == 0:
            _call(trans_a, trans_b, m, n, width, a, lda, b, ldb, beta, c, ldc)
        else:
            _call(trans_a, trans_b, m, n, width,
                  a + (start * lda if trans_a else start), lda,
                  b + (start if trans_b else start * ldb), ldb,
                  0, partial + (blk - 1) * m * n, n)
    for i in prange(m * n, num_threads=threads_for(m * n * nblocks), schedule='static'):
        acc = c[(i // n) * ldc + i % n]
        for chunk in range(nblocks - 1):
            acc = acc + partial[chunk * m * n + i]
        c[(i // n) * ldc + i % n] = acc
    free(partial)


cdef void _gemm_rowmajor(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                         const floating* a, Py_ssize_t lda, const floating* b, Py_ssize_t ldb,
                         floating beta, floating* c, Py_ssize_t ldc) noexcept nogil:
    cdef Py_ssize_t blk, nblocks, start, width, size
    cdef int saved[4]
    cdef int nt = threads_for(m * n * k // 16)
    cdef bint share
    if m <= 0 or n <= 0 or k <= 0:
        _call_one_thread(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)
        return
    share = m * n * k >= MIN_SPLIT_WORK  # else too little work to be worth sharing: one call
    blas_pin_one_thread(saved)
    if share and k >= 2 * K_BLOCK and k >= 4 * max(m, n):
        _gemm_inner_chunks(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc, nt)
    elif share and m >= MIN_SPLIT and m >= n:
        # blocks of rows of C: rows of op(a), all of op(b)
        size = _block_size(m)
        nblocks = (m + size - 1) // size
        for blk in prange(nblocks, num_threads=nt, schedule='static'):
            start = blk * size
            width = min(size, m - start)
            _call(trans_a, trans_b, width, n, k, a + (start if trans_a else start * lda), lda,
                  b, ldb, beta, c + start * ldc, ldc)
    elif share and n >= MIN_SPLIT:
        # blocks of columns of C: all of op(a), columns of op(b)
        size = _block_size(n)
        nblocks = (n + size - 1) // size
        for blk in prange(nblocks, num_threads=nt, schedule='static'):
            start = blk * size
            width = min(size, n - start)
            _call(trans_a, trans_b, m, width, k, a, lda, b + (start * ldb if trans_b else start), ldb,
                  beta, c + start, ldc)
    elif share and k >= 2 * K_BLOCK:
        _gemm_inner_chunks(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc, nt)
    else:
        _call(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)
    blas_restore_threads(saved)


cdef void sgemm_rowmajor(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                         const float* a, Py_ssize_t lda, const float* b, Py_ssize_t ldb,
                         float beta, float* c, Py_ssize_t ldc) noexcept nogil:
    """Row-major ``c (m x n) = op(a) @ op(b) + beta * c`` (op transposes when its flag is set)."""
    _gemm_rowmajor(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)


cdef void dgemm_rowmajor(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                         const double* a, Py_ssize_t lda, const double* b, Py_ssize_t ldb,
                         double beta, double* c, Py_ssize_t ldc) noexcept nogil:
    _gemm_rowmajor(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)


cdef void sgemm_serial(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       const float* a, Py_ssize_t lda, const float* b, Py_ssize_t ldb,
                       float beta, float* c, Py_ssize_t ldc) noexcept nogil:
    """One BLAS call on the calling thread, for kernels that share out their own tasks.

    The caller pins BLAS with ``blas_pin_one_thread`` around its parallel loop; each
    task's product is then one fixed call, whichever thread runs it.
    """
    _call_one_thread(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)


cdef void dgemm_serial(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       const double* a, Py_ssize_t lda, const double* b, Py_ssize_t ldb,
                       double beta, double* c, Py_ssize_t ldc) noexcept nogil:
    _call_one_thread(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)
