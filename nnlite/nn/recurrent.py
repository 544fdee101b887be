"""Recurrent layers: RNN, LSTM and GRU, as cells (one step) and as layers (a sequence).

A recurrent layer applies the same cell at every time step, carrying a state
from one step to the next; backpropagation through time is just the chain rule
through that unrolled loop. The gated cells learn *gates* (sigmoids in (0, 1))
that decide what the state keeps, so gradients survive long sequences:

    LSTM  i = σ(W_ii x + b_ii + W_hi h + b_hi)     input gate
          f = σ(W_if x + b_if + W_hf h + b_hf)     forget gate
          g = tanh(W_ig x + b_ig + W_hg h + b_hg)  candidate cell
          o = σ(W_io x + b_io + W_ho h + b_ho)     output gate
          c' = f * c + i * g,    h' = o * tanh(c')
    GRU   r = σ(W_ir x + b_ir + W_hr h + b_hr)     reset gate
          z = σ(W_iz x + b_iz + W_hz h + b_hz)     update gate
          n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
          h' = (1 - z) * n + z * h

Parameters, PyTorch's names and layout: ``weight_ih`` (G*hidden, input) and
``weight_hh`` (G*hidden, hidden) stack the G gates' weights row-blocks in the
order above (LSTM i, f, g, o; GRU r, z, n; G = 4, 3, 1 for LSTM, GRU, RNN), and
``bias_ih``, ``bias_hh`` (G*hidden,) likewise. Layers suffix them ``_l{k}``
(layer k) and ``_reverse`` (backward direction). They are gate parameters, but
their ``kind`` is "weight" / "bias" (what they are, matrix or offset) so
weight decay and counts treat them like any other layer's. All are initialised
U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as in PyTorch. ``device`` is
accepted and ignored (CPU only).

The cells run the step above as readable operations (``gate_math`` in
``nnlite/ops/recurrent.py``). The layers compute the same steps through
``recurrent_scan``: the whole sequence as one graph node, each direction of
it one kernel call forward and one backward (an LSTM with ``proj_size`` runs
the readable step at every time step instead).
"""
import math
import numbers

from .. import ops
from ..ops.recurrent import GATES as _GATES, gate_math, recurrent_scan
from ..parameter import Parameter
from . import functional as F
from . import init
from ._checks import require_ints
from .module import Module

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU"]


def _rnn_step(gi, h, w_hh, b_hh, mode):
    """One step given the input projection ``gi = W_ih x + b_ih``; state is (h,) or (h, c)."""
    return gate_math(gi, F.linear(h[0], w_hh, b_hh), h, mode)


def _check_features(owner, name, t, size):
    if t.ndim == 0 or t.shape[-1] != size:
        got = t.shape[-1] if t.ndim else "no"
        raise ValueError(f"{owner}: {name} has {got} features, expected {size} (shape {tuple(t.shape)})")


class _CellBase(Module):
    mode = None

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        require_ints(type(self).__name__, input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size, self.bias = int(input_size), int(hidden_size), bias
        rows = _GATES[self.mode] * self.hidden_size
        self.weight_ih = Parameter(ops.empty(rows, self.input_size, dtype=dtype), kind="weight")
        self.weight_hh = Parameter(ops.empty(rows, self.hidden_size, dtype=dtype), kind="weight")
        if bias:
            self.bias_ih = Parameter(ops.empty(rows, dtype=dtype), kind="bias")
            self.bias_hh = Parameter(ops.empty(rows, dtype=dtype), kind="bias")
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _step(self, input, state):
        """Validate, add a batch dim to unbatched input, run one step, and take it away again."""
        name = f"{type(self).__name__}(input_size={self.input_size}, hidden_size={self.hidden_size})"
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: expected input of shape (batch, {self.input_size}) or "
                             f"({self.input_size},), got {tuple(input.shape)}")
        _check_features(name, "input", input, self.input_size)
        batched = input.ndim == 2
        x = input if batched else ops.unsqueeze(input, 0)
        if state is None:
            zeros = ops.zeros(x.shape[0], self.hidden_size, dtype=x.dtype)
            state = (zeros,) * (2 if self.mode == "LSTM" else 1)
        else:
            want = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
            for s in state:
                if tuple(s.shape) != want:
                    raise ValueError(f"{name}: expected a hidden state of shape {want}, got {tuple(s.shape)}")
            state = state if batched else tuple(ops.unsqueeze(s, 0) for s in state)
        out = _rnn_step(F.linear(x, self.weight_ih, self.bias_ih), state, self.weight_hh,
                        self.bias_hh, self.mode)
        return out if batched else tuple(ops.squeeze(s, 0) for s in out)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")
        # only RNNCell has a nonlinearity to choose; PyTorch names it when it is not tanh
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(_CellBase):
    """h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu): the plain recurrent step."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.__dict__["mode"] = "RNN_" + nonlinearity.upper()   # before the base sizes the weights from it
        super().__init__(input_size, hidden_size, bias, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        return self._step(input, None if hx is None else (hx,))[0]


class LSTMCell(_CellBase):
    """One LSTM step (Hochreiter & Schmidhuber, 1997): ``(h', c') = cell(x, (h, c))``."""
    mode = "LSTM"

    def forward(self, input, hx=None):
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise ValueError(f"LSTMCell: expected hx = (h, c), got {type(hx).__name__}")
        return self._step(input, hx)


class GRUCell(_CellBase):
    """One GRU step (Cho et al., 2014): ``h' = cell(x, h)``; two gates, no separate cell state."""
    mode = "GRU"

    def forward(self, input, hx=None):
        return self._step(input, None if hx is None else (hx,))[0]


class _RNNBase(Module):
    """A stack of ``num_layers`` recurrent layers, each scanning the whole sequence.

    Input (seq, batch, input_size) — or (batch, seq, input_size) with
    ``batch_first`` — or unbatched (seq, input_size). Each layer's output
    sequence is the next layer's input, with dropout between layers in
    training mode (not after the last). States have shape
    (num_layers * num_directions, batch, hidden_size).
    """
    mode = None

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        require_ints(name, input_size=input_size, hidden_size=hidden_size, num_layers=num_layers,
                     proj_size=proj_size)
        if not isinstance(dropout, numbers.Real) or isinstance(dropout, bool) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be a number in [0, 1], got {dropout!r}")
        if num_layers < 1 or hidden_size < 1 or input_size < 1:
            raise ValueError(f"{name}: input_size, hidden_size and num_layers must be >= 1, "
                             f"got {input_size}, {hidden_size} and {num_layers}")
        if proj_size and (self.mode != "LSTM" or not 0 < proj_size < hidden_size):
            raise ValueError(f"{name}: proj_size {proj_size} needs an LSTM and 0 < proj_size < hidden_size "
                             f"({hidden_size})")
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bool(bidirectional), int(proj_size)
        directions = 2 if bidirectional else 1
        rows = _GATES[self.mode] * hidden_size
        out_size = proj_size or hidden_size
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else out_size * directions
            for suffix in ("", "_reverse")[:directions]:
                s = f"_l{layer}{suffix}"
                setattr(self, "weight_ih" + s, Parameter(ops.empty(rows, layer_in, dtype=dtype), kind="weight"))
                setattr(self, "weight_hh" + s, Parameter(ops.empty(rows, out_size, dtype=dtype), kind="weight"))
                if bias:
                    setattr(self, "bias_ih" + s, Parameter(ops.empty(rows, dtype=dtype), kind="bias"))
                    setattr(self, "bias_hh" + s, Parameter(ops.empty(rows, dtype=dtype), kind="bias"))
                if proj_size:
                    setattr(self, "weight_hr" + s,
                            Parameter(ops.empty(proj_size, hidden_size, dtype=dtype), kind="weight"))
        self.reset_parameters()

    reset_parameters = _CellBase.reset_parameters

    def _describe(self):
        return f"{type(self).__name__}(input_size={self.input_size}, hidden_size={self.hidden_size})"

    def _initial_state(self, hx, batch, batched, dtype):
        directions = 2 if self.bidirectional else 1
        shapes = [(self.num_layers * directions, batch, self.proj_size or self.hidden_size)]
        if self.mode == "LSTM":
            shapes.append((self.num_layers * directions, batch, self.hidden_size))
        if hx is None:
            return [ops.zeros(*s, dtype=dtype) for s in shapes]
        states = list(hx) if self.mode == "LSTM" and isinstance(hx, (tuple, list)) else [hx]
        if len(states) != len(shapes):
            raise ValueError(f"{self._describe()}: expected hx = (h_0, c_0), got {len(states)} tensors")
        for i, (s, shape) in enumerate(zip(states, shapes)):
            want = shape if batched else (shape[0], shape[2])
            if tuple(s.shape) != want:
                raise ValueError(f"{self._describe()}: expected {('h_0', 'c_0')[i]} of shape {want}, "
                                 f"got {tuple(s.shape)}")
        return states if batched else [ops.unsqueeze(s, 1) for s in states]

    def _scan(self, x, state, s):
        """Run one layer-direction (parameter suffix ``s``) over x (seq, batch, features)."""
        w_hh, b_hh = getattr(self, "weight_hh" + s), getattr(self, "bias_hh" + s, None)
        w_hr = getattr(self, "weight_hr" + s, None)
        if x.shape[0] == 0:
            raise ValueError(f"{self._describe()}: the input sequence is empty")
        # The input projections of all steps at once: one large GEMM instead of seq small ones.
        gi = F.linear(x, getattr(self, "weight_ih" + s), getattr(self, "bias_ih" + s, None))
        if w_hr is None:   # the steps as one graph node with fused kernels (nnlite/ops/recurrent.py)
            return recurrent_scan(gi, state[0], state[1] if self.mode == "LSTM" else None, w_hh, b_hh,
                                  self.mode, reverse=s.endswith("_reverse"))
        # LSTM with projections: the readable loop, step by step
        steps = range(x.shape[0] - 1, -1, -1) if s.endswith("_reverse") else range(x.shape[0])
        outputs = [None] * x.shape[0]
        for t in steps:
            state = _rnn_step(gi[t], state, w_hh, b_hh, self.mode)
            if w_hr is not None:   # LSTM with projections: h = W_hr (o * tanh(c))
                state = (F.linear(state[0], w_hr), state[1])
            outputs[t] = state[0]
        return ops.stack(outputs, 0), state

    def forward(self, input, hx=None):
        if input.ndim not in (2, 3):
            raise ValueError(f"{self._describe()}: expected input of 3 dims (seq, batch, features) "
                             f"or 2 (unbatched), got shape {tuple(input.shape)}")
        _check_features(self._describe(), "input", input, self.input_size)
        batched = input.ndim == 3
        x = input if batched else ops.unsqueeze(input, 1)
        if batched and self.batch_first:
            x = ops.transpose(x, 0, 1)
        states = self._initial_state(hx, x.shape[1], batched, x.dtype)
        directions = 2 if self.bidirectional else 1
        finals = []
        for layer in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(("", "_reverse")[:directions]):
                k = layer * directions + d
                out, final = self._scan(x, tuple(s[k] for s in states), f"_l{layer}{suffix}")
                outs.append(out)
                finals.append(final)
            x = outs[0] if directions == 1 else ops.cat(outs, -1)
            if layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, self.training)
        final_states = [ops.stack([f[i] for f in finals], 0) for i in range(len(states))]
        if batched and self.batch_first:
            x = ops.transpose(x, 0, 1)
        if not batched:
            x = ops.squeeze(x, 1)
            final_states = [ops.squeeze(s, 1) for s in final_states]
        return x, (tuple(final_states) if self.mode == "LSTM" else final_states[0])

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        for name, default in (("proj_size", 0), ("num_layers", 1), ("bias", True), ("batch_first", False),
                              ("dropout", 0.0), ("bidirectional", False)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s


class RNN(_RNNBase):
    """Elman RNN: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) (or relu). Returns (output, h_n)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.__dict__["mode"] = "RNN_" + nonlinearity.upper()   # before the base sizes the weights from it
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTM(_RNNBase):
    """Long short-term memory over a sequence. Returns (output, (h_n, c_n)).

    ``output`` holds the last layer's h_t for every t (both directions
    concatenated when bidirectional); ``proj_size > 0`` adds ``weight_hr_l{k}``
    (proj_size, hidden_size) that projects each h_t down, as in PyTorch.
    """
    mode = "LSTM"


class GRU(_RNNBase):
    """Gated recurrent unit over a sequence. Returns (output, h_n)."""
    mode = "GRU"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype)
