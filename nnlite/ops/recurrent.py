"""The recurrent scan: an RNN, LSTM or GRU layer over a whole sequence as one operation.

The readable form of a recurrent layer is a loop over time steps, each step a
matrix product and a dozen elementwise operations (``gate_math`` below, which
``nnlite/nn/recurrent.py``'s cells use). Backpropagation through time is then
the chain rule through every one of those operations, a few hundred autograd
nodes for a sequence of a few dozen steps, and their per-operation overhead
is most of a small layer's time.

:class:`RecurrentScan` computes the same thing as one graph node, and each
direction of it as one kernel call (``nnlite/_kernels/_rnn.pyx``; how its
steps share the threads is a plan made from the shape, ``checks.scan_row_blocks``).
Forward, step by step: ``gh = h_{t-1} W_hh^T`` (one product) and the whole
gate math of the step (one loop), keeping the states and activated gates.
Backward, from the last step to the first::

    dL/d(pre-activations)_t   from dL/dh_t, dL/dc_t and the saved gates   (one loop)
    dL/dh_{t-1} = dL/d(gh_t) W_hh  (+ the direct path through the update gate, GRU)
    dL/dc_{t-1} = dL/dc_t * f_t                                           (LSTM)

and, after the loop, every step's contribution at once:
``dL/dW_hh = sum_t dL/d(gh_t)^T h_{t-1}`` is one product over all T*B rows,
``dL/db_hh`` their column sums, and ``dL/d(gi)`` (the input projection of
every step, made before the scan by one ``F.linear``) is the stack of the
steps' pre-activation gradients, which that ``F.linear`` turns into the
gradients of ``x``, ``W_ih`` and ``b_ih``.

The fused backward works on arrays, so it cannot be differentiated again.
When gradients of gradients are asked for (``create_graph=True``), backward
runs the readable loop on the same inputs instead and differentiates that.
"""
import numpy as np

from .. import autograd
from .._kernels import K
from .._kernels.checks import SCAN_GATES as GATES   # gate blocks in W_hh's rows, per mode
from ..autograd import Function
from ..tensor import Tensor
from .pointwise import relu, sigmoid, tanh
from .concatenation import stack
from .splitting import chunk

__all__ = ["gate_math", "recurrent_scan", "RecurrentScan"]


def gate_math(gi, gh, state, mode):
    """One step's gates from ``gi = W_ih x + b_ih`` and ``gh = W_hh h + b_hh``; state is (h,) or (h, c)."""
    if mode == "LSTM":
        i, f, g, o = chunk(gi + gh, 4, -1)
        c = sigmoid(f) * state[1] + sigmoid(i) * tanh(g)
        return sigmoid(o) * tanh(c), c
    if mode == "GRU":
        i_r, i_z, i_n = chunk(gi, 3, -1)
        h_r, h_z, h_n = chunk(gh, 3, -1)
        r, z = sigmoid(i_r + h_r), sigmoid(i_z + h_z)
        n = tanh(i_n + r * h_n)
        return (n + z * (state[0] - n),)    # = (1 - z) * n + z * h
    _check_mode("gate_math", mode)
    act = tanh if mode == "RNN_TANH" else relu
    return (act(gi + gh),)


def _check_mode(op, mode):
    # An unknown mode would otherwise run as a tanh RNN, or fail later on a gate shape.
    if mode not in GATES:
        raise ValueError(f"{op}: mode must be one of {', '.join(map(repr, GATES))}, got {mode!r}")


def _contiguous(a):
    return None if a is None else np.ascontiguousarray(a)


def _readable_scan(gi, h0, c0, w_hh, b_hh, mode, reverse):
    """The same result as RecurrentScan, from the readable ops (for gradients of gradients)."""
    from .nn_ops import linear
    state = (h0, c0) if mode == "LSTM" else (h0,)
    outs = []
    for t in (range(gi.shape[0] - 1, -1, -1) if reverse else range(gi.shape[0])):
        state = gate_math(gi[t], linear(state[0], w_hh, b_hh), state, mode)
        outs.append(stack(list(state), 0))
    return stack(outs[::-1] if reverse else outs, 0)


class RecurrentScan(Function):
    """All time steps of one recurrent layer and direction (see the module docstring).

    Inputs: ``gi`` (T, batch, G*hidden), ``h0`` and (LSTM) ``c0`` (batch, hidden),
    ``w_hh`` (G*hidden, hidden), ``b_hh`` (G*hidden,) or None. Output
    (T, S, batch, hidden): for every time step t the new h (and, S = 2, the LSTM's c).
    """

    def forward(self, gi, h0, c0, w_hh, b_hh, mode, reverse):
        T, B, H = gi.shape[0], h0.shape[0], h0.shape[1]
        dtype = gi.dtype
        if reverse:   # the scan runs on the reversed sequence and reverses its result back
            gi = gi[::-1]
        gi = np.ascontiguousarray(gi)
        hs = np.empty((T + 1, B, H), dtype)
        hs[0] = h0
        cs = gates = None
        if mode == "LSTM":
            cs = np.empty((T + 1, B, H), dtype)
            cs[0] = c0
        if mode in ("LSTM", "GRU"):
            gates = np.empty((T, B, 4 * H), dtype)
        # every step at once: gh = hs[s] W_hh^T, then the step's gate math, s = 0 .. T-1
        K.recurrent_scan_forward(mode, gi, np.ascontiguousarray(w_hh), _contiguous(b_hh), hs, cs, gates)
        self.saved = (hs, cs, gates, mode, reverse)
        out = np.stack((hs[1:], cs[1:]), 1) if mode == "LSTM" else hs[1:, None]
        return np.ascontiguousarray(out[::-1] if reverse else out)

    def backward(self, grad):
        gi, h0, c0, w_hh, b_hh = self.inputs
        hs, cs, gates, mode, reverse = self.saved
        if autograd.is_grad_enabled():   # create_graph=True: differentiate the readable loop instead
            return self._readable_grads(grad)
        g = np.ascontiguousarray(grad.data[::-1] if reverse else grad.data)
        T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
        rows = GATES[mode] * H
        dgi = np.empty((T, B, rows), hs.dtype)
        dgh = np.empty((T, B, rows), hs.dtype) if mode == "GRU" else None   # GRU's n gate differs
        dh = np.zeros((B, H), hs.dtype)
        dc = np.zeros((B, H), hs.dtype) if mode == "LSTM" else None
        # every step at once, the last first; dh (and dc) end as the initial state's gradient
        K.recurrent_scan_backward(mode, g, np.ascontiguousarray(w_hh.data), hs, cs, gates, dgi, dgh, dh, dc)
        flat = (dgh if mode == "GRU" else dgi).reshape(T * B, rows)
        grad_w = K.gemm(flat, hs[:-1].reshape(T * B, H), trans_a=True) if w_hh.requires_grad else None
        grad_b = K.bias_grad(flat) if isinstance(b_hh, Tensor) and b_hh.requires_grad else None
        if reverse:
            dgi = dgi[::-1]
        wrap = (lambda a: None if a is None else Tensor._make(np.ascontiguousarray(a), None))
        return (wrap(dgi), wrap(dh), wrap(dc) if mode == "LSTM" else None, wrap(grad_w), wrap(grad_b))

    def _readable_grads(self, grad):
        gi, h0, c0, w_hh, b_hh = self.inputs
        mode, reverse = self.saved[3], self.saved[4]
        wanted = [a for a in (gi, h0, c0, w_hh, b_hh) if isinstance(a, Tensor) and a.requires_grad]
        out = _readable_scan(gi, h0, c0, w_hh, b_hh, mode, reverse)
        found = iter(autograd.grad_in_backward([out], wanted, grad_outputs=[grad]))
        return tuple(next(found) if isinstance(a, Tensor) and a.requires_grad else None
                     for a in (gi, h0, c0, w_hh, b_hh))


def recurrent_scan(gi, h0, c0, w_hh, b_hh, mode, reverse=False):
    """Run one layer-direction over the sequence; returns (output (T, batch, hidden), (h_n,) or (h_n, c_n))."""
    _check_mode("recurrent_scan", mode)
    y = RecurrentScan.apply(gi, h0, c0, w_hh, b_hh, mode=mode, reverse=reverse)
    last = 0 if reverse else y.shape[0] - 1
    out = y[:, 0]
    if mode == "LSTM":
        return out, (y[last, 0], y[last, 1])
    return out, (y[last, 0],)
