"""PReLU: a rectifier whose negative slope is a parameter, one for all channels or one each.

He et al. (2015), "Delving Deep into Rectifiers": ``max(0, x) + a min(0, x)``
with ``a`` learned, 0.25 at the start. The slope is a parameter of kind
"scale", which ``param_groups_by_kind`` keeps out of weight decay (decay would
pull the slopes towards 0, a plain ReLU). The other rectifiers are in
``rectifier.py``.
"""
from .. import ops
from .._kernels.checks import is_int, real_number
from ..parameter import Parameter
from . import functional as F
from . import init as init_
from .module import Module

__all__ = ["PReLU"]


class PReLU(Module):
    """max(0, x) + a * min(0, x) with the negative slope ``a`` learned (He et al., 2015,
    "Delving Deep into Rectifiers").

    Parameter: ``weight`` (num_parameters,), kind "scale", every slope starting at
    ``init``. With ``num_parameters=1`` one slope serves the whole input; with
    ``num_parameters=C`` each channel (dim 1 of the input) has its own. An input of
    fewer than 2 dims has no channel dim and takes a single slope.

    >>> import nnlite as nl
    >>> act = nl.nn.PReLU(3)
    >>> act(nl.randn(2, 3, 5)).shape, act.weight.kind, act.weight.data.tolist()
    ((2, 3, 5), 'scale', [0.25, 0.25, 0.25])
    """

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        if not is_int(num_parameters):
            raise TypeError(f"PReLU: num_parameters must be an int, got {type(num_parameters).__name__} "
                            f"{num_parameters!r}")
        if num_parameters < 0:
            raise ValueError(f"PReLU: num_parameters must be >= 0, got {num_parameters}")
        self.num_parameters, self.init = int(num_parameters), real_number("PReLU", "init", init)
        # Kind "scale": each slope multiplies (the negative half of) one channel, shaped and
        # broadcast like a norm layer's gamma; it connects no unit to another, as a "weight"
        # does. param_groups_by_kind leaves "scale" out of weight decay, as He et al. ask for
        # the slopes: decay pulls them towards 0, that is towards a plain ReLU.
        self.weight = Parameter(ops.empty(self.num_parameters, dtype=dtype), kind="scale")
        self.reset_parameters()

    def reset_parameters(self):
        init_.constant_(self.weight, self.init)

    def forward(self, input):
        try:
            return F.prelu(input, self.weight)
        except ValueError:
            self._check_input(input)   # name the layer, not the function, when the shape is wrong
            raise

    def _check_input(self, input):
        n, shape = self.num_parameters, tuple(input.shape)
        if n != 1 and input.ndim < 2:
            raise ValueError(f"PReLU(num_parameters={n}): a {input.ndim}-D input has no channel dim "
                             f"and takes 1 slope, not {n} (shape {shape})")
        if n != 1 and shape[1] != n:
            raise ValueError(f"PReLU(num_parameters={n}): input has {shape[1]} channels in dim 1 "
                             f"(shape {shape})")

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"
