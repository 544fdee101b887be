"""FLOPs of Linear, convolution and attention layers against counts done by hand."""
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
