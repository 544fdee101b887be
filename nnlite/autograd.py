"""Reverse-mode automatic differentiation.

A computation builds a graph as it runs: every result of a differentiable
operation remembers the :class:`Function` that made it, and every Function
remembers its inputs. ``loss.backward()`` walks that graph from the loss back to
the leaves, applying the chain rule one Function at a time.

Each Function holds its forward (on NumPy arrays) and its backward (on Tensors)
side by side. Because backward is written with differentiable operations, the
walk can itself be recorded (``create_graph=True``), which is what gives second
and third derivatives: Hessian-vector products, gradient penalties, MAML.
"""
import contextlib
import functools
import inspect
import itertools
import threading
import weakref

import numpy as np

Tensor = None  # bound by nnlite.tensor once the class exists (tensor.py imports this module)

__all__ = ["Function", "gradcheck", "gradgradcheck", "GradcheckError", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "grad", "grad_in_backward", "backward", "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled"]


# ---------------------------------------------------------------- grad mode ---

class _GradMode(threading.local):
    enabled = True
    anomaly = False
    check_nan = True   # anomaly mode's check of gradients for NaN/Inf (PyTorch's check_nan)


_mode = _GradMode()

# Every recorded Function gets the next number: the order in which operations read their
# inputs, which a tensor changed in place needs (see _as_read).
_sequence = itertools.count()


def is_grad_enabled():
    """True when operations record the graph for backward."""
    return _mode.enabled


def _with_mode(mode, func):
    """``func`` run with grad mode ``mode``; a generator function gets it each time it resumes.

    A generator's body runs on each ``next()``, long after the decorated call
    returned, so wrapping the call alone would leave the body outside the mode.
    """
    if inspect.isgeneratorfunction(func):
        @functools.wraps(func)
        def generator(*args, **kwargs):
            gen = func(*args, **kwargs)
            prev, _mode.enabled = _mode.enabled, mode
            try:
                value = next(gen)
                while True:   # the caller's sends and throws reach the body inside the mode too
                    _mode.enabled = prev
                    try:
                        sent = yield value
                    except GeneratorExit:
                        gen.close()
                        raise
                    except BaseException as error:
                        _mode.enabled = mode
                        value = gen.throw(error)
                    else:
                        _mode.enabled = mode
                        value = gen.send(sent)
            except StopIteration as stop:
                return stop.value
            finally:
                _mode.enabled = prev
        return generator

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        prev, _mode.enabled = _mode.enabled, mode
        try:
            return func(*args, **kwargs)
        finally:
            _mode.enabled = prev
    return wrapper


class set_grad_enabled:
    """Turn graph recording on or off: as a function call, a context manager or a decorator.

    Like PyTorch's, the call itself sets the mode (``nl.set_grad_enabled(False)``
    alone switches recording off); leaving the ``with`` block restores the mode
    before it, and a decorated function runs with ``mode`` on every call.
    """

    def __init__(self, mode):
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"set_grad_enabled(): argument 'mode' must be bool, not {type(mode).__name__}")
        self.prev = _mode.enabled
        self.mode = bool(mode)
        _mode.enabled = self.mode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _mode.enabled = self.prev
        return False

    def __call__(self, func):
        _mode.enabled = self.prev   # as a decorator, the mode applies inside the function only
        return _with_mode(self.mode, func)


class _ModeContext:
    """Base of no_grad/enable_grad: usable as ``with``, as ``@no_grad()`` and as ``@no_grad``."""
    mode = True

    def __new__(cls, func=None):
        # object.__new__ named directly: super() would cost a fifth of a ``with no_grad():`` block
        if func is None:
            return object.__new__(cls)
        return _with_mode(cls.mode, func)   # used bare, as ``@no_grad``

    def __enter__(self):
        self.prev = _mode.enabled
        _mode.enabled = self.mode
        return self

    def __exit__(self, *exc):
        _mode.enabled = self.prev
        return False

    def __call__(self, func):
        return _with_mode(self.mode, func)


class no_grad(_ModeContext):
    """Do not record operations: for evaluation and for updating parameters in place."""
    mode = False


class enable_grad(_ModeContext):
    """Record operations again inside a ``no_grad`` block."""
    mode = True


class set_detect_anomaly:
    """Turn anomaly detection on or off, as a function call or a context manager (restoring the mode on exit).

    With ``mode`` and ``check_nan`` true, backward checks every gradient an
    operation returns and raises, naming the operation, at the first NaN or
    Inf; with ``check_nan=False`` nothing is checked.
    """

    def __init__(self, mode, check_nan=True):
        self.prev = _mode.anomaly, _mode.check_nan
        _mode.anomaly, _mode.check_nan = bool(mode), bool(check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _mode.anomaly, _mode.check_nan = self.prev
        return False


@contextlib.contextmanager
def detect_anomaly(check_nan=True):
    """Check every gradient for NaN/Inf during backward and name the op that made it.

    A context manager, and a decorator (``@nl.detect_anomaly()``).
    """
    with set_detect_anomaly(True, check_nan):
        yield


def is_anomaly_enabled():
    return _mode.anomaly


# -------------------------------------------------------------------- views ---
#
# ``y[0]``, ``y.view(4)`` or ``y.T`` share y's memory. Such a view shares y's version
# counter (so changing a saved tensor through a view is caught) and remembers its base
# and the view operations that lead to it. An in-place operation on the view then
# rewrites the *base's* history (``ViewScatter`` in ops/inplace.py), and any view whose
# base changed after the view was made re-derives its own history from the base before
# it is used: the same gradients as PyTorch's views.

def _mark_view(result, parent, out, cls, rest, options):
    """Record ``result`` as a view of ``parent`` when NumPy returned a view (not a copy)."""
    owner = out.base
    if type(owner) is not np.ndarray and isinstance(owner, np.ndarray):
        # ``apply`` wraps an ndarray subclass's result (an np.memmap's view) in a plain
        # ndarray, one more step away from the memory: the subclass view's own base counts
        owner = owner.base
    if owner is None or not isinstance(parent, Tensor) or not (owner is parent.data or owner is parent.data.base):
        return
    result._version = parent._version
    if parent._base is None:
        result._base, result._view_steps = parent, ((cls, rest, options),)
    else:
        result._base, result._view_steps = parent._base, parent._view_steps + ((cls, rest, options),)
    # A view made while no graph is recorded stays out of the graph (None), as in PyTorch.
    result._view_version = parent._version[0] if _mode.enabled else None


def _replay_view(base, steps):
    """Apply a view's operations to ``base`` again (differentiably): its current history."""
    t = base
    for cls, rest, options in steps:
        t = cls.apply(t, *rest, **options)
    return t


def _refresh_view(view):
    """Give a view whose base changed in place the history it has now: view_ops(base)."""
    base = view._base
    if view._view_version is None or not (base.requires_grad and _mode.enabled):
        return   # a view made under no_grad, or nothing to record: checked again at the next use
    view._view_version = view._version[0]
    boundary = next(_sequence)
    before = _stand_in(view)
    fresh = _replay_view(base, view._view_steps)
    view._ctx, view._requires_grad = fresh._ctx, True
    moved(view, boundary, before)


# ------------------------------------------------------- histories that move ---
#
# An in-place operation gives a tensor a new history: later operations read the new
# value. Operations recorded *before* it read the old value, and their gradient must go
# to the old history. Their graph nodes hold the tensor object itself, whose ``_ctx`` has
# moved on; so the tensor keeps a list of (sequence number at the change, stand-in for
# the value before it), and the walk below sends each node's gradient to the history
# that node read (``_as_read``).

def _stand_in(t):
    """A Tensor for ``t`` as it is now: same memory, version and history."""
    old = Tensor._make(t.data, t._ctx)
    old._requires_grad, old._version = t._requires_grad, t._version
    return old


def moved(t, boundary, before):
    """Record that ``t`` gets a new history; nodes numbered below ``boundary`` read ``before``."""
    t._moved = getattr(t, "_moved", ()) + ((boundary, before),)


def _as_read(a, fn):
    """The tensor ``fn`` read as its input ``a``: ``a``, or the stand-in for an earlier value."""
    history = getattr(a, "_moved", None)
    if history:
        seq = getattr(fn, "_seq", None)
        if seq is not None:
            for boundary, before in history:
                if seq < boundary:
                    return before
    return a


# ----------------------------------------------------------------- Function ---

class Function:
    """One differentiable operation.

    Subclasses write ``forward(self, *arrays, **options)`` on NumPy arrays and
    ``backward(self, grad)`` on Tensors, returning one gradient per positional
    argument of ``apply`` (None where there is none). During backward,
    ``self.inputs`` are the Tensor arguments and, when the class sets
    ``save_output = True``, ``self.out`` is the result Tensor.

    ``saves_inputs = False`` declares that backward never reads the inputs'
    values (addition, reshapes), so modifying them in place afterwards is safe.

    ``self.recording`` is set by ``apply`` before it calls forward: True when
    this call's result is recorded into a graph (an input requires grad and
    grad mode is on), so that backward can run on it. A forward that keeps
    something only backward reads (GELU's Phi(x)) keeps it only then.
    """
    save_output = False
    saves_inputs = True
    recording = False   # a forward called outside apply (view replays) records nothing
    is_view = False   # the result may be a NumPy view of the first input (indexing, reshape, permute)

    @classmethod
    def apply(cls, *args, **options):
        # The hot path of every operation: keep it short (the budget is ~2 us an op).
        fn = cls()   # Functions take no constructor arguments; apply is their constructor
        needs_graph = False
        arrays = []
        for a in args:
            if isinstance(a, Tensor):
                if a._base is not None and a._version[0] != a._view_version:
                    _refresh_view(a)   # its base changed in place since the view's history was set
                arrays.append(a.data)
                needs_graph = needs_graph or a._requires_grad
            else:
                arrays.append(a)
        fn.recording = recording = needs_graph and _mode.enabled
        if recording:
            fn._seq = next(_sequence)
        # Unpacking an empty **options costs as much as a small check, so pass it only when set.
        # The try costs nothing until a kernel refuses a dtype (Python 3.11 exceptions are
        # zero-cost on the normal path), so float32/float64 calls pay nothing for float16.
        try:
            out = fn.forward(*arrays, **options) if options else fn.forward(*arrays)
        except TypeError:
            if not any(type(a) is np.ndarray and a.dtype.name in STORAGE_FLOATS for a in arrays):
                raise
            return _forward_in_float32(fn, args, arrays, options, recording)
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        if not recording:
            result = Tensor._make(out, None)
        else:
            fn.inputs = args
            if cls.saves_inputs:
                fn._versions = fn._saved_versions(args)
            result = Tensor._make(out, fn)
            if cls.save_output:
                # A weak reference: the output holds its Function (``_ctx``), and a strong
                # reference back would make a cycle that only the garbage collector frees.
                fn._out = weakref.ref(result)
                fn._out_version = 0
        if cls.is_view:
            _mark_view(result, args[0], out, cls, args[1:], options)
        return result

    @property
    def out(self):
        """The result Tensor (for Functions with ``save_output = True``)."""
        return self._out()

    def _saved_versions(self, args):
        """Version of each input whose *value* backward reads (None: not read)."""
        return [a._version[0] if isinstance(a, Tensor) else None for a in args]

    def forward(self, *args, **options):
        raise TypeError(f"{type(self).__name__} defines no forward")

    def backward(self, grad):
        raise TypeError(f"{type(self).__name__} defines no backward")

    @property
    def name(self):
        """The graph node's name, as ``grad_fn`` prints it: ``MulBackward``, ``LinearBackward``.

        A Function is named after its operation; the node in the graph is that
        operation's backward, so PyTorch's habit of calling it ``<op>Backward`` is
        kept. Classes whose operation has a layer of the same name carry the suffix
        ``Function`` (``LinearFunction``, not ``Linear``, which is ``nn.Linear``);
        the suffix is not part of the node's name.
        """
        return type(self).__name__.removesuffix("Function") + "Backward"

    def _check_saved(self):
        """Refuse to differentiate through values that were modified in place."""
        if self.__dict__.get("_freed"):
            raise RuntimeError(
                f"Trying to backward through the graph a second time (through {self.name}): its "
                "saved values were freed after the first backward. Pass retain_graph=True to the "
                "first backward (or nl.grad) if you need to backward twice.")
        versions = self.__dict__.get("_versions")
        if versions is not None:
            for a, v in zip(self.inputs, versions):
                if v is not None and a._version[0] != v:
                    raise RuntimeError(
                        f"{self.name}: an input it saved for backward (shape {a.shape}) was modified "
                        f"in place (version {v} -> {a._version[0]}); gradients would be wrong. "
                        "Use an out-of-place operation or clone() before modifying it.")
        if self.save_output and self._out()._version[0] != self._out_version:
            raise RuntimeError(
                f"{self.name}: its output (shape {self.out.shape}) was modified in place after being "
                "saved for backward; use an out-of-place operation or clone() first.")

    def _release(self):
        """Drop saved values after backward; keep ``inputs`` so a second walk fails clearly.

        As in PyTorch, a node that saved no values (an addition, a sum, a
        reshape) keeps working: a second backward through it is allowed, and
        only a node that saved its inputs, its output or other values refuses
        one. An input whose value backward does not read (a product's factor
        when the other factor is a number) counts as not saved: so
        ``y = x.mean()`` (a sum times 1/n) can be walked twice, as in PyTorch;
        ``(x * 2).sum()`` can too, where PyTorch, which keeps the 2 as a saved
        tensor, refuses. Sizes and options a forward kept (``in_shape``,
        ``dims``) are not values and stay.
        """
        state = self.__dict__
        reads_inputs = self.saves_inputs and any(v is not None for v in state.get("_versions", (0,)))
        if not (reads_inputs or self.save_output):
            for k, v in state.items():
                if k != "inputs" and not _is_small(v):
                    break
            else:
                return
        inputs = self.inputs
        state.clear()
        self.inputs = inputs
        self._freed = True


_SMALL = frozenset((type(None), bool, int, float, str, slice))


def _is_small(v):
    """True for a size, an option or a flag (or a tuple of them); False for anything that may hold values."""
    kind = type(v)
    if kind in _SMALL:
        return True
    if kind is tuple or kind is list:
        return all(map(_is_small, v))
    return isinstance(v, (np.generic, np.dtype))


def version_if(x, read):
    """``x``'s version if backward reads its value (``read``), else None (a Function's saved versions)."""
    return x._version[0] if read and isinstance(x, Tensor) else None


def product_saved_versions(args):
    """Saved versions for an operation linear in each of its first two inputs.

    For ``a * b``, ``a @ b`` or a linear layer, d/da reads only b and d/db reads
    only a; a bias after them is not read. So an operand may be changed in place
    when its partner needs no gradient, as in PyTorch, which saves ``a`` only when
    ``b`` requires grad and the reverse. (PyTorch's convolutions keep both
    operands, and so do nnlite's.)
    """
    a, b = args[0], args[1]
    versions = [version_if(a, isinstance(b, Tensor) and b.requires_grad),
                version_if(b, isinstance(a, Tensor) and a.requires_grad)]
    return versions if len(args) == 2 else versions + [None] * (len(args) - 2)


# ------------------------------------------------------- float16, bfloat16 ---

#: Float dtypes nnlite stores but does not compute in (bfloat16 comes from ml_dtypes), by name.
STORAGE_FLOATS = ("float16", "bfloat16")


def _forward_in_float32(fn, args, arrays, options, record):
    """Run an operation whose kernels refused float16 (or bfloat16) in float32, and round its result back.

    float16 and bfloat16 are storage formats here (``Module.half``,
    ``Module.bfloat16``): the kernels have float32 and float64 loops only, so
    an operation on such arrays widens them to float32 (exact: every float16
    and every bfloat16 is a float32), computes as it always does, and rounds
    its output to the narrow dtype once (and an input the kernel updates in
    place, such as a batch norm's running statistics, back to it as well).
    Operations NumPy runs itself (adds, reshapes) never reach this path:
    NumPy's elementwise float16 arithmetic, and ml_dtypes' bfloat16 one,
    already compute in float32 and round. (ml_dtypes' bfloat16 sums and
    products are not computed so, and ``Sum``, ``LogSumExp`` and ``MatMul``
    refuse bfloat16 to come here.)

    Gradients are not computed in these dtypes. When a graph is being
    recorded, the result gets a :class:`HalfPrecisionForward` node whose
    backward raises.
    """
    narrow = _refuse_mixed_float_dtypes(fn, arrays)
    wide = [a.astype(np.float32) if type(a) is np.ndarray and a.dtype == narrow else a
            for a in arrays]
    try:
        out = np.asarray(fn.forward(*wide, **options) if options else fn.forward(*wide))
    except TypeError as error:   # the kernel's message names float32, a dtype the caller never passed
        error.add_note(f"(its {narrow} operands had been widened to float32: kernels have no {narrow} loops)")
        raise
    for a, w in zip(arrays, wide):   # a kernel that updates an input in place (running statistics)
        if w is not a and not np.array_equal(w, a.astype(np.float32), equal_nan=True):
            a[...] = w
    if out.dtype == np.float32:
        out = out.astype(narrow)
    if not record:
        return Tensor._make(out, None)
    node = HalfPrecisionForward()
    node.op, node.dtype, node.inputs = type(fn).__name__.removesuffix("Function"), narrow, args
    return Tensor._make(out, node)


def _refuse_mixed_float_dtypes(fn, arrays):
    """Return the one float dtype of the operands; raise TypeError if float16 or bfloat16 sits beside another.

    PyTorch's rule for its layers: the operands of one operation share a dtype
    (a float32 input to a half layer is an error, not a silent conversion).
    Widening float16 to float32 would otherwise hide the mix and hand back a
    float16 result for a float32 input, so it is checked before widening, and
    for every layer alike. Integer and boolean operands (indices, masks) are
    not floating point and are left alone.
    """
    floats = [(i, a.dtype) for i, a in enumerate(arrays)
              if type(a) is np.ndarray and (a.dtype.kind == "f" or a.dtype.name == "bfloat16")]
    dtypes = {dtype for _, dtype in floats}
    if len(dtypes) < 2:
        return dtypes.pop()
    try:   # name the operands after the forward's parameters: "input float32, weight float16"
        names = [p for p in inspect.signature(fn.forward).parameters if p not in ("self",)]
    except (TypeError, ValueError):
        names = []
    given = ", ".join(f"{names[i] if i < len(names) else f'operand {i}'} {dtype}" for i, dtype in floats)
    narrow = next(dtype for _, dtype in floats if dtype.name in STORAGE_FLOATS)
    op = type(fn).__name__.removesuffix("Function")
    raise TypeError(f"{op}: operands must share one dtype, got {given}; convert the input "
                    f"(x.to(nl.{narrow}) for a {narrow} model) or the model (model.float())")


class HalfPrecisionForward(Function):
    """The graph node of an operation run on float16 or bfloat16 tensors: inference only, no backward."""
    saves_inputs = False

    @property
    def name(self):
        return f"{self.dtype.name.capitalize()}{self.op}Backward"

    def backward(self, grad):
        method = "half" if self.dtype == np.float16 else "bfloat16"
        raise RuntimeError(
            f"{self.op}: its inputs were {self.dtype}, which nnlite supports for storage and inference "
            f"only (the kernels compute in float32 and round to {self.dtype}); gradients are not "
            f"computed in {self.dtype}. Train in float32 (model.float()) and call model.{method}() after, "
            f"or run a {self.dtype} model under nl.no_grad().")


def constant(array):
    """Wrap an array a forward computed (a mask, saved statistics) as a Tensor outside the graph.

    Backwards multiply gradients by such arrays but never differentiate them, so
    the Tensor has no ``grad_fn`` and does not require grad. ``None`` stays ``None``.
    """
    return None if array is None else Tensor._make(np.asarray(array), None)


class _ChosenBy(Function):
    """``value`` unchanged, recorded as depending on ``source`` with derivative zero."""
    saves_inputs = False

    def forward(self, value, source):
        return value

    def backward(self, grad):
        source = self.inputs[1]
        return grad, Tensor._make(np.zeros(source.shape, source.dtype), None)


def chosen_by(value, source):
    """Record that ``value`` was chosen by ``source`` through a piecewise-constant choice.

    The gradient of ReLU is the incoming gradient where x > 0: x picks a mask,
    and the mask does not change as x moves, so the derivative of that gradient
    in x is zero almost everywhere. Zero is not the same as unused, though:
    asked for ``d(dy/dx)/dx``, PyTorch returns zeros, where a graph that held
    the mask as a constant would not reach x at all and ``grad`` would refuse.
    Backward functions whose result depends on an input only through such a
    choice (a mask, a max index) pass it through here; the graph then reaches
    ``source`` and hands it zeros. Nothing is recorded unless a graph is being
    built (``create_graph=True``) and ``source`` requires grad, so a first-order
    backward pays one check.
    """
    if not _mode.enabled or not source.requires_grad:
        return value
    return _ChosenBy.apply(value, source)


# ---------------------------------------------------------------- the walk ---

def _topological_order(roots):
    """Non-leaf tensors reachable from ``roots``, inputs before the results made from them, and
    for each of them (by id) its Function and the tensors that Function read (``_as_read``),
    fixed before the walk: a backward recorded under create_graph may refresh a stale view
    and so move a history mid-walk.

    Iterative depth-first search: a chain of tens of thousands of operations must
    not hit Python's recursion limit.
    """
    order, visited, reads = [], set(), {}
    stack = [(r, False) for r in roots]
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if id(t) in visited or t._ctx is None:
            continue
        visited.add(id(t))
        stack.append((t, True))
        fn = t._ctx
        read, swapped = [], False
        for a in fn.inputs:
            if getattr(a, "_moved", None):   # changed in place, or detached in place, since some read it
                r = _as_read(a, fn)
                swapped = swapped or r is not a
                a = r
            read.append(a)
        reads[id(t)] = fn, read, swapped
        for a in read:
            if getattr(a, "_requires_grad", False) and a._ctx is not None and id(a) not in visited:
                stack.append((a, False))
    return order, reads


def _in_dtype_of(a, g):
    """The gradient ``g`` for input ``a`` in ``a``'s floating dtype, as in PyTorch.

    A float32 tensor used with a float64 one (``x * y``) gets back a float64
    gradient from the float64 product; a gradient has its input's dtype, so it is
    cast here, with the differentiable cast (``create_graph`` records it) and only
    between floating dtypes.
    """
    if a.data.dtype == g.data.dtype or not (_is_floating(a.data.dtype) and _is_floating(g.data.dtype)):
        return g
    from .ops.casting import cast   # the ops import this module; a gradient needing a cast is rare
    return cast(g, a.data.dtype)


def _is_floating(dtype):
    return dtype.kind == "f" or dtype.name == "bfloat16"


def _accumulate(store, t, g):
    key = id(t)
    prev = store.get(key)
    store[key] = (t, g) if prev is None else (t, prev[1] + g)


def _run(roots, root_grads, retain_graph, create_graph, capture=None):
    """The engine behind ``backward`` and ``grad``.

    Returns a dict id -> (tensor, gradient) for the leaves reached (and for any
    tensor named in ``capture``).
    """
    capture = capture or set()
    for r in roots:
        if r._base is not None and r._version[0] != r._view_version:
            _refresh_view(r)
    pending, leaves = {}, {}
    for r, g in zip(roots, root_grads):
        if r._ctx is None:
            _accumulate(leaves, r, g)
        else:
            _accumulate(pending, r, g)
    order, reads = _topological_order([r for r in roots if r._ctx is not None])
    anomaly = _mode.anomaly and _mode.check_nan
    needed = _leading_to(capture, order, reads) if capture else None
    _walk(order, reads, pending, leaves, capture, retain_graph, create_graph, anomaly, needed)
    return leaves


def _leading_to(targets, order, reads):
    """Ids of the tensors in ``order`` whose backward sends gradient on to one of ``targets`` (ids).

    ``nl.grad`` and ``backward(inputs=...)`` run only those backwards, as
    PyTorch does: the hooks of a branch that leads elsewhere do not fire, and
    its saved values are kept for a later backward through it.
    """
    needed = set()
    for t in order:   # inputs before the results made from them
        if any(id(a) in targets or id(a) in needed for a in reads[id(t)][1]):
            needed.add(id(t))
    return needed


def _walk(order, reads, pending, leaves, capture, retain_graph, create_graph, anomaly, needed=None):
    """Send the gradients in ``pending`` back through ``order``, collecting leaves' into ``leaves``
    (through the backwards of ``needed`` only, when given)."""
    with set_grad_enabled(bool(create_graph)):
        for t in reversed(order):
            entry = pending.pop(id(t), None)
            if entry is None or needed is not None and id(t) not in needed and id(t) not in capture:
                continue
            g = _run_hooks(t, entry[1]) if t._hooks else entry[1]
            if t._retains_grad:   # accumulates across backward calls, like a leaf's .grad
                t._accumulate_grad(g, create_graph)
            if id(t) in capture:  # a non-leaf asked for by nl.grad: its total gradient is final here
                _accumulate(leaves, t, g)
            if needed is not None and id(t) not in needed:
                continue   # asked for, and nothing asked for lies behind it
            fn, read, swapped = reads[id(t)]
            fn._check_saved()
            if swapped:
                grads = _backward_as_read(fn, read, g)
            else:
                grads = fn.backward(g)
            if not isinstance(grads, tuple):
                grads = (grads,)
            if len(grads) != len(read):   # zip would drop the extra ones, or inputs' gradients, silently
                raise RuntimeError(f"function {fn.name} returned an incorrect number of gradients "
                                   f"(expected {len(read)}, one per argument of apply; got {len(grads)})")
            if anomaly:
                for gi in grads:
                    if isinstance(gi, Tensor) and not np.all(np.isfinite(gi.data)):
                        raise RuntimeError(f"detect_anomaly: the backward of {fn.name} returned "
                                           f"NaN or Inf (gradient shape {gi.shape}).")
            for a, gi in zip(read, grads):
                if gi is None or not getattr(a, "_requires_grad", False):
                    continue
                if not isinstance(gi, Tensor):
                    raise TypeError(f"function {fn.name} returned a gradient of type {type(gi).__name__}; "
                                    "a backward returns Tensors (or None)")
                if gi.shape != a.shape:
                    raise RuntimeError(f"{fn.name}.backward returned a gradient of shape {gi.shape} "
                                       f"for an input of shape {a.shape}")
                if gi.data.dtype is not a.data.dtype:   # NumPy's dtypes are singletons: one check
                    gi = _in_dtype_of(a, gi)
                if a._ctx is None:
                    _accumulate(leaves, a, gi)
                else:
                    _accumulate(pending, a, gi)
            if not retain_graph:
                fn._release()


def _backward_as_read(fn, read, g):
    """``fn.backward(g)`` with ``fn.inputs`` as fn read them: an input that changed its history
    since (in place, or ``detach_``) shows its earlier one, so a backward asking whether an
    input requires grad gets the answer that held when fn ran."""
    inputs = fn.inputs
    versions = fn.__dict__.get("_versions") or ()
    for r, a, v in zip(read, inputs, versions):
        if r is not a and v is not None and not a.requires_grad:   # moved, and no longer requiring grad: detach_
            raise RuntimeError(f"{fn.name}: an input it saved for backward (shape {a.shape}) was detached in "
                               "place with detach_() afterwards; use the out-of-place detach() instead")
    fn.inputs = tuple(read)
    try:
        return fn.backward(g)
    finally:
        fn.inputs = inputs


def _run_hooks(t, g):
    """Pass ``g`` through ``t``'s hooks in the order they were registered.

    A hook may return a replacement; it must keep the gradient's shape and dtype,
    as PyTorch requires, since the result is added into other gradients and
    into ``.grad``.
    """
    for hook in tuple(t._hooks.values()) if t._hooks else ():   # a hook may remove itself
        out = hook(g)
        if out is None:
            continue
        check_gradient(out, g, f"the gradient returned by hook '{getattr(hook, '__name__', hook)}'")
        g = out
    return g


def check_gradient(value, like, what):
    """Refuse ``value`` as a gradient unless it is a Tensor of ``like``'s shape and dtype.

    ``what`` names the value in the message. A gradient of another shape or
    dtype would be broadcast or cast silently when it is added to others.
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"{what} must be a Tensor or None, got {type(value).__name__}")
    if value.shape != like.shape:
        raise RuntimeError(f"{what} has shape {value.shape}; expected {like.shape}")
    if value.data.dtype != like.data.dtype:
        raise RuntimeError(f"{what} has dtype {value.data.dtype}; expected {like.data.dtype}")


def _root_grads(outputs, grad_outputs):
    if grad_outputs is not None and len(grad_outputs) != len(outputs):
        raise RuntimeError(f"got {len(outputs)} tensors and {len(grad_outputs)} gradients")
    result = []
    for i, out in enumerate(outputs):
        g = None if grad_outputs is None else grad_outputs[i]
        if g is None:
            if out.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; this output has shape "
                    f"{out.shape}. Pass a gradient of that shape (backward(gradient=...) or grad_outputs).")
            g = Tensor._make(np.ones_like(out.data), None)
        elif not isinstance(g, Tensor):
            raise TypeError(f"gradients can be either Tensors or None, but got {type(g).__name__}")
        elif g.data.dtype != out.data.dtype:   # a float64 gradient for a float32 output, say
            g = _in_dtype_of(out, g)
        if g.shape != out.shape:
            raise RuntimeError(f"gradient has shape {g.shape} but the output has shape {out.shape}")
        result.append(g)
    return result


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(tensors)/d(leaf) into every leaf's ``.grad``.

    With ``inputs`` (a tensor or a sequence of them), only those tensors'
    ``.grad`` receive a gradient, leaves or not; an input the tensors do not
    depend on keeps its ``.grad`` as it was.
    """
    if isinstance(tensors, Tensor):
        tensors = [tensors]
        grad_tensors = None if grad_tensors is None else [grad_tensors]
    tensors = list(tensors)
    for i, t in enumerate(tensors):
        if not t.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
    capture = None if inputs is None else {id(x) for x in _checked_inputs("backward", inputs)}
    retain_graph = create_graph if retain_graph is None else retain_graph
    _queued_callbacks.clear()   # left over only if an earlier backward raised
    reached = _run(tensors, _root_grads(tensors, grad_tensors), retain_graph, create_graph, capture=capture)
    for key, (t, g) in reached.items():
        if capture is not None and key not in capture:
            continue
        if t._ctx is None:
            t._accumulate_grad(_run_hooks(t, g) if t._hooks else g, create_graph)
        elif not t._retains_grad:   # a non-leaf input: its hooks ran, and a retained one accumulated, in the walk
            t._accumulate_grad(g, create_graph)
    while _queued_callbacks:
        _queued_callbacks.pop(0)()


def _checked_inputs(caller, inputs):
    """``inputs`` of grad or backward as a tuple: not empty, and each a Tensor that requires grad."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    if not inputs:
        raise RuntimeError(f"{caller}: the inputs argument cannot be empty")
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise RuntimeError(f"{caller}: input {i} does not require grad")
    return inputs


_queued_callbacks = []


def queue_callback(callback):
    """Call ``callback()`` once the running ``backward()`` has accumulated every leaf's gradient.

    Meant to be called from a tensor hook during backward: data-parallel training
    (:class:`nnlite.distributed.DistributedDataParallel`) queues the averaging of
    the gradients across processes this way, so it happens inside ``backward()``
    with no extra call. PyTorch's engine offers the same
    (``Variable._execution_engine.queue_callback``).
    """
    _queued_callbacks.append(callback)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=None, materialize_grads=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated).

    With ``create_graph=True`` the returned gradients are themselves part of a
    graph, so they can be differentiated again (second and higher derivatives).
    An input the outputs do not depend on is an error unless ``allow_unused=True``
    (its gradient is then None) or ``materialize_grads=True`` (zeros). Hooks
    registered on the inputs run on their gradients, as in ``backward``.
    """
    if allow_unused is None:
        allow_unused = materialize_grads
    elif materialize_grads and not allow_unused:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True, "
                         "but got: allow_unused=False.")
    single_out = isinstance(outputs, Tensor)
    outputs = [outputs] if single_out else list(outputs)
    if grad_outputs is not None and isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    inputs_t = _checked_inputs("grad", inputs)
    for o in outputs:
        if not o.requires_grad:
            raise RuntimeError("grad: an output does not require grad and has no grad_fn")
    return _grad(outputs, inputs_t, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads,
                 leaf_hooks=True)


def grad_in_backward(outputs, inputs, grad_outputs=None, create_graph=True):
    """:func:`grad` for a Function's ``backward`` that differentiates a recomputation of its own inputs.

    The gradients go back to the walk that called the backward, which runs the
    hooks of those inputs when it reaches them: so, unlike :func:`grad`, this
    does not run the leaf inputs' hooks (they would run twice). Unused inputs
    get None.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    if isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    return _grad(outputs, _checked_inputs("grad", inputs), grad_outputs, create_graph, create_graph,
                 allow_unused=True, materialize_grads=False, leaf_hooks=False)


def _grad(outputs, inputs_t, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads, leaf_hooks):
    retain_graph = create_graph if retain_graph is None else retain_graph
    found = _run(outputs, _root_grads(outputs, grad_outputs), retain_graph, create_graph,
                 capture={id(x) for x in inputs_t})
    result = []
    for i, x in enumerate(inputs_t):
        entry = found.get(id(x))
        if entry is None:
            if not allow_unused:
                raise RuntimeError(f"grad: input {i} (shape {x.shape}) was not used to compute the "
                                   "outputs; pass allow_unused=True to get None for it")
            result.append(Tensor._make(np.zeros_like(x.data), None) if materialize_grads else None)
        else:
            g = entry[1]
            if x._ctx is None and leaf_hooks:   # a non-leaf's hooks ran during the walk; a leaf's run here
                g = _run_hooks(x, g)
            result.append(g if create_graph else g.detach())
    return tuple(result)


# ------------------------------------------------------- numerical checking ---

def _outputs(value):
    """A function's result as a tuple of Tensors (it may return one Tensor or several)."""
    return (value,) if isinstance(value, Tensor) else tuple(value)


def _numerical_jacobian_vjp(fn, inputs, wanted, vs, eps):
    """Central-difference estimate of sum_k v_k^T J_k (output k) for each tensor in ``wanted``.

    ``fn`` is called with all of ``inputs``; only the ``wanted`` ones are
    perturbed, in place (float64 recommended).
    """
    def evaluate():
        # In the caller's grad mode, as in PyTorch: a function that differentiates inside (nl.grad
        # of its own result) needs the graph. Copies: an output that is a view of an input (x[0],
        # x.t()) would follow the next perturbation.
        return [np.array(o.data, dtype=np.float64) for o in _outputs(fn(*inputs))]

    out = []
    for x in wanted:
        g = np.zeros(x.shape, dtype=np.float64)
        flat = x.data.reshape(-1)  # a view: perturb in place
        if not np.shares_memory(flat, x.data):
            raise ValueError("gradcheck: inputs must be contiguous")
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + eps
            plus = evaluate()
            flat[i] = orig - eps
            minus = evaluate()
            flat[i] = orig
            # the difference first, then the projection: the other order loses digits to cancellation
            g.reshape(-1)[i] = sum(np.sum(v * (p - m)) for v, p, m in zip(vs, plus, minus)) / (2 * eps)
        out.append(g)
    return out


class GradcheckError(RuntimeError):
    """Raised by :func:`gradcheck` when autograd's gradient and the numerical one disagree."""


def _require_an_input_to_check(inputs):
    # With nothing to differentiate there is nothing to compare, and "True" would pass a check never made.
    if not any(isinstance(x, Tensor) and x.requires_grad for x in inputs):
        raise ValueError("gradcheck expects at least one input tensor to require gradient, "
                         "but none of them have requires_grad=True.")


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_exception=True):
    """Compare autograd's gradient of ``fn(*inputs)`` with central differences.

    ``inputs`` is a Tensor or a sequence of arguments; those that are Tensors
    requiring grad are checked, the others are passed through (ValueError if
    none requires grad). ``fn`` may return one Tensor or several. A random
    projection ``v`` of each output turns the check into one vector-Jacobian
    product per input. When they disagree, raises :class:`GradcheckError` (a
    RuntimeError, as PyTorch's) naming the input and the worst element (or
    returns False with ``raise_exception=False``); returns True otherwise.
    """
    inputs = _outputs(inputs)
    _require_an_input_to_check(inputs)
    rng = np.random.default_rng(seed)
    outs = _outputs(fn(*inputs))
    vs = [rng.standard_normal(o.shape) for o in outs]
    positions = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    wanted = [inputs[i] for i in positions]
    recorded = [(o, Tensor._make(v.astype(o.dtype), None)) for o, v in zip(outs, vs) if o.requires_grad]
    if recorded and wanted:
        analytic = grad([o for o, _ in recorded], wanted, grad_outputs=[v for _, v in recorded],
                        allow_unused=True)
    else:  # the outputs do not depend on the inputs (e.g. the gradient of a linear map)
        analytic = [None] * len(wanted)
    numeric = _numerical_jacobian_vjp(fn, inputs, wanted, vs, eps)
    for i, a, n in zip(positions, analytic, numeric):
        a = np.zeros_like(n) if a is None else a.data
        if not np.allclose(a, n, atol=atol, rtol=rtol):
            if not raise_exception:
                return False
            k = int(np.argmax(np.abs(a - n)))
            raise GradcheckError(f"gradcheck: input {i} (shape {n.shape}): analytic {a.reshape(-1)[k]!r} "
                                 f"vs numerical {n.reshape(-1)[k]!r} at flat index {k}")
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_exception=True):
    """Check second derivatives: gradcheck of the (differentiable) first gradient.

    The first gradient is taken with ``grad_outputs`` (one Tensor per output
    of ``fn``), or with random ones when None.
    """
    inputs = _outputs(inputs)
    _require_an_input_to_check(inputs)
    outs = _outputs(fn(*inputs))
    if grad_outputs is None:
        rng = np.random.default_rng(seed + 1)
        vs = [Tensor._make(rng.standard_normal(o.shape).astype(o.dtype), None) for o in outs]
    else:
        vs = list(_outputs(grad_outputs))
        if len(vs) != len(outs):
            raise ValueError(f"gradgradcheck: got {len(vs)} grad_outputs for {len(outs)} outputs")
        for k, (v, o) in enumerate(zip(vs, outs)):
            check_gradient(v, o, f"gradgradcheck: grad_outputs[{k}]")

    def first_grad_projection(*xs):
        with enable_grad():  # a caller under no_grad runs the numerical pass so; the first gradient needs a graph
            outs = _outputs(fn(*xs))
            recorded = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
            wanted = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
            gs = grad([o for o, _ in recorded], wanted, grad_outputs=[v for _, v in recorded],
                      create_graph=True, allow_unused=True) if recorded else ()
            total = None
            for g in gs:
                if g is not None:
                    s = (g * g).sum()
                    total = s if total is None else total + s
            # No first gradient at all (outputs independent of the inputs): zero, a constant
            return total if total is not None else Tensor._make(np.zeros((), np.float64), None)

    return gradcheck(first_grad_projection, inputs, eps=eps, atol=atol, rtol=rtol, seed=seed,
                     raise_exception=raise_exception)
