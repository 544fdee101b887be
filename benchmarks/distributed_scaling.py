"""Data parallelism on this machine, measured, and a model of how it scales to a cluster.

Run under MPI (one thread per rank)::

    OMP_NUM_THREADS=1 mpiexec -n 1 python benchmarks/distributed_scaling.py --out results/distributed-1.json
    OMP_NUM_THREADS=1 mpiexec -n 2 python benchmarks/distributed_scaling.py --out results/distributed-2.json

Each run measures

* the all-reduce: seconds for an in-place ``MPI_Allreduce`` of 1 KB ... 16 MB
  of float32, fitted as ``t(n) = alpha + n * beta`` (latency and seconds per byte);
* training throughput of the MNIST-1D MLP and CNN recipes and of the character
  transformer (108k parameters): examples per second
  with the recipe's global batch (split over the ranks), and the seconds per
  step spent averaging gradients.

``python benchmarks/distributed_scaling.py --model results/distributed-1.json
results/distributed-2.json`` then prints the measured table and the paper model:
with ``W`` machines, a step that takes ``t1`` on one machine takes about
``t1 / W + T(W)``, where ``T(W) = 2 (W - 1) (alpha + (n / W) * beta)`` is a ring
all-reduce of ``n`` gradient bytes over links of bandwidth ``1 / beta``.
"""
import argparse
import json
import sys
import time

import numpy as np


def measure_allreduce(comm, sizes, repeats=20):
    from mpi4py import MPI
    rows = []
    for nbytes in sizes:
        buf = np.ones(nbytes // 4, dtype=np.float32)
        comm.Barrier()
        best = float("inf")
        for _ in range(repeats):
            comm.Barrier()
            start = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            best = min(best, time.perf_counter() - start)
        rows.append((nbytes, comm.allreduce(best, op=MPI.MAX)))
    return rows


def measure_recipe(name, steps):
    import nnlite as nl
    from nnlite import distributed as dist
    from nnlite import recipes
    from nnlite.distributed import process_group as pg
    recipe = recipes.build(name, seed=0)
    dist.distribute_recipe(recipe, seed=0)
    ddp, loss_fn, opt = recipe.model, recipe.loss_fn, recipe.optimizer
    # Split the time in the averaging into waiting for the slower rank (a barrier first)
    # and the all-reduce itself.
    reduce_, timing = pg._reduce_, {"wait": 0.0, "allreduce": 0.0}

    def timed_reduce(array, op):
        t0 = time.perf_counter()
        dist.barrier()
        t1 = time.perf_counter()
        reduce_(array, op)
        timing["wait"] += t1 - t0
        timing["allreduce"] += time.perf_counter() - t1
    pg._reduce_ = timed_reduce
    batches = iter(recipe.train_loader)
    done, examples, start = 0, 0, None
    for x, y in batches:
        if done == 3:   # warm-up steps excluded
            dist.barrier()
            start, ddp.communication_seconds, examples = time.perf_counter(), 0.0, 0
            timing.update(wait=0.0, allreduce=0.0)
        opt.zero_grad()
        loss_fn(ddp(x), y).backward()
        opt.step()
        examples += len(y)
        done += 1
        if done == steps + 3:
            break
    dist.barrier()
    elapsed = time.perf_counter() - start
    pg._reduce_ = reduce_
    measured = done - 3
    world = dist.get_world_size()
    return {"recipe": name, "world_size": world, "steps": measured,
            "global_batch": recipe.train_loader.batch_size * world,
            "parameters": sum(p.numel() for p in ddp.module.parameters()),
            "step_ms": 1e3 * elapsed / measured,
            "examples_per_s": examples * world / elapsed,
            "communication_ms_per_step": 1e3 * ddp.communication_seconds / measured,
            "waiting_ms_per_step": 1e3 * timing["wait"] / measured,
            "allreduce_ms_per_step": 1e3 * timing["allreduce"] / measured}


def run(out):
    import nnlite as nl
    from nnlite import distributed as dist
    dist.init()
    nl.set_num_threads(1)
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    result = {"world_size": comm.Get_size(), "allreduce": [], "recipes": []}
    if comm.Get_size() > 1:
        result["allreduce"] = measure_allreduce(comm, [2**k for k in range(10, 25, 2)])
    for name, steps in (("mnist1d-mlp", 60), ("mnist1d-cnn", 60), ("char-transformer", 12)):
        result["recipes"].append(measure_recipe(name, steps=steps))
    if dist.is_main():
        with open(out, "w") as f:
            json.dump(result, f, indent=1)


def fit_latency_bandwidth(rows):
    """t = alpha + n * beta, fitted in relative error (small and large messages count alike)."""
    n = np.array([r[0] for r in rows], dtype=float)
    t = np.array([r[1] for r in rows], dtype=float)
    (alpha, beta), *_ = np.linalg.lstsq(np.stack([1 / t, n / t], axis=1), np.ones_like(t), rcond=None)
    return float(alpha), float(beta)


def ring_allreduce_seconds(nbytes, machines, alpha, beta):
    """A ring all-reduce: 2 (W - 1) messages of n / W bytes each, one after the other."""
    if machines == 1:
        return 0.0
    return 2 * (machines - 1) * (alpha + nbytes / machines * beta)


def model(paths):
    runs = [json.load(open(p)) for p in paths]
    one = next(r for r in runs if r["world_size"] == 1)
    two = next(r for r in runs if r["world_size"] == 2)
    alpha, beta = fit_latency_bandwidth(two["allreduce"])
    lines = ["## Measured on this machine (1 thread per rank)", "",
             f"all-reduce between 2 ranks (shared memory): latency {alpha * 1e6:.1f} us, "
             f"{1 / beta / 1e9:.2f} GB/s", "",
             "| recipe | parameters | ranks | global batch | step ms | examples/s | averaging ms/step "
             "| of which waiting | of which all-reduce |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in one["recipes"] + two["recipes"]:
        lines.append(f"| {r['recipe']} | {r['parameters']:,} | {r['world_size']} | {r['global_batch']} | "
                     f"{r['step_ms']:.2f} | {r['examples_per_s']:,.0f} | {r['communication_ms_per_step']:.3f} | "
                     f"{r['waiting_ms_per_step']:.3f} | {r['allreduce_ms_per_step']:.3f} |")
    lines += ["", "## Model: W machines on a network (ring all-reduce, 50 us latency per message)", "",
              "| recipe | link | " + " | ".join(f"W={w}" for w in (1, 2, 8, 16, 32, 64)) + " |",
              "|---|---|" + "---|" * 6]
    for r in one["recipes"]:
        t1 = r["step_ms"] / 1e3
        nbytes = 4 * r["parameters"]
        for gbit in (1, 10):
            beta_net = 8 / (gbit * 1e9)
            speedups = []
            for w in (1, 2, 8, 16, 32, 64):
                t = t1 / w + ring_allreduce_seconds(nbytes, w, 50e-6, beta_net)
                speedups.append(f"{t1 / t:.1f}x")
            lines.append(f"| {r['recipe']} | {gbit} Gb/s | " + " | ".join(speedups) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="run the measurements (under mpiexec) and write JSON here")
    parser.add_argument("--model", nargs=2, metavar="JSON", help="print the table and the scaling model")
    args = parser.parse_args()
    if args.out:
        run(args.out)
    elif args.model:
        print(model(args.model))
    else:
        parser.print_help()
        sys.exit(2)
