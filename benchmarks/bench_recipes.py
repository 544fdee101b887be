"""Wall time of the training recipes: nnlite against the same model and schedule in PyTorch.

For each recipe the PyTorch side gets the same initial weights (nnlite's
``state_dict`` loaded with ``strict=True``, which also proves the two
architectures are the same), the same data arrays, batch size, optimizer and
hyperparameters, learning-rate schedule, gradient clipping and a test-set
evaluation after every epoch, on the same number of threads. Times are for a
fixed number of epochs (``--quick``: fewer), paired and alternated as in
``harness.py``; the note gives both final test accuracies.

    python -m benchmarks.bench_recipes [--quick] [--full]   # --full: each recipe's own epochs, once
"""
import sys
import time

import numpy as np

import nnlite as nl
from nnlite import recipes
from nnlite.data import CharDataset
from nnlite.train import evaluate, fit

from .harness import format_table, paired_medians, torch_or_none

# Epochs timed per recipe (full run, quick run). The language model's epochs are long.
EPOCHS = {"mnist1d-logistic": (20, 3), "mnist1d-mlp": (20, 3), "mnist1d-cnn": (10, 2), "digits-mlp": (10, 2),
          "digits-cnn": (5, 1), "char-transformer": (1, 1)}


# -------------------------------------------------------------- torch models --
def torch_model(torch, name, nl_model):
    nn = torch.nn

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear1, self.linear2, self.linear3 = nn.Linear(40, 100), nn.Linear(100, 100), nn.Linear(100, 10)

        def forward(self, x):
            h = self.linear1(x).relu()
            return self.linear3(h + self.linear2(h).relu())

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv1d(1, 25, 5, stride=2, padding=1)
            self.conv2 = nn.Conv1d(25, 25, 3, stride=2, padding=1)
            self.conv3 = nn.Conv1d(25, 25, 3, stride=2, padding=1)
            self.linear = nn.Linear(125, 10)

        def forward(self, x):
            h = x.view(x.shape[0], 1, x.shape[-1])
            h = self.conv3(self.conv2(self.conv1(h).relu()).relu()).relu()
            return self.linear(h.reshape(h.shape[0], -1))

    class DigitsCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.linear1, self.linear2 = nn.Linear(512, 64), nn.Linear(64, 10)

        def forward(self, x):
            h = self.pool(self.conv2(self.conv1(x).relu()).relu())
            return self.linear2(self.linear1(h.reshape(h.shape[0], -1)).relu())

    class Positional(nn.Module):
        def __init__(self, n, d):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(n, d))

    class CharTransformer(nn.Module):
        def __init__(self, m):
            super().__init__()
            d = m.token_embedding.embedding_dim
            layer0 = m.encoder.layers[0]
            self.block_size = m.block_size
            self.token_embedding = nn.Embedding(m.token_embedding.num_embeddings, d)
            self.position_embedding = Positional(m.block_size, d)
            layer = nn.TransformerEncoderLayer(d, layer0.self_attn.num_heads, layer0.linear1.out_features,
                                               dropout=m.dropout.p, activation="gelu", batch_first=True,
                                               norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, len(m.encoder.layers), norm=nn.LayerNorm(d),
                                                 enable_nested_tensor=False)
            self.head = nn.Linear(d, m.token_embedding.num_embeddings, bias=False)
            self.head.weight = self.token_embedding.weight
            self.dropout = nn.Dropout(m.dropout.p)

        def forward(self, ids):
            t = ids.shape[1]
            h = self.dropout(self.token_embedding(ids) + self.position_embedding.weight[:t])
            mask = nn.Transformer.generate_square_subsequent_mask(t)
            return self.head(self.encoder(h, mask=mask, is_causal=True))

    model = {"mnist1d-logistic": lambda: nn.Linear(40, 10), "mnist1d-mlp": MLP, "mnist1d-cnn": CNN,
             "digits-mlp": lambda: nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                                                 nn.Linear(128, 10)),
             "digits-cnn": DigitsCNN, "char-transformer": lambda: CharTransformer(nl_model)}[name]()
    model.load_state_dict({k: torch.from_numpy(np.array(v.data)) for k, v in nl_model.state_dict().items()},
                          strict=True)
    return model


def torch_optimizer(torch, nl_opt, nl_model, t_model):
    """The same optimizer class, param groups (matched by parameter name) and hyperparameters."""
    name_of = {id(p): n for n, p in nl_model.named_parameters()}
    t_params = dict(t_model.named_parameters())
    groups = []
    for g in nl_opt.param_groups:
        hyper = {k: g[k] for k in ("lr", "betas", "eps", "weight_decay") if k in g}
        groups.append({"params": [t_params[name_of[id(p)]] for p in g["params"]], **hyper})
    return getattr(torch.optim, type(nl_opt).__name__)(groups)


def torch_scheduler(torch, nl_sched, t_opt):
    if nl_sched is None:
        return None
    S = torch.optim.lr_scheduler
    kind = type(nl_sched).__name__
    if kind == "CosineAnnealingLR":
        return S.CosineAnnealingLR(t_opt, T_max=nl_sched.T_max, eta_min=nl_sched.eta_min)
    if kind == "OneCycleLR":
        g = nl_sched.optimizer.param_groups[0]
        pct = (nl_sched._schedule_phases[0]["end_step"] + 1) / nl_sched.total_steps
        return S.OneCycleLR(t_opt, max_lr=[grp["max_lr"] for grp in nl_sched.optimizer.param_groups],
                            total_steps=nl_sched.total_steps, pct_start=pct,
                            anneal_strategy=nl_sched._anneal_func_type,
                            div_factor=g["max_lr"] / g["initial_lr"],
                            final_div_factor=g["initial_lr"] / g["min_lr"])
    raise ValueError(f"bench_recipes: no PyTorch twin for scheduler {kind}")


def arrays(loader):
    ds = loader.dataset
    if isinstance(ds, CharDataset):
        w = np.ascontiguousarray(ds._windows)
        return w[:, :-1].copy(), w[:, 1:].copy()
    return ds.arrays


def torch_fit(torch, t_model, t_opt, t_sched, recipe, epochs, seed=0):
    """The loop nnlite.train.fit runs, in PyTorch: train, clip, step, schedule, evaluate every epoch."""
    F = torch.nn.functional
    lm = recipe.task == "language-model"

    def loss_fn(out, y):
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1)) if lm else F.cross_entropy(out, y)

    x_train, y_train = (torch.from_numpy(a) for a in arrays(recipe.train_loader))
    x_test, y_test = (torch.from_numpy(a) for a in arrays(recipe.test_loader))
    bs, n = recipe.train_loader.batch_size, len(x_train)
    drop_last = recipe.train_loader.drop_last
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        t_model.train()
        order = torch.from_numpy(rng.permutation(n))
        stop = n - n % bs if drop_last else n
        for start in range(0, stop, bs):
            idx = order[start:start + bs]
            loss = loss_fn(t_model(x_train[idx]), y_train[idx])
            loss.backward()
            if recipe.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(t_model.parameters(), recipe.clip_grad_norm)
            t_opt.step()
            t_opt.zero_grad()
            if t_sched is not None and recipe.scheduler_step == "batch":
                t_sched.step()
        t_model.eval()
        correct = total = 0
        with torch.no_grad():
            tbs = recipe.test_loader.batch_size
            for start in range(0, len(x_test), tbs):
                out = t_model(x_test[start:start + tbs])
                correct += int((out.argmax(-1) == y_test[start:start + tbs]).sum())
                total += y_test[start:start + tbs].numel()
        if t_sched is not None and recipe.scheduler_step == "epoch":
            t_sched.step()
    return correct / total


def _one(name, epochs, torch, repeat):
    accuracy = {}

    def nnlite_run():
        recipe = recipes.build(name, epochs=epochs)
        fit(recipe.model, recipe.loss_fn, recipe.optimizer, recipe.train_loader, progress=False,
            **recipe.fit_kwargs())
        accuracy["nnlite"] = evaluate(recipe.model, recipe.loss_fn, recipe.test_loader)["accuracy"]

    def torch_run():
        recipe = recipes.build(name, epochs=epochs)
        t_model = torch_model(torch, name, recipe.model)
        t_opt = torch_optimizer(torch, recipe.optimizer, recipe.model, t_model)
        t_sched = torch_scheduler(torch, recipe.scheduler, t_opt)
        accuracy["torch"] = torch_fit(torch, t_model, t_opt, t_sched, recipe, epochs)

    times = paired_medians({"nnlite": nnlite_run, "torch": torch_run if torch else None}, repeat=repeat, warmup=0)
    note = f"{epochs} epochs; test accuracy nnlite {accuracy['nnlite']:.3f}"
    if torch:
        note += f", torch {accuracy['torch']:.3f}"
    return {"workload": f"train {name}", "nnlite_ms": times["nnlite"], "torch_ms": times["torch"],
            "numpy_ms": None, "note": note}


def run(quick=False, full=False, names=None):
    torch = torch_or_none()
    if torch is not None:
        torch.set_num_threads(nl.get_num_threads())
    rows = []
    for name in names or list(EPOCHS):
        if full:
            epochs = recipes.build(name).epochs
        else:
            epochs = EPOCHS[name][1 if quick else 0]
        rows.append(_one(name, epochs, torch, repeat=1 if (quick or full) else 3))
        print(format_table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    return rows


if __name__ == "__main__":
    args = sys.argv[1:]
    chosen = [a for a in args if not a.startswith("--")] or None
    start = time.perf_counter()
    print(format_table(run(quick="--quick" in args, full="--full" in args, names=chosen)))
    print(f"\n({nl.get_num_threads()} threads, {time.perf_counter() - start:.0f} s)")
