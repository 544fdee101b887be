"""Floating-point operations of a forward pass, counted layer by layer.

A multiply-add counts as **2 FLOPs** (one multiply, one add), the convention of
most papers that report model cost. Only the products that dominate a network's
cost are counted; elementwise work (bias additions, activations, normalisation,
softmax) is left out, as it usually is:

* ``Linear(in, out)``: ``2 * in * out`` per row of the input (every leading
  dimension is a row).
* ``Conv1d`` / ``Conv2d``: ``2 * (C_in / groups) * kh * kw`` per output element,
  since every output value is a dot product over one group's input channels
  and the kernel window.
* ``ConvTranspose1d`` / ``ConvTranspose2d``: ``2 * (C_out / groups) * kh * kw``
  per *input* element, since every input value is spread over a window of one
  group's output channels (the count of the convolution it is the adjoint of).
* ``MultiheadAttention`` with ``N`` sequences, ``L`` queries, ``S`` keys and
  width ``E``: the input projections ``2 * N * (L * E * E + S * kdim * E + S *
  vdim * E)``, the scores ``Q K^T`` ``2 * N * L * S * E`` and the weighted sum
  of values ``2 * N * L * S * E`` (summed over heads, each of width E / H); the
  output projection is a Linear and is counted as one. Called with its query
  and key by keyword, it is counted from its output and attention weights.

The counts come from forward hooks on the layers (see
:meth:`~nnlite.nn.Module.register_forward_hook`), so they follow the shapes the
example input really produces. A product written with ``F.linear`` or ``@`` in
a custom ``forward`` is not a layer and is not seen. Results are for the whole
example batch: divide by the batch size for FLOPs per sample.
"""
import math
from collections import OrderedDict

from ..autograd import no_grad
from ..nn import MultiheadAttention
from ..nn.conv import _ConvNd, _ConvTransposeNd
from ..nn.linear import Linear
from ..nn._checks import require_module
from ..random import get_rng_state, set_rng_state
from ._batches import buffers_kept

__all__ = ["flops", "flops_by_layer"]


def _linear_flops(module, args, output):
    rows = output.numel() // module.out_features if module.out_features else 0
    return 2 * module.in_features * module.out_features * rows


def _conv_flops(module, args, output):
    window = (module.in_channels // module.groups) * math.prod(module.kernel_size)
    return 2 * window * output.numel()


def _conv_transpose_flops(module, args, output):
    window = (module.out_channels // module.groups) * math.prod(module.kernel_size)
    return 2 * window * args[0].numel()


def _attention_flops(module, args, output):
    E = module.embed_dim
    N, L, S = _attention_sizes(module, args, output)
    projections = 2 * N * (L * E * E + S * module.kdim * E + S * module.vdim * E)
    # A learned bias key/value and a zero key/value each add one key every query attends to.
    keys = S + (module.bias_k is not None) + bool(module.add_zero_attn)
    products = 2 * (2 * N * L * keys * E)   # Q K^T and weights @ V
    return projections + products


def _attention_sizes(module, args, output):
    """``(N, L, S)`` of an attention call: from the query and the key, or, when they were passed by
    keyword (forward hooks see positional arguments only), from the output, which has the query's
    shape, and the attention weights, whose last dimension is the key's length."""
    attended, weights = output
    if len(args) >= 2:
        N, L = _batch_and_length(module, args[0].shape)
        return N, L, _batch_and_length(module, args[1].shape)[1]
    if weights is None:
        raise TypeError(f"flops: {type(module).__name__} was called with its query and key by keyword and "
                        f"need_weights=False, which leaves their lengths unknown; pass them by position")
    N, L = _batch_and_length(module, attended.shape)
    return N, L, weights.shape[-1]


def _batch_and_length(module, shape):
    """Batch size and sequence length of an attention input (or output) of ``shape``."""
    if len(shape) == 2:   # unbatched (length, embed_dim)
        return 1, shape[0]
    return (shape[0], shape[1]) if module.batch_first else (shape[1], shape[0])


# Layer type -> FLOPs of one call from (module, positional args, output). The first type that
# matches counts, so a subclass (a transposed convolution is a _ConvNd) comes before its base.
_COUNTERS = ((Linear, _linear_flops), (_ConvTransposeNd, _conv_transpose_flops), (_ConvNd, _conv_flops),
             (MultiheadAttention, _attention_flops))


def _counter(module):
    for kind, count in _COUNTERS:
        if isinstance(module, kind):
            return count
    return None


def flops_by_layer(model, example_input):
    """FLOPs of one forward pass of ``example_input``, per counted layer.

    Returns an ordered ``{module name: FLOPs}`` with every Linear, convolution
    and MultiheadAttention layer of ``model`` (a layer called twice is counted
    twice; a layer never called has 0). ``example_input`` is one input or a
    tuple of positional inputs. The forward pass runs without gradients and
    leaves the buffers (BatchNorm's running statistics) and the global random
    generator (dropout) as they were.

    >>> import nnlite as nl
    >>> model = nl.nn.Sequential(nl.nn.Linear(10, 20), nl.nn.ReLU(), nl.nn.Linear(20, 5))
    >>> dict(flops_by_layer(model, nl.randn(3, 10)))
    {'0': 1200, '2': 600}
    """
    counts, handles = OrderedDict(), []
    for name, module in require_module(model, "flops_by_layer").named_modules():
        count = _counter(module)
        if count is None:
            continue
        counts[name] = 0

        def hook(module, args, output, name=name, count=count):
            counts[name] += int(count(module, args, output))
        handles.append(module.register_forward_hook(hook))
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    # Counting draws nothing: a training model's dropout masks would move the global generator,
    # and with it every later random number of the run the count was taken in.
    rng = get_rng_state()
    try:
        with no_grad(), buffers_kept(model):
            model(*inputs)
    finally:
        set_rng_state(rng)
        for h in handles:
            h.remove()
    return counts


def flops(model, example_input):
    """Total forward FLOPs of ``model`` on ``example_input`` (a multiply-add is 2).

    The sum of :func:`flops_by_layer`; see this module's docstring for what is
    counted. For ``Linear(in, out)`` on a batch of ``n`` rows that is
    ``2 * n * in * out``:

    >>> import nnlite as nl
    >>> flops(nl.nn.Linear(40, 10), nl.randn(100, 40))
    80000
    """
    return int(sum(flops_by_layer(model, example_input).values()))
