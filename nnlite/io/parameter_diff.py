"""Version control of parameters: what changed between two weight files.

``git diff`` on two safetensors files says only that the bytes differ. This
compares them as parameters, name by name::

    distance  = |b - a|                       (L2 norm of the change)
    relative  = |b - a| / |a|                 (the change against the old size)
    cosine    = <a, b> / (|a| |b|)            (1: same direction; fine-tuning stays near 1)

and lists names that appear or disappear and tensors whose shape changed.
When the files are checkpoints with model cards, their lineage is compared
too: B is a *child* of A when B's card names A's SHA-256 as its parent.
``nnlite diff A B`` prints the same report.
"""
import numpy as np

from .card import card_of, file_sha256
from .reader import read_checkpoint
from .weights import load_state_dict

__all__ = ["diff", "ParameterDiff"]


class ParameterDiff:
    """The result of :func:`diff`: per-parameter ``rows``, key changes and the lineage of B relative to A."""

    def __init__(self, path_a, path_b, rows, added, removed, reshaped, lineage):
        self.path_a, self.path_b = path_a, path_b
        self.rows = rows              # dicts: name, shape, distance, relative, cosine, max_abs
        self.added, self.removed, self.reshaped = added, removed, reshaped
        self.lineage = lineage        # "A -> B" (B's parent is A), "B -> A", "unrelated" or "unknown"

    @property
    def identical(self):
        return not (self.added or self.removed or self.reshaped) and all(r["max_abs"] == 0 for r in self.rows)

    def changed(self, tolerance=0.0):
        """Names whose values moved by more than ``tolerance`` (largest absolute change)."""
        return [r["name"] for r in self.rows if r["max_abs"] > tolerance]

    def format(self):
        head = ["name", "shape", "L2 distance", "relative", "cosine"]
        cells = [head] + [[r["name"], "x".join(map(str, r["shape"])) or "scalar", f"{r['distance']:.4g}",
                           f"{r['relative']:.3g}", f"{r['cosine']:.6f}"] for r in self.rows]
        widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
        lines = [f"A: {self.path_a}", f"B: {self.path_b}", f"lineage: {self.lineage}", ""]
        lines += ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                  for row in cells]
        lines.insert(5, "-" * len(lines[4]))
        for label, names in (("only in A", self.removed), ("only in B", self.added)):
            if names:
                lines.append(f"{label}: {', '.join(names)}")
        for name, (sa, sb) in self.reshaped.items():
            lines.append(f"shape changed: {name} {list(sa)} -> {list(sb)}")
        changed = len(self.changed())
        lines.append(f"{changed} of {len(self.rows)} shared tensors changed" + (" (identical)" if self.identical
                                                                                else ""))
        return "\n".join(lines)

    def __repr__(self):
        return (f"ParameterDiff({len(self.rows)} shared, {len(self.added)} added, {len(self.removed)} removed, "
                f"{len(self.reshaped)} reshaped, lineage {self.lineage!r})")


def _lineage(path_a, path_b):
    try:
        card_a, card_b = card_of(read_checkpoint(path_a)), card_of(read_checkpoint(path_b))
    except Exception:   # plain safetensors files from elsewhere: no cards to compare
        return "unknown"
    parent_b = ((card_b or {}).get("lineage") or {}).get("parent_sha256")
    parent_a = ((card_a or {}).get("lineage") or {}).get("parent_sha256")
    if parent_b is not None and parent_b == file_sha256(path_a):
        return "A -> B"
    if parent_a is not None and parent_a == file_sha256(path_b):
        return "B -> A"
    return "unknown" if card_a is None and card_b is None else "unrelated"


def diff(a, b):
    """Compare the parameters of weight files or checkpoints ``a`` and ``b``; return a :class:`ParameterDiff`.

    Distances are computed in float64. Tied names are compared under each name.

    >>> import nnlite as nl, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> model = nl.nn.Linear(3, 2)
    >>> a = nl.save_state_dict(model.state_dict(), os.path.join(d, "a.safetensors"))
    >>> with nl.no_grad():
    ...     model.bias.data[:] += 1.0
    >>> b = nl.save_state_dict(model.state_dict(), os.path.join(d, "b.safetensors"))
    >>> nl.io.diff(a, b).changed()
    ['bias']
    """
    state_a, state_b = load_state_dict(a), load_state_dict(b)
    rows, reshaped = [], {}
    for name, ta in state_a.items():
        if name not in state_b:
            continue
        x, y = np.asarray(ta.data, dtype=np.float64), np.asarray(state_b[name].data, dtype=np.float64)
        if x.shape != y.shape:
            reshaped[name] = (x.shape, y.shape)
            continue
        norm_a, norm_b = float(np.linalg.norm(x)), float(np.linalg.norm(y))
        distance = float(np.linalg.norm(y - x))
        rows.append({"name": name, "shape": x.shape, "distance": distance,
                     "relative": distance / norm_a if norm_a else (0.0 if distance == 0 else float("inf")),
                     "cosine": float(np.vdot(x, y) / (norm_a * norm_b)) if norm_a and norm_b else
                     (1.0 if norm_a == norm_b else 0.0),
                     "max_abs": float(np.abs(y - x).max()) if x.size else 0.0})
    added = [n for n in state_b if n not in state_a]
    removed = [n for n in state_a if n not in state_b]
    return ParameterDiff(str(a), str(b), rows, added, removed, reshaped, _lineage(a, b))
