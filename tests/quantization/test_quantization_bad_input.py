"""Quantization parameters that cannot describe a code range are refused, not turned into zeros or nans."""
import numpy as np
import pytest

import nnlite as nl
from nnlite.quantization import (MovingAverageMinMaxObserver, MSEObserver, calculate_qparams,
                                 fake_quantize_per_channel_affine, fake_quantize_per_tensor_affine)


def test_calculate_qparams_refuses_an_inverted_range():
    with pytest.raises(ValueError, match="min_val must not exceed max_val, got 1.0 and -1.0"):
        calculate_qparams(np.array(1.0), np.array(-1.0))
    with pytest.raises(ValueError, match="quant_min < quant_max, got 10 and 10"):
        calculate_qparams(-1.0, 1.0, quant_min=10, quant_max=10)
    with pytest.raises(ValueError, match="give both quant_min and quant_max or neither, got 0 and None"):
        calculate_qparams(-1.0, 1.0, quant_min=0)   # was a TypeError comparing 0 with None


def test_fake_quantize_refuses_a_zero_scale_and_an_empty_code_range():
    x = nl.randn(3, 4)
    with pytest.raises(ValueError, match="fake_quantize_per_tensor_affine: scale must be > 0, got 0.0"):
        fake_quantize_per_tensor_affine(x, 0.0, 0, 0, 255)
    with pytest.raises(ValueError, match="expected quant_min < quant_max, got 255 and 0"):
        fake_quantize_per_tensor_affine(x, 0.1, 0, 255, 0)
    with pytest.raises(ValueError, match="fake_quantize_per_channel_affine: scale must be > 0"):
        fake_quantize_per_channel_affine(x, np.array([0.1, 0.0, 0.1]), np.zeros(3, int), 0, 0, 255)


def test_observer_settings_out_of_range():
    with pytest.raises(ValueError, match=r"averaging_constant must be in \(0, 1\], got 2"):
        MovingAverageMinMaxObserver(averaging_constant=2)
    with pytest.raises(ValueError, match="grid and max_samples must be >= 1, got grid=0"):
        MSEObserver(grid=0)


def test_qtensor_codes_must_be_stored_in_the_dtype_storage_type():
    from nnlite.quantization import QTensor, qint8
    with pytest.raises(TypeError, match="QTensor: codes of .* must be a NumPy array of int8, got float64"):
        QTensor(np.ones(3), 0.1, 0, qint8)
    q = QTensor(np.array([-2, 0, 3], np.int8), 0.5, 0, qint8)
    assert np.array_equal(q.dequantize().numpy(), [-1.0, 0.0, 1.5])


def test_calculate_qparams_scheme_eps_and_range():
    with pytest.raises(TypeError, match="expected qscheme to be one of nl.per_tensor_affine"):
        calculate_qparams(-1.0, 1.0, qscheme="affine")
    with pytest.raises(ValueError, match="eps must be a finite number > 0, got 0"):
        calculate_qparams(0.0, 0.0, eps=0)   # was a scale of 0
    with pytest.raises(ValueError, match="expected a finite range, got min_val=nan"):
        calculate_qparams(float("nan"), 1.0)   # was a NaN scale


def test_quantize_refuses_infinite_scales_fractional_zero_points_and_nan():
    from nnlite.quantization import QTensor, quantize_per_channel, quantize_per_tensor
    x = nl.randn(4, 5)
    with pytest.raises(ValueError, match="every scale must be a finite number > 0, got inf"):
        quantize_per_tensor(x, float("inf"), 0, nl.quint8)
    with pytest.raises(TypeError, match="zero points must be integers, got 1.5"):
        quantize_per_tensor(x, 0.1, 1.5, nl.quint8)   # was truncated to 1
    with pytest.raises(TypeError, match="zero points must be integers"):
        quantize_per_channel(x, np.ones(4), np.full(4, 0.5), 0, nl.qint8)
    with pytest.raises(ValueError, match="NaN has no quantized code"):
        quantize_per_tensor(nl.tensor([np.nan, 1.0]), 0.1, 0, nl.quint8)
    with pytest.raises(ValueError, match="QTensor: every scale must be a finite number > 0, got 0.0"):
        QTensor(np.zeros(3, np.uint8), 0.0, 0, nl.quint8)
    assert quantize_per_channel(x, nl.ones(4), nl.zeros(4), 0, nl.qint8).int_repr().shape == (4, 5)


@pytest.mark.parametrize("observer", ["MinMaxObserver", "MovingAverageMinMaxObserver", "PerChannelMinMaxObserver",
                                      "PercentileObserver", "MSEObserver"])
def test_observers_refuse_non_finite_values(observer):
    import nnlite.quantization as Q
    with pytest.raises(ValueError, match=f"{observer}: expected finite values to observe, got NaN or inf"):
        getattr(Q, observer)()(nl.tensor([[np.inf, 1.0], [2.0, 3.0]]))


def test_per_channel_observer_refuses_a_different_channel_count():
    from nnlite.quantization import PerChannelMinMaxObserver
    observer = PerChannelMinMaxObserver()
    observer(nl.ones(2, 3))
    with pytest.raises(ValueError, match="observed 2 channels along axis 0 before, got 4"):
        observer(nl.ones(4, 3))   # was silently restarted on the new channels


@pytest.mark.parametrize("call", ["quantize_dynamic", "prepare_qat", "convert", "model_size_bytes"])
def test_an_array_where_a_model_is_expected(call):
    import nnlite.quantization as Q
    with pytest.raises(TypeError, match=f"{call}: expected an nn.Module, got ndarray"):
        getattr(Q, call)(np.zeros(3))


def test_fuse_and_from_float_name_what_they_were_given():
    from nnlite.quantization import QuantizedLinear, fuse_modules
    with pytest.raises(TypeError, match="fuse_modules: expected an nn.Module, got ndarray"):
        fuse_modules(np.zeros(3), [["0", "1"]])
    with pytest.raises(TypeError, match="QuantizedLinear.from_float: expected an nn.Linear, got ReLU"):
        QuantizedLinear.from_float(nl.nn.ReLU())
    with pytest.raises(TypeError, match="Float16Linear.from_float: expected an nn.Linear, got Conv2d"):
        nl.quantization.Float16Linear.from_float(nl.nn.Conv2d(1, 1, 1))   # was an AttributeError


def test_quantize_dynamic_qconfig_spec_is_a_set_of_types():
    from nnlite.quantization import QuantizedLinear, quantize_dynamic
    model = nl.nn.Sequential(nl.nn.Linear(4, 3), nl.nn.ReLU(), nl.nn.Linear(3, 2))
    # As torch: an empty set quantizes nothing (it was read as "the default", every Linear).
    assert [type(m) for m in quantize_dynamic(model, set())] == [type(m) for m in model]
    assert [type(m) for m in quantize_dynamic(model)][::2] == [QuantizedLinear, QuantizedLinear]
    with pytest.raises(ValueError, match=r"qconfig_spec must be a set of these types, got \['0'\]"):
        quantize_dynamic(model, {"0"})   # was an AttributeError on str.__name__


def test_prepare_qat_refuses_a_pruned_linear():
    # Its weight is computed from weight_orig and weight_mask before each call: the QAT layer
    # would hold those but train its own constructor's random weight.
    from nnlite.nn.utils import prune
    model = nl.nn.Sequential(nl.nn.Linear(4, 6), nl.nn.ReLU(), nl.nn.Linear(6, 2))
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    with pytest.raises(ValueError, match=r"QATLinear.from_float: expected a Linear whose weight is a parameter, "
                                         r"got one whose weight is computed \(its parameters: \['bias', "
                                         r"'weight_orig'\]\); make it a parameter first"):
        nl.quantization.prepare_qat(model)
    prune.remove(model[0], "weight")
    x = nl.randn(3, 4)
    np.testing.assert_allclose(nl.quantization.prepare_qat(model)(x).detach().numpy(), model(x).detach().numpy(), atol=0.1)
