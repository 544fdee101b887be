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
