"""Keep freed large blocks in the process instead of handing them back to the OS.

A training step allocates the same large arrays every time: activations,
im2col columns, gradients. With glibc's default settings a block of more than
128 KiB comes from ``mmap`` and goes back to the OS on ``free``, and the next
step pays a page fault and a page clear for every 4 KiB of it again. For the
first layer of a small CNN that costs four times more than the convolution
itself. Raising malloc's ``mmap`` and trim thresholds lets freed blocks be
reused straight away; the price is that the process keeps up to
``TRIM_THRESHOLD`` bytes of freed memory for later.

Only glibc (Linux) has these knobs; elsewhere this does nothing. Set
``NNLITE_KEEP_FREED_MEMORY=0`` before importing nnlite to keep malloc's defaults.
"""
import os

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
