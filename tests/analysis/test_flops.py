"""FLOPs of Linear, convolution and attention layers against counts done by hand."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.analysis import flops, flops_by_layer


def test_linear_counts_two_per_multiply_add_for_every_row():
    assert flops(nn.Linear(40, 10), nl.randn(100, 40)) == 2 * 100 * 40 * 10
    # Leading dimensions are all rows: (4, 7, 8) is 28 rows.
    assert flops(nn.Linear(8, 3, bias=False), nl.randn(4, 7, 8)) == 2 * 28 * 8 * 3


def test_conv1d_and_conv2d_count_the_window_per_output_element():
    conv = nn.Conv1d(1, 25, 5, stride=2, padding=1)          # length 40 -> 19
    assert flops(conv, nl.randn(3, 1, 40)) == 2 * (1 * 5) * (3 * 25 * 19)
    grouped = nn.Conv2d(8, 12, (3, 2), stride=1, padding=0, groups=4)   # 10x9 -> 8x8, 2 in-channels a group
    assert flops(grouped, nl.randn(2, 8, 10, 9)) == 2 * (2 * 3 * 2) * (2 * 12 * 8 * 8)


def test_attention_counts_projections_scores_and_weighted_values():
    E, H, N, L, S = 16, 4, 2, 5, 7
    mha = nn.MultiheadAttention(E, H, batch_first=True)
    q, kv = nl.randn(N, L, E), nl.randn(N, S, E)
    counts = flops_by_layer(mha, (q, kv, kv))
    projections = 2 * N * (L * E * E + S * E * E + S * E * E)
    products = 2 * N * L * S * E * 2
    assert counts[""] == projections + products
    assert counts["out_proj"] == 2 * N * L * E * E
    # Sequence-first layout and different key/value widths give the same hand count.
    mha2 = nn.MultiheadAttention(E, H, kdim=6, vdim=10)
    c2 = flops_by_layer(mha2, (nl.randn(L, N, E), nl.randn(S, N, 6), nl.randn(S, N, 10)))
    assert c2[""] == 2 * N * (L * E * E + S * 6 * E + S * 10 * E) + products


class _AttentionByKeyword(nn.Module):
    """Calls its attention with query=, key=, value=: forward hooks see no positional arguments."""

    def __init__(self, attention, keys, need_weights=True):
        super().__init__()
        self.attention, self.keys, self.need_weights = attention, keys, need_weights

    def forward(self, x):
        return self.attention(query=x, key=self.keys, value=self.keys, need_weights=self.need_weights)[0]


def test_attention_called_by_keyword_is_counted_from_its_output_and_weights():
    E, H, N, L, S = 16, 4, 2, 5, 7
    for batch_first, q, kv in ((True, nl.randn(N, L, E), nl.randn(N, S, E)),
                               (False, nl.randn(L, N, E), nl.randn(S, N, E))):
        mha = nn.MultiheadAttention(E, H, batch_first=batch_first)
        counts = flops_by_layer(_AttentionByKeyword(mha, kv), q)   # was an IndexError in the counter
        assert counts["attention"] == 2 * N * (L * E * E + 2 * S * E * E) + 2 * N * L * S * E * 2
    unbatched = flops_by_layer(_AttentionByKeyword(nn.MultiheadAttention(E, H), nl.randn(S, E)), nl.randn(L, E))
    assert unbatched["attention"] == 2 * (L * E * E + 2 * S * E * E) + 2 * L * S * E * 2
    with pytest.raises(TypeError, match="by keyword and need_weights=False, which leaves their lengths unknown"):
        flops(_AttentionByKeyword(nn.MultiheadAttention(E, H), nl.randn(S, N, E), need_weights=False),
              nl.randn(L, N, E))


def test_model_total_sums_its_layers_and_leaves_elementwise_work_out():
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    by_layer = flops_by_layer(model, nl.randn(3, 10))
    assert dict(by_layer) == {"0": 2 * 3 * 10 * 20, "2": 2 * 3 * 20 * 5}
    assert flops(model, nl.randn(3, 10)) == sum(by_layer.values())
    # The hooks are removed afterwards, so Sequential fuses Linear + ReLU again.
    assert not model[0]._forward_hooks


def test_mnist1d_cnn_matches_its_hand_count():
    from nnlite.recipes import MNIST1DCNN
    model = MNIST1DCNN()
    expected = (2 * 1 * 5 * 25 * 19 + 2 * 25 * 3 * 25 * 10 + 2 * 25 * 3 * 25 * 5 + 2 * 125 * 10)
    assert flops(model, nl.randn(1, 40)) == expected


def test_counting_a_training_model_draws_no_random_numbers():
    # Its dropout masks would move the global generator: every later random number of the run
    # (data order, the next masks) would differ from a run without the count.
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    state = nl.random.get_rng_state()
    expected = nl.randn(3).data
    nl.random.set_rng_state(state)
    assert flops(model, nl.tensor(np.ones((5, 4), np.float32))) == 2 * 5 * (4 * 8 + 8 * 2)
    np.testing.assert_array_equal(nl.randn(3).data, expected)
