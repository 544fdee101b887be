"""Constructor arguments PyTorch refuses are refused by name when an nnlite layer is made."""
import numpy as np
import pytest

import nnlite as nl

# (layer, args, kwargs, the name the error must give) -- each refused by PyTorch too
NOT_INTS = [
    ("Linear", (2.5, 3), {}, "in_features"),
    ("Linear", (3, True), {}, "out_features"),
    ("Bilinear", (2, 3.0, 4), {}, "in2_features"),
    ("BatchNorm1d", (3.0,), {}, "num_features"),
    ("BatchNorm2d", (3.0,), {}, "num_features"),
    ("InstanceNorm1d", (3.0,), {"affine": True}, "num_features"),
    ("GroupNorm", (1.5, 3), {}, "num_groups"),
    ("LayerNorm", ((2, 3.0),), {}, r"normalized_shape\[1\]"),
    ("Embedding", (5.0, 3), {}, "num_embeddings"),
    ("RNN", (3.0, 3), {}, "input_size"),
    ("LSTM", (3, 3), {"num_layers": 1.5}, "num_layers"),
    ("GRU", (3, 3.0), {}, "hidden_size"),
    ("LSTMCell", (3, 3.0), {}, "hidden_size"),
    ("Conv2d", (3, 4.0, 3), {}, "out_channels"),
    ("Unflatten", (1, (2.0, 3)), {}, r"unflattened_size\[0\]"),
]


@pytest.mark.parametrize("name, args, kwargs, what", NOT_INTS)
def test_a_size_that_is_not_an_int_is_refused_by_name(name, args, kwargs, what):
    with pytest.raises(TypeError, match=rf"{name}: {what} must be an int, got (float|bool)"):
        getattr(nl.nn, name)(*args, **kwargs)


@pytest.mark.parametrize("name, args, kwargs, what", NOT_INTS)
def test_torch_refuses_the_same_arguments(name, args, kwargs, what):
    torch = pytest.importorskip("torch")
    x = {"GroupNorm": (torch.randn(2, 3, 4),),
         "LayerNorm": (torch.randn(2, 3),), "Unflatten": (torch.randn(2, 6),)}.get(name)
    with pytest.raises((TypeError, ValueError, RuntimeError)):
        module = getattr(torch.nn, name)(*args, **kwargs)
        if x is not None:
            module(*x)


@pytest.mark.parametrize("name, args, kwargs, message", [
    ("RNN", (0, 3), {}, r"RNN: input_size, hidden_size and num_layers must be >= 1, got 0, 3 and 1"),
    ("LSTM", (3, 3), {"dropout": True}, r"LSTM: dropout must be a number in \[0, 1\], got True"),
    ("GRU", (3, 3), {"dropout": "0.5"}, r"GRU: dropout must be a number in \[0, 1\], got '0.5'"),
    ("Conv1d", (3, 0, 3), {}, r"Conv1d: in_channels and out_channels must be >= 1, got in_channels=3, out_channels=0"),
    ("ConvTranspose2d", (3, 0, 3), {}, r"ConvTranspose2d: in_channels and out_channels must be >= 1"),
    ("LayerNorm", ((),), {}, r"LayerNorm: normalized_shape must have at least one element, got \(\)"),
    ("RMSNorm", ([],), {}, r"RMSNorm: normalized_shape must have at least one element, got \[\]"),
    ("AdaptiveAvgPool1d", (None,), {}, r"AdaptiveAvgPool1d: output_size must be an int or a tuple"),
    ("AdaptiveAvgPool2d", (None,), {}, r"AdaptiveAvgPool2d: output_size must be an int or a tuple"),
    ("AdaptiveMaxPool2d", (None,), {}, r"AdaptiveMaxPool2d: output_size must be an int or a tuple"),
])
def test_arguments_torch_refuses_are_refused_with_what_was_given(name, args, kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        getattr(nl.nn, name)(*args, **kwargs)


@pytest.mark.parametrize("make, x", [
    (lambda nn: nn.RNN(0, 3), np.zeros((4, 2, 0))),
    (lambda nn: nn.Conv1d(3, 0, 3), np.zeros((2, 3, 6))),
    (lambda nn: nn.LayerNorm(()), np.zeros((2, 3))),
    (lambda nn: nn.AdaptiveAvgPool2d(None), np.zeros((2, 3, 4, 4))),
])
def test_torch_refuses_them_too(make, x):
    torch = pytest.importorskip("torch")
    with pytest.raises((TypeError, ValueError, RuntimeError)):
        make(torch.nn)(torch.tensor(x))


def test_a_tuple_output_size_may_hold_none():
    assert nl.nn.AdaptiveAvgPool2d((None, 2))(nl.zeros(1, 3, 5, 4)).shape == (1, 3, 5, 2)


@pytest.mark.parametrize("shape, expected", [((4,), r"expected a dim in \[-1, 0\]"),
                                             ((), "a 0-D input has no dim to split")])
def test_unflatten_names_a_dim_out_of_range(shape, expected):
    with pytest.raises(IndexError, match=rf"Unflatten\(dim=1\): dim 1 is out of range for an input of "
                                         rf"{len(shape)} dims \(shape \({shape[0] if shape else ''},?\)\); {expected}"):
        nl.nn.Unflatten(1, (2, 3))(nl.zeros(*shape))


def test_attention_names_the_query_shape_a_key_must_match():
    attention = nl.nn.MultiheadAttention(4, 2)
    with pytest.raises(ValueError, match=r"expected key of 3 dims \(batched\) or 2 \(unbatched\) like the query "
                                         r"\(shape \(3, 4\)\), got shape \(3, 2, 4\)"):
        attention(nl.zeros(3, 4), nl.zeros(3, 2, 4), nl.zeros(3, 2, 4))
    with pytest.raises(ValueError, match=r"expected query of 3 dims \(batched\) or 2 \(unbatched\), got shape"):
        attention(nl.zeros(1, 3, 2, 4), nl.zeros(3, 2, 4), nl.zeros(3, 2, 4))


# PyTorch's layers all take device= (and dtype=); nnlite's accept device and ignore it (CPU only).
DEVICE_LAYERS = [("RNN", (2, 3)), ("LSTM", (2, 3)), ("GRU", (2, 3)), ("RNNCell", (2, 3)), ("LSTMCell", (2, 3)),
                 ("GRUCell", (2, 3)), ("MultiheadAttention", (4, 2)), ("TransformerEncoderLayer", (4, 2, 8)),
                 ("Linear", (2, 3)), ("Conv2d", (2, 3, 1)), ("Embedding", (4, 2)), ("LayerNorm", (3,))]


@pytest.mark.parametrize("name, args", DEVICE_LAYERS)
def test_layers_take_pytorchs_device_keyword(name, args):
    layer = getattr(nl.nn, name)(*args, device="cpu", dtype=nl.float64)
    assert all(p.dtype == np.float64 for p in layer.parameters())
    assert getattr(nl.nn, name)(*args, device=None).state_dict().keys() == layer.state_dict().keys()
