# The one door to BLAS for every kernel module: deterministic, thread-count-independent GEMM.
from cython cimport floating

# The block sizes (BLOCK, MIN_SPLIT, MIN_SPLIT_WORK, K_BLOCK) are set once at import from
# this machine's caches (blocking.py); other modules read the one they need through this:
cdef Py_ssize_t gemm_min_split_work() noexcept nogil

cdef void blas_pin_one_thread(int* saved) noexcept nogil
cdef void blas_restore_threads(const int* saved) noexcept nogil
cdef void sgemm_rowmajor(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                         const float* a, Py_ssize_t lda, const float* b, Py_ssize_t ldb,
                         float beta, float* c, Py_ssize_t ldc) noexcept nogil
cdef void dgemm_rowmajor(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                         const double* a, Py_ssize_t lda, const double* b, Py_ssize_t ldb,
                         double beta, double* c, Py_ssize_t ldc) noexcept nogil
# A linear layer: c = act(op(a) op(b) + bias), bias (n values) or NULL, act = ReLU when relu is set.
# On row or column blocks each thread fills, multiplies and clamps its own block of C in one parallel
# region; a long inner dimension adds its chunks in scratch and sums them in a second region (the
# ReLU inside that sum); a product not worth cutting is one call on this thread. _blas.pyx tells it all.
cdef void slinear_rowmajor(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                           const float* a, Py_ssize_t lda, const float* b, Py_ssize_t ldb,
                           const float* bias, bint relu, float* c, Py_ssize_t ldc) noexcept nogil
cdef void dlinear_rowmajor(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                           const double* a, Py_ssize_t lda, const double* b, Py_ssize_t ldb,
                           const double* bias, bint relu, double* c, Py_ssize_t ldc) noexcept nogil
# One BLAS call on the calling thread (the caller has pinned BLAS and shares out the tasks).
cdef void sgemm_serial(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       const float* a, Py_ssize_t lda, const float* b, Py_ssize_t ldb,
                       float beta, float* c, Py_ssize_t ldc) noexcept nogil
cdef void dgemm_serial(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       const double* a, Py_ssize_t lda, const double* b, Py_ssize_t ldb,
                       double beta, double* c, Py_ssize_t ldc) noexcept nogil
# One row of a row-major product by GEMV, c (1 x n) = a (1 x k) @ op(b) + beta c, one call on this
# thread (the caller pins): b stored k x n (n x k with trans_b), rows ldb apart; a's items inc_a apart.
cdef void gemv_row(bint trans_b, Py_ssize_t n, Py_ssize_t k, const floating* a, Py_ssize_t inc_a,
                   const floating* b, Py_ssize_t ldb, floating beta, floating* c) noexcept nogil
# A linear layer's bias and ReLU on an m x n block of C (row stride ldc), on the calling thread.
cdef void fill_bias(floating* c, Py_ssize_t ldc, Py_ssize_t m, Py_ssize_t n,
                    const floating* bias) noexcept nogil
cdef void relu_block(floating* c, Py_ssize_t ldc, Py_ssize_t m, Py_ssize_t n) noexcept nogil
