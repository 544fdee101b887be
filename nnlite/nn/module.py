"""Module: the container that owns parameters, buffers and sub-modules.

Assigning a :class:`Parameter`, a :class:`Buffer` or another Module to an
attribute registers it; everything else is a plain attribute. The registries
keep insertion order, which fixes the order of ``parameters()`` and the keys of
``state_dict()`` — the same keys PyTorch uses for the same module, so weights
move between the two unchanged.

Calling a module runs its hooks around ``forward``: forward pre-hooks and
forward hooks, and the backward hooks of :meth:`Module.register_full_backward_hook`
and :meth:`Module.register_full_backward_pre_hook`, which see the gradients
with respect to the module's inputs and outputs during backward (the
mechanism, identity nodes around the call, is told in
``nnlite/nn/backward_hooks.py``).
"""
import warnings
from collections import OrderedDict, namedtuple
from contextlib import contextmanager

import numpy as np

from .._kernels.allocator import aligned_empty
from ..autograd import is_grad_enabled, no_grad
from ..parameter import Buffer, Parameter
from ..tensor import Tensor, bfloat16_dtype, is_floating_dtype
from .backward_hooks import _BackwardHookCall

__all__ = ["Module"]

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class _Handle:
    _next_id = 0

    def __init__(self, registry, flags=()):
        self.registry = registry
        self.flags = flags   # the sets that mark this hook (with_kwargs, always_call)
        self.id = _Handle._next_id
        _Handle._next_id += 1

    def remove(self):
        self.registry.pop(self.id, None)
        for flag in self.flags:
            flag.discard(self.id)


def forward_hook_options(module, key, pre):
    """The options hook ``key`` of ``module`` was registered with (``with_kwargs``, and for a
    forward hook ``always_call``), to register the same hook on another module: a layer
    swapped for its quantized version, or moved onto a fused pair, calls it as before."""
    if pre:
        return {"with_kwargs": key in module._forward_pre_hooks_with_kwargs}
    return {"with_kwargs": key in module._forward_hooks_with_kwargs,
            "always_call": key in module._forward_hooks_always_called}


def _loaded_record(provenance, previous):
    """The ``init`` record of a parameter whose values were copied in from somewhere else."""
    record = {"scheme": "loaded", **provenance}
    if previous:
        record["previous"] = previous
    return record


def _names_a_dtype(text):
    try:
        np.dtype(text)
    except TypeError:
        return False
    return True


def _check_name(method, kind, name):
    """A child's name becomes a ``state_dict`` key segment, and the keys are split at dots:
    so, as in PyTorch, it must be a non-empty string without a dot."""
    if not isinstance(name, str):
        raise TypeError(f"{method}: {kind} name must be a string, got {type(name).__name__} {name!r}")
    if not name or "." in name:
        raise KeyError(f"{method}: {kind} name must be non-empty and contain no '.', got {name!r}")


def adopt_state(target, source):
    """Give ``target`` the very Parameters and buffers of ``source`` (no copies), each registered
    as ``source`` has it (a non-persistent buffer stays out of the state_dict), and its training
    mode; returns ``target``. For a layer rebuilt as another class with the same tensors (a
    fused layer, a SyncBatchNorm), whose state_dict keys then stay the same."""
    for name, param in source._parameters.items():
        target.register_parameter(name, param)
    for name, buffer in source._buffers.items():
        target.register_buffer(name, buffer, persistent=name not in source._non_persistent)
    return target.train(source.training)


@contextmanager
def modes_kept(model):
    """Let a block switch ``model`` to training or eval mode, and put every sub-module's mode back.

    ``model.train(was_training)`` would not do: it gives every sub-module the model's own mode,
    so a layer kept in eval mode inside a training model (a frozen BatchNorm) would start
    updating its running statistics.
    """
    saved = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for m, mode in saved:   # parents before children: each child's own mode is set last
            m.train(mode)


class Module:
    """Base class of every layer and model.

    Subclasses set their parameters and sub-modules in ``__init__`` and compute
    in ``forward``; calling the module runs its hooks around ``forward``.
    """
    training = True
    # Buffers a checkpoint may lack: load_state_dict keeps their current value instead of
    # reporting them missing (batch norm's num_batches_tracked, which old checkpoints lack).
    _optional_state_keys = ()

    def __init__(self):
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent"] = set()
        d["_modules"] = OrderedDict()
        d["_forward_pre_hooks"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        # Handle ids of the forward (pre-)hooks that take the call's kwargs too, and of the
        # forward hooks that run even when forward raises, as PyTorch keeps them.
        d["_forward_pre_hooks_with_kwargs"] = set()
        d["_forward_hooks_with_kwargs"] = set()
        d["_forward_hooks_always_called"] = set()
        # Both kinds of backward hook in one registry, handle id -> (kind, hook), so that
        # calling a module without hooks checks one dictionary more, not two.
        d["_backward_hooks"] = OrderedDict()
        d["training"] = True

    # ------------------------------------------------------------ registration --
    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning "
                                 f"attributes (while setting {name!r})")
        params, buffers, modules = d["_parameters"], d["_buffers"], d["_modules"]
        if isinstance(value, Parameter):
            if name not in params:  # re-assigning keeps the key's place (state_dict order, as in PyTorch)
                self._forget(name)
            params[name] = value
            if value.name is None:
                value.name = name
        elif name in params:
            # Checked before the Module and Buffer cases, as in PyTorch: `self.weight = Linear(...)`
            # must not quietly take the parameter out of parameters().
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                "(nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            if name not in modules:
                self._forget(name)
            modules[name] = value
        elif isinstance(value, Buffer):
            if name not in buffers:
                self._forget(name)
            buffers[name] = value
            if not value.persistent:
                d["_non_persistent"].add(name)
            else:
                d["_non_persistent"].discard(name)
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} (Tensor or None expected)")
            buffers[name] = value
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r} "
                                "(nn.Module or None expected)")
            modules[name] = None
        d[name] = value

    def _forget(self, name):
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            d[reg].pop(name, None)
        d["_non_persistent"].discard(name)

    def __delattr__(self, name):
        self._forget(name)
        object.__delattr__(self, name)

    def _check_free(self, method, name, registry):
        """As in PyTorch, a name is registered only if it is free or already of that kind: a buffer
        named like a parameter would silently take the parameter out of ``parameters()``."""
        if hasattr(self, name) and name not in self.__dict__[registry]:
            kind = ("a parameter" if name in self._parameters else "a buffer" if name in self._buffers
                    else "a submodule" if name in self._modules else "an attribute")
            raise KeyError(f"{method}: attribute {name!r} already exists as {kind} of "
                           f"{type(self).__name__}; delete it first")

    def register_parameter(self, name, param):
        _check_name("register_parameter", "parameter", name)
        self._check_free("register_parameter", name, "_parameters")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: expected a Parameter or None for {name!r}, "
                            f"got {type(param).__name__}")
        if param is None:
            self._forget(name)
            self._parameters[name] = None
            self.__dict__[name] = None
        else:
            setattr(self, name, param)

    def register_buffer(self, name, tensor, persistent=True):
        """Register non-learned state (saved in ``state_dict`` unless ``persistent=False``)."""
        _check_name("register_buffer", "buffer", name)
        self._check_free("register_buffer", name, "_buffers")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: expected a Tensor or None for {name!r}, got {type(tensor).__name__}")
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)
        self.__dict__[name] = tensor

    def add_module(self, name, module):
        _check_name("add_module", "module", name)
        self._check_free("add_module", name, "_modules")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {type(module).__name__} is not a Module")
        if name not in self._modules:
            self._forget(name)
        self._modules[name] = module
        self.__dict__[name] = module

    register_module = add_module

    # ---------------------------------------------------------------- calling --
    def forward(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} has no forward(); define one in the subclass")

    def __call__(self, *args, **kwargs):
        if self._forward_pre_hooks or self._forward_hooks or self._backward_hooks:
            return self._call_with_hooks(args, kwargs)
        # The usual case: no hooks. Passing an empty **kwargs on costs a dict unpacking
        # per call, so it is passed only when there is something in it.
        return self.forward(*args, **kwargs) if kwargs else self.forward(*args)

    def _call_with_hooks(self, args, kwargs):
        # The order is PyTorch's: forward pre-hooks, then the inputs are wrapped for the
        # backward hooks, forward, forward hooks (on the unwrapped output), and last the
        # output is wrapped.
        for key, hook in list(self._forward_pre_hooks.items()):
            if key in self._forward_pre_hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"forward pre-hook must return None or a tuple of (new_args, "
                                           f"new_kwargs), but got {result!r:.80}")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        backward_call = None
        if self._backward_hooks and is_grad_enabled():
            backward_call = _BackwardHookCall(self)
            args = backward_call.wrap_inputs(args)
        out, called = None, set()
        try:
            out = self.forward(*args, **kwargs)
            for key, hook in list(self._forward_hooks.items()):
                called.add(key)
                out = self._run_forward_hook(key, hook, args, kwargs, out)
        except Exception:
            # Hooks registered with always_call=True still run (once) when forward or a hook raised.
            for key, hook in list(self._forward_hooks.items()):
                if key in self._forward_hooks_always_called and key not in called:
                    try:
                        out = self._run_forward_hook(key, hook, args, kwargs, out)
                    except Exception as e:
                        warnings.warn(f"forward hook with always_call=True raised an exception that "
                                      f"was ignored: {e!r}")
            raise
        if backward_call is not None:
            backward_call.check_inputs_unchanged()
            out = backward_call.wrap_outputs(out)
        return out

    def _run_forward_hook(self, key, hook, args, kwargs, out):
        if key in self._forward_hooks_with_kwargs:
            result = hook(self, args, kwargs, out)
        else:
            result = hook(self, args, out)
        return out if result is None else result

    def _add_hook(self, registry, value, prepend, flags=()):
        h = _Handle(registry, flags)
        registry[h.id] = value
        for flag in flags:
            flag.add(h.id)
        if prepend:
            registry.move_to_end(h.id, last=False)
        return h

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """``hook(module, args)`` runs before forward and may return replacement args.

        With ``with_kwargs=True`` it is called as ``hook(module, args, kwargs)`` and
        may return a pair ``(args, kwargs)`` that replaces both. Hooks run in the
        order they were registered; ``prepend=True`` puts this one first.
        """
        flags = (self._forward_pre_hooks_with_kwargs,) if with_kwargs else ()
        return self._add_hook(self._forward_pre_hooks, hook, prepend, flags)

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        """``hook(module, args, output)`` runs after forward and may return a replacement output.

        With ``with_kwargs=True`` it is called as ``hook(module, args, kwargs, output)``.
        With ``always_call=True`` it runs even when forward (or an earlier hook) raises,
        with the output None if forward gave none; the exception then goes on. Hooks
        run in the order they were registered; ``prepend=True`` puts this one first.
        """
        flags = (((self._forward_hooks_with_kwargs,) if with_kwargs else ())
                 + ((self._forward_hooks_always_called,) if always_call else ()))
        return self._add_hook(self._forward_hooks, hook, prepend, flags)

    def register_full_backward_hook(self, hook, prepend=False):
        """``hook(module, grad_input, grad_output)`` runs once the gradients with respect to the
        module's inputs are computed, and may return a tuple that replaces ``grad_input``.

        ``grad_input`` has one entry per positional argument of the call: None for an
        argument that is not a Tensor, zeros for a Tensor the gradient does not reach
        (one that does not require grad, or that forward did not use). ``grad_output``
        has one entry per output (a Tensor, or each element of a tuple): None for an
        output that is not a Tensor or that got no gradient. A returned tuple must have
        the length of ``grad_input``; its entries become the gradients sent on to the
        inputs. When no input requires grad, the hook still runs, right after the
        gradient with respect to the outputs is known, with a ``grad_input`` of Nones
        (and must return None then), as in PyTorch, which also warns.

        Nothing runs under ``no_grad``, and nothing when the output is neither a Tensor
        nor a tuple (a warning says so). An input changed in place inside ``forward``
        raises, as in PyTorch: clone it first. Hooks run in the order they were
        registered; ``prepend=True`` puts this one first. Returns a handle whose
        ``remove()`` unregisters the hook.
        """
        return self._add_hook(self._backward_hooks, ("full", hook), prepend)

    def register_full_backward_pre_hook(self, hook, prepend=False):
        """``hook(module, grad_output)`` runs when the gradients with respect to the module's
        outputs are computed, before any of them goes on into the module, and may return a
        tuple of the same length that replaces ``grad_output`` (None entries stop a gradient).

        See :meth:`register_full_backward_hook` for what ``grad_output`` holds.
        """
        return self._add_hook(self._backward_hooks, ("pre", hook), prepend)

    # -------------------------------------------------------------- traversal --
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        stack = [(prefix, self)]
        memo = set() if memo is None else memo
        while stack:
            name, mod = stack.pop()
            if remove_duplicate:
                if id(mod) in memo:
                    continue
                memo.add(id(mod))
            yield name, mod
            children = [(name + ("." if name else "") + n, m) for n, m in mod._modules.items() if m is not None]
            stack.extend(reversed(children))

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry, prefix, recurse, remove_duplicate):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]
        for mod_name, mod in mods:
            for name, value in getattr(mod, registry).items():
                if value is None:
                    continue
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield mod_name + ("." if mod_name else "") + name, value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True, trainable_only=False):
        """(name, Parameter) pairs; a parameter shared by two modules (tied) appears once."""
        for name, p in self._named_members("_parameters", prefix, recurse, remove_duplicate):
            if trainable_only and not p.requires_grad:
                continue
            yield name, p

    def parameters(self, recurse=True, trainable_only=False):
        for _, p in self.named_parameters(recurse=recurse, trainable_only=trainable_only):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def tied_parameters(self):
        """Groups of names that refer to one shared Parameter (weight tying)."""
        groups = OrderedDict()
        for name, p in self.named_parameters(remove_duplicate=False):
            groups.setdefault(id(p), []).append(name)
        return [names for names in groups.values() if len(names) > 1]

    def name_parameters(self):
        """Set each parameter's ``name`` to its full dotted name in this model (first name if tied)."""
        for name, p in self.named_parameters():
            p.name = name
        return self

    def num_parameters(self, trainable_only=False):
        """How many numbers the model learns (tied parameters counted once)."""
        return int(sum(p.data.size for p in self.parameters(trainable_only=trainable_only)))

    def get_submodule(self, target):
        mod = self
        for part in target.split(".") if target else []:
            if part not in mod._modules or mod._modules[part] is None:
                raise AttributeError(f"{type(mod).__name__} has no submodule {part!r} (looking up {target!r})")
            mod = mod._modules[part]
        return mod

    def _get_member(self, target, registry, kind, none_counts):
        """The entry of ``registry`` at a dotted path; a name registered as None counts only if
        ``none_counts`` (PyTorch's get_buffer returns None for it, its get_parameter raises)."""
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        members = getattr(mod, registry)
        if name not in members or (members[name] is None and not none_counts):
            raise AttributeError(f"{type(mod).__name__} has no {kind} {name!r} (looking up {target!r})")
        return members[name]

    def get_parameter(self, target):
        """The parameter at a dotted path, ``"0.weight"``; AttributeError if there is none."""
        return self._get_member(target, "_parameters", "parameter", none_counts=False)

    def get_buffer(self, target):
        """The buffer at a dotted path, ``"0.running_mean"`` (None if registered as None)."""
        return self._get_member(target, "_buffers", "buffer", none_counts=True)

    def apply(self, fn):
        """Call ``fn(module)`` on every sub-module (children first) and on self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes --
    def train(self, mode=True):
        if not isinstance(mode, bool):
            # ValueError, as PyTorch raises
            raise ValueError(f"train(): training mode is expected to be boolean, got {type(mode).__name__} {mode!r}")
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def freeze(self):
        """Stop training every parameter (transfer learning: keep a pre-trained body fixed)."""
        return self.requires_grad_(False)

    def unfreeze(self):
        return self.requires_grad_(True)

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.data[...] = 0

    # ----------------------------------------------------------------- dtypes --
    def _cast(self, dtype):
        dtype = np.dtype(dtype)
        for m in self.modules():
            for reg in (m._parameters, m._buffers):
                for t in reg.values():
                    if t is not None and is_floating_dtype(t.data.dtype) and t.data.dtype != dtype:
                        converted = aligned_empty(t.data.shape, dtype)   # on a cache line, as created
                        np.copyto(converted, t.data, casting="unsafe")
                        t.data = converted
                        if t.grad is not None:
                            t.grad = Tensor._make(t.grad.data.astype(dtype), None)
        return self

    def to(self, *args, device=None, dtype=None, non_blocking=False):
        """``model.to(nl.float64)``, ``model.to("cpu")``, ``model.to(device="cpu", dtype=...)``.

        nnlite computes on the CPU, so device "cpu" changes nothing and any other device is
        refused. As in PyTorch, the dtype must be a floating one (parameters and buffers of
        an integer dtype would lose their fractions), and only floating tensors are cast.
        """
        for a in args:
            if isinstance(a, str) and a == "cpu":
                continue
            if isinstance(a, Tensor):   # model.to(other): the other tensor's dtype
                a = a.dtype
            elif isinstance(a, str) and not _names_a_dtype(a):   # "cuda", "cuda:0", "mps"...
                device = a
                continue
            dtype = a
        if device is not None and str(device) != "cpu":
            raise ValueError(f"Module.to: nnlite computes on the CPU only; expected device 'cpu', "
                             f"got {device!r}")
        if dtype is None:
            return self
        dtype = np.dtype(dtype)
        if not is_floating_dtype(dtype):
            raise TypeError(f"Module.to only accepts floating point dtypes, but got desired dtype={dtype}")
        return self._cast(dtype)

    def cpu(self):
        """The module itself: nnlite keeps every tensor in CPU memory."""
        return self

    def float(self):
        return self._cast(np.float32)

    def double(self):
        return self._cast(np.float64)

    def half(self):
        """Store floating-point parameters and buffers in float16, for storage and inference.

        Half the bytes of float32, and checkpoints keep the dtype. A forward pass
        works on float16 inputs (``x.astype(np.float16)``; every half layer
        refuses a float32 input with a TypeError naming both dtypes, as PyTorch
        does): nnlite's kernels have float32 and float64 loops only, so each
        kernel-backed operation widens its float16 operands to float32
        (exactly), computes, and rounds its output to float16. Every
        operation rounds, so a whole model's output is within a few float16
        steps (``2**-10`` relative) of the float32 model's on the same rounded
        weights. Gradients are not computed in float16: ``backward`` through
        such an operation raises; train in float32 and call ``half()`` after.
        Same as ``model.to(nl.float16)``.

        >>> import numpy as np, nnlite as nl
        >>> model = nl.nn.Linear(3, 2).half()
        >>> model.weight.dtype
        dtype('float16')
        >>> with nl.no_grad():
        ...     y = model(nl.tensor(np.ones((1, 3), np.float16)))
        >>> y.dtype
        dtype('float16')
        """
        return self._cast(np.float16)

    def bfloat16(self):
        """Store floating-point parameters and buffers in bfloat16, for storage and inference.

        As :meth:`half`, with bfloat16 (from the ``ml_dtypes`` package, which
        this imports): half the bytes of float32, checkpoints keep the dtype,
        inputs must be bfloat16 too, each kernel-backed operation computes in
        float32 and rounds its output to bfloat16, and gradients are not
        computed. bfloat16 keeps float32's range with 8 significant bits, so a
        whole model's output is within a few ``2**-7`` relative steps of the
        float32 model's on the same rounded weights, where float16 would be
        within ``2**-10`` but overflows above 65504. Same as
        ``model.to(nl.bfloat16)``.

        >>> import numpy as np, nnlite as nl
        >>> model = nl.nn.Linear(3, 2).bfloat16()
        >>> model.weight.dtype
        dtype(bfloat16)
        >>> with nl.no_grad():
        ...     y = model(nl.tensor(np.ones((1, 3))).to(nl.bfloat16))
        >>> y.dtype
        dtype(bfloat16)
        """
        return self._cast(bfloat16_dtype())

    # ------------------------------------------------------------- state dict --
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """Parameters and persistent buffers by dotted name.

        Tied parameters appear under every name that refers to them (the same
        tensor twice), exactly as in PyTorch; loading writes the shared values once.
        """
        out = OrderedDict() if destination is None else destination
        for mod_name, mod in self.named_modules(prefix=prefix.rstrip("."), remove_duplicate=False):
            base = mod_name + "." if mod_name else ""
            for name, p in mod._parameters.items():
                if p is not None:
                    out[base + name] = p if keep_vars else p.detach()
            for name, b in mod._buffers.items():
                if b is not None and name not in mod._non_persistent:
                    out[base + name] = b if keep_vars else b.detach()
            mod._extra_state(out, base)
        return out

    def _extra_state(self, destination, prefix):
        """Hook for modules that save more than parameters and buffers (none by default)."""

    def load_state_dict(self, state_dict, strict=True):
        """Copy values from ``state_dict`` (Tensors or arrays) into this model's tensors.

        Copies go into the existing storage, so optimizer arenas and tied
        parameters stay intact. With ``strict`` (default) any missing key,
        unexpected key or shape mismatch raises one error listing all of them.

        Each parameter written gets a provenance record as its ``init``, since
        its values no longer come from an initialiser:
        ``{"scheme": "loaded", "source": "state_dict"}``, or, for a dict read
        from a file by :func:`nnlite.io.load_state_dict` (which sets its
        ``provenance`` attribute), the file's path and ``sha256``. The record
        the values had before they were saved, when known, is kept under
        ``"previous"``, so a fine-tuned parameter shows its whole lineage.
        """
        own = self.state_dict(keep_vars=True)
        # A tied tensor (one Parameter under two names) is filled through any of its names;
        # safetensors.torch.save_model, for one, stores it once.
        given = {id(own[k]) for k in own if k in state_dict}
        optional = {f"{name}.{key}" if name else key
                    for name, mod in self.named_modules(remove_duplicate=False)
                    for key in mod._optional_state_keys}
        missing = [k for k in own if k not in state_dict and id(own[k]) not in given and k not in optional]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = []
        for k, target in own.items():
            if k in state_dict:
                shape = tuple(np.shape(state_dict[k].data if isinstance(state_dict[k], Tensor) else state_dict[k]))
                if shape != target.shape:
                    mismatched.append(f"{k}: checkpoint shape {shape}, model shape {target.shape}")
        problems = []
        if mismatched:
            problems.append("size mismatch for " + "; ".join(mismatched))
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise RuntimeError(f"Error(s) loading state_dict for {type(self).__name__}: " + ". ".join(problems))
        provenance = dict(getattr(state_dict, "provenance", None) or {"source": "state_dict"})
        previous = provenance.pop("previous", None) or {}
        with no_grad():
            for k, target in own.items():
                if k in state_dict:
                    src = state_dict[k]
                    if isinstance(target, Parameter):
                        target.init = _loaded_record(provenance, previous.get(k, getattr(src, "init", None)))
                    src = src.data if isinstance(src, Tensor) else np.asarray(src)
                    np.copyto(target.data, src, casting="unsafe")
                    target._bump_version()
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------- repr --
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        extra = self.extra_repr()
        if not lines and "\n" not in extra:
            return f"{type(self).__name__}({extra})"
        # Children, or an extra_repr of several lines (a ParameterList's): one entry a line,
        # the extra_repr first, laid out as PyTorch does.
        lines = (extra.split("\n") if extra else []) + lines
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self):
        return sorted(set(super().__dir__()))
