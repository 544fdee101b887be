"""nnlite: a small deep-learning framework for learning how parameters work.

Readable Python on top (``nnlite.nn``, ``nnlite.optim``), compiled Cython/OpenMP
kernels underneath (``nnlite._kernels``), with NumPy twins of every kernel.
"""
import os as _os

# NumPy's OpenBLAS threads poll for new work for ~0.1 s after each threaded product, holding
# the cores nnlite's OpenMP threads need next (a 1024^3 product measured 1.6x slower right after
# numpy.matmul; benchmarks/bench_thread_pools.py). With this they sleep at once. OpenBLAS reads
# it when NumPy loads it, so it only takes effect when nnlite is imported first; a value the
# user set wins.
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from ._version import __version__  # noqa: E402,F401

from ._startup import import_kernels as _import_kernels, leave_quietly_on_interrupt as _leave_on_interrupt

_leave_on_interrupt()   # only while the nnlite command starts: Ctrl-C exits 130 without a traceback
_import_kernels()   # the kernel layer, with clear messages for a bad NNLITE_BACKEND or an unbuilt checkout
from ._kernels import get_backend, get_num_threads, set_backend  # noqa: E402,F401
from .denormal import set_flush_denormal, set_num_threads  # noqa: E402,F401
from .autograd import (detect_anomaly, enable_grad, grad, is_grad_enabled, no_grad,  # noqa: F401
                       set_grad_enabled)
from .ops import *  # noqa: F401,F403
from .ops import abs, max, min, pow, sum  # noqa: F401,A004 - shadow builtins on purpose, as torch does
from .random import Generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state  # noqa: F401
from .tensor import (Tensor, bool_, float16, float32, float64, get_default_dtype, int32,  # noqa: F401
                     int64, is_tensor, set_default_dtype, tensor, uint8)

float = float32  # noqa: A001 - PyTorch's aliases: nl.float, nl.double, nl.long
double = float64
long = int64
bool = bool_  # noqa: A001

from . import nn  # noqa: E402,F401
from .io import save_checkpoint, load_checkpoint, save_state_dict, load_state_dict  # noqa: E402,F401
from . import optim  # noqa: E402,F401
from . import data  # noqa: E402,F401


# The packages about what happens to parameters after training load on first use
# (``nl.analysis``, ``nl.monitor``, ...), so ``import nnlite`` stays quick and their
# optional libraries (matplotlib, tensorboardX, onnx, mpi4py) are imported only when asked for.
_LAZY_SUBMODULES = ("analysis", "monitor", "plot", "quantization", "compress", "func", "transfer",
                    "continual", "meta", "nas", "onnx", "distributed", "train", "calibration",
                    "hyper", "tune")


# The quantized dtypes and schemes, as torch has them on its top level (nl.qint8, nl.per_channel_affine...).
_QUANTIZATION_NAMES = ("qint8", "quint8", "per_tensor_affine", "per_tensor_symmetric", "per_channel_affine",
                       "per_channel_symmetric")


def __getattr__(name):
    if name == "bfloat16":   # from the optional ml_dtypes package, imported on first use
        from .tensor import bfloat16_dtype
        return bfloat16_dtype()
    if name in _QUANTIZATION_NAMES:
        from . import quantization
        return getattr(quantization, name)
    if name in _LAZY_SUBMODULES:
        import importlib
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'nnlite' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))
