"""A model's parameter report: counts by kind and by layer, memory, FLOPs and parameter density.

* Parameters are counted once even when tied (two names, one Parameter, as
  when a language model's output layer reuses the embedding).
* **Trainable** parameters are the ones an optimizer changes; **frozen** ones
  keep their values (``requires_grad=False``, see :meth:`~nnlite.nn.Module.freeze`).
* **Memory**: the parameters' bytes, the gradients' (one per trainable value,
  same dtype) and, given an optimizer, its state (Adam keeps two more copies,
  ``exp_avg`` and ``exp_avg_sq``, allocated at its first step), as counted by
  :func:`nnlite.optim.memory_report`.
* **FLOPs** per layer of one forward pass of ``example_input`` (see
  :func:`~nnlite.analysis.flops`), and the **parameter density**: parameters per FLOP of one
  sample (the example's first dimension is its batch size). A convolution
  reuses each weight at every position and has a low density; a Linear layer
  uses each weight once per sample, 2 FLOPs per parameter, density ½.
"""
from collections import OrderedDict

from ..nn._checks import require_module
from .flop_count import flops_by_layer

__all__ = ["Report", "report"]


def _bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


class Report:
    """The result of :func:`report`: ``str()`` is a table; ``to_markdown()``, ``to_dict()``."""

    def __init__(self, layers, kinds, totals, tied):
        self.layers, self.kinds, self.totals, self.tied = layers, kinds, totals, tied

    def to_dict(self):
        """Plain JSON-able data: ``layers``, ``kinds``, ``totals``, ``tied``."""
        return {"layers": [dict(r) for r in self.layers], "kinds": {k: dict(v) for k, v in self.kinds.items()},
                "totals": dict(self.totals), "tied": [list(g) for g in self.tied]}

    def _rows(self):
        has_flops = self.totals.get("flops") is not None
        head = ["layer", "type", "parameters", "trainable", "frozen"] + (["FLOPs"] if has_flops else [])
        rows = [[r["layer"] or "(model)", r["type"], f"{r['parameters']:,}", f"{r['trainable']:,}",
                 f"{r['frozen']:,}"] + ([f"{r['flops']:,}"] if has_flops else []) for r in self.layers]
        t = self.totals
        rows.append(["total", "", f"{t['parameters']:,}", f"{t['trainable']:,}", f"{t['frozen']:,}"]
                    + ([f"{t['flops']:,}"] if has_flops else []))
        return head, rows

    def _summary(self):
        t = self.totals
        lines = ["by kind: " + ", ".join(f"{k} {v['parameters']:,}" for k, v in self.kinds.items()),
                 f"memory: parameters {_bytes(t['parameter_bytes'])}, gradients {_bytes(t['gradient_bytes'])}"
                 + (f", optimizer state {_bytes(t['optimizer_state_bytes'])}"
                    if t.get("optimizer_state_bytes") is not None else "")]
        if t.get("flops") is not None:
            lines.append(f"FLOPs per sample: {t['flops_per_sample']:,.0f}; parameter density "
                         f"{t['parameter_density']:.4g} parameters per FLOP")
        if self.tied:
            lines.append("tied (counted once): " + "; ".join(" = ".join(g) for g in self.tied))
        return lines

    def __str__(self):
        head, rows = self._rows()
        cells = [head] + rows
        widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
        lines = ["  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
                 for row in cells]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines + self._summary())

    def to_markdown(self):
        """A Markdown table and the summary lines as a list."""
        head, rows = self._rows()
        align = ["---" if i < 2 else "---:" for i in range(len(head))]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines + [""] + [f"- {s}" for s in self._summary()])

    def __repr__(self):
        t = self.totals
        return f"Report(parameters={t['parameters']}, trainable={t['trainable']}, frozen={t['frozen']})"


def report(model, optimizer=None, example_input=None):
    """Count ``model``'s parameters by layer and by kind, with memory and (given an input) FLOPs.

    >>> import nnlite as nl
    >>> r = report(nl.nn.Sequential(nl.nn.Linear(4, 3), nl.nn.ReLU(), nl.nn.Linear(3, 2)), example_input=nl.randn(1, 4))
    >>> r.totals["parameters"], r.totals["flops"], r.totals["parameter_density"]
    (23, 36, 0.6388888888888888)
    """
    modules = OrderedDict(require_module(model, "report").named_modules())
    layer_flops = flops_by_layer(model, example_input) if example_input is not None else {}
    layers = OrderedDict()
    kinds = OrderedDict()
    for name, p in model.named_parameters():   # tied parameters appear once, under their first name
        owner = name.rpartition(".")[0]
        n, trainable = int(p.data.size), bool(p.requires_grad)
        row = layers.setdefault(owner, {"layer": owner, "type": type(modules[owner]).__name__, "parameters": 0,
                                        "trainable": 0, "frozen": 0})
        kind = kinds.setdefault(p.kind, {"parameters": 0, "trainable": 0, "frozen": 0})
        for entry in (row, kind):
            entry["parameters"] += n
            entry["trainable" if trainable else "frozen"] += n
    for name, f in layer_flops.items():   # layers with FLOPs but no parameters of their own still get a row
        layers.setdefault(name, {"layer": name, "type": type(modules[name]).__name__, "parameters": 0,
                                 "trainable": 0, "frozen": 0})
    if example_input is not None:
        for name, row in layers.items():
            row["flops"] = int(layer_flops.get(name, 0))
    params = list(model.parameters())
    totals = {"parameters": sum(int(p.data.size) for p in params),
              "trainable": sum(int(p.data.size) for p in params if p.requires_grad),
              "parameter_bytes": sum(int(p.data.nbytes) for p in params),
              "gradient_bytes": sum(int(p.data.nbytes) for p in params if p.requires_grad),
              "optimizer_state_bytes": None, "flops": None}
    totals["frozen"] = totals["parameters"] - totals["trainable"]
    if optimizer is not None:
        from ..optim.memory import memory_report
        from ..optim.optimizer import Optimizer
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"report: expected optimizer to be an nl.optim.Optimizer or None, "
                            f"got {type(optimizer).__name__}")
        totals["optimizer_state_bytes"] = int(memory_report(optimizer)["total"]["state_bytes"])
    if example_input is not None:
        first = example_input[0] if isinstance(example_input, tuple) else example_input
        batch = int(first.shape[0]) if first.ndim else 1
        if batch == 0:
            raise ValueError(f"report: example_input has no samples (shape {tuple(first.shape)}); the FLOPs per "
                             f"sample need at least one")
        totals["flops"] = int(sum(layer_flops.values()))
        totals["flops_per_sample"] = totals["flops"] / batch
        totals["parameter_density"] = (totals["parameters"] / totals["flops_per_sample"]
                                       if totals["flops"] else float("inf"))
    return Report(list(layers.values()), kinds, totals, model.tied_parameters())
