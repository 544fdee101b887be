"""The ``continual-mnist1d`` experiment: every method on split (task- and class-incremental) and permuted MNIST-1D."""
from .benchmarks import permuted_mnist1d, split_mnist1d
from .sequence import METHODS, train_sequence

__all__ = ["run"]


def run(*, seed, epochs=None, progress=True):
    """Per benchmark and method: ``acc``, ``bwt``, ``fwt``, the matrix ``R`` and the parameter counts."""
    benchmarks = {"split-task-incremental": (split_mnist1d(), "task"),
                  "split-class-incremental": (split_mnist1d(), "class"),
                  "permuted": (permuted_mnist1d(seed=seed), "domain")}
    results, lines = {}, []
    for name, (tasks, setting) in benchmarks.items():
        results[name] = {}
        for method in METHODS:
            if method == "progressive" and setting == "class":
                continue   # needs the task identity, which this setting withholds
            out = train_sequence(method, tasks, setting=setting, epochs=epochs or 5, seed=seed)
            results[name][method] = out
            line = (f"{name:<24} {method:<12} acc {out['acc']:.3f}  bwt {out['bwt']:+.3f}  "
                    f"fwt {out['fwt']:+.3f}  parameters {out['parameters'][-1]:,}")
            lines.append(line)
            if progress:
                print(line, flush=True)
    return {"seed": seed, "benchmarks": results, "summary": "\n".join(lines)}
