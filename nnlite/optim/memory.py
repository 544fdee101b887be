"""Where an optimizer's memory goes: parameters, gradients, optimizer state, padding.

Training with Adam costs four copies of the model (parameters, gradients,
``exp_avg``, ``exp_avg_sq``), plain SGD two, SGD with momentum three. The
report counts each from the optimizer's arena, per param group (and dtype)
and per parameter kind, plus the bytes the 64-byte alignment adds.
"""
__all__ = ["memory_report", "MemoryReport"]

_FIELDS = ("params", "numel", "param_bytes", "grad_bytes", "state_bytes", "padding_bytes",
           "total_bytes")


class MemoryReport(dict):
    """A dict (``groups``, ``kinds``, ``total``) that prints as a table."""

    def table(self):
        head = ("", "params", "numel", "param B", "grad B", "state B", "padding B", "total B")
        rows = [(f"group {g['group']} {g['dtype']}",) + tuple(g[f] for f in _FIELDS)
                for g in self["groups"]]
        rows += [(f"kind {kind}",) + tuple(v[f] for f in _FIELDS)
                 for kind, v in self["kinds"].items()]
        rows.append(("total",) + tuple(self["total"][f] for f in _FIELDS))
        cells = [head] + [tuple(str(c) for c in r) for r in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
        lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
                 for r in cells]
        lines.insert(1, "-" * len(lines[0]))
        lines.append(f"state buffers: {self['state_names']}")
        return "\n".join(lines)

    def __str__(self):
        return self.table()


def _zero():
    return dict.fromkeys(_FIELDS, 0)


def memory_report(optimizer):
    """Bytes per group and per parameter kind; padding is the alignment's share.

    A kind's padding is the padding after each of its parameters, in every
    buffer (parameters, gradients, each state buffer).
    """
    groups, kinds, total = [], {}, _zero()
    state_names = set()
    for index, arena in enumerate(optimizer.arenas):
        for buf in arena:
            item = buf.dtype.itemsize
            n_state = len(buf.state)
            state_names.update(buf.state)
            n_buffers = 2 + n_state
            numel = sum(s.numel for s in buf.slots)
            row = {"group": index, "dtype": str(buf.dtype), "params": len(buf.slots),
                   "numel": numel, "param_bytes": numel * item, "grad_bytes": numel * item,
                   "state_bytes": numel * item * n_state,
                   "padding_bytes": buf.padding * item * n_buffers,
                   "total_bytes": buf.size * item * n_buffers}
            groups.append(row)
            ends = [s.offset for s in buf.slots[1:]] + [buf.size]
            for slot, end in zip(buf.slots, ends):
                k = kinds.setdefault(getattr(slot.param, "kind", "other"), _zero())
                pad = end - slot.offset - slot.numel
                k["params"] += 1
                k["numel"] += slot.numel
                k["param_bytes"] += slot.numel * item
                k["grad_bytes"] += slot.numel * item
                k["state_bytes"] += slot.numel * item * n_state
                k["padding_bytes"] += pad * item * n_buffers
                k["total_bytes"] += (end - slot.offset) * item * n_buffers
            for f in _FIELDS:
                total[f] += row[f]
    return MemoryReport(groups=groups, kinds=kinds, total=total, state_names=sorted(state_names))
