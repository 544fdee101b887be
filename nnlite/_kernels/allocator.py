"""How nnlite asks for memory: freed large blocks kept, new storage on cache lines.

**Freed blocks.** A training step allocates the same large arrays every time:
activations, im2col columns, gradients. With glibc's default settings a block of
more than 128 KiB comes from ``mmap`` and goes back to the OS on ``free``, and the
next step pays a page fault and a page clear for every 4 KiB of it again. For the
first layer of a small CNN that costs four times more than the convolution
itself. Raising malloc's ``mmap`` and trim thresholds lets freed blocks be
reused straight away; the price is that the process keeps up to
``TRIM_THRESHOLD`` bytes of freed memory for later.

Only glibc (Linux) has these knobs; elsewhere this does nothing. Set
``NNLITE_KEEP_FREED_MEMORY=0`` before importing nnlite to keep malloc's defaults.

**Alignment.** NumPy's arrays start wherever malloc puts them, 16 bytes past a
cache line as often as not. A kernel that streams a weight with 32-byte vector
loads then splits every other load across two cache lines; a batch-1 forward of a
784-256-256-10 MLP, whose three one-row products do little but read their
weights, measured about 5% slower for it. ``aligned_empty`` starts an array on a
64-byte boundary (as PyTorch's CPU allocator does); ``nl.empty``, ``nl.zeros``,
``nl.ones``, ``nl.full``, their ``_like`` forms, ``nl.rand`` and ``nl.randn``, and so
every layer's parameters, use it.
"""
import os

import numpy as np

ALIGNMENT = 64              # bytes: a cache line, and the widest vector load (AVX-512)
MMAP_THRESHOLD = 32 << 20   # blocks up to 32 MiB come from the reusable heap (glibc's maximum)
TRIM_THRESHOLD = 256 << 20  # free memory kept at the top of the heap before returning it

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from <malloc.h>
_M_MMAP_THRESHOLD = -3


def keep_freed_memory():
    """Raise glibc's mmap and trim thresholds; True when they were applied."""
    if os.environ.get("NNLITE_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
    except (AttributeError, ValueError, OSError):  # not glibc
        return False
    import ctypes

    mallopt = ctypes.CDLL(None).mallopt
    # Setting either turns off glibc's own threshold adaptation, so both are set.
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def aligned_empty(shape, dtype):
    """An uninitialised C-order array of ``shape`` whose first byte sits on a 64-byte boundary.

    The array is a view of a slightly larger byte buffer (its ``base``), so
    NumPy frees the memory with the view.
    """
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start:start + nbytes].view(dtype).reshape(shape)
