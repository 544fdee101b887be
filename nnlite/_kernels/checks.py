"""Argument checks shared by every kernel: the compiled wrappers and their NumPy twins.

A kernel reads raw memory, so before it runs, its arguments must be exactly what
the loop assumes. The rules are written once, here, with the one wording of each
error. The twins call these functions directly; the compiled wrappers run the
same tests inline (``_checks.pxd``) and call these functions when one fails, so
both backends raise the same exception with the same message.

* ``native`` — a byte-swapped array (``'>f4'`` on a little-endian machine) has
  the same dtype *kind* as a native one, but a C loop would read its bytes as
  garbage. Kernels refuse it; ``nl.tensor`` converts such data on the way in.
* ``index_array`` — integer inputs (class targets, embedding and pooling
  indices) are native-order int64.
* ``fits`` — products of sizes from different arrays (a convolution's output
  times its taps, a padded plane...) are checked with Python's exact integers,
  so that a huge or crafted shape cannot wrap around in the C arithmetic.
  ``allocatable`` checks the shape of a result a kernel makes from a size it is
  given (an embedding's rows, a pooling's input shape) against NumPy's own limit.
* ``separate`` — arrays a kernel writes in place must not overlap one another
  or its inputs.
* ``product_out`` — an array a matrix product writes its result into must hold
  it exactly as BLAS writes: the result's shape and dtype, rows stored one after
  another with unit column stride, and no two elements in one place.
* ``real_number`` — a scalar argument (a scale) is a Python or NumPy real
  number, not a string, an array or a Tensor that ``float()`` would also read.
  ``real_in`` adds a range (a probability), ``float32_number`` a finite float32
  (a quantization scale), ``hyperparameter`` an optimizer's range (in
  torch.optim's words); ``integer`` is the
  same for sizes, counts, indices and zero points (a bool or a float is not an
  int), ``flag`` for a switch (True or False), ``quantity`` for a
  normalisation's eps and momentum (a real number that is not a bool, in a
  range), ``divisor_override`` for an average pooling's divisor. The compiled wrappers test the
  common spelling inline (``_checks.pxd``) and call these for anything else, so
  a bad scalar gets the same words from both backends, never Cython's own
  conversion error (``must be real number, not str``, ``an integer is required``).
* ``step_state`` / ``norm_required`` — a recurrent step's state is 2-D before
  its shape is read; a normalisation kernel takes None only for the arrays in
  ``NORM_OPTIONAL`` (a missing gradient would be read as a pointer).
* ``scan_forward_operands`` / ``scan_backward_operands`` — the arrays of a
  recurrent layer's scan, whose shapes follow from the mode and from ``hs``;
  ``scan_row_blocks`` is the scans' plan (how the steps share the threads),
  which the kernel and the twin both follow.
* ``attention_operands`` — packed self-attention's arrays: the (N, L, 3E)
  ``qkv`` and what its shape implies for the heads, the mask, the incoming
  gradient and the saved weights.
"""
import math
import numbers
import sys

import numpy as np

__all__ = ["native", "index_array", "bool_mask", "float_array", "float_operands", "shaped_operands",
           "float_dtype", "same_float", "int_pair", "shape4", "fits", "allocatable", "separate", "in_place",
           "product_out", "real_number", "real_in", "float32_number", "hyperparameter", "HYPERPARAMETERS",
           "quantity", "integer", "padding_idx", "divisor_override", "flag", "INT64_MAX", "STEP", "SCAN_GATES", "SCAN_ROWS", "SCAN_MIN_BATCH",
           "SCAN_BLOCK_WEIGHT_BYTES", "SCAN_FORWARD_WRITTEN", "SCAN_BACKWARD_WRITTEN", "scan_mode",
           "scan_state", "scan_operands", "scan_forward_layout", "scan_backward_layout",
           "scan_forward_operands", "scan_backward_operands", "scan_row_blocks", "scan_blocks",
           "attention_operands"]

MAX_SIZE = sys.maxsize   # the largest Py_ssize_t: every element count and offset must fit


def native(op, name, a):
    """Refuse ``a`` when its bytes are not in the machine's order."""
    if not a.dtype.isnative:
        raise TypeError(f"{op}: {name} has non-native byte order (dtype {a.dtype.str!r}); convert it "
                        f"first, e.g. a.astype(a.dtype.newbyteorder('='))")


def index_array(op, name, a):
    """``a`` must be an int64 ndarray in the machine's byte order."""
    if not isinstance(a, np.ndarray) or a.dtype.kind != "i" or a.dtype.itemsize != 8:
        got = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
        raise TypeError(f"{op}: {name} must be an int64 numpy.ndarray, got {got}")
    native(op, name, a)


def bool_mask(op, name, arr):
    """``arr`` must be a bool ndarray (a mask a forward kernel kept)."""
    if not isinstance(arr, np.ndarray) or arr.dtype != np.bool_:
        got = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
        raise TypeError(f"{op}: {name} must be a bool numpy.ndarray, got {got}")


def float_array(op, name, arr):
    """``arr`` must be a float32 or float64 ndarray in the machine's byte order."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy.ndarray, got {type(arr).__name__}")
    if arr.dtype.kind != "f" or arr.dtype.itemsize not in (4, 8):
        raise TypeError(f"{op}: {name} must be float32 or float64, got {arr.dtype}")
    native(op, name, arr)


def float_operands(op, arrays, names):
    """Check that ``arrays`` are float32/float64 ndarrays of one dtype; return that dtype."""
    dtype = first = None
    for arr, name in zip(arrays, names):
        float_array(op, name, arr)
        if dtype is None:
            dtype, first = arr.dtype, name
        elif arr.dtype != dtype:
            raise TypeError(f"{op}: all operands must share one dtype, got {dtype} ({first}) "
                            f"and {arr.dtype} ({name})")
    return dtype


def step_state(op, name, state):
    """(B, H) of a recurrent step's (batch, hidden) state, read only once it is known to be 2-D."""
    if not isinstance(state, np.ndarray) or state.ndim != 2:
        raise ValueError(f"{op}: {name} must be a 2-D (batch, hidden) numpy.ndarray, got "
                         f"{type(state).__name__} of shape {getattr(state, 'shape', None)}")
    return state.shape


def fused_relu(op, activation):
    """True for ``activation="relu"``, False for None: the one activation the kernels fuse into
    a linear layer, a convolution or a batch norm; anything else is refused by name."""
    if activation is None:
        return False
    if isinstance(activation, str) and activation == "relu":
        return True
    raise ValueError(f"{op}: activation must be None or 'relu', got {activation!r}")


#: The arrays a normalisation kernel may be given as None; any other None is refused by name.
NORM_OPTIONAL = frozenset(("weight", "bias", "running_mean", "running_var", "relu_terms"))


def norm_required(op, named):
    """Refuse a None among ``named`` ((name, array) pairs) unless its name is in NORM_OPTIONAL."""
    for name, a in named:
        if a is None and name not in NORM_OPTIONAL:
            raise TypeError(f"{op}: {name} must be a numpy.ndarray, got None")


def shaped_operands(op, arrays, names, shapes, optional=()):
    """Arrays a kernel reads and writes as they are: float32/float64 of the dtype of the
    first one given, each of exactly its shape in ``shapes``, C-contiguous. An array whose name is
    in ``optional`` may be None. Returns the dtype."""
    dtype = first = None
    for arr, name, shape in zip(arrays, names, shapes):
        if arr is None and name in optional:
            continue
        float_array(op, name, arr)
        if dtype is None:
            dtype, first = arr.dtype, name
        elif arr.dtype != dtype:
            raise TypeError(f"{op}: {name} is {arr.dtype}, expected {dtype} (the dtype of {first})")
        if arr.shape != shape:
            raise ValueError(f"{op}: {name} must have shape {shape}, got {arr.shape}")
        if not arr.flags.c_contiguous:
            raise ValueError(f"{op}: {name} must be C-contiguous")
    return dtype


def float_dtype(op, named):
    """The one float dtype of the arrays in ``named`` ((name, array or None) pairs, None
    skipped): each a float32/float64 ndarray in native byte order, all of one dtype."""
    first = None
    for name, a in named:
        if a is None:
            continue
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{op}: {name} must be a NumPy array, got {type(a).__name__}")
        if a.dtype.kind != "f" or a.dtype.itemsize not in (4, 8):
            raise TypeError(f"{op}: {name} must be float32 or float64, got {a.dtype}")
        native(op, name, a)   # (a byte-swapped float32 is not np.float32: it is named here)
        if first is None:
            first = (name, a.dtype)
        elif a.dtype != first[1]:
            raise TypeError(f"{op}: all float operands must share one dtype; "
                            f"{first[0]} is {first[1]} but {name} is {a.dtype}")
    return None if first is None else first[1]


def same_float(op, **arrays):
    """All float operands are float32 or float64 and share one dtype."""
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{op}: {name} must be a NumPy array, got {type(a).__name__}")
    (first_name, first), *rest = arrays.items()
    if first.dtype != np.float32 and first.dtype != np.float64:
        raise TypeError(f"{op}: expected float32 or float64 arrays, got {first_name} of dtype {first.dtype}")
    for name, a in arrays.items():
        native(op, name, a)
    for name, a in rest:
        if a.dtype != first.dtype:
            raise TypeError(f"{op}: all float arrays must share one dtype, got {first_name} "
                            f"{first.dtype} and {name} {a.dtype}")


def int_pair(op, name, value, minimum):
    """A (h, w) pair of ints, each >= minimum and within int64 (the kernels' C sizes)."""
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v >= minimum
        for v in value)
    if not ok:
        raise ValueError(f"{op}: {name} must be a pair of ints >= {minimum}, got {value!r}")
    if value[0] > INT64_MAX or value[1] > INT64_MAX:
        raise ValueError(f"{op}: {name} must be a pair of ints >= {minimum} and at most {INT64_MAX}, "
                         f"got {value!r}")
    return int(value[0]), int(value[1])


def shape4(op, name, shape):
    """A 4-D shape given as a tuple of non-negative ints."""
    ok = isinstance(shape, (tuple, list)) and len(shape) == 4 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v >= 0
        for v in shape)
    if not ok:
        raise ValueError(f"{op}: {name} must be a 4-D shape (N, C, H, W) of non-negative ints, "
                         f"got {shape!r}")
    return tuple(int(v) for v in shape)


def fits(op, what, *factors):
    """The exact product of ``factors``; a ValueError when it exceeds the largest array index."""
    total = 1
    for f in factors:
        total *= int(f)
    if total > MAX_SIZE:
        raise ValueError(f"{op}: {what} is {' x '.join(str(int(f)) for f in factors)} = {total} "
                         f"elements, more than the largest array index ({MAX_SIZE})")
    return total


def allocatable(op, what, shape, itemsize):
    """Refuse a result of ``shape`` that NumPy cannot make: its non-zero dimensions times
    ``itemsize`` bytes beyond the largest array index (NumPy counts them even when another
    dimension is 0). Sizes a kernel is given, not read off an array, can ask for one."""
    total = itemsize
    for n in shape:
        total *= int(n) or 1
    if total > MAX_SIZE:
        raise ValueError(f"{op}: {what} would be an array of shape {tuple(shape)} with {itemsize}-byte "
                         f"elements, {total} bytes counting its non-zero dimensions, more than the "
                         f"largest array index ({MAX_SIZE})")


def separate(op, named, written=None):
    """No two of the (name, array) pairs in ``named`` (None skipped) share memory.

    With ``written`` (a set of names), only pairs that include a written array are
    checked: two inputs the kernel only reads may alias each other harmlessly.
    """
    present = [(n, a) for n, a in named if a is not None]
    for i, (name_a, a) in enumerate(present):
        for name_b, b in present[i + 1:]:
            if written is not None and name_a not in written and name_b not in written:
                continue
            if np.shares_memory(a, b):
                raise ValueError(f"{op}: {name_a} and {name_b} overlap in memory; "
                                 f"each buffer must be separate")


def in_place(op, name, a):
    """An array the kernel writes must be C-contiguous and writable."""
    if not (a.flags.c_contiguous and a.flags.writeable):
        raise ValueError(f"{op}: {name} is updated in place, so it must be C-contiguous "
                         f"and writable (got contiguous={a.flags.c_contiguous}, "
                         f"writable={a.flags.writeable})")


def product_out(op, out, shape, dtype):
    """``out`` can take a batched matrix product of ``shape`` and ``dtype`` where it lies.

    BLAS writes each (m, n) item row by row: unit column stride, rows a positive
    whole number of elements apart and at least n elements apart. The batch dims
    may have any strides that are whole elements, as long as no two elements of the
    result land in one place (the dims longer than 1, taken by growing absolute stride,
    each step past the span of those before it): items written by different
    threads must not share memory. An empty ``out`` needs only the shape and dtype.
    """
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{op}: out must be a numpy.ndarray, got {type(out).__name__}")
    native(op, "out", out)
    if out.dtype != dtype:
        raise TypeError(f"{op}: out must have the result's dtype {dtype}, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{op}: out must have the result's shape {tuple(shape)}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{op}: out must be writable")
    if out.size == 0:   # nothing is written (NumPy gives such arrays any strides, zeros too)
        return
    item = out.itemsize
    if not out.flags.aligned or any(s % item for s in out.strides):
        raise ValueError(f"{op}: out's strides must be whole elements of {item} bytes and its data "
                         f"aligned, got strides {out.strides}")
    rows, cols = out.shape[-2:]
    if (cols > 1 and out.strides[-1] != item) or (rows > 1 and out.strides[-2] < item * cols):
        raise ValueError(f"{op}: out's last two dims must be stored row by row, as BLAS writes them "
                         f"(column stride {item} bytes, row stride at least {item * cols}), "
                         f"got strides {out.strides}")
    extent = item
    for size, stride in sorted(((n, abs(s)) for n, s in zip(out.shape, out.strides) if n > 1),
                               key=lambda dim: dim[1]):
        if stride < extent:
            raise ValueError(f"{op}: out has elements that share memory (shape {out.shape}, strides "
                             f"{out.strides}); every element of the result needs its own place")
        extent += (size - 1) * stride


def is_int(value):
    """True for a Python or NumPy integer, but not for a bool (which Python counts as one) or
    a float that happens to be whole: the test every size, count and index argument needs."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def real_number(op, name, value):
    """``value`` as a float: a Python or NumPy real number (int, float, np.float32...).

    Anything else is refused, a string such as ``"0.5"`` as much as a one-element
    array or Tensor, although ``float()`` reads them all: the kernel treats the
    scale as a constant, and a Tensor's value read as one would lose its gradient
    without a word.
    """
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number (int, float or NumPy scalar), "
                        f"got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:   # an int beyond the largest float (about 1.8e308)
        got = (f"an int of {int(value).bit_length()} bits" if isinstance(value, numbers.Integral)
               else type(value).__name__)
        raise ValueError(f"{op}: {name} must be a real number within the float range, got {got}") from None


def _interval(low, high, low_open, high_open):
    return f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def real_in(op, name, value, low=-math.inf, high=math.inf, low_open=False, high_open=False):
    """``value`` as a float (``real_number``) that lies in the interval from ``low`` to ``high``
    (each end closed unless said open). A NaN lies in no interval: a probability of NaN is
    refused here, not computed with."""
    v = real_number(op, name, value)
    inside = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not inside:
        if high == math.inf and not high_open:
            words = f"> {low:g}" if low_open else f">= {low:g}"
        else:
            words = f"in {_interval(low, high, low_open, high_open)}"
        raise ValueError(f"{op}: {name} must be {words}, got {v!r}")
    return v


def float32_number(op, name, value, positive=False):
    """``value`` (a ``real_number``) as a np.float32 that is finite (a double beyond float32's
    range is not) and, with ``positive``, > 0 (a double too small for float32 rounds to 0):
    the scales and ranges of int8 quantization, computed in float32 steps."""
    v = real_number(op, name, value)
    with np.errstate(over="ignore"):
        f = np.float32(v)
    if not (np.isfinite(f) and (f > 0 or not positive)):
        words = "> 0 and finite" if positive else "finite"
        raise ValueError(f"{op}: {name} must be {words} as a float32, got {v!r}")
    return f


#: An optimizer's hyperparameters: the words torch.optim uses for each in its errors, and the
#: upper end of its range (every one is >= 0; None: no upper end; a beta is below 1).
HYPERPARAMETERS = {"lr": ("learning rate", None), "lr_decay": ("lr_decay value", None),
                   "eps": ("epsilon value", None), "weight_decay": ("weight_decay value", None),
                   "momentum": ("momentum value", None), "alpha": ("alpha value", None),
                   "beta1": ("beta parameter at index 0", 1.0),
                   "beta2": ("beta parameter at index 1", 1.0)}


def hyperparameter(op, name, value):
    """An optimizer hyperparameter ``name`` (a key of HYPERPARAMETERS) as a float: a real number
    (``real_number``) >= 0, and below 1 for a beta; NaN is refused. The range error is worded as
    torch.optim words it (``invalid learning rate: -0.1``), with the value as a float."""
    v = real_number(op, name, value)
    what, below = HYPERPARAMETERS[name]
    if not (v >= 0 and (below is None or v < below)):
        raise ValueError(f"{op}: invalid {what}: {v!r}")
    return v


INT64_MAX = 2 ** 63 - 1   # the largest value of a kernel's C integer (int64_t, Py_ssize_t)
STEP = "an int >= 1 (the count after incrementing)"   # an optimizer's step, as its errors say it


def integer(op, name, value, low=-INT64_MAX - 1, high=INT64_MAX, what=None):
    """``value`` as a Python int: a Python or NumPy integer (``is_int``: not a bool, not a
    float, even a whole one) in [low, high]. The bounds default to the int64 range, which the
    compiled kernels hold their integers in; ``what`` describes the value in the error instead
    of the range (``"an int >= 1 (the count after incrementing)"``)."""
    bounded_low, bounded_high = low > -INT64_MAX - 1, high < INT64_MAX
    if what is None:
        what = (f"an int in [{low}, {high}]" if bounded_low and bounded_high else
                f"an int >= {low}" if bounded_low else f"an int <= {high}" if bounded_high else "an int")
    if not is_int(value):
        raise TypeError(f"{op}: {name} must be {what}, got {type(value).__name__}")
    v = int(value)
    if v < low:
        limit = "" if bounded_low else f" and at least {low}"
        raise ValueError(f"{op}: {name} must be {what}{limit}, got {v}")
    if v > high:
        limit = "" if bounded_high else f" and at most {high}"
        raise ValueError(f"{op}: {name} must be {what}{limit}, got {v}")
    return v


def quantity(op, name, value, low=0.0, high=math.inf):
    """``value`` as a float (``real_in``) in [low, high], and not a bool: a normalisation's
    eps or momentum, where True is a mistake rather than the number 1. NaN is refused."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a real number (int, float or NumPy scalar), got bool")
    return real_in(op, name, value, low, high)


def divisor_override(op, value):
    """An average pooling's ``divisor_override`` as an int, or None (none): a non-zero int
    within int64 (PyTorch refuses 0 too), never a float or a bool."""
    if value is None:
        return None
    what = "None or a non-zero int"
    v = integer(op, "divisor_override", value, what=what)
    if v == 0:
        raise ValueError(f"{op}: divisor_override must be {what}, got 0")
    return v


def padding_idx(op, value, num_embeddings):
    """An embedding's padding row as an int: -1 (none) or one of its ``num_embeddings`` rows."""
    return integer(op, "padding_idx", value, -1, num_embeddings - 1,
                   what=f"-1 (none) or an int in [0, {num_embeddings})")


def flag(op, name, value):
    """``value`` as a bool: True or False (a Python or NumPy bool), or the int 0 or 1. Anything
    else is refused: the truth of a string, None or an array is no answer to a yes-or-no
    question (``"False"`` is true)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        if value == 0 or value == 1:
            return bool(value)
        raise ValueError(f"{op}: {name} must be True or False (or 0 or 1), got {int(value)}")
    raise TypeError(f"{op}: {name} must be a bool (True or False), got {type(value).__name__}")


# ------------------------------------------------------------ recurrent scans --

SCAN_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}   # gate blocks of W_hh's rows
SCAN_ROWS = 64                       # at most this many batch rows in a block of a scan's plan
SCAN_MIN_BATCH = 8                   # fewer rows than this: no blocks (too little to share)
SCAN_BLOCK_WEIGHT_BYTES = 512 * 1024  # W_hh up to this size: row blocks (each packs it every step)


def scan_blocks(B):
    """The blocks of batch rows of the row-block plan, as (start, stop): an even number of them
    (so two threads share them equally), each of at most SCAN_ROWS rows, their sizes within one
    of each other; block k is rows k*B//n up to (k+1)*B//n of the n blocks."""
    n = 2 * -(-B // (2 * SCAN_ROWS))
    return [(k * B // n, (k + 1) * B // n) for k in range(n)]


def scan_row_blocks(B, H, G, itemsize):
    """The recurrent scans' plan, from the shape alone (the kernel's and its twin's): True to
    cut the batch into the blocks of ``scan_blocks``, each carried through every time step by
    one thread; False to run each step over the whole batch, its product shared by BLAS's door.
    Blocks pay off when every block's one-thread product can afford to pack W_hh again each
    step (a W_hh that stays in a core's cache) and the batch is not too small to cut."""
    return B >= SCAN_MIN_BATCH and G * H * H * itemsize <= SCAN_BLOCK_WEIGHT_BYTES


def scan_mode(op, mode):
    """A recurrent scan's mode: one of SCAN_GATES' keys. Returns its number of gates."""
    if not isinstance(mode, str) or mode not in SCAN_GATES:
        raise ValueError(f"{op}: mode must be one of {sorted(SCAN_GATES)}, got {mode!r}")
    return SCAN_GATES[mode]


def scan_state(op, hs):
    """The states array of a scan, (T + 1, batch, hidden): returns (T, batch, hidden)."""
    float_array(op, "hs", hs)
    if hs.ndim != 3 or hs.shape[0] < 1:
        raise ValueError(f"{op}: hs must have shape (T + 1, batch, hidden), got {hs.shape}")
    return hs.shape[0] - 1, hs.shape[1], hs.shape[2]


def scan_operands(op, mode, operands, written):
    """``operands``: (name, array, shape) triples; shape None means the mode takes no such
    array and it must be None. Every other array: as ``shaped_operands`` says (``b_hh`` may be
    None); the ``written`` ones writable and sharing no memory with any other. Returns the dtype."""
    for name, arr, shape in operands:
        if shape is None and arr is not None:
            raise ValueError(f"{op}: {'a' if mode == 'GRU' else 'an'} {mode} scan takes no {name}; pass None")
    used = [(name, arr, shape) for name, arr, shape in operands if shape is not None]
    dtype = shaped_operands(op, [a for _, a, _ in used], [n for n, _, _ in used], [s for _, _, s in used],
                            optional=("b_hh",))
    for name, arr, _ in used:
        if name in written:
            in_place(op, name, arr)
    # the written arrays first, as the compiled check takes them (so both name a pair alike)
    pairs = sorted(((name, arr) for name, arr, _ in used), key=lambda pair: pair[0] not in written)
    separate(op, pairs, written=set(written))
    return dtype


SCAN_FORWARD_WRITTEN = ("hs", "cs", "gates")
SCAN_BACKWARD_WRITTEN = ("dgi", "dgh", "dh", "dc")


def scan_forward_layout(mode, T, B, H, G, gi, w_hh, b_hh, hs, cs, gates):
    """(name, array, shape) of each array of ``recurrent_scan_forward``; shape None: not taken."""
    lstm, gated = mode == "LSTM", mode in ("LSTM", "GRU")
    return [("gi", gi, (T, B, G * H)), ("w_hh", w_hh, (G * H, H)), ("b_hh", b_hh, (G * H,)),
            ("hs", hs, (T + 1, B, H)), ("cs", cs, (T + 1, B, H) if lstm else None),
            ("gates", gates, (T, B, 4 * H) if gated else None)]


def scan_backward_layout(mode, T, B, H, G, g, w_hh, hs, cs, gates, dgi, dgh, dh, dc):
    """(name, array, shape) of each array of ``recurrent_scan_backward``; shape None: not taken."""
    lstm, gated = mode == "LSTM", mode in ("LSTM", "GRU")
    return [("g", g, (T, 2 if lstm else 1, B, H)), ("w_hh", w_hh, (G * H, H)), ("hs", hs, (T + 1, B, H)),
            ("cs", cs, (T + 1, B, H) if lstm else None), ("gates", gates, (T, B, 4 * H) if gated else None),
            ("dgi", dgi, (T, B, G * H)), ("dgh", dgh, (T, B, G * H) if mode == "GRU" else None),
            ("dh", dh, (B, H)), ("dc", dc, (B, H) if lstm else None)]


def scan_forward_operands(op, mode, gi, w_hh, b_hh, hs, cs, gates):
    """Check a forward scan's arrays (``recurrent_scan_forward``); returns (dtype, T, B, H, G)."""
    G = scan_mode(op, mode)
    T, B, H = scan_state(op, hs)
    layout = scan_forward_layout(mode, T, B, H, G, gi, w_hh, b_hh, hs, cs, gates)
    return scan_operands(op, mode, layout, SCAN_FORWARD_WRITTEN), T, B, H, G


def scan_backward_operands(op, mode, g, w_hh, hs, cs, gates, dgi, dgh, dh, dc):
    """Check a backward scan's arrays (``recurrent_scan_backward``); returns (dtype, T, B, H, G)."""
    G = scan_mode(op, mode)
    T, B, H = scan_state(op, hs)
    layout = scan_backward_layout(mode, T, B, H, G, g, w_hh, hs, cs, gates, dgi, dgh, dh, dc)
    return scan_operands(op, mode, layout, SCAN_BACKWARD_WRITTEN), T, B, H, G


# ------------------------------------------------------- packed self-attention --

def attention_operands(op, qkv, num_heads, bias, grad=None, weights=None, backward=False):
    """Check packed self-attention's arrays; returns (dtype, N, L, H, d).

    ``qkv`` is (N, L, 3E) with E = H * d, Q, K and V side by side; ``bias`` None
    or (L, L); for the ``backward``, ``grad`` (the output's gradient, (N, L, E))
    and ``weights`` (the forward's softmax weights, (N, H, L, L)) are required.
    All float32 or float64 of one dtype, in the machine's byte order; any layout
    is read.
    """
    for name, a in [("qkv", qkv)] + ([("grad", grad), ("weights", weights)] if backward else []):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{op}: {name} must be a NumPy array, got {type(a).__name__}")
    if not isinstance(num_heads, numbers.Integral) or isinstance(num_heads, bool):
        raise TypeError(f"{op}: num_heads must be a positive int, got {type(num_heads).__name__}")
    if num_heads < 1:
        raise ValueError(f"{op}: num_heads must be a positive int, got {num_heads}")
    dtype = float_dtype(op, [("qkv", qkv), ("bias", bias), ("grad", grad), ("weights", weights)])
    if qkv.ndim != 3 or qkv.shape[2] % (3 * num_heads):
        raise ValueError(f"{op}: qkv must be (batch, sequence, 3 * embed_dim) with embed_dim divisible by "
                         f"num_heads={num_heads}, got shape {qkv.shape}")
    n, length, width = qkv.shape
    heads, d = int(num_heads), width // (3 * num_heads)
    fits(op, "the attention weights array", n, heads, length, length)
    for v in (length, width):   # leading dimensions of the heads' products
        if v > 2 ** 31 - 1:
            raise ValueError(f"{op}: dimension {v} is too large for 32-bit BLAS")
    for name, a, shape in (("bias", bias, (length, length)), ("grad", grad, (n, length, heads * d)),
                           ("weights", weights, (n, heads, length, length))):
        if a is not None and a.shape != shape:
            raise ValueError(f"{op}: {name} must have shape {shape} for qkv {qkv.shape} and "
                             f"num_heads={num_heads}, got {a.shape}")
    return dtype, n, length, heads, d
