"""NumPy reference twins of every compiled kernel.

One module here per compiled module, with the same name: the twins of
``nnlite/_kernels/_gemm.pyx`` are in ``reference/_gemm.py``, and so on. Each
function has exactly the signature and results of the compiled kernel of the
same name. They are the readable, obviously-correct version of each loop: tests
hold the compiled kernels equal to them, and ``nl.set_backend("reference")``
runs whole models on them so a reader can step through plain NumPy.

Where a compiled module holds several algorithms, a twin also shows each
algorithm's own steps: ``_conv_shifted.py`` (the shifted product and its two
gradients), ``_conv_depthwise.py`` (the depthwise paths) and
``_conv_pointwise.py`` (the 1x1 path) sit beside
``_conv.py``, which gives the results through im2col. Tests hold each compiled
path equal to its step twin on shapes the plan sends there.

Reductions follow the same fixed-block order as the compiled kernels where
bitwise equality is promised; elsewhere they are equal to rounding. Argument
checks are shared with the compiled kernels through :mod:`nnlite._kernels.checks`.

Every twin is also reachable as ``reference.<name>``; the list of kernels is
the table in ``nnlite/_kernels/table.py``. One module here is not a twin of
table rows: ``_denormal.py`` stands in for ``_denormal.pyx``, which sets CPU
flags instead of computing (see its docstring).
"""
from ._gemm import (bias_grad, bmm, gemm, gemm_tiled, linear_forward)
from ._elementwise import (dropout_forward, embedding_backward, embedding_forward, erf_forward,
                           gelu_backward, gelu_forward, relu_backward, relu_forward, sigmoid_backward,
                           sigmoid_forward, silu_backward, silu_forward, tanh_backward,
                           tanh_forward)
from ._activations import (elu_forward, hardsigmoid_forward, hardswish_backward, hardswish_forward,
                           hardtanh_forward, leaky_relu_forward, logsigmoid_backward, logsigmoid_forward,
                           masked_slope_backward, mish_backward, mish_forward, softplus_backward,
                           softplus_forward)
from ._softmax import (cross_entropy_backward, cross_entropy_forward, log_softmax_backward,
                       log_softmax_forward, scaled_softmax_forward, softmax_backward, softmax_forward)
from ._conv import (conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight,
                    conv2d_forward)
from ._pool import (avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward,
                    max_pool2d_forward)
from ._norm import (batch_norm_backward, batch_norm_forward, group_norm_backward,
                    group_norm_forward, layer_norm_backward, layer_norm_forward,
                    rms_norm_backward, rms_norm_forward)
from ._optim import (adagrad_step, adam_step, rmsprop_step, sgd_step)
from ._rnn import (gru_step_backward, gru_step_forward, lstm_step_backward, lstm_step_forward,
                   recurrent_scan_backward, recurrent_scan_forward, rnn_step_backward, rnn_step_forward)
from ._int8 import (dynamic_qparams, int8_linear, pack_int8_weight, quantize_u8, quantized_linear)
from ._attention import (packed_attention_backward, packed_attention_forward)

__all__ = ["adagrad_step", "adam_step", "avg_pool2d_backward", "avg_pool2d_forward", "batch_norm_backward",
           "batch_norm_forward", "bias_grad", "bmm", "conv2d_backward_bias", "conv2d_backward_input",
           "conv2d_backward_weight", "conv2d_forward", "cross_entropy_backward", "cross_entropy_forward",
           "dropout_forward", "dynamic_qparams", "elu_forward", "embedding_backward", "embedding_forward",
           "erf_forward", "gelu_backward", "gelu_forward", "gemm", "gemm_tiled", "group_norm_backward",
           "group_norm_forward", "gru_step_backward", "gru_step_forward", "hardsigmoid_forward",
           "hardswish_backward", "hardswish_forward", "hardtanh_forward", "int8_linear",
           "layer_norm_backward", "layer_norm_forward", "leaky_relu_forward", "linear_forward",
           "log_softmax_backward", "log_softmax_forward", "logsigmoid_backward", "logsigmoid_forward",
           "lstm_step_backward", "lstm_step_forward", "masked_slope_backward", "max_pool2d_backward",
           "max_pool2d_forward", "mish_backward", "mish_forward", "pack_int8_weight",
           "packed_attention_backward", "packed_attention_forward", "quantize_u8", "quantized_linear",
           "recurrent_scan_backward", "recurrent_scan_forward", "relu_backward", "relu_forward",
           "rms_norm_backward", "rms_norm_forward", "rmsprop_step", "rnn_step_backward",
           "rnn_step_forward", "scaled_softmax_forward", "sgd_step", "sigmoid_backward", "sigmoid_forward",
           "silu_backward", "silu_forward", "softmax_backward", "softmax_forward", "softplus_backward",
           "softplus_forward", "tanh_backward", "tanh_forward"]
