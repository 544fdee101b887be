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

Which BLAS: the OpenBLAS that NumPy itself loaded, found at import through
threadpoolctl (which also finds the prefix and suffix the build put on its
symbols) and called through function pointers, so nnlite's products run on
exactly the library ``numpy.matmul`` uses, and importing nnlite does not load
SciPy's. Whether the library's BLAS interface uses 64-bit integers (ILP64, as in
NumPy's wheels) or 32-bit ones is read from its own configuration string. Without an OpenBLAS in the process (a
NumPy built on MKL or Accelerate, say), SciPy's Cython BLAS is used instead.
"""
from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from nnlite._kernels._threads cimport threads_for

# ``floating`` (float or double), the fused type of every loop here, is declared in _blas.pxd.

# ---------------------------------------------------------- block sizes -----

# Set once at import from this machine's caches (blocking.py has the formulas; on a
# 512 KiB-L2 core they are the values in the comments) or from NNLITE_GEMM_BLOCKING.
# They depend on the machine, never on the thread count.
cdef Py_ssize_t BLOCK = 256              # target rows or columns of C per task
cdef Py_ssize_t MIN_SPLIT = 128          # a side of C this long is cut in at least two blocks...
cdef Py_ssize_t MIN_SPLIT_WORK = 1 << 21 # ...when the product has this many multiply-adds
cdef Py_ssize_t K_BLOCK = 1024           # inner-dimension chunk when neither side of C is long


def _use_blocking():
    global BLOCK, MIN_SPLIT, MIN_SPLIT_WORK, K_BLOCK
    from nnlite._kernels.blocking import gemm_blocking
    chosen = gemm_blocking()
    BLOCK, K_BLOCK, MIN_SPLIT_WORK = chosen["block"], chosen["k_block"], chosen["min_split_work"]
    MIN_SPLIT = max(1, BLOCK // 2)


_use_blocking()


cdef Py_ssize_t gemm_min_split_work() noexcept nogil:
    return MIN_SPLIT_WORK


def gemm_blocks():
    """The BLAS door's block sizes in use: (block, min_split, min_split_work, k_block)."""
    return BLOCK, MIN_SPLIT, MIN_SPLIT_WORK, K_BLOCK


# ------------------------------------------------------------ finding BLAS -----

# Fortran BLAS signatures; every argument by pointer. "i" is int (LP64) or int64_t (ILP64).
ctypedef void (*sgemm_i_t)(const char*, const char*, const int*, const int*, const int*,
                           const float*, const float*, const int*, const float*, const int*,
                           const float*, float*, const int*) noexcept nogil
ctypedef void (*dgemm_i_t)(const char*, const char*, const int*, const int*, const int*,
                           const double*, const double*, const int*, const double*, const int*,
                           const double*, double*, const int*) noexcept nogil
ctypedef void (*sgemm_l_t)(const char*, const char*, const int64_t*, const int64_t*, const int64_t*,
                           const float*, const float*, const int64_t*, const float*, const int64_t*,
                           const float*, float*, const int64_t*) noexcept nogil
ctypedef void (*dgemm_l_t)(const char*, const char*, const int64_t*, const int64_t*, const int64_t*,
                           const double*, const double*, const int64_t*, const double*, const int64_t*,
                           const double*, double*, const int64_t*) noexcept nogil
ctypedef void (*sgemv_i_t)(const char*, const int*, const int*, const float*, const float*, const int*,
                           const float*, const int*, const float*, float*, const int*) noexcept nogil
ctypedef void (*dgemv_i_t)(const char*, const int*, const int*, const double*, const double*,
                           const int*, const double*, const int*, const double*, double*,
                           const int*) noexcept nogil
ctypedef void (*sgemv_l_t)(const char*, const int64_t*, const int64_t*, const float*, const float*,
                           const int64_t*, const float*, const int64_t*, const float*, float*,
                           const int64_t*) noexcept nogil
ctypedef void (*dgemv_l_t)(const char*, const int64_t*, const int64_t*, const double*, const double*,
                           const int64_t*, const double*, const int64_t*, const double*, double*,
                           const int64_t*) noexcept nogil

cdef bint _ilp64 = False
cdef void* _sgemm = NULL
cdef void* _dgemm = NULL
cdef void* _sgemv = NULL
cdef void* _dgemv = NULL

ctypedef int (*_get_threads_t)() noexcept nogil
ctypedef void (*_set_threads_t)(int) noexcept nogil

cdef _get_threads_t _blas_get[4]
cdef _set_threads_t _blas_set[4]
cdef int _n_blas = 0

_ROUTINES = ("sgemm", "dgemm", "sgemv", "dgemv")


def _openblas_libraries():
    """(ctypes handle, symbol prefix, symbol suffix) of every OpenBLAS loaded in this
    process, in load order, as threadpoolctl finds them.

    A build of OpenBLAS may put a prefix and a suffix around every symbol it exports
    (NumPy's wheels: ``scipy_`` and ``64_``); threadpoolctl finds them from the
    thread-count functions, and the BLAS routines carry the same ones.
    """
    import ctypes
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return []
    found = []
    for lib in ThreadpoolController().lib_controllers:
        if lib.internal_api != "openblas":
            continue
        dll = ctypes.CDLL(lib.filepath)
        if hasattr(lib, "_find_affixes"):
            affixes = lib._find_affixes()
        else:  # an older threadpoolctl: the affixes it knows, tried the way it tries them
            affixes = next(((p, s) for p in ("", "scipy_") for s in ("", "64_", "_64")
                            if _address(dll, f"{p}openblas_get_num_threads{s}")), None)
        if affixes is not None:
            found.append((dll,) + tuple(affixes))
    return found


def _address(dll, name):
    import ctypes
    f = getattr(dll, name, None)
    return None if f is None else ctypes.cast(f, ctypes.c_void_p).value


def _routines_in(dll, prefix, suffix):
    """(ilp64, {routine: address}) of one OpenBLAS, or None when it lacks a routine.

    The Fortran name of a routine is ``sgemm_``; the library's own configuration
    string says whether its integers are 64-bit (``USE64BITINT``, ILP64).
    """
    import ctypes
    found = {r: _address(dll, f"{prefix}{r}_{suffix}") for r in _ROUTINES}
    config = getattr(dll, f"{prefix}openblas_get_config{suffix}", None)
    if not all(found.values()) or config is None:
        return None
    config.restype = ctypes.c_char_p
    return b"USE64BITINT" in (config() or b""), found


def _thread_controls(dll, prefix, suffix):
    """(get, set)_num_threads addresses of one OpenBLAS, or None."""
    get = _address(dll, f"{prefix}openblas_get_num_threads{suffix}")
    put = _address(dll, f"{prefix}openblas_set_num_threads{suffix}")
    return (get, put) if get and put else None


cdef size_t _capsule_address(capsule):
    return <size_t>PyCapsule_GetPointer(capsule, PyCapsule_GetName(capsule))


cdef inline void* _pointer(size_t address):
    return <void*>address


cdef void _install():
    global _ilp64, _sgemm, _dgemm, _sgemv, _dgemv, _n_blas
    cdef size_t get_address, set_address
    libraries = _openblas_libraries()
    chosen = None
    for dll, prefix, suffix in libraries:
        chosen = _routines_in(dll, prefix, suffix)
        if chosen is not None:
            break
    if chosen is None:  # no usable OpenBLAS loaded: SciPy's Cython BLAS (which may load one)
        try:
            from scipy.linalg import cython_blas
        except ImportError:
            raise ImportError(
                "nnlite needs a BLAS: NumPy here is not linked to OpenBLAS (expected an OpenBLAS that "
                "threadpoolctl can see), and SciPy, whose BLAS nnlite uses otherwise, is not installed; "
                "install a NumPy wheel from PyPI or `pip install scipy`") from None
        chosen = (False, {r: _capsule_address(cython_blas.__pyx_capi__[r]) for r in _ROUTINES})
        libraries = _openblas_libraries()
    _ilp64, routines = chosen
    _sgemm, _dgemm = _pointer(routines["sgemm"]), _pointer(routines["dgemm"])
    _sgemv, _dgemv = _pointer(routines["sgemv"]), _pointer(routines["dgemv"])
    for dll, prefix, suffix in libraries:  # pin every OpenBLAS in the process, not only ours
        controls = _thread_controls(dll, prefix, suffix)
        if controls is not None and _n_blas < 4:
            get_address, set_address = controls
            _blas_get[_n_blas] = <_get_threads_t><void*>get_address
            _blas_set[_n_blas] = <_set_threads_t><void*>set_address
            _n_blas += 1


_install()


def blas_library():
    """Which BLAS interface the kernels call: "ilp64" (64-bit integers) or "lp64"."""
    return "ilp64" if _ilp64 else "lp64"


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
    cdef floating one = 1
    cdef int64_t lm = m, ln = n, lk = k
    cdef int64_t llda = lda if lda > 1 else 1, lldb = ldb if ldb > 1 else 1, lldc = ldc if ldc > 1 else 1
    cdef int im = <int>m, in_ = <int>n, ik = <int>k
    cdef int ilda = <int>llda, ildb = <int>lldb, ildc = <int>lldc
    if _ilp64:
        if floating is float:
            (<sgemm_l_t>_sgemm)(&tb, &ta, &ln, &lm, &lk, &one, b, &lldb, a, &llda, &beta, c, &lldc)
        else:
            (<dgemm_l_t>_dgemm)(&tb, &ta, &ln, &lm, &lk, &one, b, &lldb, a, &llda, &beta, c, &lldc)
    else:
        if floating is float:
            (<sgemm_i_t>_sgemm)(&tb, &ta, &in_, &im, &ik, &one, b, &ildb, a, &ilda, &beta, c, &ildc)
        else:
            (<dgemm_i_t>_dgemm)(&tb, &ta, &in_, &im, &ik, &one, b, &ildb, a, &ilda, &beta, c, &ildc)


cdef void _gemv(bint trans, Py_ssize_t m, Py_ssize_t n, const floating* a, Py_ssize_t lda,
                const floating* x, Py_ssize_t incx, floating beta, floating* y) noexcept nogil:
    cdef char t = b'T' if trans else b'N'
    cdef floating one = 1
    cdef int64_t lm = m, ln = n, llda = lda if lda > 1 else 1, lincx = incx, linc = 1
    cdef int im = <int>m, in_ = <int>n, ilda = <int>llda, iincx = <int>incx, iinc = 1
    if _ilp64:
        if floating is float:
            (<sgemv_l_t>_sgemv)(&t, &lm, &ln, &one, a, &llda, x, &lincx, &beta, y, &linc)
        else:
            (<dgemv_l_t>_dgemv)(&t, &lm, &ln, &one, a, &llda, x, &lincx, &beta, y, &linc)
    else:
        if floating is float:
            (<sgemv_i_t>_sgemv)(&t, &im, &in_, &one, a, &ilda, x, &iincx, &beta, y, &iinc)
        else:
            (<dgemv_i_t>_dgemv)(&t, &im, &in_, &one, a, &ilda, x, &iincx, &beta, y, &iinc)


cdef void gemv_row(bint trans_b, Py_ssize_t n, Py_ssize_t k, const floating* a, Py_ssize_t inc_a,
                   const floating* b, Py_ssize_t ldb, floating beta, floating* c) noexcept nogil:
    """One row of a row-major product, c (1 x n) = a (1 x k) @ op(b) + beta c, by GEMV: it reads
    b once, where GEMM would pack all of it first (batch-1 inference, a recurrent step of one
    sample). b is stored k x n, or n x k with ``trans_b``, its rows ldb elements apart; a's
    elements are inc_a apart. BLAS sees the stored b as its column-major transpose. One call
    on this thread: the caller pins BLAS."""
    if beta == 0:   # some OpenBLAS versions scale y by beta, keeping NaN from an empty array
        memset(c, 0, n * sizeof(floating))
    _gemv(trans_b, k if trans_b else n, n if trans_b else k, b, ldb, a, inc_a, beta, c)


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


cdef void fill_bias(floating* c, Py_ssize_t ldc, Py_ssize_t m, Py_ssize_t n,
                    const floating* bias) noexcept nogil:
    """Every row of the m x n block c (row stride ldc) = bias (n values), on this thread."""
    cdef Py_ssize_t r
    for r in range(m):
        memcpy(c + r * ldc, bias, n * sizeof(floating))


cdef void relu_block(floating* c, Py_ssize_t ldc, Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    """max(c, 0) in place on the m x n block c (row stride ldc), on this thread."""
    cdef Py_ssize_t r, j
    cdef floating *row
    for r in range(m):
        row = c + r * ldc
        for j in range(n):
            row[j] = 0 if row[j] < 0 else row[j]   # NaN stays NaN, as torch.relu keeps it


cdef void _block_call(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                      const floating* a, Py_ssize_t lda, const floating* b, Py_ssize_t ldb,
                      floating beta, floating* c, Py_ssize_t ldc, const floating* bias,
                      bint relu) noexcept nogil:
    """One block of C: the broadcast bias first (when given), the BLAS call, then ReLU (when asked).

    A linear layer's bias and activation run here, on the thread that computes the
    block and while the block is still in its cache: one parallel region for the whole
    layer instead of three (waking a sleeping thread costs more than a pass over C).
    """
    if bias != NULL:
        fill_bias(c, ldc, m, n, bias)
    _call_one_thread(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)
    if relu:
        relu_block(c, ldc, m, n)


cdef void _gemm_inner_chunks(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                             const floating* a, Py_ssize_t lda, const floating* b, Py_ssize_t ldb,
                             floating beta, floating* c, Py_ssize_t ldc, int nt, bint relu) noexcept nogil:
    """A long inner dimension beside both sides of C (a weight gradient): chunks of K_BLOCK.

    Chunk 0 goes straight into C, the others into malloc'd scratch, then they are
    added in chunk order, in a second parallel region (``relu`` clamps each sum at 0
    as it is written). Each thread packs only its own slices of A and B; cutting C
    instead would have every thread pack the whole of the shared operand.
    """
    cdef Py_ssize_t blk, start, width, chunk, i
    cdef Py_ssize_t nblocks = (k + K_BLOCK - 1) // K_BLOCK
    cdef floating acc
    cdef floating* partial = <floating*>malloc((nblocks - 1) * m * n * sizeof(floating))
    if partial == NULL:
        _call(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)
        if relu:
            relu_block(c, ldc, m, n)
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
        if relu and acc < 0:   # NaN is not < 0: it stays, as in relu_block
            acc = 0
        c[(i // n) * ldc + i % n] = acc
    free(partial)


cdef void _gemm_rowmajor(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                         const floating* a, Py_ssize_t lda, const floating* b, Py_ssize_t ldb,
                         floating beta, floating* c, Py_ssize_t ldc, const floating* bias,
                         bint relu) noexcept nogil:
    """c = op(a) op(b) + beta c in fixed blocks shared among the threads. With ``bias`` (n
    values, or NULL) c first holds the broadcast bias; ``relu`` clamps the result at 0."""
    cdef Py_ssize_t blk, nblocks, start, width, size
    cdef const floating* block_bias
    cdef int saved[4]
    cdef int nt = threads_for(m * n * k // 16)
    cdef bint share
    if m <= 0 or n <= 0 or k <= 0:
        _block_call(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc, bias, relu)
        return
    share = m * n * k >= MIN_SPLIT_WORK  # else too little work to be worth sharing: one call
    blas_pin_one_thread(saved)
    if share and k >= 2 * K_BLOCK and k >= 4 * max(m, n):
        _inner_chunks_call(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc, nt, bias, relu)
    elif share and m >= MIN_SPLIT and m >= n:
        # blocks of rows of C: rows of op(a), all of op(b)
        size = _block_size(m)
        nblocks = (m + size - 1) // size
        for blk in prange(nblocks, num_threads=nt, schedule='static'):
            start = blk * size
            width = min(size, m - start)
            _block_call(trans_a, trans_b, width, n, k, a + (start if trans_a else start * lda), lda,
                        b, ldb, beta, c + start * ldc, ldc, bias, relu)
    elif share and n >= MIN_SPLIT:
        # blocks of columns of C: all of op(a), columns of op(b)
        size = _block_size(n)
        nblocks = (n + size - 1) // size
        for blk in prange(nblocks, num_threads=nt, schedule='static'):
            start = blk * size
            width = min(size, n - start)
            block_bias = bias
            if block_bias != NULL:
                block_bias = block_bias + start
            _block_call(trans_a, trans_b, m, width, k, a, lda, b + (start * ldb if trans_b else start),
                        ldb, beta, c + start, ldc, block_bias, relu)
    elif share and k >= 2 * K_BLOCK:
        _inner_chunks_call(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc, nt, bias, relu)
    else:
        _block_call(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc, bias, relu)
    blas_restore_threads(saved)


cdef void _inner_chunks_call(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                             const floating* a, Py_ssize_t lda, const floating* b, Py_ssize_t ldb,
                             floating beta, floating* c, Py_ssize_t ldc, int nt, const floating* bias,
                             bint relu) noexcept nogil:
    # The chunks' partial sums meet only after their parallel loop: the bias goes into C
    # before it, and the ReLU is applied by the ordered sum as it writes C. C is not
    # necessarily small here (the path is taken for any m and n <= k / 4 once k >= 2 K_BLOCK
    # and the product is worth sharing), so the bias fill is shared among the threads by
    # rows, under threads_for's rule like any other loop.
    cdef Py_ssize_t r
    cdef int fill_threads
    if bias != NULL:
        fill_threads = threads_for(m * n)
        if fill_threads == 1:   # a one-thread region would cost more than a small fill
            fill_bias(c, ldc, m, n, bias)
        else:
            for r in prange(m, num_threads=fill_threads, schedule='static'):
                fill_bias(c + r * ldc, ldc, 1, n, bias)
    _gemm_inner_chunks(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc, nt, relu)


cdef void sgemm_rowmajor(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                         const float* a, Py_ssize_t lda, const float* b, Py_ssize_t ldb,
                         float beta, float* c, Py_ssize_t ldc) noexcept nogil:
    """Row-major ``c (m x n) = op(a) @ op(b) + beta * c`` (op transposes when its flag is set)."""
    _gemm_rowmajor(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc, <float*>NULL, False)


cdef void dgemm_rowmajor(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                         const double* a, Py_ssize_t lda, const double* b, Py_ssize_t ldb,
                         double beta, double* c, Py_ssize_t ldc) noexcept nogil:
    _gemm_rowmajor(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc, <double*>NULL, False)


cdef void slinear_rowmajor(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                           const float* a, Py_ssize_t lda, const float* b, Py_ssize_t ldb,
                           const float* bias, bint relu, float* c, Py_ssize_t ldc) noexcept nogil:
    """A linear layer's row-major ``c = act(op(a) @ op(b) + bias)``: ``bias`` (n values) may be
    NULL, act is ReLU when ``relu`` is set. The same blocks, and bits, as ``sgemm_rowmajor``
    on a C filled with the bias (beta = 1), followed by a ReLU pass. How the work runs
    follows the product's path: one call on this thread (too little work to share, or no
    side of C or of the inner dimension long enough to cut); blocks
    of rows or of columns, where each thread fills its block with the bias, multiplies and
    applies the ReLU in one parallel region, with no temporary array; or, for a long inner
    dimension, the bias fill (a region of its own when C is large), the chunks of the inner
    dimension into C and a malloc'd scratch (a second), and their ordered sum with the ReLU
    (a third)."""
    _gemm_rowmajor(trans_a, trans_b, m, n, k, a, lda, b, ldb, 1 if bias != NULL else 0, c, ldc, bias,
                   relu)


cdef void dlinear_rowmajor(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                           const double* a, Py_ssize_t lda, const double* b, Py_ssize_t ldb,
                           const double* bias, bint relu, double* c, Py_ssize_t ldc) noexcept nogil:
    _gemm_rowmajor(trans_a, trans_b, m, n, k, a, lda, b, ldb, 1 if bias != NULL else 0, c, ldc, bias,
                   relu)


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
