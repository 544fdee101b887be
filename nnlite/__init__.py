"""nnlite: a small deep-learning framework for learning how parameters work."""
__version__ = "0.1.0"

from ._kernels import set_backend, get_backend, set_num_threads, get_num_threads  # noqa: F401
