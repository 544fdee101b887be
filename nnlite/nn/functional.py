"""``nnlite.nn.functional`` (import as F): the stateless form of every layer.

Layers in ``nnlite.nn`` hold parameters and call these functions; the functions
call the differentiable operations in ``nnlite.ops``. Names, arguments and
defaults are PyTorch's.
"""
from ..ops import (gelu, log_softmax, one_hot, relu, sigmoid, silu, softmax, softplus,  # noqa: F401
                   tanh)

# ------------------------------------------------------------------ layers ---
# Each function below is the stateless form of a layer in nnlite.nn; the ops it
# calls (nnlite/ops/nn_ops.py, conv.py, norm.py, loss.py) hold forward and backward.
from ..ops.nn_ops import dropout, embedding, linear, linear_relu, pad  # noqa: F401,E402
from ..ops.norm import batch_norm, group_norm, layer_norm, rms_norm  # noqa: F401,E402
from ..ops.conv import (adaptive_avg_pool1d, adaptive_avg_pool2d, avg_pool1d, avg_pool2d,  # noqa: F401,E402
                        conv1d, conv2d, max_pool1d, max_pool2d)
from ..ops.loss import (binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div,  # noqa: F401,E402
                        l1_loss, mse_loss, nll_loss, smooth_l1_loss)

# --------------------------------------------------------------- attention ---
# softmax(Q K^T / sqrt(d) + mask) V from matmul and softmax ops (nnlite/ops/attention.py);
# glu, the gate of gated linear units, lives with its module in nnlite/nn/gating.py.
from ..ops.attention import scaled_dot_product_attention  # noqa: F401,E402
from .gating import glu  # noqa: F401,E402

# ------------------------------------------------------------ distillation ---
# A student matching a teacher's softened outputs (nnlite/nn/distillation.py).
from .distillation import distillation_loss  # noqa: F401,E402

# ---------------------------------------------------- conditional normalisation ---
# A scale and shift chosen by another input: FiLM and AdaIN (nnlite/nn/conditional.py).
from .conditional import adaptive_instance_norm, film  # noqa: F401,E402
