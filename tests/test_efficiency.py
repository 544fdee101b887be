"""nnlite.efficiency: the compared blocks have the counts their docstrings derive, and a short
comparison returns rows with parameters, FLOPs and a learned accuracy."""
import pytest

import nnlite as nl
from nnlite import efficiency

from helpers import mnist1d_or_skip


def test_blocks_keep_the_shape_and_have_fewer_parameters():
    x = nl.randn(2, 32, 8, 8)
    counts = {}
    for kind in ("plain", "depthwise_separable", "bottleneck"):
        block = efficiency.conv_block(kind, 32)
        assert block(x).shape == (2, 32, 8, 8)
        counts[kind] = block.num_parameters()
    assert counts["plain"] == 2 * (32 * 32 * 9 + 32) + 2 * 2 * 32
    assert counts["depthwise_separable"] == 2 * (32 * 9 + 32 + 32 * 32 + 32) + 2 * 2 * 32
    assert counts["bottleneck"] == 32 * 8 + 9 * 8 * 8 + 8 * 32 + 2 * (8 + 8 + 32)
    with pytest.raises(ValueError, match="kind must be"):
        efficiency.conv_block("dense")


def test_short_comparisons_learn():
    mnist1d_or_skip()
    rows = efficiency.compare_conv_blocks(seed=0, epochs=2, kinds=("depthwise_separable",))
    assert rows[0]["accuracy"] > 0.5 and rows[0]["flops_per_example"] > 0      # chance is 10%
    rows = efficiency.compare_attention(seed=0, epochs=1, kv_heads=(8, 1))
    assert rows[1]["attention_parameters"] < rows[0]["attention_parameters"]
    assert rows[1]["flops_per_example"] < rows[0]["flops_per_example"]
    assert all(r["accuracy"] > 0.15 for r in rows)
    assert "MQA" in efficiency.format_table(rows)


def test_attention_flops_are_the_linear_layers_products_only():
    """What the module docstring says compare_attention's FLOPs hold: the embedding, the Q, K, V
    and output projections and the head, per example; not the scores or the weighted values."""
    E, H, T = 32, 8, 10
    for g in (8, 2, 1):
        model = efficiency.TokenAttentionNet(g).eval()
        kv = E * (E // H) * g
        per_example = 2 * T * (4 * E + E * E + 2 * kv + E * E) + 2 * E * 10
        assert nl.analysis.flops(model, nl.randn(1, 40)) == per_example
