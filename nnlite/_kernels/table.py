"""Every kernel in one table: its name, the compiled module that holds it, and its NumPy twin.

``K.<name>`` (see ``__init__.py``) is filled from this table and nothing else:
to find the code behind ``K.linear_forward``, grep for ``"linear_forward"`` here.
The compiled function is ``nnlite/_kernels/<module>.pyx: def <name>``; its twin is
``nnlite/_kernels/reference/<module>.py: def <name>``, with the same signature.
A kernel is added by writing both functions and one row below.
"""
from .reference import _activations, _attention, _conv, _elementwise, _gemm, _norm, _optim, _pool
from .reference import _softmax
from .reference import _rnn
from .reference import _int8

__all__ = ["KERNELS", "MODULES"]

KERNELS = (
    # name                      compiled module   twin module
    ("gemm",                    "_gemm",          _gemm),
    ("bmm",                     "_gemm",          _gemm),
    ("linear_forward",          "_gemm",          _gemm),
    ("bias_grad",               "_gemm",          _gemm),
    ("gemm_tiled",              "_gemm",          _gemm),
    ("relu_forward",            "_elementwise",   _elementwise),
    ("relu_backward",           "_elementwise",   _elementwise),
    ("gelu_forward",            "_elementwise",   _elementwise),
    ("gelu_backward",           "_elementwise",   _elementwise),
    ("erf_forward",             "_elementwise",   _elementwise),
    ("tanh_forward",            "_elementwise",   _elementwise),
    ("tanh_backward",           "_elementwise",   _elementwise),
    ("sigmoid_forward",         "_elementwise",   _elementwise),
    ("sigmoid_backward",        "_elementwise",   _elementwise),
    ("silu_forward",            "_elementwise",   _elementwise),
    ("silu_backward",           "_elementwise",   _elementwise),
    ("dropout_forward",         "_elementwise",   _elementwise),
    ("embedding_forward",       "_elementwise",   _elementwise),
    ("embedding_backward",      "_elementwise",   _elementwise),
    ("leaky_relu_forward",      "_activations",   _activations),
    ("hardtanh_forward",        "_activations",   _activations),
    ("hardsigmoid_forward",     "_activations",   _activations),
    ("masked_slope_backward",   "_activations",   _activations),
    ("hardswish_forward",       "_activations",   _activations),
    ("hardswish_backward",      "_activations",   _activations),
    ("elu_forward",             "_activations",   _activations),
    ("softplus_forward",        "_activations",   _activations),
    ("softplus_backward",       "_activations",   _activations),
    ("mish_forward",            "_activations",   _activations),
    ("mish_backward",           "_activations",   _activations),
    ("logsigmoid_forward",      "_activations",   _activations),
    ("logsigmoid_backward",     "_activations",   _activations),
    ("softmax_forward",         "_softmax",       _softmax),
    ("softmax_backward",        "_softmax",       _softmax),
    ("scaled_softmax_forward",  "_softmax",       _softmax),
    ("log_softmax_forward",     "_softmax",       _softmax),
    ("log_softmax_backward",    "_softmax",       _softmax),
    ("cross_entropy_forward",   "_softmax",       _softmax),
    ("cross_entropy_backward",  "_softmax",       _softmax),
    ("packed_attention_forward",  "_attention",   _attention),
    ("packed_attention_backward", "_attention",   _attention),
    ("conv2d_forward",          "_conv",          _conv),
    ("conv2d_backward_input",   "_conv",          _conv),
    ("conv2d_backward_weight",  "_conv",          _conv),
    ("conv2d_backward_bias",    "_conv",          _conv),
    ("max_pool2d_forward",      "_pool",          _pool),
    ("max_pool2d_backward",     "_pool",          _pool),
    ("avg_pool2d_forward",      "_pool",          _pool),
    ("avg_pool2d_backward",     "_pool",          _pool),
    ("batch_norm_forward",      "_norm",          _norm),
    ("batch_norm_backward",     "_norm",          _norm),
    ("layer_norm_forward",      "_norm",          _norm),
    ("layer_norm_backward",     "_norm",          _norm),
    ("group_norm_forward",      "_norm",          _norm),
    ("group_norm_backward",     "_norm",          _norm),
    ("rms_norm_forward",        "_norm",          _norm),
    ("rms_norm_backward",       "_norm",          _norm),
    ("sgd_step",                "_optim",         _optim),
    ("adagrad_step",            "_optim",         _optim),
    ("rmsprop_step",            "_optim",         _optim),
    ("adam_step",               "_optim",         _optim),
    ("lstm_step_forward",       "_rnn",           _rnn),
    ("lstm_step_backward",      "_rnn",           _rnn),
    ("gru_step_forward",        "_rnn",           _rnn),
    ("gru_step_backward",       "_rnn",           _rnn),
    ("rnn_step_forward",        "_rnn",           _rnn),
    ("rnn_step_backward",       "_rnn",           _rnn),
    ("recurrent_scan_forward",  "_rnn",           _rnn),
    ("recurrent_scan_backward", "_rnn",           _rnn),
    ("pack_int8_weight",        "_int8",          _int8),
    ("int8_linear",             "_int8",          _int8),
    ("quantize_u8",             "_int8",          _int8),
    ("dynamic_qparams",         "_int8",          _int8),
    ("quantized_linear",        "_int8",          _int8),
)

# The compiled modules, in the order they are imported.
MODULES = tuple(dict.fromkeys(module for _, module, _ in KERNELS))
