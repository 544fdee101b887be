"""``nnlite.nn.functional`` (import as F): the stateless form of every layer.

Layers in ``nnlite.nn`` hold parameters and call these functions; the functions
call the differentiable operations in ``nnlite.ops``. Names, arguments and
defaults are PyTorch's.
"""
from ..ops import (gelu, log_softmax, one_hot, relu, sigmoid, silu, softmax, softplus,  # noqa: F401
                   tanh)

# ------------------------------------------------------------------ layers ---

# --------------------------------------------------------------- attention ---
