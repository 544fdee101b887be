"""Optimizer: param groups, the parameter arena, and PyTorch's state_dict structure.

An optimizer holds ``param_groups``: dicts with a ``"params"`` list and their
own hyperparameters (``lr``, ``weight_decay``, ...), which schedulers may change
between steps. When a group is added, its parameters move into an
:mod:`arena <nnlite.optim.arena>`: aligned flat buffers for the parameters, their
gradients and the optimizer's state. A subclass's ``step()`` then reads like
the algorithm: for each run of parameters (usually the whole group) it hands
the flat buffers to one fused kernel call.
"""
import warnings
from collections import defaultdict

import numpy as np

from ..autograd import enable_grad
from ..parameter import mark_updated
from ..tensor import Tensor
from .arena import build_arena

__all__ = ["Optimizer", "param_groups_by_kind"]


def tensor_hyperparameter(name, value):
    """Check a hyperparameter that may be given as a Tensor, as PyTorch allows for ``lr``.

    A Tensor must hold one element; it stays in the param group as given and
    :func:`number` reads its value at each step (so changing it in place
    changes the rate, as in PyTorch). The value is read as a Python float, so
    what the rule derives from it (``lr / (1 - beta1 ** t)``, ...) is formed in
    double; PyTorch forms it in the tensor's dtype, which for a float32 tensor
    differs in the last bits.
    """
    if isinstance(value, Tensor) and value.numel() != 1:
        raise ValueError(f"Tensor {name} must be 1-element, got shape {tuple(value.shape)}")
    return value


def implementation_flags(foreach, differentiable, **flags):
    """PyTorch's choices of *how* an update runs: checked, and kept in the param groups.

    nnlite updates a param group with one fused kernel call per arena span,
    whatever ``foreach`` and ``fused`` say (they choose between PyTorch's
    loops). They are accepted, and saved in each param group as PyTorch saves
    them, so PyTorch code and checkpoints work unchanged. ``flags`` are the
    optimizer's others (``fused``, ``capturable``), as PyTorch gives it them.
    Returns all of them as entries of ``defaults``; :func:`refuse_what_cannot_run`
    then checks each param group.
    """
    fused = flags.get("fused")
    if fused and differentiable:
        raise RuntimeError("`fused` does not support `differentiable`")
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    return dict(foreach=foreach, differentiable=differentiable, **flags)


def refuse_what_cannot_run(group):
    """Refuse a param group that asks for an update nnlite cannot make.

    ``differentiable=True`` asks for autograd through the update itself; the
    kernels run outside autograd. ``capturable=True`` readies the state for
    CUDA graphs, which need a GPU; torch.optim refuses it on the CPU as well.
    """
    if group.get("differentiable"):
        raise NotImplementedError("differentiable=True (autograd through the optimizer step) is "
                                  "not supported: the update runs in a kernel outside autograd; "
                                  "expected differentiable=False")
    if group.get("capturable"):
        raise RuntimeError("capturable=True is for CUDA graphs, which need a GPU, and nnlite "
                           "updates parameters on the CPU; expected capturable=False")


def number(value):
    """A hyperparameter's value for a kernel call: a one-element Tensor gives its number."""
    return value.item() if isinstance(value, Tensor) else value


class _Span:
    """Elements [start, stop) of one arena buffer, updated by one kernel call."""
    __slots__ = ("buffer", "start", "stop", "step", "param", "grad")

    def __init__(self, buffer, start, stop, step):
        self.buffer, self.start, self.stop, self.step = buffer, start, stop, step
        whole = start == 0 and stop == buffer.size
        self.param = buffer.params if whole else buffer.params[start:stop]
        self.grad = buffer.grads if whole else buffer.grads[start:stop]

    def state(self, name, fill=0.0):
        """This span of state buffer ``name`` (created, zero or ``fill``, on first use)."""
        flat = self.buffer.state_buffer(name, fill)
        return flat if self.start == 0 and self.stop == self.buffer.size else flat[self.start:self.stop]


class Optimizer:
    """Base class of the optimizers: groups, arena, ``zero_grad``, ``state_dict``.

    Subclasses list the state each parameter keeps in ``_state_names(group)``
    (PyTorch's names and order) and implement ``step``.

    Param groups give parts of a model their own hyperparameters, e.g. a
    smaller learning rate for a pre-trained body than for a new head
    (discriminative learning rates):

    >>> import nnlite as nl
    >>> body, head = nl.nn.Linear(4, 4), nl.nn.Linear(4, 2)
    >>> opt = nl.optim.SGD([{"params": body.parameters(), "lr": 1e-4},
    ...                     {"params": head.parameters()}], lr=1e-2, momentum=0.9)
    >>> [g["lr"] for g in opt.param_groups], opt.param_groups[0]["momentum"]
    ([0.0001, 0.01], 0.9)
    """
    # True when the constructor's parameters have state from the start (Adagrad), not after
    # their first step.
    _eager_state = False
    # True when a step count is part of each parameter's saved state (PyTorch's "step").
    _saves_step = True
    # {hyperparameter: value} given to a loaded param group that lacks it: PyTorch added these
    # over its versions, and its __setstate__ fills them in for a file saved before them.
    _filled_when_missing = {}

    def __init__(self, params, defaults):
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__}")
        if isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs; "
                            "use a list instead")
        self.defaults = dict(defaults)
        self.param_groups = []
        self._arenas = []            # per group: a list of ArenaBuffer (one per dtype)
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)
        # As in PyTorch, eager state is made once, for the constructor's groups; a group
        # added later by add_param_group gets its state at its first step, like any other.
        self._eager_buffers = set()
        if self._eager_state:
            for group, arena in zip(self.param_groups, self._arenas):
                for buf in arena:
                    for name, fill in self._state_names(group).items():
                        buf.state_buffer(name, fill)
                    self._eager_buffers.add(id(buf))

    # ----------------------------------------------------------------- groups --
    def add_param_group(self, param_group):
        """Add a group (``{"params": [...], "lr": ...}``); missing hyperparameters take the defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        params = param_group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs; "
                            "use a list instead")
        elif params is None:
            raise ValueError("param_group must have a 'params' entry")
        params = list(params)
        names = None
        if params and isinstance(params[0], tuple):   # model.named_parameters(), as in PyTorch
            names = [name for name, _ in params]
            params = [p for _, p in params]
        if self.param_groups and ("param_names" in self.param_groups[0]) != (names is not None):
            raise ValueError("all optimizer param groups should be with/without names; "
                             f"this group is {'with' if names else 'without'} names, "
                             "the first one is not")
        unique, seen, unique_names = [], set(), []
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params "
                                f"is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
            if id(p) not in seen:  # a tied parameter listed twice is one parameter
                seen.add(id(p))
                unique.append(p)
                if names is not None:
                    unique_names.append(names[i])
        if len(unique) < len(params):
            # PyTorch warns too, but keeps both entries and updates such a parameter twice a step
            warnings.warn("optimizer contains a parameter group with duplicate parameters; each is kept "
                          "once and updated once a step", UserWarning, stacklevel=3)
        for other in self.param_groups:
            if any(id(p) in seen for p in other["params"]):
                raise ValueError("some parameters appear in more than one parameter group")
        group = {k: v for k, v in param_group.items() if k != "params"}
        if names is not None:
            group["param_names"] = unique_names
        group = {"params": unique, **{k: group.get(k, v) for k, v in self.defaults.items()},
                 **group}
        refuse_what_cannot_run(group)
        self.param_groups.append(group)
        self._arenas.append(build_arena(unique))

    def _state_names(self, group):
        """{state name: initial value} each parameter of ``group`` keeps, in PyTorch's order."""
        return {}

    # ------------------------------------------------------------------- step --
    def _spans(self):
        """Yield ``(group, span)`` for each run of parameters one kernel call updates.

        Usually one span per group and dtype: the whole arena buffer. After the
        caller's kernel call returns, the span's parameters count one more step.
        """
        for group, arena in zip(self.param_groups, self._arenas):
            for buf in arena:
                buf.sync()
                for first, stop in buf.spans():
                    start, end = buf.elements(first, stop)
                    yield group, _Span(buf, start, end, buf.steps[first] + 1)
                    for i in range(first, stop):
                        buf.steps[i] += 1
                        mark_updated(buf.slots[i].param)   # autograd: saved values changed
                if group.get("eps", 1) == 0:  # 0/0 in the padding: put the zeros back
                    buf.zero_padding()

    @staticmethod
    def _closure_loss(closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def step(self, closure=None):
        raise NotImplementedError(f"{type(self).__name__} must define step(closure=None)")

    def zero_grad(self, set_to_none=True):
        """Forget the gradients: ``.grad = None`` (default), or zero them in place.

        With ``set_to_none=True`` the arena's grad buffer is left as it is: the
        next backward overwrites each parameter's slot instead of adding to it.
        ``set_to_none=False`` zeroes each whole grad buffer with one fill.
        """
        for arena in self._arenas:
            for buf in arena:
                if not set_to_none:
                    buf.grads.fill(0)
                for slot in buf.slots:
                    p = slot.param
                    if p.grad is None:
                        continue
                    if set_to_none:
                        p.grad = None
                    elif p.grad.data is not slot.grad:
                        p.grad.data.fill(0)

    # ------------------------------------------------------------------ state --
    def _slot_state(self, group, buf, i, copy):
        """PyTorch's per-parameter state dict for slot ``i`` of ``buf`` ({} when it has none)."""
        if buf.steps[i] == 0 and id(buf) not in self._eager_buffers:
            return {}
        slot = buf.slots[i]
        out = {}
        if self._saves_step:
            out["step"] = Tensor(np.array(float(buf.steps[i]), dtype=np.float32))
        for name, fill in self._state_names(group).items():
            view = slot.view(buf.state_buffer(name, fill))
            out[name] = Tensor(view.copy() if copy else view)
        return out

    @property
    def state(self):
        """{parameter: {state name: Tensor}}; the tensors are live views into the arena.

        As in PyTorch (a ``defaultdict(dict)``), a parameter without state yet gives ``{}``.
        """
        out = defaultdict(dict)
        for group, arena in zip(self.param_groups, self._arenas):
            for buf in arena:
                for i, slot in enumerate(buf.slots):
                    entry = self._slot_state(group, buf, i, copy=False)
                    if entry:
                        out[slot.param] = entry
        return out

    def _indexed_slots(self):
        """(index, group, buffer, slot index) for every parameter, numbered as in state_dict."""
        position = {}
        for group in self.param_groups:
            for p in group["params"]:
                position[id(p)] = len(position)
        for group, arena in zip(self.param_groups, self._arenas):
            for buf in arena:
                for i, slot in enumerate(buf.slots):
                    yield position[id(slot.param)], group, buf, i

    def state_dict(self):
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``, as in PyTorch.

        Parameters are numbered in group order; state tensors are copies.
        """
        state = {}
        for index, group, buf, i in self._indexed_slots():
            entry = self._slot_state(group, buf, i, copy=True)
            if entry:
                state[index] = entry
        groups, start = [], 0
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(packed)
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore state and hyperparameters saved by :meth:`state_dict` (nnlite's or PyTorch's)."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, "
                             f"but the optimizer has {len(self.param_groups)}")
        for ours, saved in zip(self.param_groups, saved_groups):
            if len(saved["params"]) != len(ours["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't match "
                                 f"the size of optimizer's group ({len(saved['params'])} saved, "
                                 f"{len(ours['params'])} here)")
        filled = self._filled_when_missing
        for k, saved in enumerate(saved_groups):
            missing = [key for key in self.defaults if key not in saved and key not in filled]
            if missing:
                raise ValueError(f"loaded state dict's param group {k} has no {', '.join(map(repr, missing))}; "
                                 f"expected the hyperparameters {list(self.defaults)}")
        # Saved indices may be any ids; they map to our parameters by position.
        index_of = {}
        for ours, saved in zip(self.param_groups, saved_groups):
            for p, key in zip(ours["params"], saved["params"]):
                index_of[id(p)] = key
        saved_state = {int(k) if not isinstance(k, int) else k: v
                       for k, v in state_dict["state"].items()}
        for ours, saved in zip(self.param_groups, saved_groups):
            params = ours["params"]
            ours.clear()
            ours.update({k: v for k, v in saved.items() if k != "params"})
            for key, value in filled.items():
                ours.setdefault(key, value)
            ours["params"] = params
        for index, group, buf, i in self._indexed_slots():
            slot = buf.slots[i]
            entry = saved_state.get(index_of[id(slot.param)])
            names = self._state_names(group)
            if not entry:
                buf.steps[i] = 0
                for name in names:
                    if name in buf.state:
                        slot.view(buf.state[name])[...] = names[name]
                continue
            for name, value in entry.items():
                if name == "step" or value is None:   # torch may store momentum_buffer=None
                    continue
                if name not in names:
                    raise ValueError(f"{type(self).__name__}.load_state_dict: unexpected state "
                                     f"{name!r}; this optimizer keeps {list(names)}")
                value = np.asarray(value.data if isinstance(value, Tensor) else value)
                if value.shape != slot.shape:
                    raise ValueError(f"{type(self).__name__}.load_state_dict: state {name!r} of "
                                     f"parameter {index} has shape {value.shape}, "
                                     f"expected {slot.shape}")
                np.copyto(slot.view(buf.state_buffer(name, names[name])), value, casting="unsafe")
            step = entry.get("step")
            buf.steps[i] = int(float(np.asarray(step.data if isinstance(step, Tensor) else step))) \
                if step is not None else 1

    # ------------------------------------------------------------------- misc --
    @property
    def arenas(self):
        """Per param group, its arena buffers (one per dtype); print one to see its layout."""
        return [list(arena) for arena in self._arenas]

    def memory_report(self):
        """Bytes of parameters, gradients, optimizer state and padding; see :mod:`.memory`."""
        from .memory import memory_report
        return memory_report(self)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines + [")"])


def param_groups_by_kind(model_or_params, weight_decay,
                         no_decay_kinds=("bias", "scale", "shift", "embedding", "positional", "temperature",
                                         "gate")):
    """The usual recipe: weight decay on weights, none on biases, norm scales, embeddings and scalars.

    Decaying a bias or a LayerNorm scale towards zero pulls the layer towards a
    fixed offset or a dead output rather than towards a simpler function, so
    these parameters are commonly left undecayed. The same holds for single
    control values: a ``temperature`` (stored as log T, so decay would pull T
    towards 1) and a ``gate`` (decay would pull it towards half open) carry no
    capacity for decay to limit, only a setting it would bias. Uses each
    ``Parameter.kind``::

        groups = nl.optim.param_groups_by_kind(model, weight_decay=0.1)
        optimizer = nl.optim.AdamW(groups, lr=3e-4)

    Returns up to two groups (empty ones are left out); frozen parameters are skipped.
    """
    params = model_or_params.parameters() if hasattr(model_or_params, "parameters") \
        else model_or_params
    decay, no_decay, seen = [], [], set()
    for p in params:
        if id(p) in seen or not p.requires_grad:
            continue
        seen.add(id(p))
        (no_decay if getattr(p, "kind", "other") in no_decay_kinds else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
