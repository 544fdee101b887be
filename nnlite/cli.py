"""The ``nnlite`` command (also ``python -m nnlite``).

    nnlite train RECIPE [--epochs N --lr LR --batch-size B --seed S --threads T --out DIR --resume [CKPT]]
    nnlite inspect CHECKPOINT [--histograms FILE.png] [--analysis]
    nnlite bench [--quick] [--only NAME] [--results DIR]
    nnlite --version
    nnlite export CHECKPOINT --onnx FILE.onnx [--opset N]
    nnlite card CHECKPOINT [--out FILE.md]
    nnlite diff A B

Mistakes a user can make (an unknown recipe, a missing file, a file that is
not a checkpoint) end with a one-line message on stderr and exit code 1 or 2,
never a traceback.
"""
import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

__all__ = ["main"]

# Written out (not imported from nnlite.recipes) so that `nnlite --help` does not load nnlite;
# tests/test_cli.py keeps this list equal to nnlite.recipes.names().
RECIPE_NAMES = ("mnist1d-logistic", "mnist1d-mlp", "mnist1d-cnn", "digits-mlp", "digits-cnn", "char-transformer",
                "mnist1d-transfer", "continual-mnist1d", "mnist1d-distill",
                "maml-sinusoid", "darts-mnist1d", "digits-tune")


class UsageError(Exception):
    """A mistake in the command line or its files: reported in one line."""


# -------------------------------------------------------------------- train --
def _peak_rss_mb():
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def _bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def _report(results, recipe, memory, files, threads):
    lines = ["", f"== {results['recipe']}: {recipe.description}"]
    if results["task"] == "language-model":
        lines.append(f"test loss       {results['test_loss']:.4f} nats/char "
                     f"(unigram baseline {results['unigram_loss']:.4f}; "
                     f"perplexity {2.718281828 ** results['test_loss']:.2f})")
        lines.append(f"test accuracy   {100 * results['test_accuracy']:.1f}% of next characters")
    else:
        lines.append(f"test accuracy   {100 * results['test_accuracy']:.2f}%   (test loss {results['test_loss']:.4f})")
    resumed = results.get("resumed_at_step")
    lines.append(f"train time      {results['train_time_s']:.1f} s  ({_plural(results['epochs'], 'epoch')}, "
                 f"{_plural(results['steps'], 'step')}"
                 + (f", resumed at step {resumed}: the time is that of the steps after it" if resumed is not None
                    else "") + f", {_plural(threads, 'thread')})")
    kinds = "  ".join(f"{k} {v:,}" for k, v in results["parameters_by_kind"].items())
    lines.append(f"parameters      {results['num_parameters']:,}  ({kinds})")
    lines.append(f"memory          {memory}")
    if "sample" in results:
        lines.append("sample          (temperature 0.8)")
        lines.extend("  | " + ln for ln in results["sample"].splitlines())
    lines.append("wrote           " + ", ".join(files))
    print("\n".join(lines), flush=True)


def _check_train_args(args):
    """Flags that need no data: checked before anything loads, each error naming its flag."""
    if args.seed is not None and args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {args.seed}")
    # Checked here for every recipe: the experiments read a missing --epochs as "the default",
    # so an --epochs 0 reaching them would silently run the full default length.
    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be a positive integer, got {args.epochs}")
    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every must be a positive number of steps, got {args.checkpoint_every}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    if args.lr is not None and not 0 < args.lr < float("inf"):
        raise UsageError(f"--lr must be a positive finite number, got {args.lr}")
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if args.out is not None and os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out} is an existing file; --out names a folder for the run")
    if args.tensorboard is not None and os.path.exists(args.tensorboard) and not os.path.isdir(args.tensorboard):
        raise UsageError(f"--tensorboard {args.tensorboard} is an existing file; --tensorboard names a folder "
                         "for the event files")


# A run's settings, kept next to its resume points: --resume continues *that* run, so its
# seed, learning rate and batch size come from here, and flags that contradict them are refused.
RUN_FILE = "run.json"


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _resume_point(args, ckpt_dir, out):
    """The checkpoint --resume continues, or a UsageError saying why there is none."""
    from nnlite.io import CheckpointError, list_checkpoints, read_checkpoint
    if args.resume == "latest":
        found = list_checkpoints(os.path.join(ckpt_dir, "checkpoint-{step:08d}.safetensors")) \
            if os.path.isdir(ckpt_dir) else []
        if not found:
            if os.path.isfile(os.path.join(out, "checkpoint.safetensors")):
                raise UsageError(f"--resume: the run in {out} has finished, and a finished run cannot be resumed; "
                                 "to train longer, start a new run with more --epochs (and another --out)")
            raise UsageError(f"--resume: no checkpoint in {ckpt_dir} to resume from")
        path = found[-1][1]
    else:
        path = args.resume
    _check_checkpoint_path(path, "--resume: ")
    try:
        extra = read_checkpoint(path).extra or {}
    except CheckpointError as e:
        raise UsageError(f"--resume: {path} is not a readable checkpoint: {e}") from None
    if "fit" not in extra:
        if "metrics" in extra:
            raise UsageError(f"--resume: {path} is the final checkpoint of a finished run, which cannot be resumed; "
                             "to train longer, start a new run with more --epochs (and another --out)")
        raise UsageError(f"--resume: {path} was not written during `nnlite train` (no resume state in it)")
    return path, extra["fit"]


def _resumed_settings(args, run, done_epochs):
    """Settings for a resumed run: the run's own; conflicting flags refused in one line each."""
    if run is None:   # resume points from before run.json existed: the flags as given
        return {"seed": args.seed or 0, "lr": args.lr, "batch_size": args.batch_size, "epochs": args.epochs}
    if run.get("recipe") != args.recipe:
        raise UsageError(f"--resume: the checkpoints are of a {run.get('recipe')} run, not {args.recipe}")
    for flag, key in (("--seed", "seed"), ("--lr", "lr"), ("--batch-size", "batch_size")):
        given = getattr(args, key)
        if given is not None and given != run[key]:
            raise UsageError(f"{flag} {given} conflicts with the run being resumed ({key} {run[key]}); "
                             f"a resumed run keeps its {key}: leave {flag} out, or start a new run in another --out")
    epochs = run["epochs"]
    if args.epochs is not None and args.epochs != epochs:
        if run.get("scheduled"):
            raise UsageError(f"--epochs {args.epochs}: this recipe's learning-rate schedule was planned for "
                             f"{epochs} epochs, so a resumed run keeps them; for a longer run start a new one")
        if args.epochs < epochs:
            raise UsageError(f"--epochs {args.epochs}: the run being resumed was started with {epochs} epochs "
                             f"(and has trained {done_epochs}); a resumed run may train longer, not shorter")
        epochs = args.epochs
    return {"seed": run["seed"], "lr": run["lr"], "batch_size": run["batch_size"], "epochs": epochs}


def cmd_train(args):
    if args.recipe not in RECIPE_NAMES:
        raise UsageError(f"unknown recipe {args.recipe!r}; choose one of: {', '.join(RECIPE_NAMES)}")
    _check_train_args(args)
    import nnlite as nl
    from nnlite import recipes
    if args.recipe in recipes.EXPERIMENTS:
        _refuse_training_flags(args)
    elif args.tensorboard is not None and importlib.util.find_spec("tensorboardX") is None:
        raise UsageError('--tensorboard needs tensorboardX: pip install "nnlite[monitor]"')
    main_rank = _start_distributed(args) if args.distributed else True
    if args.threads is not None:
        nl.set_num_threads(args.threads)
    # The run's folder is made once its flags have passed every check (a refused command leaves
    # nothing behind): by the first file a run writes, run.json, or by the experiment.
    out = args.out or os.path.join("runs", args.recipe)
    if args.recipe in recipes.EXPERIMENTS:
        return _run_experiment(args, out)
    ckpt_dir = os.path.join(out, "checkpoints")
    run_file = os.path.join(ckpt_dir, RUN_FILE)
    resume, fit_state, parent = None, None, None
    if args.resume is not None:
        resume, fit_state = _resume_point(args, ckpt_dir, out)
        # The card's lineage names the resume point by its hash, taken now: by the end of the
        # run, checkpoint rotation has usually deleted that file.
        from nnlite.io.card import file_sha256
        parent = {"path": resume, "sha256": file_sha256(resume)}
        run = _read_json(os.path.join(os.path.dirname(os.path.abspath(resume)), RUN_FILE))
        settings = _resumed_settings(args, run, fit_state.get("epoch", 0))
        if run is not None and main_rank:   # kept for the next --resume (also into another --out)
            os.makedirs(ckpt_dir, exist_ok=True)
            _write_json(run_file, dict(run, epochs=settings["epochs"]))
        if run is not None and settings["epochs"] != run["epochs"]:
            print(f"--epochs {settings['epochs']}: continuing the run past the {run['epochs']} epochs it was "
                  "started with", flush=True)
    else:
        if os.path.isdir(ckpt_dir) and any(n.endswith(".safetensors") for n in os.listdir(ckpt_dir)):
            raise UsageError(f"{ckpt_dir} holds resume points of an earlier, unfinished run; continue it with "
                             "--resume, or choose another --out (or delete that folder)")
        settings = {"seed": args.seed or 0, "lr": args.lr, "batch_size": args.batch_size, "epochs": args.epochs}
    if not args.quiet:
        print(f"nnlite train {args.recipe}: loading the data and building the model", flush=True)
    try:
        recipe = recipes.build(args.recipe, epochs=settings["epochs"], lr=settings["lr"],
                               batch_size=settings["batch_size"], seed=settings["seed"])
    except (KeyError, ValueError) as e:
        raise UsageError(str(e.args[0] if e.args else e)) from None
    if args.distributed:
        from nnlite.distributed import distribute_recipe
        distribute_recipe(recipe, seed=settings["seed"])
    if resume is None and main_rank:
        os.makedirs(ckpt_dir, exist_ok=True)
        group = recipe.optimizer.param_groups[0]
        # the learning rate as --lr sets it: OneCycle's peak (max_lr), else the base rate that
        # a schedule starts from (initial_lr) or the optimizer's own (lr)
        _write_json(run_file, {"recipe": args.recipe, "seed": settings["seed"], "epochs": recipe.epochs,
                               "lr": group.get("max_lr", group.get("initial_lr", group.get("lr"))),
                               "batch_size": getattr(recipe.train_loader, "batch_size", None),
                               "scheduled": recipe.scheduler is not None})
    print(f"nnlite train {args.recipe}: {recipe.description}", flush=True)
    every = args.checkpoint_every or len(recipe.train_loader)
    callbacks = []
    if args.tensorboard:
        from nnlite.monitor import TensorBoardLogger
        callbacks.append(TensorBoardLogger(args.tensorboard))
    _stop_if_interrupted()
    try:
        # Only rank 0 writes resume points (every rank reads them when resuming).
        results = recipes.run(recipe, resume=resume, checkpoint_every=every if main_rank else None,
                              checkpoint_dir=ckpt_dir if main_rank else None,
                              progress=not args.quiet, callbacks=callbacks)
    finally:
        for cb in callbacks:
            cb.close()
    if args.distributed:
        recipe.model = recipe.model.module   # the final checkpoint holds the plain model
        if not main_rank:
            return 0   # rank 0 writes the checkpoint and the metrics
    if fit_state is not None:
        results["resumed_at_step"] = fit_state.get("step")

    ckpt_path = os.path.join(out, "checkpoint.safetensors")
    metrics = {k: v for k, v in results.items() if k != "history"}
    metrics.update(seed=settings["seed"], threads=nl.get_num_threads(), peak_rss_mb=_peak_rss_mb(),
                   nnlite_version=nl.__version__)
    opt_bytes = recipe.optimizer.memory_report()["total"]["total_bytes"]
    metrics["optimizer_arena_bytes"] = opt_bytes
    nl.save_checkpoint(ckpt_path, model=recipe.model, optimizer=recipe.optimizer, scheduler=recipe.scheduler,
                       extra={"recipe": args.recipe, "metrics": metrics,
                              "card": _training_card(args, recipe, metrics, parent, settings["seed"])},
                       step=results["steps"],
                       epoch=recipe.epochs)
    # The recipes evaluate on their test split after every epoch (fit calls it val_*): say so.
    metrics["history"] = {("test_" + k[4:] if k.startswith("val_") else k): v for k, v in results["history"].items()}
    metrics_path = os.path.join(out, "metrics.json")
    _write_json(metrics_path, metrics)
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # the run finished: its resume points are no longer needed
    rss = metrics["peak_rss_mb"]
    memory = (f"peak RSS {rss:.0f} MB; " if rss else "") + \
        f"parameters + gradients + optimizer state {_bytes(opt_bytes)}"
    _report(results, recipe, memory, [ckpt_path, metrics_path], nl.get_num_threads())
    return 0


def _start_distributed(args):
    """Join the MPI job (``--distributed``); on ranks other than 0 silence stdout. Returns is_main()."""
    # nnlite.distributed runs as a world of one without mpi4py; under mpiexec that would make every
    # process a rank 0 training the whole run and writing the same files, so the flag insists on MPI.
    if importlib.util.find_spec("mpi4py") is None:
        raise UsageError('--distributed needs mpi4py: pip install "nnlite[mpi]"')
    from nnlite import distributed
    distributed.init()
    if args.threads is None:
        args.threads = 1   # the ranks already share the cores
    if not distributed.is_main():
        args.quiet = True
        sys.stdout = open(os.devnull, "w")
    return distributed.is_main()


def _training_card(args, recipe, metrics, parent, seed):
    """The model card ``nnlite train`` stores in its checkpoint (see nnlite.io.card)."""
    from nnlite.io import model_card
    hyper = {"epochs": recipe.epochs, "batch_size": getattr(recipe.train_loader, "batch_size", None),
             "lr": recipe.optimizer.param_groups[0].get("initial_lr", recipe.optimizer.param_groups[0].get("lr")),
             "scheduler": type(recipe.scheduler).__name__
             if recipe.scheduler is not None else None, "clip_grad_norm": recipe.clip_grad_norm}
    return model_card(recipe.model, recipe=args.recipe, hyperparameters=hyper, optimizer=recipe.optimizer,
                      seed=seed, data=recipe.description, parent=parent,
                      metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float, str))})


def _write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def _refuse_training_flags(args):
    """An experiment runs its own fits: the flags that shape one training run do not reach it."""
    for flag in ("lr", "batch_size", "resume", "checkpoint_every", "tensorboard"):
        if getattr(args, flag) is not None:
            raise UsageError(f"--{flag.replace('_', '-')} does not apply to the experiment {args.recipe!r}")
    if args.distributed:
        raise UsageError(f"--distributed applies to the training recipes, not the experiment {args.recipe!r}")


def _run_experiment(args, out):
    """An experiment recipe (transfer, continual, meta-learning, search): its results go to metrics.json."""
    import nnlite as nl
    from nnlite import recipes
    seed = 0 if args.seed is None else args.seed
    os.makedirs(out, exist_ok=True)
    _stop_if_interrupted()
    results = recipes.run_experiment(args.recipe, seed=seed, epochs=args.epochs, progress=not args.quiet)
    results = dict(results, recipe=args.recipe, seed=seed, threads=nl.get_num_threads(),
                   nnlite_version=nl.__version__)
    metrics_path = os.path.join(out, "metrics.json")
    _write_json(metrics_path, results)
    summary = results.get("summary")
    if summary:
        print(summary, flush=True)
    print(f"wrote           {metrics_path}", flush=True)
    return 0


# ------------------------------------------------------------------ inspect --
def _check_checkpoint_path(path, flag=""):
    """A UsageError (prefixed with ``flag``) unless ``path`` names an existing file."""
    if not os.path.exists(path):
        raise UsageError(f"{flag}no such file: {path}")
    if os.path.isdir(path):
        raise UsageError(f"{flag}{path} is a directory, not a checkpoint file")


def _load_for_inspect(path):
    _check_checkpoint_path(path)
    from nnlite.io import CheckpointError, load_state_dict, read_checkpoint
    try:
        info = read_checkpoint(path)
        arrays = load_state_dict(path)
    except CheckpointError as e:
        raise UsageError(f"{path} is not a readable checkpoint: {e}") from None
    return info, arrays


def parameter_table(info, arrays):
    """Rows (dicts) describing every parameter and buffer of a checkpoint, plus totals."""
    import numpy as np
    described = (info.get("model") or {}).get("parameters") or {}
    aliases = info.get("aliases") or {}
    prefix = "model." if info.get("format") == "checkpoint" else ""
    tied_with = {}
    for alias, kept in aliases.items():
        a, k = alias[len(prefix):], kept[len(prefix):]
        tied_with.setdefault(a, []).append(k)
        tied_with.setdefault(k, []).append(a)
    # Tied names may also be detected from shared arrays (load_state_dict returns one Tensor per group).
    by_id = {}
    for name, t in arrays.items():
        by_id.setdefault(id(t), []).append(name)
    for names in by_id.values():
        for n in names:
            for other in names:
                if other != n and other not in tied_with.setdefault(n, []):
                    tied_with[n].append(other)
    rows, seen = [], set()
    for name, t in arrays.items():
        a = t.data
        meta = described.get(name)
        is_param = meta is not None or not described
        tied = sorted(tied_with.get(name, []))
        first_of_group = not any(o in seen for o in tied)
        seen.add(name)
        if meta is None and tied:
            meta = next((described[o] for o in tied if o in described), None)
            is_param = meta is not None or not described
        values = a.astype(np.float64)
        rows.append({
            "name": name, "kind": (meta or {}).get("kind", "-" if is_param else "buffer"),
            "shape": tuple(a.shape), "count": int(a.size),
            "trainable": (meta or {}).get("trainable") if is_param else None,
            "tied": ", ".join(tied), "init": ((meta or {}).get("init") or {}).get("scheme", "-"),
            "norm": float(np.linalg.norm(values.ravel())) if a.size else 0.0,
            "mean": float(values.mean()) if a.size else 0.0, "std": float(values.std()) if a.size else 0.0,
            "parameter": is_param, "counted": first_of_group})
    return rows


def _format_table(rows):
    head = ["name", "kind", "shape", "count", "trainable", "tied", "init", "norm", "mean", "std"]
    cells = [head]
    for r in rows:
        trainable = "-" if r["trainable"] is None else ("yes" if r["trainable"] else "no")
        cells.append([r["name"], r["kind"], "x".join(map(str, r["shape"])) or "scalar", f"{r['count']:,}", trainable,
                      r["tied"] or "-", r["init"], f"{r['norm']:.4g}", f"{r['mean']:.4g}", f"{r['std']:.4g}"])
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    right = {3, 7, 8, 9}
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def cmd_inspect(args):
    info, arrays = _load_for_inspect(args.checkpoint)
    rows = parameter_table(info, arrays)
    print(f"{args.checkpoint}: {info.get('format') or 'safetensors'} file"
          + (f", written by nnlite {info['nnlite_version']}" if info.get("nnlite_version") else "")
          + (f", step {info['step']}" if info.get("step") is not None else ""))
    model = info.get("model") or {}
    if model.get("class"):
        print(f"model: {model['class']}")
    from nnlite.io import card_of
    from nnlite.io.card import card_summary
    if card_of(info):
        print(card_summary(card_of(info)))
    print(_format_table(rows))
    print(_totals(info, rows))
    if args.histograms:
        _histograms(rows, arrays, args.histograms)
        print(f"wrote {args.histograms}")
    if args.analysis:
        print(_quality_table(rows, arrays))
    return 0


def _quality_table(rows, arrays):
    """Spectral quality metrics (nnlite.analysis.quality_metrics) of every weight matrix of a checkpoint."""
    from nnlite.analysis import quality_metrics
    # Weight matrices only: counted once if tied; "-" is a parameter of a file without kind records.
    matrices = {r["name"]: arrays[r["name"]] for r in rows if r["parameter"] and r["counted"]
                and len(r["shape"]) >= 2 and r["kind"] in ("weight", "embedding", "-")}
    metrics = quality_metrics(matrices)
    if not metrics:
        return "quality metrics: the checkpoint has no weight matrices"
    head = ["weight", "matrix", "spectral norm", "condition number", "effective rank", "stable rank"]
    cells = [head] + [[name, "x".join(map(str, m["matrix_shape"])), f"{m['spectral_norm']:.4g}",
                       f"{m['condition_number']:.4g}", f"{m['effective_rank']:.4g}", f"{m['stable_rank']:.4g}"]
                      for name, m in metrics.items()]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "quality metrics (convolutions read as out x in*kernel):\n" + "\n".join(lines)


def _totals(info, rows):
    params = [r for r in rows if r["parameter"] and r["counted"]]
    total = sum(r["count"] for r in params)
    if not (info.get("model") or {}).get("parameters"):
        return (f"total: {total:,} values in {len(params)} tensors (a file without nnlite's parameter "
                "records: kinds, trainability and init unknown)")
    trainable = sum(r["count"] for r in params if r["trainable"])
    kinds = {}
    for r in params:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + r["count"]
    buffers = sum(r["count"] for r in rows if not r["parameter"])
    tied = sum(1 for r in rows if r["tied"] and not r["counted"])
    return (f"total: {total:,} parameters ({trainable:,} trainable), "
            + ", ".join(f"{k} {v:,}" for k, v in kinds.items())
            + f"; {buffers:,} buffer values; {tied} tied name(s) counted once")


def _histograms(rows, arrays, path):
    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError('--histograms needs matplotlib: pip install "nnlite[plot]"')
    import math

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shown = [r for r in rows if r["parameter"] and r["counted"] and r["count"] > 1]
    if not shown:
        raise UsageError("--histograms: the checkpoint has no parameters with more than one value")
    cols = min(4, len(shown))
    nrows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.4 * nrows), squeeze=False)
    for ax, r in zip(axes.ravel(), shown):
        ax.hist(arrays[r["name"]].data.ravel(), bins=50, color="#3b6ea8")
        ax.set_title(f"{r['name']} ({r['kind']})", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(shown):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ------------------------------------------------------------- card, diff --
def cmd_card(args):
    info, _ = _load_for_inspect(args.checkpoint)
    from nnlite.io import card_markdown, card_of
    card = card_of(info)
    if card is None:
        raise UsageError(f"{args.checkpoint} holds no model card (cards are written by `nnlite train` and fit)")
    text = card_markdown(card, title=(info.get("extra") or {}).get("recipe"))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0


def cmd_diff(args):
    for path in (args.a, args.b):
        _load_for_inspect(path)   # a missing or damaged file: one line, exit code 2
    from nnlite.io import diff
    print(diff(args.a, args.b).format())
    return 0


# ------------------------------------------------------------------- export --
def cmd_export(args):
    _check_checkpoint_path(args.checkpoint)
    if args.onnx is None:
        raise UsageError("export: name the output with --onnx FILE.onnx")
    from nnlite.io import CheckpointError
    from nnlite.onnx.checkpoint import export_checkpoint
    try:
        proto = export_checkpoint(args.checkpoint, args.onnx, opset=args.opset)
    except CheckpointError as e:
        raise UsageError(f"{args.checkpoint} is not a readable checkpoint: {e}") from None
    print(f"wrote {args.onnx} (ONNX opset {args.opset}, {len(proto.graph.node)} nodes, "
          f"{len(proto.graph.initializer)} initializers)")
    return 0


# -------------------------------------------------------------------- bench --
def _benchmarks_package():
    """(package name, folder to start it in) of the benchmarks that belong to the nnlite running.

    A source checkout has them as the package ``benchmarks`` beside ``nnlite/`` (an
    editable install runs from the checkout too, though it also maps
    ``nnlite.benchmarks`` there); an installed nnlite carries them as
    ``nnlite.benchmarks`` (the wheel maps the checkout's top-level benchmarks/ there).
    Either way the folder holding ``nnlite`` is where the runner starts, so it
    measures this nnlite and no other one on the path.
    """
    import nnlite
    root = os.path.dirname(os.path.dirname(os.path.abspath(nnlite.__file__)))
    if os.path.isfile(os.path.join(root, "benchmarks", "run_all.py")):
        return "benchmarks", root
    if importlib.util.find_spec("nnlite.benchmarks") is not None:
        return "nnlite.benchmarks", root
    raise UsageError(f"this nnlite ({os.path.dirname(nnlite.__file__)}) has no benchmarks: "
                     "install nnlite from a wheel or run from a source checkout")


def _benchmark_names(package, root):
    """The modules ``--only`` may name (``bench_norm.py`` -> ``norm``)."""
    folder = os.path.join(root, *package.split("."))
    return sorted(n[len("bench_"):-3] for n in os.listdir(folder) if n.startswith("bench_") and n.endswith(".py"))


def cmd_bench(args):
    package, root = _benchmarks_package()
    known = _benchmark_names(package, root)
    for only in args.only:   # checked here, before a folder is made or a runner started
        name = only.partition(":")[0].removeprefix("bench_")
        if name not in known:
            raise UsageError(f"--only {only}: no benchmark {name!r}; choose from {', '.join(known)}")
    if args.results is not None and os.path.exists(args.results) and not os.path.isdir(args.results):
        raise UsageError(f"--results {args.results} is an existing file; --results names a folder")
    results = os.path.abspath(args.results or tempfile.mkdtemp(prefix="nnlite-bench-"))
    os.makedirs(results, exist_ok=True)
    argv = ["--results", results] + (["--quick"] if args.quick else [])
    for only in args.only:
        argv += ["--only", only]
    # The runner in an interpreter of its own, started in ``root``: its imports resolve to this
    # nnlite and its benchmarks, and nothing this process loaded weighs on the timings. It prints
    # the machine and which peers it found (or the extra that brings them) with the tables.
    code = subprocess.call([sys.executable, "-m", f"{package}.run_all"] + argv, cwd=root)
    if os.listdir(results):   # a runner that stopped before measuring (say, an unknown --only) wrote nothing
        print(f"results in {results}", flush=True)
    return code


# --------------------------------------------------------------------- main --
class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit code 2, as argparse does, without the usage block
        raise UsageError(message)


def build_parser():
    from nnlite._version import __version__
    parser = _Parser(prog="nnlite", description="Train, inspect and benchmark small models with nnlite.")
    parser.add_argument("--version", action="version", version=f"nnlite {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    train = sub.add_parser("train", help="train a recipe: " + ", ".join(RECIPE_NAMES))
    train.add_argument("recipe", metavar="RECIPE", help="one of: " + ", ".join(RECIPE_NAMES))
    train.add_argument("--epochs", type=int, help="number of epochs (default: the recipe's)")
    train.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    train.add_argument("--batch-size", type=int, help="batch size (default: the recipe's)")
    train.add_argument("--seed", type=int, help="seed of every random draw (default 0)")
    train.add_argument("--threads", type=int, help="kernel threads (default: all cores)")
    train.add_argument("--out", metavar="DIR", help="where to write checkpoint and metrics (default runs/RECIPE)")
    train.add_argument("--resume", nargs="?", const="latest", metavar="CHECKPOINT",
                       help="continue an interrupted run (default: the newest checkpoint in DIR/checkpoints); "
                            "it keeps its seed, lr and batch size, and its epochs unless the recipe has no "
                            "learning-rate schedule")
    train.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                       help="save a resume point every STEPS optimizer steps (default: every epoch)")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.add_argument("--distributed", action="store_true",
                       help="data-parallel over MPI: mpiexec -n N python -m mpi4py -m nnlite train RECIPE "
                            "--distributed (rank 0 writes the outputs)")
    train.add_argument("--tensorboard", metavar="DIR",
                       help="also write TensorBoard event files to DIR (view with: tensorboard --logdir DIR)")
    inspect = sub.add_parser("inspect", help="print the parameter table of a checkpoint")
    inspect.add_argument("checkpoint", metavar="CHECKPOINT")
    inspect.add_argument("--histograms", metavar="FILE.png", help="also plot a histogram per parameter")
    inspect.add_argument("--analysis", action="store_true",
                         help="also print spectral norm, condition number, effective and stable rank per weight matrix")
    card = sub.add_parser("card", help="print a checkpoint's model card as Markdown")
    card.add_argument("checkpoint", metavar="CHECKPOINT")
    card.add_argument("--out", metavar="FILE.md", help="write the card to a file instead")
    diff = sub.add_parser("diff", help="compare the parameters of two checkpoints or weight files")
    diff.add_argument("a", metavar="A")
    diff.add_argument("b", metavar="B")
    export = sub.add_parser("export", help="export a checkpoint's model to ONNX")
    export.add_argument("checkpoint", metavar="CHECKPOINT")
    export.add_argument("--onnx", metavar="FILE.onnx", help="where to write the ONNX graph")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    bench = sub.add_parser("bench", help="time nnlite against PyTorch, NumPy and JAX on this machine "
                                         "(the peers come with: pip install \"nnlite[bench]\")")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions")
    bench.add_argument("--only", action="append", default=[], metavar="NAME[:WORKLOAD,...]",
                       help="run only this benchmark module (repeatable), e.g. gemm or training:mlp")
    bench.add_argument("--results", metavar="DIR", help="where to write the result tables (default: a new "
                                                        "temporary folder, printed at the end)")
    return parser


_interrupted = False


def _interrupt(signum, frame):
    # Remember the Ctrl-C: raised inside an extension module's initialisation, the
    # KeyboardInterrupt reaches us as an ImportError ("initialization failed"), and a
    # library importing its optional dependencies under `except ImportError` swallows it.
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def _stop_if_interrupted():
    """Called before training starts: a Ctrl-C swallowed during start-up still stops the run."""
    if _interrupted:
        raise KeyboardInterrupt


def main(argv=None):
    """Run the command; return the exit code (0 success, 1 failure, 2 usage error, 130 interrupted)."""
    parser = build_parser()
    if argv is None and threading.current_thread() is threading.main_thread():
        # From here on Ctrl-C is a KeyboardInterrupt again, handled below (import set a quick exit).
        signal.signal(signal.SIGINT, _interrupt)
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        command = {"train": cmd_train, "inspect": cmd_inspect, "bench": cmd_bench, "export": cmd_export,
                   "card": cmd_card, "diff": cmd_diff}[args.command]
        status = command(args)
        return _interrupted_exit(argv) if _interrupted else status
    except UsageError as e:
        print(f"nnlite: error: {e}", file=sys.stderr)
        return 2
    except (ImportError, OSError, ValueError) as e:
        if _interrupted:
            return _interrupted_exit(argv)
        if os.environ.get("NNLITE_DEBUG"):  # developers want the traceback
            raise
        print(f"nnlite: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return _interrupted_exit(argv)
    except Exception:
        # A Ctrl-C raised inside a library's start-up can come out as another error: Python
        # wraps it in a RuntimeError when it interrupts a class body's __set_name__.
        if _interrupted:
            return _interrupted_exit(argv)
        raise


def _interrupted_exit(argv):
    print("nnlite: interrupted (continue a training run with --resume)", file=sys.stderr)
    if argv is None:
        # The command line: leave now. A normal exit would finalize the interpreter while
        # an import or a kernel thread may still be half-way (a Ctrl-C during start-up),
        # which can abort with "Fatal Python error" instead of exit code 130.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    return 130


if __name__ == "__main__":
    sys.exit(main())
