# Shared thread setting for every kernel module: `cimport` these, never keep a copy.
cdef int num_threads() noexcept nogil
cdef int threads_for(Py_ssize_t work) noexcept nogil
# Threads for a loop of one or two cheap operations per element (memory-bound): serial longer.
cdef int threads_for_streaming(Py_ssize_t elements) noexcept nogil
