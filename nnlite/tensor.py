"""Tensor: a NumPy array that remembers how it was made.

``Tensor.data`` is a plain ``numpy.ndarray``. ``requires_grad`` marks tensors
whose gradient we want; ``_ctx`` is the :class:`~nnlite.autograd.Function` that
produced the tensor (None for leaves). Arithmetic operators and methods such as
``x.sum()`` are attached in :mod:`nnlite.ops` (the one place that ties the two
together). The one back-reference: autograd needs the Tensor class to wrap
results, so this file binds ``autograd.Tensor`` once the class exists.
"""
import copy
import itertools
import warnings

import numpy as np

from . import autograd

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
float16 = np.dtype(np.float16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)

_default_dtype = float32


def bfloat16_dtype():
    """bfloat16 as a NumPy dtype (``nl.bfloat16``), from the ``ml_dtypes`` package.

    NumPy has no bfloat16 of its own; ``ml_dtypes`` (the package JAX uses) adds
    one, imported here on first use so nnlite runs without it. bfloat16 keeps
    float32's 8 exponent bits and 7 of its 23 fraction bits: float32's range
    in half the bytes, with a step of ``2**-7`` relative (float16: ``2**-10``,
    but overflow above 65504).
    """
    try:
        import ml_dtypes
    except ImportError:
        raise ImportError('bfloat16 needs the ml_dtypes package: pip install "nnlite[bf16]"') from None
    return np.dtype(ml_dtypes.bfloat16)


def is_bfloat16(dtype):
    # By name, so that asking never imports ml_dtypes: a bfloat16 array exists only once it is imported.
    return dtype.name == "bfloat16"


def is_floating_dtype(dtype):
    """float16, float32, float64 or bfloat16 (whose NumPy kind is 'V', not 'f')."""
    # kind first: dtype.name is computed in Python (microseconds), and only a 'V' dtype can be bfloat16
    kind = dtype.kind
    return kind == "f" or kind == "V" and dtype.name == "bfloat16"

_new = object.__new__   # bound once: Tensor._make runs for every operation's result


def set_default_dtype(dtype):
    """The float dtype new tensors get from Python floats (float32 unless changed)."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype not in (float32, float64):
        raise TypeError(f"set_default_dtype: expected float32 or float64, got {dtype}")
    _default_dtype = dtype


def get_default_dtype():
    return _default_dtype


def as_dtype(dtype):
    """Accept nl.float32, np.float32, 'float32' or None."""
    return None if dtype is None else np.dtype(dtype)


class Tensor:
    """An n-dimensional array with reverse-mode autograd.

    >>> import nnlite as nl
    >>> x = nl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4., 6.])
    """
    # A view (``x[0]``, ``x.view(...)``, ``x.T``) shares its base's ``_version`` list and
    # keeps ``_base`` (the tensor owning the memory), ``_view_steps`` (the view operations
    # that lead from the base to it) and ``_view_version`` (the version its history is
    # up to date with): in-place changes through a view rewrite the base's history.
    # ``_moved``, set only once a recorded in-place operation gave the tensor a new history,
    # keeps its earlier ones for the operations that read it before (autograd._as_read).
    __slots__ = ("data", "_requires_grad", "_grad", "_ctx", "_version", "_hooks",
                 "_retains_grad", "_base", "_view_steps", "_view_version", "_moved", "__weakref__")
    __array_priority__ = 1000  # so ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data, requires_grad=False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        arr = _to_array(data, as_dtype(dtype))
        self.data = arr
        self._grad = None
        self._ctx = None
        self._version = [0]
        self._hooks = None
        self._retains_grad = False
        self._base = None
        self._requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _make(array, ctx):
        """Wrap an array produced by an operation (no copy, no checks): the hot path.

        ``_new(Tensor)`` makes the object without running ``__init__``'s conversions;
        every slot is then set here, so the result is a complete Tensor.
        """
        t = _new(Tensor)
        t.data = array
        t._grad = None
        t._ctx = ctx
        t._version = [0]
        t._hooks = None
        t._retains_grad = False
        t._base = None
        t._requires_grad = ctx is not None
        return t

    # ----------------------------------------------------------- properties --
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    def dim(self):
        return self.data.ndim

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        return int(self.data.size)

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    @property
    def grad(self):
        """The gradient accumulated by ``backward`` (None until then).

        Only leaves, and non-leaf tensors that called :meth:`retain_grad`, keep
        one; reading it on any other non-leaf tensor gives None and warns, as in
        PyTorch, since that is almost always a mistake.
        """
        g = self._grad
        if g is None and self._ctx is not None and not self._retains_grad:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
                "attribute won't be populated during backward(). If you indeed want the gradient for a "
                "non-leaf Tensor, call .retain_grad() on it before backward.", UserWarning, stacklevel=2)
        return g

    @grad.setter
    def grad(self, value):
        # The optimizers and later backwards read .grad as this tensor's gradient: a wrong shape
        # or dtype would surface far from here, or not at all (NumPy broadcasts and casts).
        if value is not None:
            autograd.check_gradient(value, self, "the assigned grad")
        self._grad = value

    def is_floating_point(self):
        return is_floating_dtype(self.data.dtype)

    # --------------------------------------------------------- autograd API --
    @property
    def requires_grad(self):
        """True when operations on this tensor are recorded for backward."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, requires_grad):
        # Checked on assignment as in requires_grad_: an integer tensor has no gradient, and a
        # non-leaf tensor that stopped requiring grad would drop its branch of the graph silently.
        if requires_grad and self.data.dtype.kind not in "fc" and not is_bfloat16(self.data.dtype):
            raise RuntimeError(f"only floating point tensors can require gradients, got {self.data.dtype}")
        if not requires_grad and self._ctx is not None:
            raise RuntimeError("you can only change requires_grad flags of leaf tensors; use detach()")
        self._requires_grad = bool(requires_grad)

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate the gradient of this tensor into the ``.grad`` of every leaf it depends on
        (of ``inputs`` only, when given)."""
        autograd.backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)

    def detach(self):
        """The same values, cut from the graph (shares memory, like PyTorch)."""
        t = Tensor._make(self.data, None)
        t._version = self._version
        return t

    def detach_(self):
        if self._base is not None:
            # The view's history is re-derived from its base after the base changes in place,
            # which would silently attach it to the graph again.
            raise RuntimeError("Can't detach views in-place. Use detach() instead.")
        if self._ctx is not None:
            # Operations that already read this tensor keep differentiating through its history.
            autograd.moved(self, next(autograd._sequence), autograd._stand_in(self))
        self._ctx = None
        self._requires_grad = False
        return self

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward (it accumulates, like a leaf's)."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._ctx is not None:
            self._retains_grad = True

    @property
    def retains_grad(self):
        """True for a non-leaf tensor whose ``.grad`` is kept by :meth:`retain_grad`."""
        return self._retains_grad

    # Kept out of a pickle, as PyTorch keeps them out: the gradient, the hooks (often lambdas,
    # which cannot be pickled) and the graph; a pickled result of operations loads as a leaf.
    # A view loads as a tensor of its own: NumPy pickles the view's values, not shared memory.
    _UNPICKLED = ("_grad", "_hooks", "_ctx", "_moved", "_base")

    def __getstate__(self):
        return None, {slot: None if slot in self._UNPICKLED else value for slot, value in self._slot_values()
                      if slot != "_moved"}

    def __deepcopy__(self, memo):
        # Everything, the gradient included, but the hooks, which stay with the original as in PyTorch.
        return self._copy_slots(memo, fresh=("_hooks",))

    def _copy_slots(self, memo, fresh):
        """A deep copy of every slot of this tensor's classes, with those named in ``fresh`` set to None."""
        result = _new(type(self))
        memo[id(self)] = result
        for slot, value in self._slot_values():
            setattr(result, slot, None if slot in fresh else copy.deepcopy(value, memo))
        return result

    def _slot_values(self):
        """(name, value) of every slot of this tensor's classes that holds a value."""
        for cls in type(self).__mro__:
            for slot in cls.__dict__.get("__slots__", ()):
                if slot != "__weakref__" and hasattr(self, slot):
                    yield slot, getattr(self, slot)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a new one."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._hooks is None:
            self._hooks = {}
        handle = _RemovableHandle(self._hooks)
        self._hooks[handle.id] = hook
        return handle

    def _accumulate_grad(self, g, create_graph=False):
        """Add ``g`` into ``self.grad`` (leaves, and non-leaves that retain theirs). Parameters may
        keep grads in an arena."""
        if create_graph:
            self._grad = g if self._grad is None else self._grad + g
            return
        if self._grad is None:
            # A copy: ``g`` may be shared with other leaves or held by the caller.
            self._grad = Tensor._make(np.array(g.data, dtype=self.data.dtype, copy=True), None)
        else:
            np.add(self._grad.data, g.data, out=self._grad.data, casting="unsafe")

    # ------------------------------------------------------------- interop --
    def numpy(self):
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on a Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self.data

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): only a one-element tensor can be converted to a Python scalar, "
                             f"got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.data.tolist()

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __bool__(self):
        if self.data.size != 1:
            raise RuntimeError(f"Boolean value of a tensor with {self.data.size} elements is ambiguous")
        return bool(self.data.reshape(()))

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    __hash__ = object.__hash__

    def __format__(self, format_spec):
        # f"{loss:.4f}": a 0-dim tensor formats as its number, as in PyTorch; others as their repr
        if self.data.ndim == 0:
            return self.item().__format__(format_spec)
        return object.__format__(self, format_spec)

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", precision=4, prefix="tensor(")
        extras = []
        if self.data.dtype not in (_default_dtype, int64, bool_):
            extras.append(f"dtype=nnlite.{self.data.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{self._ctx.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}{''.join(', ' + e for e in extras)})"

    # -------------------------------------------------------------- version --
    def _bump_version(self):
        self._version[0] += 1


class _RemovableHandle:
    """Removes the one registration it was returned for (a function registered twice is two)."""
    _ids = itertools.count()

    def __init__(self, container):
        self._container, self.id = container, next(_RemovableHandle._ids)

    def remove(self):
        self._container.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


autograd.Tensor = Tensor


def _to_array(data, dtype):
    """Convert user data to an ndarray: Python floats become the default float dtype."""
    if isinstance(data, np.ndarray):
        arr = data.astype(dtype, copy=False) if dtype is not None else data
        return _check_kind(arr)
    if isinstance(data, Tensor):
        data = data.data
    arr = np.asarray(data, dtype=dtype)
    if dtype is None and arr.dtype == np.float64 and not isinstance(data, np.generic):
        arr = arr.astype(_default_dtype)  # Python floats default to float32, like PyTorch
    if dtype is None and arr.dtype.kind in "iu" and arr.dtype != int64 and not isinstance(data, np.generic):
        arr = arr.astype(int64)
    return _check_kind(arr)


def _check_kind(arr):
    if arr.dtype.kind not in "fiub" and not is_bfloat16(arr.dtype):
        raise TypeError(f"tensor: expected float, integer or bool data, got dtype {arr.dtype}")
    if not arr.dtype.isnative:   # e.g. big-endian data from a file: kernels read native bytes only
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def tensor(data, dtype=None, requires_grad=False):
    """Make a new tensor, copying ``data`` (a list, a number, a NumPy array or a Tensor).

    Python floats become float32; a NumPy array keeps its dtype (float64 stays float64).
    """
    if isinstance(data, Tensor):
        data = data.data
    arr = np.array(_to_array(data, as_dtype(dtype)), copy=True)
    return Tensor(arr, requires_grad=requires_grad)


def is_tensor(obj):
    return isinstance(obj, Tensor)
