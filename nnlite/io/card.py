"""Model cards: what a checkpoint's parameters are, where they came from and why they start where they do.

A weights file says *what* the numbers are; a model card (Mitchell et al.,
2019, "Model Cards for Model Reporting") says how they were made, so that a
reader months later can trust, reproduce or retire them. nnlite writes a card
into every checkpoint that ``nnlite train`` and :func:`nnlite.train.fit` save
(under ``extra["card"]``), ``nnlite inspect`` prints its summary and
``nnlite card CKPT`` exports it as Markdown. A card holds:

* **training**: the recipe, its hyperparameters, the optimizer and its groups,
  the seed, the kernel thread count, the backend, and the nnlite, NumPy and
  Python versions and the machine (what the reproducibility contract depends
  on; see :doc:`/practices`);
* **data**: a description of the training data;
* **metrics**: the numbers measured at the end;
* **lineage**: the SHA-256 (and path) of the parent checkpoint these
  parameters continued from, so files form a chain that ``nnlite diff`` and
  :func:`nnlite.io.hot_swap` can check;
* **parameters**: per parameter its kind, shape, trainability, the init
  scheme recorded in ``Parameter.init`` and the reason for that scheme.
"""
import hashlib
import platform
import sys

import numpy as np

__all__ = ["model_card", "card_of", "card_markdown", "card_summary", "file_sha256", "INIT_RATIONALE"]

#: Why each initialization scheme of :mod:`nnlite.nn.init` is chosen (the card's per-parameter rationale).
INIT_RATIONALE = {
    "zeros_": "starts at zero: an offset or a residual branch that should begin as a no-op",
    "ones_": "starts at one: a scale that should begin as the identity",
    "constant_": "a fixed starting value chosen by the layer",
    "uniform_": "small uniform values that break the symmetry between units",
    "normal_": "small Gaussian values that break the symmetry between units",
    "trunc_normal_": "Gaussian values without outliers (the transformer convention)",
    "xavier_uniform_": "keeps activation and gradient variance through tanh/linear layers (Glorot & Bengio, 2010)",
    "xavier_normal_": "keeps activation and gradient variance through tanh/linear layers (Glorot & Bengio, 2010)",
    "kaiming_uniform_": "keeps activation variance through ReLU-like layers (He et al., 2015)",
    "kaiming_normal_": "keeps activation variance through ReLU-like layers (He et al., 2015)",
    "lecun_uniform_": "unit output variance for linear or SELU layers (LeCun et al., 1998)",
    "lecun_normal_": "unit output variance for linear or SELU layers (LeCun et al., 1998)",
    "orthogonal_": "preserves norms exactly through deep linear maps (Saxe et al., 2014)",
    "eye_": "starts as the identity map",
    "dirac_": "a convolution that starts as the identity map",
}


def file_sha256(path):
    """SHA-256 of a file's bytes: the identity a card's lineage refers to."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _optimizer_config(optimizer):
    groups = [{k: v for k, v in g.items() if k != "params"} | {"num_params": len(g["params"])}
              for g in optimizer.param_groups]
    return {"class": type(optimizer).__name__, "param_groups": groups}


def _rationale(init):
    if not isinstance(init, dict):
        return "not recorded"
    scheme = init.get("scheme")
    if scheme in INIT_RATIONALE:
        return INIT_RATIONALE[scheme]
    if "source" in init:
        return f"loaded from {init['source']} (pre-trained values)"
    return "not recorded" if scheme is None else f"scheme {scheme}"


def model_card(model, *, recipe=None, hyperparameters=None, optimizer=None, seed=None, data=None,
               metrics=None, parent=None, notes=None):
    """A model card (a JSON-able dict) for ``model``; see the module docstring for its sections.

    ``parent`` is the path of the checkpoint these parameters continued from
    (its SHA-256 is computed here), or a dict ``{"path", "sha256"}``.
    """
    from .. import __version__, get_backend, get_num_threads
    if isinstance(parent, dict):
        lineage = {"parent_path": parent.get("path"), "parent_sha256": parent.get("sha256")}
    elif parent is not None:
        lineage = {"parent_path": str(parent), "parent_sha256": file_sha256(parent)}
    else:
        lineage = {"parent_path": None, "parent_sha256": None}
    parameters = {}
    for name, p in model.named_parameters():
        init = getattr(p, "init", None)
        parameters[name] = {"kind": getattr(p, "kind", "other"), "shape": list(p.shape),
                            "trainable": bool(p.requires_grad),
                            "init": (init or {}).get("scheme") if isinstance(init, dict) else None,
                            "rationale": _rationale(init)}
    card = {
        "model": {"class": type(model).__name__, "num_parameters": int(model.num_parameters())},
        "training": {"recipe": recipe, "hyperparameters": hyperparameters or {},
                     "optimizer": _optimizer_config(optimizer) if optimizer is not None else None,
                     "seed": seed, "threads": get_num_threads(), "backend": get_backend(),
                     "nnlite_version": __version__, "numpy_version": np.__version__,
                     "python_version": platform.python_version(),
                     "machine": {"system": platform.system(), "machine": platform.machine(),
                                 "processor": platform.processor() or None, "byteorder": sys.byteorder}},
        "data": data, "metrics": metrics or {}, "lineage": lineage, "parameters": parameters,
    }
    if notes:
        card["notes"] = notes
    return _jsonable(card)


def card_of(info):
    """The card stored in a checkpoint (the dict :func:`~nnlite.io.read_checkpoint` returns), or None."""
    extra = info.get("extra") if isinstance(info, dict) else None
    card = extra.get("card") if isinstance(extra, dict) else None
    return card if isinstance(card, dict) else None


def card_summary(card):
    """Three lines for ``nnlite inspect``: how the parameters were trained and where they came from."""
    t, lineage = card.get("training") or {}, card.get("lineage") or {}
    hyper = ", ".join(f"{k}={v}" for k, v in (t.get("hyperparameters") or {}).items())
    parent = lineage.get("parent_sha256")
    return "\n".join([
        f"card: recipe {t.get('recipe') or '-'}" + (f" ({hyper})" if hyper else "") + f", seed {t.get('seed')}, "
        f"{t.get('threads')} thread(s), {t.get('backend')} backend",
        f"      nnlite {t.get('nnlite_version')}, NumPy {t.get('numpy_version')}, "
        f"{(t.get('machine') or {}).get('machine')}",
        "      parent: " + (f"{parent[:16]}... ({lineage.get('parent_path')})" if parent else "none (trained from scratch)"),
    ])


def _cell(value):
    return str(value).replace("|", "\\|")


def card_markdown(card, title=None):
    """The card as a Markdown document (what ``nnlite card CKPT`` prints)."""
    model, t = card.get("model") or {}, card.get("training") or {}
    lines = [f"# Model card: {title or model.get('class', 'model')}", ""]
    lines += ["## Model", "", f"- class: `{model.get('class')}`",
              f"- parameters: {model.get('num_parameters', 0):,}", ""]
    lines += ["## Training", ""]
    for key in ("recipe", "seed", "threads", "backend", "nnlite_version", "numpy_version", "python_version"):
        lines.append(f"- {key.replace('_', ' ')}: {t.get(key)}")
    machine = t.get("machine") or {}
    lines.append("- machine: " + ", ".join(f"{k} {v}" for k, v in machine.items() if v))
    for k, v in (t.get("hyperparameters") or {}).items():
        lines.append(f"- {k}: {v}")
    opt = t.get("optimizer")
    if opt:
        for i, g in enumerate(opt.get("param_groups") or []):
            settings = ", ".join(f"{k}={v}" for k, v in g.items())
            lines.append(f"- optimizer {opt.get('class')}, group {i}: {settings}")
    lines += ["", "## Data", "", str(card.get("data") or "not described"), ""]
    lines += ["## Metrics", ""]
    metrics = {k: v for k, v in (card.get("metrics") or {}).items() if not isinstance(v, (dict, list))}
    lines += [f"- {k}: {v:.6g}" if isinstance(v, float) else f"- {k}: {v}" for k, v in metrics.items()] or ["none"]
    lineage = card.get("lineage") or {}
    lines += ["", "## Lineage", ""]
    if lineage.get("parent_sha256"):
        lines += [f"- parent: `{lineage.get('parent_path')}`", f"- parent sha256: `{lineage['parent_sha256']}`"]
    else:
        lines.append("- trained from scratch (no parent checkpoint)")
    lines += ["", "## Parameters", "", "| name | kind | shape | trainable | init | why |", "|---|---|---|---|---|---|"]
    for name, p in (card.get("parameters") or {}).items():
        shape = "x".join(map(str, p.get("shape") or [])) or "scalar"
        lines.append(f"| {_cell(name)} | {p.get('kind')} | {shape} | {'yes' if p.get('trainable') else 'no'} | "
                     f"{p.get('init') or '-'} | {_cell(p.get('rationale'))} |")
    if card.get("notes"):
        lines += ["", "## Notes", "", str(card["notes"])]
    return "\n".join(lines) + "\n"
