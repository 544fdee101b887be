"""Ranks and dropout rates outside their range are refused by the compression helpers."""
import pytest

from nnlite import nn
from nnlite.compress import LoRALinear, low_rank_error


def test_low_rank_error_rank_range():
    layer = nn.Linear(4, 3)
    assert low_rank_error(layer, 0) == pytest.approx(1.0)
    assert low_rank_error(layer, 3) == pytest.approx(0.0, abs=1e-6)
    for rank in (-1, 4, 1.5, 2.0):   # 2.0 passed the check and failed as a slice index
        with pytest.raises(ValueError, match=r"low_rank_error: rank must be an integer in \[0, 3\]"):
            low_rank_error(layer, rank)


def test_lora_dropout_must_be_a_probability():
    with pytest.raises(ValueError, match=r"LoRALinear: dropout must be in \[0, 1\), got 2.0"):
        LoRALinear(nn.Linear(4, 3), r=2, dropout=2.0)


def test_low_rank_refuses_a_bool_rank_and_a_non_finite_weight():
    import numpy as np
    from nnlite.compress import low_rank, rank_for_energy
    with pytest.raises(ValueError, match="rank must be an integer in"):
        low_rank(nn.Linear(6, 5), rank=True)
    layer = nn.Linear(3, 3)
    layer.weight.data[0, 0] = np.nan
    with pytest.raises(ValueError, match="low_rank: expected a finite weight, got NaN or inf in Linear.weight"):
        low_rank(layer, rank=1)
    with pytest.raises(ValueError, match=r"non-empty 1-D array of finite singular values, got shape \(0,\)"):
        rank_for_energy(np.array([]), 0.9)
    with pytest.raises(ValueError, match="with NaN or inf"):
        rank_for_energy(np.array([np.nan, 1.0]), 0.9)
