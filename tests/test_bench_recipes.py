"""benchmarks/bench_recipes.py: the PyTorch twin of each recipe's optimizer and scheduler."""
import importlib

import numpy as np
import pytest
from helpers import torch_or_skip

import nnlite as nl
from nnlite import cli, nn


@pytest.fixture
def bench_recipes(monkeypatch):
    package, root = cli._benchmarks_package()
    monkeypatch.syspath_prepend(root)
    return importlib.import_module(f"{package}.bench_recipes")


@pytest.mark.parametrize("kind", ["OneCycleLR", "CosineAnnealingLR"])
def test_the_torch_scheduler_gives_the_learning_rates_of_nnlites(bench_recipes, kind):
    torch = torch_or_skip()
    model = nn.Linear(3, 2)
    opt = nl.optim.AdamW(model.parameters(), lr=0.01)
    if kind == "OneCycleLR":
        sched = nl.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=40, pct_start=0.25,
                                                 anneal_strategy="linear")
    else:
        sched = nl.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=40, eta_min=1e-4)
    t_model = torch.nn.Linear(3, 2)
    t_opt = bench_recipes.torch_optimizer(torch, opt, model, t_model)
    t_sched = bench_recipes.torch_scheduler(torch, sched, t_opt)
    ours, theirs = [], []
    for _ in range(40):
        ours.append(opt.param_groups[0]["lr"])
        theirs.append(t_opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        t_opt.step()
        t_sched.step()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
