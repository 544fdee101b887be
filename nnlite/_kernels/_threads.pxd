# Shared thread setting for every kernel module: `cimport` these, never keep a copy.
cdef int num_threads() noexcept nogil
cdef int threads_for(Py_ssize_t work) noexcept nogil
