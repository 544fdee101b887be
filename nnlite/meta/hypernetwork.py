r"""Parameter generation: a hypernetwork (Ha, Dai & Le 2016, "HyperNetworks").

Instead of learning one set of target-network parameters, learn a network
:math:`h_\psi` that *produces* them from a description of the task:

.. math::

    \theta(z) = h_\psi(z), \qquad \hat y = f(x;\, \theta(z)).

Only :math:`\psi` is learned; the loss of the target network's predictions is
backpropagated through the generated :math:`\theta` into :math:`\psi` (end to
end). Here :math:`z` is a task embedding, e.g. a sinusoid's amplitude and
phase, and :math:`h_\psi` is a small MLP whose last layer emits every
parameter of the target, flattened. The generated parameters are an ordinary
dict of named tensors (:meth:`~nnlite.meta.HyperNetwork.generate`): they can be inspected,
or loaded into a copy of the target with ``load_state_dict``.

The output layer starts with small weights and a bias equal to the target's
own initial parameters, so at first every task gets the target's usual
initialisation and training moves away from it as the embedding proves useful.
"""
import numpy as np

from .. import nn
from .._kernels.checks import real_number
from ..autograd import no_grad
from ..func import functional_call
from .sinusoid import task_batched_call

__all__ = ["HyperNetwork"]


class HyperNetwork(nn.Module):
    """An MLP from a task embedding (``embedding_dim``) to every parameter of ``target``.

    ``target`` is only a template (its parameters are not learned here and it
    is not registered as a sub-module). ``forward(embedding, x)`` runs the
    target with the generated parameters; a 2-D ``embedding`` (T, E) generates
    one set per task and needs ``x`` of shape (T, N, in) and a target that
    :func:`~nnlite.meta.task_batched_call` can run.

    >>> import nnlite as nl
    >>> from nnlite.meta import HyperNetwork, sinusoid_mlp
    >>> hyper = HyperNetwork(sinusoid_mlp(hidden=8), embedding_dim=2)
    >>> params = hyper.generate(nl.tensor([[0.5, 0.2]]))
    >>> params["2.weight"].shape
    (1, 8, 8)
    """

    def __init__(self, target, embedding_dim, hidden=64, init_scale=1e-3):
        super().__init__()
        for what, value in (("embedding_dim", embedding_dim), ("hidden", hidden)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"HyperNetwork: {what} must be a positive integer, got {value!r}")
        if not isinstance(target, nn.Module):
            raise TypeError(f"HyperNetwork: expected the target to be an nn.Module, got {type(target).__name__}")
        if not np.isfinite(real_number("HyperNetwork", "init_scale", init_scale)):
            raise ValueError(f"HyperNetwork: init_scale must be finite, got {init_scale}")
        self.__dict__["target"] = target   # a template, not a sub-module: its own parameters are not learned
        self.shapes = [(name, p.shape) for name, p in target.named_parameters()]
        total = sum(int(np.prod(shape)) for _, shape in self.shapes)
        self.body = nn.Sequential(nn.Linear(embedding_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, total)
        with no_grad():
            self.head.weight.data *= init_scale
            self.head.bias.data[...] = np.concatenate([p.data.ravel() for p in target.parameters()])
        # The records say where these values came from, as every initialiser's record does.
        self.head.weight.init = {**(self.head.weight.init or {}), "scaled_by": init_scale}
        self.head.bias.init = {"scheme": "copied", "source": "the target's initial parameters"}

    @property
    def num_generated(self):
        """How many target parameters one embedding produces."""
        return int(self.head.out_features)

    def generate(self, embedding):
        """The target's parameters for ``embedding``: a dict name -> Tensor (leading task dim for 2-D input)."""
        flat = self.head(self.body(embedding))
        lead = flat.shape[:-1]
        params, start = {}, 0
        for name, shape in self.shapes:
            size = int(np.prod(shape))
            params[name] = flat[..., start:start + size].reshape(lead + tuple(shape))
            start += size
        return params

    def forward(self, embedding, x):
        params = self.generate(embedding)
        if embedding.ndim == 2:
            return task_batched_call(self.target, params, x)
        return functional_call(self.target, params, (x,))
