r"""DARTS: differentiable architecture search (Liu, Simonyan & Yang 2019).

A *cell* is a small directed acyclic graph. Node 0 is the cell's input; each
intermediate node :math:`j` sums one operation applied to every earlier node,
and the cell's output concatenates the intermediate nodes (a 1x1 convolution
brings the channels back). Which operation sits on each edge is the
architecture. DARTS makes that choice continuous: every edge :math:`(i, j)`
carries all candidates blended by the softmax of its row of the
*architecture parameters* :math:`\alpha` (a :class:`~nnlite.nas.MixedOp`).
The :math:`\alpha` are Parameters of kind ``"architecture"``, shared by every
cell of the network.

**Bilevel optimisation.** The weights :math:`w` should fit the training data;
the architecture should make the *trained* weights do well on held-out data:

.. math::

    \min_\alpha L_{val}(w^*(\alpha), \alpha) \quad\text{s.t.}\quad
    w^*(\alpha) = \arg\min_w L_{train}(w, \alpha).

:class:`BilevelSearch` alternates one step of each (the paper's Algorithm 1):
:math:`\alpha` descends the validation loss, then :math:`w` the training loss.
The *first-order* approximation uses the current :math:`w` for :math:`w^*`.
The *second-order* one looks one step ahead,
:math:`w' = w - \xi\nabla_w L_{train}(w, \alpha)`, whose gradient is

.. math::

    \nabla_\alpha L_{val}(w', \alpha) - \xi\, \nabla^2_{\alpha, w} L_{train}(w, \alpha)\,
    \nabla_{w'} L_{val}(w', \alpha),

and the mixed second derivative times a vector is approximated by central
differences (the paper's equation 8): with
:math:`w^\pm = w \pm \epsilon \nabla_{w'} L_{val}(w', \alpha)` and
:math:`\epsilon = 0.01 / \lVert\nabla_{w'} L_{val}(w', \alpha)\rVert`,

.. math::

    \nabla^2_{\alpha, w} L_{train}(w, \alpha)\, \nabla_{w'} L_{val}(w', \alpha) \approx
    \frac{\nabla_\alpha L_{train}(w^+, \alpha) - \nabla_\alpha L_{train}(w^-, \alpha)}{2\epsilon}.

The look-ahead weights are used through :func:`nnlite.func.functional_call`;
the network's own weights change only in the weight step.

**The derived architecture** (:func:`~nnlite.nas.derive_genotype`, the paper's section
2.4): for every intermediate node keep the ``k = 2`` strongest incoming edges
from distinct earlier nodes (all of them if it has fewer), where an edge's
strength is its largest softmax weight over the operations other than
``none``, and put on each kept edge that strongest operation. The discrete
network (:class:`~nnlite.nas.DerivedNetwork`) is then trained from scratch.
"""
from collections import namedtuple

import numpy as np

from .._kernels.checks import is_int, real_number
from .. import nn
from ..autograd import grad, no_grad
from ..func import functional_call
from ..nn import functional as F
from ..ops import cat, randn, softmax
from ..parameter import Parameter
from ..tensor import Tensor
from .operations import PRIMITIVES, MixedOp, make_operation

__all__ = ["Genotype", "SearchCell", "SearchNetwork", "derive_genotype", "DerivedNetwork", "BilevelSearch"]

Genotype = namedtuple("Genotype", ["edges", "steps"])
Genotype.__doc__ = """A derived cell: ``edges`` lists ``(operation, from_node, to_node)``; node 0 is the
cell input, nodes 1..``steps`` the intermediate nodes whose concatenation is the output."""


def _edge_index(steps):
    """(from_node, to_node) for every edge of a cell, in the order of the rows of alpha."""
    return [(i, j) for j in range(1, steps + 1) for i in range(j)]


class _CellOutput(nn.Module):
    """Concatenated intermediate nodes back to ``channels`` channels: ReLU, 1x1 Conv1d, BatchNorm."""

    def __init__(self, channels, steps, affine):
        super().__init__()
        self.conv = nn.Conv1d(channels * steps, channels, 1, bias=False)
        self.bn = nn.BatchNorm1d(channels, affine=affine)

    def forward(self, nodes):
        return self.bn(self.conv(F.relu(cat(nodes, dim=1))))


class SearchCell(nn.Module):
    """A cell with a MixedOp on every edge (weights given per edge in ``forward``)."""

    def __init__(self, channels, steps=3, primitives=PRIMITIVES):
        super().__init__()
        self.steps = steps
        self.edges = nn.ModuleList([MixedOp(channels, primitives) for _ in _edge_index(steps)])
        self.output = _CellOutput(channels, steps, affine=False)

    def forward(self, x, weights):
        nodes, e = [x], 0
        for _ in range(self.steps):
            total = None
            for i in range(len(nodes)):
                term = self.edges[e](nodes[i], weights[e])
                total = term if total is None else total + term
                e += 1
            nodes.append(total)
        return self.output(nodes[1:])


class _Backbone(nn.Module):
    """Stem, cells with a max-pool halving the length between them, global average pool, linear classifier."""

    def _build(self, channels, num_classes):
        self.stem = nn.Sequential(nn.Conv1d(1, channels, 3, padding=1, bias=False), nn.BatchNorm1d(channels))
        self.pool = nn.MaxPool1d(2)
        self.classifier = nn.Linear(channels, num_classes)

    def _run(self, x, cell_call):
        h = self.stem(x.unsqueeze(1) if x.ndim == 2 else x)
        for k, cell in enumerate(self.cells):
            if k:
                h = self.pool(h)
            h = cell_call(cell, h)
        return self.classifier(h.mean(dim=-1))


class SearchNetwork(_Backbone):
    """The over-parameterised network of the search on (N, L) or (N, 1, L) signals, e.g. MNIST-1D.

    ``alpha`` (edges x operations, kind ``"architecture"``) is shared by all
    ``cells``; :meth:`weights` are all the other parameters.

    >>> import nnlite as nl
    >>> net = nl.nas.SearchNetwork(channels=4, cells=1, steps=2)
    >>> net.alpha.kind, net.alpha.shape, net(nl.randn(2, 40)).shape
    ('architecture', (3, 8), (2, 10))
    """

    def __init__(self, channels=16, cells=2, steps=3, num_classes=10, primitives=PRIMITIVES):
        super().__init__()
        self._build(channels, num_classes)
        self.steps, self.primitives = steps, tuple(primitives)
        self.cells = nn.ModuleList([SearchCell(channels, steps, primitives) for _ in range(cells)])
        self.alpha = Parameter(randn(len(_edge_index(steps)), len(self.primitives)) * 1e-3, kind="architecture")

    def forward(self, x):
        weights = softmax(self.alpha, dim=-1)
        return self._run(x, lambda cell, h: cell(h, weights))

    def weights(self):
        """The ordinary parameters (every kind but ``"architecture"``)."""
        return [p for p in self.parameters() if p.kind != "architecture"]

    def arch_parameters(self):
        return [p for p in self.parameters() if p.kind == "architecture"]

    def genotype(self, k=2):
        return derive_genotype(self.alpha.data, self.steps, self.primitives, k)


def derive_genotype(alpha, steps, primitives=PRIMITIVES, k=2):
    """The discrete cell of architecture parameters ``alpha`` (edges x operations) by DARTS' rule.

    >>> import numpy as np
    >>> alpha = np.zeros((3, len(PRIMITIVES)))
    >>> alpha[0, PRIMITIVES.index("conv_3")] = 2.0       # edge 0 -> 1
    >>> alpha[1, PRIMITIVES.index("none")] = 9.0         # edge 0 -> 2: "none" is ignored ...
    >>> alpha[1, PRIMITIVES.index("conv_5")] = 1.0       # ... so conv_5 is its best operation
    >>> alpha[2, PRIMITIVES.index("skip_connect")] = 3.0  # edge 1 -> 2
    >>> derive_genotype(alpha, steps=2).edges
    [('conv_3', 0, 1), ('conv_5', 0, 2), ('skip_connect', 1, 2)]
    """
    if not is_int(k) or k < 1:
        raise ValueError(f"derive_genotype: k (inputs kept per node) must be an integer >= 1, got {k!r}")
    alpha = np.asarray(getattr(alpha, "data", alpha), dtype=np.float64)
    edges = _edge_index(steps)
    if alpha.shape != (len(edges), len(primitives)):
        raise ValueError(f"derive_genotype: alpha must have shape (edges, operations) = "
                         f"{(len(edges), len(primitives))} for steps={steps}, got {alpha.shape}")
    weights = np.exp(alpha - alpha.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    usable = [o for o, name in enumerate(primitives) if name != "none"]
    chosen = []
    for j in range(1, steps + 1):
        rows = [e for e, (_, to) in enumerate(edges) if to == j]
        best_op = {e: max(usable, key=lambda o: weights[e, o]) for e in rows}
        strongest = sorted(rows, key=lambda e: -weights[e, best_op[e]])[:k]
        for e in sorted(strongest, key=lambda e: edges[e][0]):
            chosen.append((primitives[best_op[e]], edges[e][0], j))
    return Genotype(chosen, steps)


class _DerivedCell(nn.Module):
    def __init__(self, genotype, channels):
        super().__init__()
        self.genotype = genotype
        self.ops = nn.ModuleList([make_operation(name, channels, affine=True) for name, _, _ in genotype.edges])
        self.output = _CellOutput(channels, genotype.steps, affine=True)

    def forward(self, x):
        nodes = [x] + [None] * self.genotype.steps
        for op, (_, i, j) in zip(self.ops, self.genotype.edges):
            term = op(nodes[i])
            nodes[j] = term if nodes[j] is None else nodes[j] + term
        # A node with no kept edge (only possible with k=0) contributes zeros.
        return self.output([n if n is not None else x * 0.0 for n in nodes[1:]])


class DerivedNetwork(_Backbone):
    """The discrete network of a :class:`Genotype`, with the search network's skeleton, trained from scratch."""

    def __init__(self, genotype, channels=16, cells=2, num_classes=10):
        super().__init__()
        if not isinstance(genotype, Genotype):
            raise TypeError(f"DerivedNetwork: expected a Genotype, got {type(genotype).__name__}")
        self._build(channels, num_classes)
        self.cells = nn.ModuleList([_DerivedCell(genotype, channels) for _ in range(cells)])

    def forward(self, x):
        return self._run(x, lambda cell, h: cell(h))


class BilevelSearch:
    """One DARTS step per call: the architecture on a validation batch, then the weights on a training batch.

    ``weight_optimizer`` holds ``model.weights()``, ``arch_optimizer``
    ``model.arch_parameters()`` (the paper: SGD with momentum and Adam
    lr 3e-4). With ``second_order=True`` the look-ahead step size ``xi``
    defaults to the weight optimizer's learning rate at each step, as in the
    paper (a schedule that lowers the rate shortens the look-ahead too), and the
    finite-difference step is ``epsilon`` divided by the norm of the
    validation gradient (the paper's 0.01).
    ``latency`` (one cost per operation, as
    :meth:`nnlite.nas.LatencyTable.costs` returns, or None) and ``latency_weight`` :math:`\\lambda` add the
    expected latency :math:`\\lambda \\sum_{edges} \\mathrm{softmax}(\\alpha_e) \\cdot t`
    to the architecture's objective (hardware-aware search).
    """

    def __init__(self, model, weight_optimizer, arch_optimizer, second_order=False, xi=None, epsilon=0.01,
                 latency=None, latency_weight=0.0, loss_fn=F.cross_entropy):
        from ..optim.optimizer import Optimizer
        if not isinstance(model, SearchNetwork):
            raise TypeError(f"BilevelSearch: expected a SearchNetwork, got {type(model).__name__}")
        for name, given in (("weight_optimizer", weight_optimizer), ("arch_optimizer", arch_optimizer)):
            if not isinstance(given, Optimizer):
                raise TypeError(f"BilevelSearch: expected {name} to be an nl.optim.Optimizer, "
                                f"got {type(given).__name__}")
        for name, value, low in (("xi", 0.0 if xi is None else xi, 0.0), ("latency_weight", latency_weight, 0.0)):
            if not low <= real_number("BilevelSearch", name, value) < np.inf:
                raise ValueError(f"BilevelSearch: {name} must be a finite number >= 0, got {value}")
        if not 0 < real_number("BilevelSearch", "epsilon", epsilon) < np.inf:
            raise ValueError(f"BilevelSearch: epsilon must be a finite number > 0, got {epsilon}")
        operations = model.alpha.shape[-1]
        if latency is not None and (np.shape(latency) != (operations,) or not np.isfinite(latency).all()):
            raise ValueError(f"BilevelSearch: latency must hold one finite cost per operation ({operations}), "
                             f"got {latency}")
        self.model, self.weight_optimizer, self.arch_optimizer = model, weight_optimizer, arch_optimizer
        self.second_order = bool(second_order)
        self._xi = None if xi is None else float(xi)
        self.epsilon = float(epsilon)
        self.latency = None if latency is None else np.asarray(latency, dtype=np.float64)
        self.latency_weight, self.loss_fn = float(latency_weight), loss_fn
        self._arch_names = [k for k, p in model.named_parameters() if p.kind == "architecture"]

    @property
    def xi(self):
        """The look-ahead step size: the one given, else the weight optimizer's learning rate now."""
        return float(self.weight_optimizer.param_groups[0]["lr"]) if self._xi is None else self._xi

    def expected_latency(self):
        """:math:`\\sum_e \\mathrm{softmax}(\\alpha_e) \\cdot t`, differentiable in alpha (None without a table)."""
        if self.latency is None:
            return None
        table = Tensor(self.latency.astype(self.model.alpha.data.dtype))
        return (softmax(self.model.alpha, dim=-1) * table).sum()

    def _loss(self, weights, x, y):
        """The loss with ``weights`` (a dict by name) in place of the network's own."""
        return self.loss_fn(functional_call(self.model, weights, (x,)), y)

    def _frozen_weights(self):
        # Weights that do not train (requires_grad=False) are left out: the forward reads the
        # model's own, and the look-ahead step moves none of them.
        return {k: p.detach() for k, p in self.model.named_parameters()
                if k not in self._arch_names and p.requires_grad}

    def _frozen_architecture(self):
        return {k: p.detach() for k, p in self.model.named_parameters() if k in self._arch_names}

    def architecture_loss(self, train_batch, val_batch):
        """The scalar whose gradient with respect to alpha is the architecture gradient (first or second order).

        No weight appears in it as a variable: the weights enter as constants,
        so ``backward()`` reaches only the architecture parameters.
        """
        x_val, y_val = val_batch
        if not self.second_order:
            objective = self._loss(self._frozen_weights(), x_val, y_val)
        else:
            objective = self._unrolled_objective(train_batch, x_val, y_val)
        if self.latency is not None and self.latency_weight:
            objective = objective + self.latency_weight * self.expected_latency()
        return objective

    def _unrolled_objective(self, train_batch, x_val, y_val):
        """L_val(w', alpha) - xi/(2 eps) (L_train(w+, alpha) - L_train(w-, alpha)), weights as constants."""
        x_train, y_train = train_batch
        xi = self.xi
        alpha_fixed = self._frozen_architecture()
        leaves = {k: v.detach().requires_grad_() for k, v in self._frozen_weights().items()}
        g_train = grad(self._loss({**leaves, **alpha_fixed}, x_train, y_train), list(leaves.values()))
        with no_grad():
            ahead = {k: (w - xi * g).detach() for (k, w), g in zip(leaves.items(), g_train)}
        for w in ahead.values():
            w.requires_grad_()
        val = self._loss(ahead, x_val, y_val)                      # alpha is live here
        v = grad(val, list(ahead.values()), retain_graph=True)   # grad_{w'} L_val(w', alpha)
        norm = float(np.sqrt(sum(float((g.data.astype(np.float64) ** 2).sum()) for g in v)))
        eps = self.epsilon / max(norm, 1e-12)
        with no_grad():
            w_plus = {k: (w.detach() + eps * g).detach() for (k, w), g in zip(leaves.items(), v)}
            w_minus = {k: (w.detach() - eps * g).detach() for (k, w), g in zip(leaves.items(), v)}
        # Differentiating this difference with respect to alpha gives the paper's equation 8.
        difference = self._loss(w_plus, x_train, y_train) - self._loss(w_minus, x_train, y_train)
        return val - difference * (xi / (2 * eps))

    def step(self, train_batch, val_batch):
        """One architecture step, then one weight step; returns ``{"train_loss", "architecture_loss"}``."""
        self.arch_optimizer.zero_grad()
        arch = self.architecture_loss(train_batch, val_batch)
        arch.backward()
        self.arch_optimizer.step()

        x, y = train_batch
        self.weight_optimizer.zero_grad()
        train = self._loss(self._frozen_architecture(), x, y)
        train.backward()
        self.weight_optimizer.step()
        return {"train_loss": float(train.data), "architecture_loss": float(arch.data)}
