"""Stand-in for ``_denormal.pyx`` when the compiled kernels are not built.

Pure Python cannot reach the CPU's control register, and without compiled
kernels every product runs in NumPy on the calling thread anyway, so there is
nothing to set: like ``torch.set_flush_denormal`` on a CPU without the
feature, setting reports False and the thread modes read as off.
"""
__all__ = []   # reached through nnlite.denormal, like the compiled module


def supported():
    """False: flushing needs the compiled module."""
    return False


def set_flush_denormal(mode):
    """Do nothing and report that flushing is not supported here."""
    return False


def thread_modes():
    """(FTZ, DAZ) of the calling thread: unknown here, reported as off."""
    return [(False, False)]
