"""nl.distributed: collectives, DistributedDataParallel's buckets, DistributedSampler, and 2-rank runs.

The in-process tests run in a world of one process. The 2-rank tests start
``mpiexec -n 2`` on mpi_worker.py (one thread per rank) and need mpi4py and an
``mpiexec``; each skips on its own without them.
"""
import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import nnlite as nl
from nnlite import distributed as dist
from nnlite.autograd import queue_callback
from nnlite.distributed import process_group as pg

# The ranks import the nnlite under test: the in-place build, or the installed package (with
# README's `pip install ".[test]" && pytest` the checkout's own nnlite/ has no compiled kernels).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(nl.__file__)))
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_worker.py")


def mpiexec(scenario, tmp_path, timeout=120):
    """Run ``scenario`` of mpi_worker.py on 2 ranks; return (completed process, rank 0's JSON or None)."""
    if importlib.util.find_spec("mpi4py") is None or shutil.which("mpiexec") is None:
        pytest.skip("needs mpi4py and mpiexec: pip install \"nnlite[mpi]\"")
    out = tmp_path / "result.json"
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    proc = subprocess.run(["mpiexec", "-n", "2", sys.executable, WORKER, scenario, str(out)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=str(tmp_path))
    return proc, (json.loads(out.read_text()) if out.exists() else None)


# ------------------------------------------------------------ a world of one ---

def test_world_of_one_without_mpiexec():
    assert dist.get_world_size() == 1 and dist.get_rank() == 0 and dist.is_main()
    t = nl.tensor([1.0, -2.0])
    assert dist.all_reduce(t) is t and t.tolist() == [1.0, -2.0]
    assert dist.all_reduce(t, op=dist.ReduceOp.AVG).tolist() == [1.0, -2.0]
    assert dist.broadcast(t, src=0).tolist() == [1.0, -2.0]
    dist.barrier()


def test_collectives_reject_bad_arguments():
    with pytest.raises(ValueError, match="op must be one of"):
        dist.all_reduce(nl.tensor([1.0]), op="mean")
    with pytest.raises(ValueError, match=r"src must be a rank in \[0, 1\), got 1"):
        dist.broadcast(nl.tensor([1.0]), src=1)
    with pytest.raises(TypeError, match="expected a Tensor"):
        dist.all_reduce([1.0, 2.0])
    with pytest.raises(TypeError, match="AVG needs a floating point tensor"):
        dist.all_reduce(nl.tensor([1, 2]), op=dist.ReduceOp.AVG)


def test_queued_callback_runs_after_every_gradient_is_accumulated():
    w1, w2 = nl.nn.Parameter(nl.ones(3)), nl.nn.Parameter(nl.ones(2))
    seen = []
    w1.register_hook(lambda g: queue_callback(lambda: seen.append((w1.grad is not None, w2.grad is not None))))
    ((w1 * 2).sum() + (w2 * 3).sum()).backward()
    assert seen == [(True, True)]
    (w2 * 3).sum().backward()   # w1 is not reached: nothing queued, nothing run
    assert seen == [(True, True)]


class TiedAndFrozen(nl.nn.Module):
    """Four layers; ``c`` shares ``b``'s weight (one object), two biases are frozen."""

    def __init__(self):
        super().__init__()
        nl.manual_seed(0)
        self.a, self.b, self.c, self.d = (nl.nn.Linear(5, 7), nl.nn.Linear(7, 7), nl.nn.Linear(7, 7),
                                          nl.nn.Linear(7, 3))
        self.c.weight = self.b.weight
        self.a.bias.requires_grad_(False)   # frozen, between two trainable slots
        self.d.bias.requires_grad_(False)   # frozen, the last slot

    def forward(self, x):
        return self.d(self.c(self.b(self.a(x).relu()).relu()).relu())


def _reduced_ranges(monkeypatch, ddp):
    """Run the averaging as if there were 2 ranks, recording the bytes each message covers."""
    ranges = []
    monkeypatch.setattr(pg, "_reduce_", lambda a, op: ranges.append((a.ctypes.data, a.nbytes)) or a)
    ddp.world_size = 2
    return ranges


def test_buckets_send_every_trainable_gradient_byte_once_and_no_frozen_byte(monkeypatch):
    model = TiedAndFrozen()
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=24 / 2**20)   # 24-byte messages
    optimizer = nl.optim.SGD(model.parameters(), lr=0.1)
    ranges = _reduced_ranges(monkeypatch, ddp)
    ddp(nl.randn(4, 5)).sum().backward()
    assert model.b.weight.grad is model.c.weight.grad     # tied: one gradient
    assert ranges and all(n <= 24 for _, n in ranges)
    sent = np.zeros(0, dtype=np.int64)
    for address, n in ranges:
        sent = np.concatenate([sent, np.arange(address, address + n)])
    assert len(sent) == len(set(sent.tolist()))   # no byte twice
    sent = set(sent.tolist())
    trainable = {id(p): p for p in model.parameters() if p.requires_grad}
    for p in trainable.values():
        slot = p._grad_slot
        assert set(range(slot.ctypes.data, slot.ctypes.data + slot.nbytes)) <= sent
    for p in model.parameters():
        if not p.requires_grad:
            slot = p._grad_slot
            assert not set(range(slot.ctypes.data, slot.ctypes.data + slot.nbytes)) & sent
    # Besides the gradients only the arena's zero padding travels.
    [buf] = optimizer.arenas[0]
    padding = buf.grads.nbytes - sum(s.grad.nbytes for s in buf.slots)
    gradient_bytes = sum(p._grad_slot.nbytes for p in trainable.values())
    assert gradient_bytes <= len(sent) <= gradient_bytes + padding


def test_gradients_outside_an_arena_are_reduced_too(monkeypatch):
    model = nl.nn.Linear(3, 2)
    ddp = dist.DistributedDataParallel(model)
    ranges = _reduced_ranges(monkeypatch, ddp)
    ddp(nl.randn(4, 3)).sum().backward()   # no optimizer: no arena
    assert sorted(n for _, n in ranges) == sorted([model.weight.grad.data.nbytes, model.bias.grad.data.nbytes])


def test_bucket_plan_follows_the_gradients_into_a_new_arena(monkeypatch):
    model = nl.nn.Linear(3, 2)
    ddp = dist.DistributedDataParallel(model)
    ranges = _reduced_ranges(monkeypatch, ddp)
    ddp(nl.randn(4, 3)).sum().backward()            # no optimizer yet: one message per gradient
    assert len(ranges) == 2
    optimizer = nl.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        ranges.clear()
        optimizer.zero_grad()
        ddp(nl.randn(4, 3)).sum().backward()        # now the arena: one message for the buffer
        [buf] = optimizer.arenas[0]
        assert len(ranges) == 1 and ranges[0][0] == buf.grads.ctypes.data


def test_unused_parameter_gets_a_zero_gradient_and_is_sent(monkeypatch):
    model = nl.nn.ModuleDict({"used": nl.nn.Linear(3, 2), "unused": nl.nn.Linear(3, 2)})

    class Net(nl.nn.Module):
        def __init__(self):
            super().__init__()
            self.parts = model

        def forward(self, x):
            return self.parts["used"](x)

    net = Net()
    ddp = dist.DistributedDataParallel(net)
    nl.optim.SGD(net.parameters(), lr=0.1)
    ranges = _reduced_ranges(monkeypatch, ddp)
    ddp(nl.randn(4, 3)).sum().backward()
    assert np.all(model["unused"].weight.grad.data == 0)
    assert len(ranges) == 1   # used and unused layers: one run of the arena, one message


def test_no_sync_skips_the_averaging(monkeypatch):
    model = nl.nn.Linear(3, 2)
    ddp = dist.DistributedDataParallel(model)
    ranges = _reduced_ranges(monkeypatch, ddp)
    with ddp.no_sync():
        ddp(nl.randn(4, 3)).sum().backward()
    assert ranges == []
    ddp(nl.randn(4, 3)).sum().backward()
    assert len(ranges) == 2


def test_ddp_state_dict_keys_carry_the_module_prefix():
    ddp = dist.DistributedDataParallel(nl.nn.Linear(3, 2))
    assert list(ddp.state_dict()) == ["module.weight", "module.bias"]
    with pytest.raises(TypeError, match="expected an nn.Module"):
        dist.DistributedDataParallel(lambda x: x)
    with pytest.raises(ValueError, match="bucket_cap_mb must be > 0"):
        dist.DistributedDataParallel(nl.nn.Linear(3, 2), bucket_cap_mb=0)
    # PyTorch's default is bucket_cap_mb=None, meaning 25 MB; code written for it passes None
    assert dist.DistributedDataParallel(nl.nn.Linear(3, 2), bucket_cap_mb=None).bucket_cap_mb == 25
    with pytest.raises(TypeError, match=r"bucket_cap_mb must be a real number \(int, float or NumPy scalar\), got str"):
        dist.DistributedDataParallel(nl.nn.Linear(3, 2), bucket_cap_mb="25")


# ------------------------------------------------------------ SyncBatchNorm ---

def test_sync_batch_norm_alone_is_batch_norm_and_passes_gradcheck():
    from nnlite.autograd import gradcheck
    rng = np.random.default_rng(3)
    x = nl.tensor(rng.standard_normal((5, 3, 4)), requires_grad=True)
    w, b = (nl.tensor(rng.standard_normal(3), requires_grad=True) for _ in range(2))
    y, mean, var, count = dist.sync_batch_norm(x, w, b)
    ref = nl.nn.functional.batch_norm(x, None, None, w, b, True, 0.1, 1e-5)
    np.testing.assert_allclose(y.data, ref.data, rtol=1e-12, atol=1e-12)
    assert count == 20 and np.allclose(mean, x.data.mean(axis=(0, 2))) and np.allclose(var, x.data.var(axis=(0, 2)))
    g = nl.tensor(rng.standard_normal(y.shape))
    for a, r in zip(nl.grad((y * g).sum(), [x, w, b]), nl.grad((ref * g).sum(), [x, w, b])):
        np.testing.assert_allclose(a.data, r.data, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda x, w, b: dist.sync_batch_norm(x, w, b)[0], [x, w, b])


@pytest.mark.parametrize("module", ["process_group", "data_parallel", "sampler", "sync_batchnorm"])
def test_docstring_examples(module):
    import doctest
    mod = importlib.import_module(f"nnlite.distributed.{module}")
    nl.manual_seed(0)
    result = doctest.testmod(mod, extraglobs={"nl": nl}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_convert_sync_batchnorm_keeps_tensors_and_keys():
    model = nl.nn.Sequential(nl.nn.Conv2d(1, 2, 3), nl.nn.BatchNorm2d(2), nl.nn.ReLU())
    bn, keys = model[1], list(model.state_dict())
    dist.SyncBatchNorm.convert_sync_batchnorm(model)
    assert type(model[1]) is dist.SyncBatchNorm and model[1].weight is bn.weight
    assert model[1].running_var is bn.running_var and list(model.state_dict()) == keys
    x = nl.randn(4, 2, 5, 5)
    model.eval()
    bn.eval()
    np.testing.assert_array_equal(model[1](x).data, bn(x).data)   # eval: the running statistics


def test_convert_sync_batchnorm_keeps_every_buffer_and_its_persistence():
    bn = nl.nn.BatchNorm1d(3)
    bn.register_buffer("extra", nl.zeros(3))
    bn.register_buffer("scratch", nl.ones(2), persistent=False)
    sync = dist.SyncBatchNorm.convert_sync_batchnorm(bn)
    assert type(sync) is dist.SyncBatchNorm and list(sync.state_dict()) == list(bn.state_dict())
    assert sync.extra is bn.extra and sync.scratch is bn.scratch and "scratch" not in sync.state_dict()


def test_convert_sync_batchnorm_replaces_a_subclass_and_leaves_sync_layers_as_they_are():
    class ScaledBatchNorm(nl.nn.BatchNorm2d):   # a user's own batch norm, as torch converts it too
        pass

    model = nl.nn.Sequential(ScaledBatchNorm(2), dist.SyncBatchNorm(2))
    sync = model[1]
    dist.SyncBatchNorm.convert_sync_batchnorm(model)
    assert type(model[0]) is dist.SyncBatchNorm and model[1] is sync


def test_convert_sync_batchnorm_refuses_a_fused_batch_norm_and_fusing_leaves_sync_alone():
    model = nl.nn.Sequential(nl.nn.Conv2d(1, 2, 3), nl.nn.BatchNorm2d(2), nl.nn.ReLU())
    fused = nl.nn.Sequential(nl.nn.Sequential(nl.nn.BatchNorm1d(2)),
                             nl.nn.fuse_batch_norm_relu(copy.deepcopy(model)))
    with pytest.raises(TypeError, match="convert_sync_batchnorm: BatchNormReLU2d '1.1' is a batch norm fused with "
                                        "its ReLU.*convert the model before nn.fuse_batch_norm_relu"):
        dist.SyncBatchNorm.convert_sync_batchnorm(fused)
    assert type(fused[0][0]) is nl.nn.BatchNorm1d   # refused before anything was replaced
    nl.nn.fuse_batch_norm_relu(dist.SyncBatchNorm.convert_sync_batchnorm(model))
    assert [type(m).__name__ for m in model] == ["Conv2d", "SyncBatchNorm", "ReLU"]


# ------------------------------------------------------------------ sampler ---

@pytest.mark.parametrize("n,replicas,drop_last", [(10, 3, False), (10, 3, True), (12, 4, False), (2, 3, False)])
def test_sampler_shares_are_disjoint_equal_and_cover_the_epoch(n, replicas, drop_last):
    shares = [dist.DistributedSampler(range(n), num_replicas=replicas, rank=r, seed=7, drop_last=drop_last)
              for r in range(replicas)]
    lists = [list(s) for s in shares]
    assert len({len(x) for x in lists}) == 1 and all(len(x) == len(s) for x, s in zip(lists, shares))
    everything = sum(lists, [])
    if drop_last:
        assert len(everything) == len(set(everything)) == n - n % replicas
    else:
        assert set(everything) == set(range(n)) and len(everything) == -(-n // replicas) * replicas


def test_sampler_order_changes_with_the_epoch_but_not_between_ranks():
    a = dist.DistributedSampler(range(20), num_replicas=2, rank=0, seed=3)
    b = dist.DistributedSampler(range(20), num_replicas=2, rank=1, seed=3)
    first = (list(a), list(b))
    a.set_epoch(1)
    b.set_epoch(1)
    second = (list(a), list(b))
    assert first != second
    assert sorted(first[0] + first[1]) == sorted(second[0] + second[1]) == list(range(20))
    c = dist.DistributedSampler(range(20), num_replicas=2, rank=0, seed=3)
    c.load_state_dict(a.state_dict())
    assert list(c) == second[0]
    with pytest.raises(ValueError, match="saved for 2 ranks, this run has 4"):
        dist.DistributedSampler(range(20), num_replicas=4, rank=0).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="rank must be in"):
        dist.DistributedSampler(range(20), num_replicas=2, rank=2)


def test_dataloader_takes_a_sampler_and_resumes_its_epoch():
    ds = nl.data.TensorDataset(np.arange(20.0).reshape(20, 1), np.arange(20))

    def loader():
        return nl.data.DataLoader(ds, batch_size=3, sampler=dist.DistributedSampler(ds, num_replicas=2, rank=1))

    first = loader()
    assert len(first) == 4
    epoch0 = [y.tolist() for _, y in first]
    it = iter(first)
    epoch1_start = [next(it)[1].tolist() for _ in range(2)]   # interrupted after 2 batches of epoch 1
    state = first.state_dict()
    epoch1 = epoch1_start + [y.tolist() for _, y in it]
    assert epoch0 != epoch1 and len(sum(epoch1, [])) == 10   # the loader set the sampler's epoch
    resumed = loader()
    resumed.load_state_dict(state)
    assert [y.tolist() for _, y in resumed] == epoch1[2:]
    with pytest.raises(ValueError, match="sampler and shuffle=True exclude each other"):
        nl.data.DataLoader(ds, shuffle=True, sampler=dist.DistributedSampler(ds))


# ------------------------------------------------------------------ 2 ranks ---

def test_two_ranks_equal_one_process_with_the_whole_batch(tmp_path):
    proc, result = mpiexec("equal_to_one_big_batch", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert result["world_size"] == 2
    for key in ("float64_sgd", "float64_adam"):
        assert result[key]["allclose_1e-6"] and result[key]["max_rel_diff"] < 1e-6, result[key]
    for key in ("float32_sgd", "float32_adam"):
        assert result[key]["max_abs_diff"] < 1e-6, result[key]   # float32 rounding, 6 steps
    assert all(v["ranks_agree"] for k, v in result.items() if k != "world_size")


def test_two_ranks_with_many_small_buckets_give_the_same_result(tmp_path):
    proc, result = mpiexec("small_buckets", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert result["float64_sgd"]["buckets"] > 10
    assert result["float64_sgd"]["allclose_1e-6"] and result["float64_adam"]["allclose_1e-6"]
    assert all(v["ranks_agree"] for k, v in result.items() if k != "world_size")


def test_sync_batchnorm_on_two_ranks_equals_batchnorm_on_the_whole_batch(tmp_path):
    proc, result = mpiexec("sync_batchnorm_equals_one_big_batch", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert result["sync"]["type"] == "SyncBatchNorm" and result["sync"]["max_abs_diff"] < 1e-10
    assert result["per_rank"]["max_abs_diff"] > 1e-3   # per-rank statistics: a different training


def test_a_failing_rank_ends_the_whole_job_quickly(tmp_path):
    start = time.perf_counter()
    proc, _ = mpiexec("rank_one_raises", tmp_path, timeout=60)
    elapsed = time.perf_counter() - start
    assert proc.returncode != 0
    assert "rank 1 fails on purpose" in proc.stderr and "aborting all ranks" in proc.stderr
    assert elapsed < 30


def test_distributed_fit_resumes_bit_exactly(tmp_path):
    proc, result = mpiexec("resume_is_bit_exact", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert result == {"bit_exact_on_every_rank": True, "world_size": 2}


def test_nnlite_train_distributed_writes_rank_zeros_outputs_once(tmp_path):
    pytest.importorskip("sklearn")   # the digits recipe
    if importlib.util.find_spec("mpi4py") is None or shutil.which("mpiexec") is None:
        pytest.skip("needs mpi4py and mpiexec: pip install \"nnlite[mpi]\"")
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    out = tmp_path / "run"
    proc = subprocess.run(["mpiexec", "-n", "2", sys.executable, "-m", "mpi4py", "-m", "nnlite", "train",
                           "digits-mlp", "--distributed", "--epochs", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "reference twins" not in proc.stderr             # the ranks ran the compiled nnlite under test
    assert proc.stdout.count("== digits-mlp") == 1          # the report comes from rank 0 alone
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.85 and metrics["steps"] == 2 * 45   # global batch 32: 45 steps an epoch
    info = nl.io.read_checkpoint(str(out / "checkpoint.safetensors"))
    assert info.model["keys"][:2] == ["0.weight", "0.bias"]   # the plain model, no "module." prefix
    assert not (out / "checkpoints").exists()
