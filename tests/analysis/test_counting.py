"""The parameter report: counts by kind and layer, tied and frozen parameters, memory, FLOPs, density."""
import json

import numpy as np

import nnlite as nl
from nnlite import nn
from nnlite.analysis import flops, report
from nnlite.nn import functional as F


class TiedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.hidden = nn.Linear(4, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, idx):
        return self.head(F.relu(self.hidden(self.embed(idx))))


def test_counts_tied_once_and_splits_trainable_and_frozen():
    model = TiedLM()
    model.hidden.freeze()
    r = report(model)
    t = r.totals
    assert t["parameters"] == 10 * 4 + 4 * 4 + 4 == model.num_parameters()
    assert t["frozen"] == 20 and t["trainable"] == 40
    assert r.kinds["weight"]["frozen"] == 16
    assert r.tied == [["embed.weight", "head.weight"]]
    assert {row["layer"]: row["parameters"] for row in r.layers} == {"embed": 40, "hidden": 20}
    assert t["parameter_bytes"] == 60 * 4 and t["gradient_bytes"] == 40 * 4
    text = str(r)
    assert "tied (counted once): embed.weight = head.weight" in text
    assert "| embed | Embedding | 40 | 40 | 0 |" in r.to_markdown()
    json.dumps(r.to_dict())


def test_optimizer_state_flops_and_density():
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    opt = nl.optim.Adam(model.parameters())
    F.cross_entropy(model(nl.randn(5, 8)), nl.tensor([0, 1, 2, 3, 0])).backward()
    opt.step()
    x = nl.randn(5, 8)
    r = report(model, opt, x)
    n = model.num_parameters()
    assert r.totals["optimizer_state_bytes"] == 2 * n * 4    # exp_avg and exp_avg_sq
    assert r.totals["flops"] == flops(model, x) == 5 * 2 * (8 * 16 + 16 * 4)
    # A Linear layer does 2 FLOPs per weight and sample, so density is a little above 1/2 with biases.
    assert np.isclose(r.totals["parameter_density"], n / (2 * (8 * 16 + 16 * 4)))
    assert [row["flops"] for row in r.layers] == [5 * 2 * 8 * 16, 5 * 2 * 16 * 4]
