"""The ``maml-sinusoid`` experiment: MAML, first-order MAML, Reptile and the pre-trained baseline.

Setting of Finn et al. (2017), section 5.1: sinusoids with amplitude
U[0.1, 5], phase U[0, pi], inputs U[-5, 5]; K = 5 and K = 10 shots; the 1-40-40-1
ReLU network; inner learning rate 0.01 with one inner step during
meta-training; meta-batches of 25 tasks; Adam (lr 0.001) as the
meta-optimizer. The paper meta-trains for 70,000 iterations; here MAML and
first-order MAML run ``epochs`` x 1000 (default 3,000), Reptile a quarter as
many meta-steps of 8 inner steps each (inner learning rate 0.02, outer step
size 1 annealed linearly to 0), and the baseline is pre-trained for as
many iterations as MAML, so that the whole run takes about two minutes on
two cores.

Every learner is then evaluated the same way on one fixed set of 100 test
tasks (drawn with seed 1000, whatever ``seed`` is): starting from its
parameters, plain gradient descent with learning rate 0.01 on the task's K
support points, and the mean squared error on 100 query points of the same
wave after 0, 1, ..., 10 steps.
"""
import time

from .. import optim
from ..random import manual_seed
from .baseline import pretrain
from .maml import MAML, InnerLoop
from .reptile import Reptile
from .sinusoid import SinusoidTasks, sinusoid_mlp

__all__ = ["run", "meta_train", "TEST_SEED"]

TEST_SEED = 1000


def meta_train(method, shots, iterations, seed, meta_batch_size=25, inner_lr=0.01, meta_lr=1e-3):
    """Train a fresh 1-40-40-1 network with ``method`` ("maml", "fomaml", "reptile", "baseline"); returns it."""
    manual_seed(seed)
    model = sinusoid_mlp()
    tasks = SinusoidTasks(shots=shots, seed=seed)
    if method == "baseline":
        pretrain(model, tasks, iterations, lr=meta_lr, meta_batch_size=meta_batch_size)
    elif method == "reptile":
        learner = Reptile(model, inner_lr=2 * inner_lr, inner_steps=8, outer_lr=1.0, task_batched=True)
        for i in range(iterations):
            # The outer step size anneals linearly to 0, as in the paper.
            learner.step(tasks.sample(meta_batch_size), outer_lr=1.0 * (1 - i / iterations))
    elif method in ("maml", "fomaml"):
        learner = MAML(model, inner_lr=inner_lr, first_order=method == "fomaml", task_batched=True)
        meta_optimizer = optim.Adam(learner.parameters(), lr=meta_lr)
        for _ in range(iterations):
            loss = learner.meta_loss(tasks.sample(meta_batch_size))
            meta_optimizer.zero_grad()
            loss.backward()
            meta_optimizer.step()
    else:
        raise ValueError(f"meta_train: method must be 'maml', 'fomaml', 'reptile' or 'baseline', got {method!r}")
    return model


def run(*, seed, epochs=None, progress=True):
    """Post-adaptation query MSE after 0-10 steps for every method and K in (5, 10)."""
    iterations = 1000 * (epochs or 3)
    budget = {"maml": iterations, "fomaml": iterations, "reptile": iterations // 4, "baseline": iterations}
    results, lines = {}, []
    for shots in (5, 10):
        test = SinusoidTasks(shots=shots, query=100, seed=TEST_SEED).sample(100)
        results[f"K={shots}"] = {}
        for method, its in budget.items():
            start = time.perf_counter()
            model = meta_train(method, shots, its, seed)
            curve = InnerLoop(model, inner_lr=0.01, task_batched=True).adaptation_curve(test, steps=10)
            results[f"K={shots}"][method] = {"meta_iterations": its, "mse_curve": curve, "mse_0_steps": curve[0],
                                             "mse_1_step": curve[1], "mse_10_steps": curve[10],
                                             "seconds": round(time.perf_counter() - start, 1)}
            line = (f"K={shots:<3} {method:<9} {its:>5} iterations   MSE after 1 step {curve[1]:.3f}   "
                    f"after 10 steps {curve[10]:.3f}")
            lines.append(line)
            if progress:
                print(line, flush=True)
    return {"seed": seed, "test_tasks": 100, "test_seed": TEST_SEED, "inner_lr": 0.01, "meta_batch_size": 25,
            "results": results, "summary": "\n".join(lines)}
