"""Parameters, FLOPs and accuracy of efficient blocks against the plain ones they replace.

Two small, seeded comparisons; each returns one row per variant with its
parameter count, forward FLOPs (:func:`nnlite.analysis.flops`, a multiply-add
counted as 2) and test accuracy after the same short training:

* :func:`compare_conv_blocks` — on scikit-learn's 8x8 digits, a stem
  convolution, then two *plain* 3x3 convolutions, two *depthwise-separable*
  ones (:class:`~nnlite.nn.DepthwiseSeparableConv2d`) or one *bottleneck*
  block (:class:`~nnlite.nn.Bottleneck`), then global average pooling and a
  linear classifier;
* :func:`compare_attention` — on MNIST-1D read as 10 tokens of 4 values, one
  self-attention layer with 8 query heads and 8 (MHA), 2 (GQA) or 1 (MQA)
  key/value heads (:class:`~nnlite.nn.GroupedQueryAttention`), then mean
  pooling and a linear classifier. ``flops`` counts the Linear layers'
  products only: the attention scores and the weighted sum of values are left
  out (GroupedQueryAttention is not a layer it counts), and they cost the same
  in all three (every query head still sees a key and a value of full length),
  so the difference is in the K/V projections.

The blocks come from Howard et al., "MobileNets" (2017, depthwise-separable
convolutions), He et al., "Deep Residual Learning for Image Recognition"
(2016, the bottleneck), Shazeer, "Fast Transformer Decoding: One Write-Head is
All You Need" (2019, multi-query attention) and Ainslie et al., "GQA" (2023,
grouped-query attention).
"""
import numpy as np

from . import nn, optim
from .data import MNIST1D, DataLoader, Digits
from .nn import functional as F
from .parameter import Parameter
from .random import Generator, manual_seed
from .train import accuracy, fit

__all__ = ["conv_block", "ConvBlockNet", "TokenAttentionNet", "compare_conv_blocks", "compare_attention",
           "format_table"]


def conv_block(kind, channels=32):
    """``"plain"``, ``"depthwise_separable"`` or ``"bottleneck"``: a block keeping ``channels`` channels."""
    if kind == "plain":
        return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
                             nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())
    if kind == "depthwise_separable":
        return nn.Sequential(nn.DepthwiseSeparableConv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels),
                             nn.ReLU(), nn.DepthwiseSeparableConv2d(channels, channels, 3, padding=1),
                             nn.BatchNorm2d(channels), nn.ReLU())
    if kind == "bottleneck":
        return nn.Bottleneck(channels, channels // 4)
    raise ValueError(f"conv_block: kind must be 'plain', 'depthwise_separable' or 'bottleneck', got {kind!r}")


class ConvBlockNet(nn.Module):
    """Stem Conv2d(1, C, 3) → block → global average pool → Linear(C, 10), for 8x8 digits."""

    def __init__(self, kind, channels=32):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())
        self.block = conv_block(kind, channels)
        self.head = nn.Linear(channels, 10)

    def forward(self, x):
        h = self.block(self.stem(x))
        return self.head(h.mean(dim=(2, 3)))


class TokenAttentionNet(nn.Module):
    """MNIST-1D as 10 tokens of 4 values: embedding, one residual GQA layer, mean pool, classifier."""

    def __init__(self, num_kv_heads, embed_dim=32, num_heads=8, tokens=10):
        super().__init__()
        self.tokens = tokens
        self.embed = nn.Linear(40 // tokens, embed_dim)
        self.position = Parameter(np.random.default_rng(0).normal(0, 0.02, (tokens, embed_dim)).astype(np.float32),
                                  kind="positional")
        self.norm = nn.LayerNorm(embed_dim)
        self.attention = nn.GroupedQueryAttention(embed_dim, num_heads, num_kv_heads)
        self.head = nn.Linear(embed_dim, 10)

    def forward(self, x):
        h = self.embed(x.reshape(x.shape[0], self.tokens, -1)) + self.position
        h = h + self.attention(self.norm(h))
        return self.head(F.relu(h).mean(dim=1))


def _train_and_test(model, train, test, epochs, lr, seed, batch_size):
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=Generator(seed))
    fit(model, F.cross_entropy, optim.Adam(model.parameters(), lr=lr), loader, epochs=epochs, progress=False)
    return accuracy(model, *test.tensors)


def _row(name, model, example, acc):
    from .analysis import flops
    model.eval()
    count = flops(model, example) // example.shape[0]
    model.train()
    return {"model": name, "parameters": model.num_parameters(), "flops_per_example": int(count), "accuracy": acc}


def compare_conv_blocks(seed=0, epochs=8, kinds=("plain", "depthwise_separable", "bottleneck"), channels=32):
    """One row per block kind: parameters, FLOPs per example, digits test accuracy."""
    train, test = Digits(train=True, flatten=False), Digits(train=False, flatten=False)
    rows = []
    for kind in kinds:
        manual_seed(seed)
        model = ConvBlockNet(kind, channels)
        acc = _train_and_test(model, train, test, epochs, 3e-3, seed, 64)
        rows.append(_row(kind, model, test.tensors[0][:1], acc))
    return rows


def compare_attention(seed=0, epochs=10, kv_heads=(8, 2, 1)):
    """One row per number of key/value heads (8 = MHA, 2 = GQA, 1 = MQA), on MNIST-1D."""
    train, test = MNIST1D(train=True), MNIST1D(train=False)
    names = {8: "MHA (8 kv heads)", 1: "MQA (1 kv head)"}
    rows = []
    for g in kv_heads:
        manual_seed(seed)
        model = TokenAttentionNet(g)
        acc = _train_and_test(model, train, test, epochs, 3e-3, seed, 100)
        row = _row(names.get(g, f"GQA ({g} kv heads)"), model, test.tensors[0][:1], acc)
        row["attention_parameters"] = model.attention.num_parameters()
        rows.append(row)
    return rows


def format_table(rows):
    """A plain-text table, one line per row: its parameters, FLOPs per example and accuracy."""
    lines = [f"{'model':<22} {'parameters':>10} {'FLOPs/example':>14} {'accuracy':>9}"]
    for r in rows:
        lines.append(f"{r['model']:<22} {r['parameters']:>10} {r['flops_per_example']:>14} {r['accuracy']:>9.1%}")
    return "\n".join(lines)
