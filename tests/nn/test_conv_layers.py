"""Conv1d and Conv2d against PyTorch; the conv ops' first and second derivatives."""
import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck, gradgradcheck
from helpers import compare, f64, load_from_torch_and_compare

F = nl.nn.functional

CONFIGS = [
    dict(),
    dict(stride=2, padding=1),
    dict(padding="same"),
    dict(padding="same", dilation=2),
    dict(padding="valid", bias=False),
    dict(groups=2, padding=(1, 2), stride=(1, 2)),
    dict(dilation=(2, 1), padding=2),
    dict(padding=1, padding_mode="reflect"),
    dict(padding="same", padding_mode="replicate"),
    dict(padding=2, padding_mode="circular"),
]


@pytest.mark.parametrize("kwargs", CONFIGS)
@pytest.mark.parametrize("kernel", [3, 4])
def test_conv2d_matches_torch(kwargs, kernel):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 4, 9, 8))
    compare(nl.nn.Conv2d(4, 6, kernel, **kwargs), torch.nn.Conv2d(4, 6, kernel, **kwargs), x, steps=1)


@pytest.mark.parametrize("kwargs", CONFIGS)
def test_conv1d_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    one = {k: (v[0] if isinstance(v, tuple) else v) for k, v in kwargs.items()}
    x = np.random.default_rng(1).standard_normal((3, 4, 11))
    compare(nl.nn.Conv1d(4, 6, 3, **one), torch.nn.Conv1d(4, 6, 3, **one), x, steps=1)


def test_depthwise_and_unbatched_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    compare(nl.nn.Conv2d(4, 8, 3, groups=4, padding=1), torch.nn.Conv2d(4, 8, 3, groups=4, padding=1),
            rng.standard_normal((2, 4, 6, 6)), steps=1)
    compare(nl.nn.Conv2d(3, 2, 3), torch.nn.Conv2d(3, 2, 3), rng.standard_normal((3, 5, 5)), steps=1)
    compare(nl.nn.Conv1d(3, 2, 2), torch.nn.Conv1d(3, 2, 2), rng.standard_normal((3, 5)), steps=1)


def test_state_dict_keys_layout_and_loading_from_torch():
    torch = pytest.importorskip("torch")
    conv = nl.nn.Conv2d(3, 16, (3, 5), groups=1)
    assert conv.weight.shape == (16, 3, 3, 5) and conv.bias.shape == (16,)
    assert (conv.weight.kind, conv.bias.kind) == ("weight", "bias")
    assert list(conv.state_dict()) == list(torch.nn.Conv2d(3, 16, (3, 5)).state_dict())
    x = np.random.default_rng(3).standard_normal((2, 3, 8, 8))
    load_from_torch_and_compare(conv, torch.nn.Conv2d(3, 16, (3, 5)), x)
    load_from_torch_and_compare(nl.nn.Conv1d(3, 4, 3, groups=1, bias=False),
                                torch.nn.Conv1d(3, 4, 3, bias=False), x[:, :, 0])


def test_conv_errors_name_layer_expected_and_given():
    with pytest.raises(ValueError) as e:
        nl.nn.Conv2d(3, 4, 3)(nl.zeros(2, 5, 8, 8))
    assert str(e.value) == "Conv2d(in_channels=3): input has 5 channels (shape (2, 5, 8, 8))"
    with pytest.raises(ValueError, match=r"Conv1d\(in_channels=3\): expected a 3-D \(batched\) or 2-D input"):
        nl.nn.Conv1d(3, 4, 3)(nl.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"Conv2d\(in_channels=3\): .*output size"):
        nl.nn.Conv2d(3, 4, 5)(nl.zeros(1, 3, 3, 3))
    with pytest.raises(ValueError, match="divisible by groups"):
        nl.nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        nl.nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode"):
        nl.nn.Conv2d(3, 4, 3, padding_mode="mirror")


def test_conv2d_op_first_and_second_derivatives():
    rng = np.random.default_rng(4)
    x, w, b = f64(rng, 2, 4, 5, 5), f64(rng, 4, 2, 3, 3), f64(rng, 4)
    for kw in [dict(stride=2, padding=1, groups=2), dict(padding="same", dilation=(1, 2), groups=2)]:
        fn = lambda x, w, b: F.conv2d(x, w, b, **kw)  # noqa: E731
        assert gradcheck(fn, [x, w, b])
        assert gradgradcheck(fn, [x, w, b])


def test_conv1d_op_gradcheck():
    rng = np.random.default_rng(5)
    x, w, b = f64(rng, 2, 3, 7), f64(rng, 2, 3, 2), f64(rng, 2)
    assert gradcheck(lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1), [x, w, b])
    assert gradcheck(lambda x, w: F.conv1d(x, w, padding="same", dilation=3), [x, w])
    # the 1-D Functions hand the 2-D kernels (N, C, 1, L) views; second derivatives come
    # back in the 3-D shapes too
    assert gradgradcheck(lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1), [x, w, b])
    assert gradgradcheck(lambda x, w: F.conv1d(x, w, padding="same", dilation=3, groups=3),
                         [x, f64(rng, 3, 1, 2)])


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_matches_torch_and_gradcheck(mode):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x = f64(rng, 2, 3, 4, 5)
    # torch pads a 4-D input in non-constant modes only over the last two dims.
    for widths in [(1, 2, 2, 1), (0, 3, 3, 0)] + ([(1, 2), (1, 1, 0, 2, 1, 1)] if mode == "constant" else []):
        kwargs = dict(value=1.5) if mode == "constant" else {}
        ours = F.pad(x, widths, mode=mode, **kwargs)
        theirs = torch.nn.functional.pad(torch.tensor(x.data), widths, mode=mode, **kwargs)
        np.testing.assert_array_equal(ours.data, theirs.numpy())
    assert gradcheck(lambda x: F.pad(x, (1, 2, 2, 1), mode=mode), [x])
    with pytest.raises(ValueError, match="even-length"):
        F.pad(x, (1, 2, 3), mode=mode)


def test_conv1d_errors_speak_of_conv1d():
    import nnlite as nl
    import nnlite.nn.functional as F
    x, w = nl.randn(1, 2, 5), nl.randn(3, 3, 3)
    with pytest.raises(ValueError, match=r"conv1d: input has 2 channels but weight expects 3"):
        F.conv1d(x, w)
    with pytest.raises(TypeError, match=r"conv1d: stride must be an int or a tuple of one int, got tuple \(2, 3\)"):
        F.conv1d(nl.randn(1, 3, 5), w, stride=(2, 3))


def test_layer_arguments_are_checked_when_the_layer_is_made():
    import nnlite as nl
    cases = [(lambda: nl.nn.Conv2d(3, 4, (3,)), r"Conv2d: kernel_size must be an int or a tuple of 2 ints, got tuple \(3,\)"),
             (lambda: nl.nn.ConvTranspose2d(4.0, 6, 3), "ConvTranspose2d: in_channels must be an int, got float 4.0"),
             (lambda: nl.nn.Conv1d(3, 4, 3, stride=1.5), "Conv1d: stride must be an int or a tuple of 1 int, got float"),
             (lambda: nl.nn.Conv2d(3, 3, 3, groups=1.5), "Conv2d: groups must be an int"),
             (lambda: nl.nn.ConvTranspose1d(3, 4, 3, output_padding=(1, 1)), "ConvTranspose1d: output_padding must be")]
    for make, message in cases:
        with pytest.raises(TypeError, match=message):
            make()
    assert nl.nn.Conv2d(3, 4, [3, 5], stride=(2, 1)).kernel_size == (3, 5)


@pytest.mark.parametrize("kwargs", [dict(padding="same"), dict(padding="valid", groups=2),
                                    dict(padding=1, padding_mode="reflect", dilation=2, bias=False)])
def test_conv_repr_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    for name in ("Conv1d", "Conv2d"):
        assert repr(getattr(nl.nn, name)(4, 6, 3, **kwargs)) == repr(getattr(torch.nn, name)(4, 6, 3, **kwargs))
