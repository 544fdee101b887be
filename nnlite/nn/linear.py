"""Linear (fully connected) layers and the layers that only reshape.

``Linear`` holds a weight of shape ``(out_features, in_features)`` — PyTorch's
layout, so ``y = x @ weight.T + bias`` — and works on any number of leading dims.
``Bilinear`` holds one matrix per output, a weight of shape
``(out_features, in1_features, in2_features)``, and combines two inputs.
``device`` is accepted and ignored (CPU only).
"""
import math

from .. import ops
from ..parameter import Parameter
from . import functional as F
from . import init
from ._checks import require_ints
from .module import Module

__all__ = ["Identity", "Linear", "Bilinear", "Flatten", "Unflatten"]


class Identity(Module):
    """Returns its input; a placeholder that accepts (and ignores) any arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x W^T + b for x of shape ``(*, in_features)``.

    Parameters: ``weight`` (out_features, in_features), kind "weight", and
    ``bias`` (out_features,), kind "bias" (absent with ``bias=False``).
    Default init (PyTorch's): ``kaiming_uniform_(weight, a=sqrt(5))``, i.e.
    U(-1/sqrt(in_features), 1/sqrt(in_features)), and the bias from the same range.

    >>> import nnlite as nl
    >>> layer = nl.nn.Linear(4, 3)
    >>> layer(nl.randn(2, 5, 4)).shape
    (2, 5, 3)
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        require_ints("Linear", in_features=in_features, out_features=out_features)
        if in_features < 0 or out_features < 0:
            raise ValueError(f"Linear: in_features and out_features must be >= 0, got "
                             f"in_features={in_features}, out_features={out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(ops.empty(out_features, in_features, dtype=dtype), kind="weight")
        if bias:
            self.bias = Parameter(ops.empty(out_features, dtype=dtype), kind="bias")
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        try:
            return F.linear(input, self.weight, self.bias)
        except ValueError:
            # F.linear's message names the weight's shape; name the layer instead. The
            # check runs only when something is already wrong, so a call costs nothing extra.
            self._check_input(input)
            raise

    def _check_input(self, input):
        shape = input.shape
        if not shape or shape[-1] != self.in_features:
            got = shape[-1] if shape else "no"
            raise ValueError(f"Linear(in_features={self.in_features}): input has {got} features "
                             f"(shape {tuple(shape)})")

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Bilinear(Module):
    """y_k = x1^T A_k x2 + b_k for x1 of shape ``(*, in1_features)`` and x2 of shape ``(*, in2_features)``.

    Every output feature k has its own matrix A_k, which weighs every product
    x1_i x2_j of a feature of one input with a feature of the other. Parameters:
    ``weight`` (out_features, in1_features, in2_features), kind "weight", the
    matrices stacked, and ``bias`` (out_features,), kind "bias" (absent with
    ``bias=False``). Default init (PyTorch's): both from
    U(-1/sqrt(in1_features), 1/sqrt(in1_features)).

    >>> import nnlite as nl
    >>> layer = nl.nn.Bilinear(4, 3, 2)
    >>> layer(nl.randn(5, 4), nl.randn(5, 3)).shape, layer.num_parameters()
    ((5, 2), 26)
    """

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        require_ints("Bilinear", in1_features=in1_features, in2_features=in2_features, out_features=out_features)
        if in1_features <= 0 or in2_features < 0 or out_features < 0:
            raise ValueError(f"Bilinear: in1_features must be > 0 and in2_features, out_features >= 0, got "
                             f"in1_features={in1_features}, in2_features={in2_features}, "
                             f"out_features={out_features}")
        self.in1_features, self.in2_features = int(in1_features), int(in2_features)
        self.out_features = int(out_features)
        self.weight = Parameter(ops.empty(out_features, in1_features, in2_features, dtype=dtype), kind="weight")
        if bias:
            self.bias = Parameter(ops.empty(out_features, dtype=dtype), kind="bias")
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1 / math.sqrt(self.in1_features)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        try:
            return F.bilinear(input1, input2, self.weight, self.bias)
        except ValueError:
            self._check_inputs(input1, input2)   # name the layer, not the function
            raise

    def _check_inputs(self, input1, input2):
        for name, t, features in (("input1", input1, self.in1_features), ("input2", input2, self.in2_features)):
            got = t.shape[-1] if t.ndim else "no"
            if got != features:
                raise ValueError(f"Bilinear(in1_features={self.in1_features}, in2_features={self.in2_features}): "
                                 f"{name} has {got} features, expected {features} (shape {tuple(t.shape)})")

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` into one (by default all but the batch dim)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return ops.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size`` (the inverse of Flatten)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        require_ints("Unflatten", dim=dim)
        for i, size in enumerate(unflattened_size):
            require_ints("Unflatten", **{f"unflattened_size[{i}]": size})
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input):
        n = input.ndim
        if not -n <= self.dim < n:
            expected = f"expected a dim in [{-n}, {n - 1}]" if n else "a 0-D input has no dim to split"
            raise IndexError(f"Unflatten(dim={self.dim}): dim {self.dim} is out of range for an input of "
                             f"{n} dims (shape {tuple(input.shape)}); {expected}")
        size = input.shape[self.dim]
        known = math.prod(s for s in self.unflattened_size if s != -1)
        if (-1 not in self.unflattened_size and known != size) or (known == 0 or size % known):
            raise ValueError(f"Unflatten(dim={self.dim}, unflattened_size={self.unflattened_size}): "
                             f"dim {self.dim} has size {size} (shape {tuple(input.shape)})")
        return ops.unflatten(input, self.dim, self.unflattened_size)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
