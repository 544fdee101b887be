"""Gates and temperature: multiplicative controls learned by the network.

A gate is a number in (0, 1) — a sigmoid of something learned — that scales
how much of a signal passes. GLU gates half of its input with the other half;
LSTM and GRU (``recurrent.py``) gate what a memory keeps and forgets. A
temperature is one learned scalar that sharpens or flattens a softmax.
"""
import math

from .. import ops
from ..parameter import Parameter
from ..tensor import Tensor
from . import init as init_
from .module import Module

__all__ = ["GLU", "Temperature", "glu"]


def glu(input, dim=-1):
    """GLU(a, b) = a * sigmoid(b), where a and b are the two halves of ``input`` along ``dim``.

    >>> import nnlite as nl
    >>> glu(nl.randn(4, 6)).shape
    (4, 3)
    """
    if input.ndim == 0 or input.shape[dim] % 2:
        size = input.shape[dim] if input.ndim else "no"
        raise ValueError(f"glu: dim {dim} must have an even size to split in halves, got {size} "
                         f"(shape {tuple(input.shape)})")
    a, b = ops.chunk(input, 2, dim)
    return a * ops.sigmoid(b)


class GLU(Module):
    """Gated linear unit: the first half of the features, gated by the sigmoid of the second.

    Dauphin et al. (2017), "Language Modeling with Gated Convolutional
    Networks". No parameters of its own: put a Linear (or Conv) producing 2n
    features in front, and the gate is learned by that layer. The gradient
    through ``a`` is never squashed (no saturation on the linear path), which
    is why gated units (GLU, SwiGLU) train deep stacks well.
    """

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return glu(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Temperature(Module):
    """Divide logits by a learned positive temperature T: ``logits / T``.

    The parameter is ``log_temperature`` (kind "temperature") and
    T = exp(log_temperature), so T stays positive whatever step the optimizer
    takes, and equal steps in log space scale T by equal factors.

    Uses:

    * **Calibration** (Guo et al., 2017, "On Calibration of Modern Neural
      Networks"): after training, freeze the network and fit T alone on a
      validation set by minimising cross-entropy. T > 1 softens over-confident
      probabilities; the argmax (accuracy) never changes.
    * **Contrastive learning** (CLIP, Radford et al., 2021): similarities of
      normalised embeddings lie in [-1, 1], far too flat for a softmax; a
      learned T (CLIP stores its inverse, starting at 1/0.07) sharpens them.

    >>> import nnlite as nl
    >>> t = Temperature(init=2.0)
    >>> t(nl.tensor([2.0, 4.0])).data.tolist()
    [1.0, 2.0]
    """

    def __init__(self, init=1.0, dtype=None):
        super().__init__()
        if not init > 0:
            raise ValueError(f"Temperature(init={init}): the temperature must be positive")
        self.log_temperature = Parameter(ops.empty((), dtype=dtype), kind="temperature")
        init_.constant_(self.log_temperature, math.log(init))

    @property
    def temperature(self):
        """The current T = exp(log_temperature), as a Tensor (differentiable)."""
        return ops.exp(self.log_temperature)

    def forward(self, logits):
        if not isinstance(logits, Tensor):
            raise TypeError(f"Temperature: expected a Tensor of logits, got {type(logits).__name__}")
        return logits / self.temperature

    def extra_repr(self):
        return f"temperature={float(math.exp(self.log_temperature.data)):.4g}"
