"""NumPy reference twins of every compiled kernel.

Each function here has exactly the signature and results of the compiled kernel
of the same name in ``nnlite/_kernels/_<theme>.pyx``. They are the readable,
obviously-correct version of each loop: tests hold the compiled kernels equal
to them, and ``nl.set_backend("reference")`` runs whole models on them so a
reader can step through plain NumPy.

Reductions here follow the same fixed-block order as the compiled kernels where
bitwise equality is promised; elsewhere they are equal to rounding.
"""
import numpy as np

# ---------------------------------------------------------------- gemm -----

# ---------------------------------------------------------- elementwise -----

# -------------------------------------------------------------- softmax -----

# ----------------------------------------------------------------- conv -----

# ----------------------------------------------------------------- norm -----

# ---------------------------------------------------------------- optim -----


# Every public function defined in this file is a kernel twin.
__all__ = sorted(name for name, value in list(globals().items())
                 if callable(value) and getattr(value, "__module__", None) == __name__
                 and not name.startswith("_"))
