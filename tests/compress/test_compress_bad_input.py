"""Ranks and dropout rates outside their range are refused by the compression helpers."""
import pytest

from nnlite import nn
from nnlite.compress import LoRALinear, low_rank_error


def test_low_rank_error_rank_range():
    layer = nn.Linear(4, 3)
    assert low_rank_error(layer, 0) == pytest.approx(1.0)
    assert low_rank_error(layer, 3) == pytest.approx(0.0, abs=1e-6)
    for rank in (-1, 4, 1.5):
        with pytest.raises(ValueError, match=r"low_rank_error: rank must be an integer in \[0, 3\]"):
            low_rank_error(layer, rank)


def test_lora_dropout_must_be_a_probability():
    with pytest.raises(ValueError, match=r"LoRALinear: dropout must be in \[0, 1\), got 2.0"):
        LoRALinear(nn.Linear(4, 3), r=2, dropout=2.0)
