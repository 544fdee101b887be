"""Programs the distributed tests start under ``mpiexec -n 2``: ``python mpi_worker.py SCENARIO OUT``.

Rank 0 writes what it measured as JSON to OUT; the test reads it.
"""
import json
import os
import sys

import numpy as np

import nnlite as nl
from nnlite import distributed as dist
from nnlite.train import fit as nl_fit


def _data(n=64, features=6, classes=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(dtype)
    y = rng.integers(0, classes, n)
    return nl.data.TensorDataset(x, y)


def _model(dtype):
    nl.manual_seed(1)
    model = nl.nn.Sequential(nl.nn.Linear(6, 16), nl.nn.Tanh(), nl.nn.Linear(16, 16), nl.nn.ReLU(),
                             nl.nn.Linear(16, 3))
    return model.to(dtype)


def _optimizer(name, params):
    if name == "sgd":
        return nl.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3)
    return nl.optim.Adam(params, lr=0.01)


def _train(model, loader, optimizer, steps, dtype):
    loss_fn = nl.nn.CrossEntropyLoss()
    done = 0
    while done < steps:
        for x, y in loader:
            optimizer.zero_grad()
            loss_fn(model(x.to(dtype)), y).backward()
            optimizer.step()
            done += 1
            if done == steps:
                break


def equal_to_one_big_batch(out, bucket_cap_mb=25.0):
    """A 2-rank run with global batch 16 against one process with batch 16, for SGD and Adam."""
    world, rank = dist.get_world_size(), dist.get_rank()
    data, global_batch, steps = _data(), 16, 6
    result = {"world_size": world}
    for dtype_name in ("float64", "float32"):
        dtype = getattr(nl, dtype_name)
        for opt_name in ("sgd", "adam"):
            model = _model(dtype)
            ddp = dist.DistributedDataParallel(model, bucket_cap_mb=bucket_cap_mb)
            sampler = dist.DistributedSampler(data, shuffle=False)
            loader = nl.data.DataLoader(data, batch_size=global_batch // world, sampler=sampler)
            _train(ddp, loader, _optimizer(opt_name, model.parameters()), steps, dtype)
            mine = np.concatenate([p.data.ravel() for p in model.parameters()])
            # Every rank must hold the same parameters.
            gathered = dist.broadcast_object(mine, src=0)
            same_on_all = bool(np.array_equal(gathered, mine))
            flags = nl.tensor([0.0 if same_on_all else 1.0])
            dist.all_reduce(flags)
            # The reference: one process, the whole batch (each rank computes it alone).
            ref_model = _model(dtype)
            ref_loader = nl.data.DataLoader(data, batch_size=global_batch)
            _train(ref_model, ref_loader, _optimizer(opt_name, ref_model.parameters()), steps, dtype)
            ref = np.concatenate([p.data.ravel() for p in ref_model.parameters()])
            rel = float(np.max(np.abs(mine - ref) / (np.abs(ref) + 1e-30)))
            result[f"{dtype_name}_{opt_name}"] = {
                "max_abs_diff": float(np.max(np.abs(mine - ref))), "max_rel_diff": rel,
                "allclose_1e-6": bool(np.allclose(mine, ref, rtol=1e-6, atol=1e-9)),
                "bit_identical": bool(np.array_equal(mine, ref)), "ranks_agree": float(flags.item()) == 0.0,
                "buckets": len(ddp.last_buckets)}
    if dist.is_main():
        with open(out, "w") as f:
            json.dump(result, f)


def sync_batchnorm_equals_one_big_batch(out):
    """BatchNorm on 2 ranks: per-rank statistics differ from one process; SyncBatchNorm matches it."""
    world = dist.get_world_size()
    data, steps = _data(), 5

    def bn_model():
        nl.manual_seed(2)
        return nl.nn.Sequential(nl.nn.Linear(6, 16), nl.nn.BatchNorm1d(16), nl.nn.ReLU(),
                                nl.nn.Linear(16, 3)).double()

    def state(model):
        return np.concatenate([np.asarray(v.data, dtype=np.float64).ravel() for v in model.state_dict().values()])

    reference = bn_model()
    _train(reference, nl.data.DataLoader(data, batch_size=16), nl.optim.SGD(reference.parameters(), lr=0.1),
           steps, nl.float64)
    result = {}
    for name, convert in (("per_rank", lambda m: m), ("sync", dist.SyncBatchNorm.convert_sync_batchnorm)):
        model = convert(bn_model())
        ddp = dist.DistributedDataParallel(model)
        loader = nl.data.DataLoader(data, batch_size=16 // world, sampler=dist.DistributedSampler(data, shuffle=False))
        _train(ddp, loader, nl.optim.SGD(model.parameters(), lr=0.1), steps, nl.float64)
        diff = float(np.max(np.abs(state(model) - state(reference))))
        result[name] = {"max_abs_diff": diff, "type": type(model[1]).__name__}
    if dist.is_main():
        with open(out, "w") as f:
            json.dump(result, f)


def small_buckets(out):
    equal_to_one_big_batch(out, bucket_cap_mb=100 / 2**20)   # 100-byte messages: many buckets


def rank_one_raises(out):
    if dist.get_rank() == 1:
        raise RuntimeError("rank 1 fails on purpose")
    dist.barrier()   # rank 0 would wait here forever without the abort


def resume_is_bit_exact(out):
    """fit with a DistributedSampler, interrupted after one epoch and resumed, equals an uninterrupted run."""
    world = dist.get_world_size()
    data = _data(n=48, dtype=np.float32)
    ckpt_dir = os.path.join(os.path.dirname(out), "checkpoints")

    def setup():
        model = _model(nl.float32)
        ddp = dist.DistributedDataParallel(model)
        optimizer = nl.optim.Adam(model.parameters(), lr=0.01)
        loader = nl.data.DataLoader(data, batch_size=8 // world, sampler=dist.DistributedSampler(data, seed=5))
        return model, ddp, optimizer, loader

    def fit(ddp, optimizer, loader, epochs, **kw):
        nl_fit(ddp, nl.nn.CrossEntropyLoss(), optimizer, loader, epochs=epochs, progress=False,
                     metrics=("loss",), **kw)

    model, ddp, optimizer, loader = setup()
    fit(ddp, optimizer, loader, 3)
    straight = np.concatenate([p.data.ravel() for p in model.parameters()])

    model, ddp, optimizer, loader = setup()
    every = len(loader)
    fit(ddp, optimizer, loader, 1, checkpoint_every=every if dist.is_main() else None,
        checkpoint_dir=ckpt_dir if dist.is_main() else None)
    dist.barrier()   # the checkpoint is on disk before any rank reads it
    model, ddp, optimizer, loader = setup()
    fit(ddp, optimizer, loader, 3, resume=ckpt_dir)
    resumed = np.concatenate([p.data.ravel() for p in model.parameters()])
    same = nl.tensor([0.0 if np.array_equal(straight, resumed) else 1.0])
    dist.all_reduce(same)
    if dist.is_main():
        with open(out, "w") as f:
            json.dump({"bit_exact_on_every_rank": float(same.item()) == 0.0, "world_size": world}, f)


if __name__ == "__main__":
    dist.init()
    scenario, out = sys.argv[1], sys.argv[2]
    globals()[scenario](out)
