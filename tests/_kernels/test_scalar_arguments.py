"""Bad scalar arguments: the compiled kernel and its twin refuse each alike.

A kernel's scalars (a probability, a hyperparameter, a step count, an index, a zero
point, a flag) are checked by the shared rules of ``checks.py`` (real_number,
real_in, hyperparameter, integer, float32_number, flag), never converted by Cython
first: both backends raise the same exception with the same words,
"<kernel>: <name> must be ..., got ...", and neither takes a float for an int, the
truth of a string for a flag, or a NaN for a probability. The same holds for the
geometry of a convolution or a pooling (groups, the divisor override, each element of
a stride, padding, dilation or kernel-size pair), a normalisation's eps and momentum,
and a product's transpose flags and activation.
"""
import importlib
from fractions import Fraction

import numpy as np
import pytest

from nnlite._kernels import reference
from nnlite._kernels.table import KERNELS

MODULE = {name: module for name, module, _ in KERNELS}
_R = np.random.default_rng(0)
_W_Q = _R.integers(-127, 128, (5, 8)).astype(np.int8)
_SUMS = _W_Q.astype(np.int32).sum(1).astype(np.int32)


def _f(*shape):
    return _R.standard_normal(shape).astype(np.float32)


def _args(kernel):
    """Fresh valid arguments of ``kernel``, by name (the in-place kernels write into them)."""
    n = 5
    x, x3 = _f(3, 4), _f(2, 3, 4)
    return {
        "leaky_relu_forward": lambda: dict(x=x, negative_slope=0.01, save=True),
        "hardtanh_forward": lambda: dict(x=x, min_val=-1.0, max_val=1.0, save=True),
        "hardsigmoid_forward": lambda: dict(x=x, save=True),
        "elu_forward": lambda: dict(x=x, alpha=1.0, scale=1.0, save=True),
        "gelu_forward": lambda: dict(x=x, approximate="none", save=True),
        "dropout_forward": lambda: dict(x=x, u=_R.random((3, 4)).astype(np.float32), p=0.5),
        "embedding_backward": lambda: dict(grad=_f(3, 2), indices=np.array([0, 1, 2]), num_embeddings=4,
                                           padding_idx=-1),
        "cross_entropy_forward": lambda: dict(logits=x, target=np.array([0, 1, 3]), weight=None,
                                              ignore_index=-100, label_smoothing=0.25, reduction="mean"),
        "cross_entropy_backward": lambda: dict(
            grad_loss=np.array(1.0, np.float32), logits=x, target=np.array([0, 1, 3]), weight=None,
            lse=reference.cross_entropy_forward(x, np.array([0, 1, 3]), None, -100, 0.25, "mean")[1],
            ignore_index=-100, label_smoothing=0.25, reduction="mean"),
        "packed_attention_forward": lambda: dict(qkv=_f(2, 3, 12), num_heads=2, scale=0.5, bias=None,
                                                 save_weights=True),
        "sgd_step": lambda: dict(param=_f(n), grad=_f(n), momentum_buffer=_f(n), lr=0.5, momentum=0.5,
                                 dampening=0.0, nesterov=False, weight_decay=0.25, maximize=False,
                                 first_step=False),
        "adagrad_step": lambda: dict(param=_f(n), grad=_f(n), state_sum=np.abs(_f(n)), step=3, lr=0.5,
                                     lr_decay=0.25, weight_decay=0.25, eps=1e-10, maximize=False),
        "rmsprop_step": lambda: dict(param=_f(n), grad=_f(n), square_avg=np.abs(_f(n)), grad_avg=_f(n),
                                     momentum_buffer=_f(n), lr=0.5, alpha=0.75, eps=1e-8, weight_decay=0.25,
                                     momentum=0.5, centered=True, maximize=False),
        "adam_step": lambda: dict(param=_f(n), grad=_f(n), exp_avg=_f(n), exp_avg_sq=np.abs(_f(n)),
                                  max_exp_avg_sq=np.abs(_f(n)), step=3, lr=0.5, beta1=0.75, beta2=0.875,
                                  eps=1e-8, weight_decay=0.25, decoupled_weight_decay=False, amsgrad=True,
                                  maximize=False),
        "rnn_step_forward": lambda: dict(gh=_f(2, 3), gi=_f(2, 3), b_hh=_f(3), h=_f(2, 3), relu=True),
        "int8_linear": lambda: dict(x_q=_R.integers(0, 256, (3, 8)).astype(np.uint8), x_zero_point=3, w_q=_W_Q,
                                    w_row_sums=_SUMS, multiplier=np.full(5, 0.01, np.float32), bias=None,
                                    out_scale=0.125, out_zero_point=7),
        "quantize_u8": lambda: dict(x=x, scale=0.0625, zero_point=128),
        "dynamic_qparams": lambda: dict(lo=-1.0, hi=2.0, reduce_range=False),
        "conv2d_forward": lambda: dict(x=_f(1, 2, 5, 5), weight=_f(4, 2, 3, 3), bias=_f(4), stride=(1, 1),
                                       padding=(1, 1), dilation=(1, 1), groups=1),
        "conv2d_backward_input": lambda: dict(grad=_f(1, 4, 5, 5), weight=_f(4, 2, 3, 3), input_shape=(1, 2, 5, 5),
                                              stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1),
        "conv2d_backward_weight": lambda: dict(grad=_f(1, 4, 5, 5), x=_f(1, 2, 5, 5), weight_shape=(4, 2, 3, 3),
                                               stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1),
        "max_pool2d_forward": lambda: dict(x=_f(1, 2, 6, 6), kernel_size=(2, 2), stride=(2, 2), padding=(1, 1),
                                           dilation=(1, 1), ceil_mode=False),
        "avg_pool2d_forward": lambda: dict(x=_f(1, 2, 6, 6), kernel_size=(2, 2), stride=(2, 2), padding=(1, 1),
                                           ceil_mode=False, count_include_pad=True, divisor_override=None),
        "avg_pool2d_backward": lambda: dict(grad=_f(1, 2, 4, 4), input_shape=(1, 2, 6, 6), kernel_size=(2, 2),
                                            stride=(2, 2), padding=(1, 1), ceil_mode=False, count_include_pad=True,
                                            divisor_override=None),
        "batch_norm_forward": lambda: dict(x=_f(2, 3, 4), weight=_f(3), bias=_f(3), running_mean=_f(3),
                                           running_var=np.abs(_f(3)), training=True, momentum=0.5, eps=1e-5),
        "batch_norm_backward": lambda: dict(grad=_f(2, 3, 4), x=x3, weight=_f(3), training=True,
                                            **dict(zip(("save_mean", "save_invstd"), reference.batch_norm_forward(
                                                x3, None, None, None, None, True, 0.5, 1e-5)[1:]))),
        "layer_norm_forward": lambda: dict(x=x, weight=None, bias=None, eps=1e-5),
        "group_norm_forward": lambda: dict(x=_f(2, 4, 3), num_groups=2, weight=None, bias=None, eps=1e-5),
        "rms_norm_forward": lambda: dict(x=x, weight=None, eps=1e-5),
        "gemm": lambda: dict(a=_f(4, 4), b=_f(4, 4), trans_a=False, trans_b=False),   # square: either flag fits
        "bmm": lambda: dict(a=_f(2, 4, 4), b=_f(2, 4, 4), trans_a=False, trans_b=False, out=None),
        "linear_forward": lambda: dict(x=_f(1, 4), weight=_f(5, 4), bias=_f(5), activation="relu"),
        "quantized_linear": lambda: dict(x=_f(3, 8), w_packed=reference.pack_int8_weight(_W_Q), w_row_sums=_SUMS,
                                         w_scale=np.full(5, 0.02, np.float32), bias=None, x_scale=0.0625,
                                         x_zero_point=128, relu=False, reduce_range=False),
    }[kernel]()


def _both(kernel):
    """(compiled, twin) functions of ``kernel``; skips on a build without the compiled module."""
    compiled = pytest.importorskip(f"nnlite._kernels.{MODULE[kernel]}")
    return getattr(compiled, kernel), getattr(reference, kernel)


def _real(name, got):
    return TypeError, f"{name} must be a real number (int, float or NumPy scalar), got {got}"


def _flag(name, got):
    return TypeError, f"{name} must be a bool (True or False), got {got}"


BIG = 2 ** 70
TOO_BIG = f"and at most {2 ** 63 - 1}, got {BIG}"
STEP = "step must be an int >= 1 (the count after incrementing)"
NAN = float("nan")

BAD = [
    # (kernel, argument, bad value, (exception, message after "<kernel>: "))
    # optimizer hyperparameters: a real number, >= 0 (a beta below 1), never NaN
    ("sgd_step", "lr", None, _real("lr", "NoneType")),
    ("sgd_step", "lr", "0.1", _real("lr", "str")),
    ("sgd_step", "lr", -1, (ValueError, "invalid learning rate: -1.0")),
    ("sgd_step", "momentum", "0.9", _real("momentum", "str")),
    ("sgd_step", "dampening", "0", _real("dampening", "str")),
    ("sgd_step", "weight_decay", [0], _real("weight_decay", "list")),
    ("sgd_step", "nesterov", "False", _flag("nesterov", "str")),
    ("sgd_step", "maximize", None, _flag("maximize", "NoneType")),
    ("sgd_step", "first_step", 0.0, _flag("first_step", "float")),
    ("adagrad_step", "step", 1.0, (TypeError, f"{STEP}, got float")),
    ("adagrad_step", "step", BIG, (ValueError, f"{STEP} {TOO_BIG}")),
    ("adagrad_step", "lr_decay", np.float32(NAN), (ValueError, "invalid lr_decay value: nan")),
    ("adagrad_step", "eps", 1j, _real("eps", "complex")),
    ("adagrad_step", "maximize", np.zeros(1), _flag("maximize", "ndarray")),
    ("rmsprop_step", "alpha", np.int64(-1), (ValueError, "invalid alpha value: -1.0")),
    ("rmsprop_step", "eps", None, _real("eps", "NoneType")),
    ("rmsprop_step", "momentum", b"0", _real("momentum", "bytes")),
    ("rmsprop_step", "centered", 2, (ValueError, "centered must be True or False (or 0 or 1), got 2")),
    ("adam_step", "step", True, (TypeError, f"{STEP}, got bool")),
    ("adam_step", "lr", np.float32(NAN), (ValueError, "invalid learning rate: nan")),
    ("adam_step", "beta1", np.ones(1), _real("beta1", "ndarray")),
    ("adam_step", "beta2", True, (ValueError, "invalid beta parameter at index 1: 1.0")),
    ("adam_step", "weight_decay", "0", _real("weight_decay", "str")),
    ("adam_step", "amsgrad", "yes", _flag("amsgrad", "str")),
    ("adam_step", "decoupled_weight_decay", None, _flag("decoupled_weight_decay", "NoneType")),
    # probabilities, counts and indices
    ("dropout_forward", "p", None, _real("p", "NoneType")),
    ("dropout_forward", "p", "0.5", _real("p", "str")),
    ("dropout_forward", "p", np.ones(1), _real("p", "ndarray")),
    ("dropout_forward", "p", np.float32(NAN), (ValueError, "p must be in [0, 1), got nan")),
    ("embedding_backward", "num_embeddings", 4.0, (TypeError, "num_embeddings must be an int >= 0, got float")),
    ("embedding_backward", "num_embeddings", BIG, (ValueError, f"num_embeddings must be an int >= 0 {TOO_BIG}")),
    ("embedding_backward", "padding_idx", True,
     (TypeError, "padding_idx must be -1 (none) or an int in [0, 4), got bool")),
    ("embedding_backward", "padding_idx", 1.0,
     (TypeError, "padding_idx must be -1 (none) or an int in [0, 4), got float")),
    ("cross_entropy_forward", "ignore_index", None, (TypeError, "ignore_index must be an int, got NoneType")),
    ("cross_entropy_forward", "ignore_index", 1.5, (TypeError, "ignore_index must be an int, got float")),
    ("cross_entropy_forward", "ignore_index", True, (TypeError, "ignore_index must be an int, got bool")),
    ("cross_entropy_forward", "ignore_index", BIG, (ValueError, f"ignore_index must be an int {TOO_BIG}")),
    ("cross_entropy_forward", "label_smoothing", None, _real("label_smoothing", "NoneType")),
    ("cross_entropy_forward", "label_smoothing", np.ones(1), _real("label_smoothing", "ndarray")),
    ("cross_entropy_backward", "ignore_index", "-100", (TypeError, "ignore_index must be an int, got str")),
    ("cross_entropy_backward", "label_smoothing", "0.1", _real("label_smoothing", "str")),
    # flags: True or False, not the truth of whatever was passed
    ("leaky_relu_forward", "save", None, _flag("save", "NoneType")),
    ("hardtanh_forward", "save", np.ones(3), _flag("save", "ndarray")),
    ("hardsigmoid_forward", "save", "no", _flag("save", "str")),
    ("elu_forward", "save", 2, (ValueError, "save must be True or False (or 0 or 1), got 2")),
    ("gelu_forward", "save", "False", _flag("save", "str")),
    ("packed_attention_forward", "save_weights", None, _flag("save_weights", "NoneType")),
    ("rnn_step_forward", "relu", "tanh", _flag("relu", "str")),
    # int8 quantization: zero points are ints in [0, 255], scales finite and > 0 in float32
    ("int8_linear", "x_zero_point", None, (TypeError, "x_zero_point must be an int in [0, 255], got NoneType")),
    ("int8_linear", "x_zero_point", 3.0, (TypeError, "x_zero_point must be an int in [0, 255], got float")),
    ("int8_linear", "out_zero_point", True, (TypeError, "out_zero_point must be an int in [0, 255], got bool")),
    ("int8_linear", "out_scale", "0.1", _real("out_scale", "str")),
    ("int8_linear", "out_scale", 1e39, (ValueError, "out_scale must be > 0 and finite as a float32, got 1e+39")),
    ("quantize_u8", "scale", None, _real("scale", "NoneType")),
    ("quantize_u8", "zero_point", 1.5, (TypeError, "zero_point must be an int in [0, 255], got float")),
    ("quantize_u8", "zero_point", BIG, (ValueError, f"zero_point must be an int in [0, 255], got {BIG}")),
    ("dynamic_qparams", "lo", NAN, (ValueError, "lo must be finite as a float32, got nan")),
    ("dynamic_qparams", "hi", "1", _real("hi", "str")),
    ("dynamic_qparams", "reduce_range", None, _flag("reduce_range", "NoneType")),
    ("quantized_linear", "x_scale", "0.1", _real("x_scale", "str")),
    ("quantized_linear", "x_zero_point", None, (TypeError, "x_zero_point must be an int in [0, 255], got NoneType")),
    ("quantized_linear", "relu", "yes", _flag("relu", "str")),
    ("quantized_linear", "reduce_range", np.ones(1), _flag("reduce_range", "ndarray")),
    # a convolution's groups: an int >= 1 within int64; each element of its pairs an int
    ("conv2d_forward", "groups", BIG, (ValueError, f"groups must be a positive int {TOO_BIG}")),
    ("conv2d_forward", "groups", 1.0, (TypeError, "groups must be a positive int, got float")),
    ("conv2d_forward", "groups", True, (TypeError, "groups must be a positive int, got bool")),
    ("conv2d_backward_input", "groups", None, (TypeError, "groups must be a positive int, got NoneType")),
    ("conv2d_backward_input", "groups", BIG, (ValueError, f"groups must be a positive int {TOO_BIG}")),
    ("conv2d_backward_weight", "groups", -1, (ValueError, "groups must be a positive int, got -1")),
    ("conv2d_backward_weight", "groups", 2 ** 64, (ValueError, f"groups must be a positive int and at most "
                                                               f"{2 ** 63 - 1}, got {2 ** 64}")),
    ("conv2d_forward", "stride", (1, BIG),
     (ValueError, f"stride must be a pair of ints >= 1 and at most {2 ** 63 - 1}, got (1, {BIG})")),
    ("conv2d_forward", "padding", (1.0, 1), (ValueError, "padding must be a pair of ints >= 0, got (1.0, 1)")),
    ("conv2d_backward_input", "dilation", (True, 1),
     (ValueError, "dilation must be a pair of ints >= 1, got (True, 1)")),
    ("conv2d_backward_input", "padding", (0, -1), (ValueError, "padding must be a pair of ints >= 0, got (0, -1)")),
    ("conv2d_backward_weight", "stride", (None, 1), (ValueError, "stride must be a pair of ints >= 1, got (None, 1)")),
    ("conv2d_backward_weight", "dilation", (1, 2 ** 63),
     (ValueError, f"dilation must be a pair of ints >= 1 and at most {2 ** 63 - 1}, got (1, {2 ** 63})")),
    # pooling: the divisor an int64 other than 0, the modes flags, the pairs' elements ints
    ("avg_pool2d_forward", "divisor_override", BIG,
     (ValueError, f"divisor_override must be None or a non-zero int {TOO_BIG}")),
    ("avg_pool2d_backward", "divisor_override", -BIG,
     (ValueError, f"divisor_override must be None or a non-zero int and at least {-2 ** 63}, got {-BIG}")),
    ("avg_pool2d_forward", "divisor_override", 1.5,
     (TypeError, "divisor_override must be None or a non-zero int, got float")),
    ("avg_pool2d_backward", "divisor_override", True,
     (TypeError, "divisor_override must be None or a non-zero int, got bool")),
    ("avg_pool2d_forward", "divisor_override", 0, (ValueError, "divisor_override must be None or a non-zero int, got 0")),
    ("max_pool2d_forward", "ceil_mode", None, _flag("ceil_mode", "NoneType")),
    ("avg_pool2d_forward", "ceil_mode", "False", _flag("ceil_mode", "str")),
    ("avg_pool2d_backward", "ceil_mode", 0.0, _flag("ceil_mode", "float")),
    ("avg_pool2d_forward", "count_include_pad", None, _flag("count_include_pad", "NoneType")),
    ("avg_pool2d_backward", "count_include_pad", 2,
     (ValueError, "count_include_pad must be True or False (or 0 or 1), got 2")),
    ("max_pool2d_forward", "kernel_size", (2, BIG),
     (ValueError, f"kernel_size must be a pair of ints >= 1 and at most {2 ** 63 - 1}, got (2, {BIG})")),
    ("max_pool2d_forward", "dilation", (1, 1.0), (ValueError, "dilation must be a pair of ints >= 1, got (1, 1.0)")),
    ("avg_pool2d_forward", "stride", (2, None), (ValueError, "stride must be a pair of ints >= 1, got (2, None)")),
    ("avg_pool2d_backward", "padding", (BIG, 0),
     (ValueError, f"padding must be a pair of ints >= 0 and at most {2 ** 63 - 1}, got ({BIG}, 0)")),
    # normalisation: momentum a real number in [0, 1], eps one >= 0 (neither a bool nor NaN)
    ("batch_norm_forward", "momentum", "0.5", _real("momentum", "str")),
    ("batch_norm_forward", "momentum", None, _real("momentum", "NoneType")),
    ("batch_norm_forward", "momentum", True, _real("momentum", "bool")),
    ("batch_norm_forward", "momentum", NAN, (ValueError, "momentum must be in [0, 1], got nan")),
    ("batch_norm_forward", "momentum", -0.1, (ValueError, "momentum must be in [0, 1], got -0.1")),
    ("batch_norm_forward", "momentum", 2, (ValueError, "momentum must be in [0, 1], got 2.0")),
    ("batch_norm_forward", "eps", "1e-5", _real("eps", "str")),
    ("batch_norm_forward", "eps", np.float32(NAN), (ValueError, "eps must be >= 0, got nan")),
    ("batch_norm_forward", "eps", False, _real("eps", "bool")),
    ("batch_norm_forward", "training", None, _flag("training", "NoneType")),
    ("batch_norm_forward", "training", "False", _flag("training", "str")),
    ("batch_norm_backward", "training", np.ones(2), _flag("training", "ndarray")),
    ("batch_norm_backward", "training", 2, (ValueError, "training must be True or False (or 0 or 1), got 2")),
    ("layer_norm_forward", "eps", None, _real("eps", "NoneType")),
    ("layer_norm_forward", "eps", -1, (ValueError, "eps must be >= 0, got -1.0")),
    ("group_norm_forward", "eps", True, _real("eps", "bool")),
    ("group_norm_forward", "eps", np.ones(1), _real("eps", "ndarray")),
    ("rms_norm_forward", "eps", NAN, (ValueError, "eps must be >= 0, got nan")),
    ("rms_norm_forward", "eps", b"0", _real("eps", "bytes")),
    # products: the transpose flags True or False, the activation None or 'relu'
    ("gemm", "trans_a", None, _flag("trans_a", "NoneType")),
    ("gemm", "trans_b", "no", _flag("trans_b", "str")),
    ("bmm", "trans_a", np.ones(1), _flag("trans_a", "ndarray")),
    ("bmm", "trans_b", 2, (ValueError, "trans_b must be True or False (or 0 or 1), got 2")),
    ("linear_forward", "activation", "tanh", (ValueError, "activation must be None or 'relu', got 'tanh'")),
    ("linear_forward", "activation", np.ones(2), (ValueError, "activation must be None or 'relu', got array([1., 1.])")),
]
OP = {"conv2d_forward": "conv2d", "max_pool2d_forward": "max_pool2d", "avg_pool2d_forward": "avg_pool2d"}


@pytest.mark.parametrize("kernel, name, value, error", BAD,
                         ids=[f"{k}-{n}={v!r:.20}" for k, n, v, _ in BAD])
def test_a_bad_scalar_gets_the_same_error_from_kernel_and_twin(kernel, name, value, error):
    exc, message = error
    for fn in _both(kernel):
        args = _args(kernel)
        args[name] = value
        before = {k: a.copy() for k, a in args.items() if isinstance(a, np.ndarray)}
        with pytest.raises(exc) as info:
            fn(**args)
        assert type(info.value) is exc
        assert str(info.value) == f"{OP.get(kernel, kernel)}: {message}"
        for k, a in before.items():   # a refused call writes nothing
            assert np.array_equal(args[k], a, equal_nan=True), k


GOOD = [
    # (kernel, argument, an unusual but valid spelling, the plain one): the same result
    ("adam_step", "step", np.int64(3), 3),
    ("adam_step", "lr", np.float32(0.5), 0.5),
    ("adam_step", "beta1", Fraction(3, 4), 0.75),
    ("adam_step", "amsgrad", np.True_, True),
    ("adam_step", "maximize", 0, False),
    ("sgd_step", "weight_decay", np.float16(0.25), 0.25),
    ("sgd_step", "nesterov", np.False_, False),
    ("rmsprop_step", "centered", 1, True),
    ("adagrad_step", "lr_decay", Fraction(1, 4), 0.25),
    ("dropout_forward", "p", np.float32(0.5), 0.5),
    ("dropout_forward", "p", 0, 0.0),
    ("embedding_backward", "num_embeddings", np.int64(4), 4),
    ("embedding_backward", "padding_idx", np.int32(2), 2),
    ("cross_entropy_forward", "ignore_index", np.int64(1), 1),
    ("cross_entropy_forward", "label_smoothing", Fraction(1, 4), 0.25),
    ("leaky_relu_forward", "save", np.True_, True),
    ("packed_attention_forward", "save_weights", 1, True),
    ("rnn_step_forward", "relu", np.bool_(True), True),
    ("int8_linear", "x_zero_point", np.uint8(3), 3),
    ("int8_linear", "out_scale", np.float32(0.125), 0.125),
    ("quantize_u8", "scale", Fraction(1, 16), 0.0625),
    ("quantize_u8", "zero_point", np.int16(128), 128),
    ("dynamic_qparams", "lo", np.float16(-1), -1.0),
    ("dynamic_qparams", "reduce_range", 1, True),
    ("quantized_linear", "x_scale", np.float32(0.0625), 0.0625),
    ("quantized_linear", "relu", np.True_, True),
    ("conv2d_forward", "groups", np.int64(1), 1),
    ("conv2d_forward", "stride", [1, np.int64(1)], (1, 1)),
    ("conv2d_backward_input", "groups", np.uint8(1), 1),
    ("conv2d_backward_weight", "padding", (np.int32(1), 1), (1, 1)),
    ("max_pool2d_forward", "ceil_mode", 1, True),
    ("avg_pool2d_forward", "ceil_mode", np.True_, True),
    ("avg_pool2d_forward", "divisor_override", np.int64(3), 3),
    ("avg_pool2d_backward", "divisor_override", np.int16(-3), -3),
    ("avg_pool2d_backward", "count_include_pad", 0, False),
    ("batch_norm_forward", "momentum", np.float32(0.5), 0.5),
    ("batch_norm_forward", "momentum", Fraction(1, 4), 0.25),
    ("batch_norm_forward", "eps", np.float64(1e-5), 1e-5),
    ("batch_norm_forward", "training", np.False_, False),
    ("batch_norm_backward", "training", 1, True),
    ("layer_norm_forward", "eps", Fraction(1, 100000), 1e-5),
    ("rms_norm_forward", "eps", 0, 0.0),
    ("gemm", "trans_a", np.True_, True),
    ("bmm", "trans_b", 1, True),
]


def _result(fn, args):
    out = fn(**args)
    if out is None:   # an in-place kernel: what it wrote
        out = tuple(a for a in args.values() if isinstance(a, np.ndarray))
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("kernel, name, value, plain", GOOD,
                         ids=[f"{k}-{n}={v!r:.24}" for k, n, v, _ in GOOD])
def test_any_spelling_of_a_valid_scalar_gives_the_plain_one_s_result(kernel, name, value, plain):
    for fn in _both(kernel):
        state = _R.bit_generator.state
        args = _args(kernel)
        args[name] = value
        got = _result(fn, args)
        _R.bit_generator.state = state   # the same arrays again
        args = _args(kernel)
        args[name] = plain
        want = _result(fn, args)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert type(a) is type(b)
            if isinstance(a, np.ndarray):
                assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
            else:
                assert a == b


@pytest.mark.parametrize("kernel", ["conv2d_forward", "max_pool2d_forward", "avg_pool2d_forward"])
@pytest.mark.parametrize("stride", [(1, 2 ** 63 - 1), (2 ** 63 - 1, 2), (2 ** 40, 1)])
def test_a_stride_up_to_the_int64_maximum_gives_the_twin_s_result(kernel, stride):
    # one window along that axis; the loops' bounds are worked out without overflowing
    compiled, twin = _both(kernel)
    args = _args(kernel)
    args["stride"] = stride
    got, want = _result(compiled, dict(args)), _result(twin, dict(args))
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
