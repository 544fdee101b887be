"""Progressive neural networks: a new column of parameters per task, old columns frozen.

Rusu et al. (2016, "Progressive Neural Networks") never change a trained
parameter. Task k gets its own column (here an MLP); its layer l reads its own
layer l-1 *and*, through **lateral adapters** (a Linear each), layer l-1 of
every earlier column:

.. math::

    h^{(k)}_l = \\mathrm{relu}\\Big(W^{(k)}_l h^{(k)}_{l-1} + \\sum_{j<k} U^{(k:j)}_l h^{(j)}_{l-1}\\Big)

Earlier columns are frozen when a new one is added, so the outputs for old
tasks are bit for bit what they were: no forgetting, by construction (BWT = 0).
The features they learnt still help the new task through the adapters. The
price is growth: column k has ``k`` sets of adapters more than column 0, so
the parameter count grows faster than linearly with the number of tasks,
and the task identity must be known at test time to pick the column.
"""
from .. import nn
from .._kernels.checks import is_int
from ..nn import functional as F

__all__ = ["ProgressiveNetwork"]


class _Column(nn.Module):
    """One task's MLP plus the lateral adapters from each earlier column's hidden layers."""

    def __init__(self, sizes, num_previous):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
        # adapters[l - 1][j]: from column j's hidden layer l-1 into this column's layer l (l >= 1)
        self.adapters = nn.ModuleList([nn.ModuleList([nn.Linear(a, b, bias=False) for _ in range(num_previous)])
                                       for a, b in zip(sizes[1:-1], sizes[2:])])

    def forward(self, x, previous_hiddens):
        """``previous_hiddens[j]``: the list of hidden activations of earlier column j; returns (output, hiddens)."""
        hiddens, h = [], x
        for l, layer in enumerate(self.layers):
            z = layer(h)
            if l > 0:
                for adapter, other in zip(self.adapters[l - 1], previous_hiddens):
                    z = z + adapter(other[l - 1])
            if l == len(self.layers) - 1:
                return z, hiddens
            h = F.relu(z)
            hiddens.append(h)


class ProgressiveNetwork(nn.Module):
    """Columns of MLPs ``input_size -> hidden_sizes -> num_outputs``, one per task, with lateral adapters.

    >>> net = ProgressiveNetwork(40, hidden_sizes=(32, 32), num_outputs=10)
    >>> first, second = net.add_column(), net.add_column()
    >>> net.num_columns, [p.requires_grad for p in net.columns[0].parameters()][0]
    (2, False)
    >>> net.column_parameters()   # column 1 adds adapters of 32x32 and 32x10 weights
    [2698, 4042]
    """

    def __init__(self, input_size, hidden_sizes=(100, 100), num_outputs=10):
        super().__init__()
        self.sizes = (input_size, *hidden_sizes, num_outputs)
        self.columns = nn.ModuleList()

    @property
    def num_columns(self):
        return len(self.columns)

    def add_column(self):
        """Freeze every existing column and append a new trainable one; returns the new column."""
        for column in self.columns:
            column.freeze()
        column = _Column(self.sizes, self.num_columns)
        self.columns.append(column)
        return column

    def column_parameters(self):
        """How many parameters each column holds (its adapters included): the growth per task."""
        return [c.num_parameters() for c in self.columns]

    def forward(self, x, task):
        """The output of column ``task`` (columns after it are not run)."""
        if not is_int(task) or not 0 <= task < self.num_columns:
            raise IndexError(f"ProgressiveNetwork: task must be an integer in [0, {self.num_columns}), got {task!r}")
        hiddens = []
        for column in self.columns[:task + 1]:
            output, h = column(x, hiddens)
            hiddens.append(h)
        return output
