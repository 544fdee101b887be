"""The parameter arena: one contiguous, 64-byte-aligned buffer per param group and dtype.

A model's parameters are usually many small arrays scattered over the heap. An
optimizer that walks them one by one pays a call (and a cache miss) per
parameter. The arena gathers them instead::

    param buffer     |W1.........|pad|b1|pad.......|W2..........|b2|pad|
    grad buffer      |dW1........|pad|db1|pad......|dW2.........|db2|pad|
    exp_avg buffer   |m(W1)......|pad|m(b1)|pad....|m(W2).......|m(b2)|pad|
    exp_avg_sq ...   (one more parallel buffer per piece of optimizer state)

* Every parameter's ``.data`` becomes a *view* into the param buffer (values
  copied once), so the ``Parameter`` objects the model holds stay valid and
  user code sees nothing.
* The matching view of the grad buffer is the parameter's grad slot: autograd
  accumulates gradients straight into it. Both views are handed over by
  :func:`nnlite.parameter.adopt_storage`, and after each update the optimizer
  calls :func:`nnlite.parameter.mark_updated`; these two functions are the
  whole contract between the arena and a parameter.
* Optimizer state lives in further buffers with the same layout, so one
  ``K.adam_step(params, grads, exp_avg, exp_avg_sq, ...)`` call updates every
  parameter of the group at once.
* Each parameter starts on a 64-byte boundary (a cache line, and the width of
  the widest SIMD load), so no two parameters share a cache line and vector
  loads never straddle one. The padding elements stay zero in every buffer:
  a whole-buffer update computes ``0 -> 0`` there.
* A parameter that appears twice (tied weights) takes one slot.

Because ``.data`` is re-pointed, an outside NumPy array a Parameter was made
from no longer shares memory with it once the arena is built.
"""
import numpy as np

from .._kernels.allocator import ALIGNMENT, aligned_empty
from ..parameter import adopt_storage

__all__ = ["ALIGNMENT", "aligned_zeros", "Slot", "ArenaBuffer", "build_arena"]


def aligned_zeros(numel, dtype):
    """A zeroed 1-D array of ``numel`` elements whose first byte sits on a 64-byte boundary."""
    buf = aligned_empty((numel,), dtype)
    buf.fill(0)
    return buf


def _padded(numel, dtype):
    """``numel`` rounded up to a whole number of 64-byte lines."""
    per_line = ALIGNMENT // np.dtype(dtype).itemsize
    return -(-numel // per_line) * per_line


class Slot:
    """Where one parameter lives in an :class:`ArenaBuffer`: elements [offset, offset + numel)."""
    __slots__ = ("param", "offset", "numel", "shape", "data", "grad")

    def __init__(self, param, offset):
        self.param = param
        self.offset = offset
        self.numel = int(param.data.size)
        self.shape = param.data.shape
        self.data = None   # the view of the param buffer that param.data must be
        self.grad = None   # the view of the grad buffer autograd writes into

    def view(self, flat):
        return flat[self.offset:self.offset + self.numel].reshape(self.shape)


class ArenaBuffer:
    """The parameters of one param group that share one dtype, laid out in aligned buffers.

    ``params`` and ``grads`` are the flat buffers; ``state[name]`` holds one
    more flat buffer per piece of optimizer state (created by :meth:`state_buffer`).
    ``steps[i]`` counts the updates slot ``i`` has received.
    """

    def __init__(self, params, dtype):
        self.dtype = np.dtype(dtype)
        self.slots = []
        offset = 0
        for p in params:
            self.slots.append(Slot(p, offset))
            offset += _padded(p.data.size, self.dtype)
        self.size = offset
        self.params = aligned_zeros(self.size, self.dtype)
        self.grads = aligned_zeros(self.size, self.dtype)
        self.state = {}
        self.steps = [0] * len(self.slots)
        for slot in self.slots:
            self._adopt(slot)

    def _adopt(self, slot):
        """Move the parameter (and its gradient, if any) into its slot."""
        slot.data = slot.view(self.params)
        slot.grad = slot.view(self.grads)
        # A plain Tensor keeps its own .grad; spans() copies it into the slot.
        adopt_storage(slot.param, slot.data, slot.grad)

    @property
    def padding(self):
        """Elements per buffer that belong to no parameter (alignment padding)."""
        return self.size - sum(s.numel for s in self.slots)

    def state_buffer(self, name, fill=0.0):
        """The flat buffer of state ``name``, created zero (``fill`` inside the slots) on first use."""
        buf = self.state.get(name)
        if buf is None:
            buf = aligned_zeros(self.size, self.dtype)
            if fill != 0:
                for slot in self.slots:
                    slot.view(buf)[...] = fill
            self.state[name] = buf
        return buf

    def sync(self):
        """Re-attach parameters whose ``.data`` was replaced since the arena was built.

        ``p.data = new_array`` (or ``model.to(dtype)``) swaps the storage under
        the arena; the new values are copied back in so the optimizer keeps
        updating what the model uses.
        """
        for slot in self.slots:
            p = slot.param
            if p.data is slot.data:
                continue
            if p.data.shape != slot.shape or p.data.dtype != self.dtype:
                raise RuntimeError(
                    f"optimizer arena: parameter {p.name or ''} was {self.dtype}{list(slot.shape)} "
                    f"when the optimizer was built but is now {p.data.dtype}{list(p.data.shape)}; "
                    f"build the optimizer after changing the model's dtype or shapes")
            self._adopt(slot)

    def spans(self):
        """Maximal runs of slots ``(first, stop)`` that are updated together this step.

        A slot takes part when its parameter is trainable and has a gradient; a
        run also needs one step count (Adam's bias correction depends on it).
        With every parameter trained from the start this is one run, the whole buffer.
        Gradients that were set by hand (not accumulated into the arena) are
        copied into their slot here.
        """
        runs, first = [], None
        steps = self.steps
        for i, slot in enumerate(self.slots):
            p = slot.param
            g = p.grad
            if g is None or not p.requires_grad:
                if first is not None:
                    runs.append((first, i))
                    first = None
                continue
            if g.data is not slot.grad:
                if g.data.shape != slot.shape:
                    raise RuntimeError(f"optimizer: parameter {p.name or ''} has shape "
                                       f"{slot.shape} but its .grad has shape {g.data.shape}")
                np.copyto(slot.grad, g.data, casting="unsafe")
            if first is not None and steps[i] != steps[first]:
                runs.append((first, i))
                first = None
            if first is None:
                first = i
        if first is not None:
            runs.append((first, len(self.slots)))
        return runs

    def elements(self, first, stop):
        """The element range covered by slots [first, stop): the whole buffer when all are."""
        if first == 0 and stop == len(self.slots):
            return 0, self.size
        last = self.slots[stop - 1]
        return self.slots[first].offset, last.offset + last.numel

    def __repr__(self):
        lines = [f"ArenaBuffer({self.dtype}, {len(self.slots)} parameters, {self.size} elements "
                 f"per buffer ({self.padding} padding), buffers: params, grads"
                 + "".join(f", {name}" for name in self.state) + ")"]
        for slot in self.slots:
            p = slot.param
            label = getattr(p, "name", None) or ""
            lines.append(f"  [{slot.offset:>9}, {slot.offset + slot.numel:>9})  "
                         f"{getattr(p, 'kind', 'other'):<11} {str(tuple(slot.shape)):<14} {label}")
        return "\n".join(lines)

    def zero_padding(self):
        """Reset padding to zero in every buffer (needed only when eps = 0 makes 0/0 there)."""
        ends = [s.offset + s.numel for s in self.slots]
        starts = [s.offset for s in self.slots[1:]] + [self.size]
        for buf in [self.params, self.grads, *self.state.values()]:
            for a, b in zip(ends, starts):
                buf[a:b] = 0


def build_arena(params, dtype=None):
    """Lay ``params`` (an iterable of Parameters) out in arena buffers, one per dtype.

    Returns a list of :class:`ArenaBuffer`. Tied parameters (the same object
    twice) take one slot. ``dtype`` restricts the accepted dtype (optional).

    >>> import nnlite as nl
    >>> w = nl.nn.Parameter(nl.randn(3, 5), kind="weight")
    >>> b = nl.nn.Parameter(nl.zeros(3), kind="bias")
    >>> [buf] = build_arena([w, b, w])
    >>> buf.size, [s.offset for s in buf.slots], w.data.ctypes.data % 64
    (32, [0, 16], 0)
    """
    by_dtype, seen = {}, set()
    for p in params:
        if id(p) in seen:
            continue
        seen.add(id(p))
        dt = p.data.dtype
        if dt not in (np.float32, np.float64) or (dtype is not None and dt != np.dtype(dtype)):
            raise TypeError(f"optimizer arena: parameters must be float32 or float64, "
                            f"got {dt} for parameter {getattr(p, 'name', None) or tuple(p.shape)}")
        by_dtype.setdefault(dt, []).append(p)
    return [ArenaBuffer(ps, dt) for dt, ps in by_dtype.items()]
