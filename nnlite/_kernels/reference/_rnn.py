"""NumPy twin of ``_rnn.pyx``: one RNN/LSTM/GRU time step, the same operations in the same order,
and the scans over a whole sequence, which are those steps one after another.

Each function writes into the arrays it is given, as the kernel does, so
``nnlite/ops/recurrent.py`` runs unchanged on either backend through
``K.<name>``. Results agree with the kernel to rounding (float32 exp and tanh
are NumPy's here and ``_fastmath.h``'s there). The scans follow the kernel's
plan (``checks.scan_row_blocks``): the same blocks of batch rows, one after
another here, where the kernel's threads share them.
"""
import numpy as np

from .. import checks
from ..checks import flag, in_place, separate, shaped_operands, step_state
from ._gemm import gemm

__all__ = ["lstm_step_forward", "lstm_step_backward", "gru_step_forward", "gru_step_backward",
           "rnn_step_forward", "rnn_step_backward", "recurrent_scan_forward", "recurrent_scan_backward"]


def _sigmoid(x):
    # exp of a non-positive number only, so large |x| never overflows
    one = x.dtype.type(1)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, one / (one + e), e / (one + e))


def _check(op, arrays, names, shapes, written):
    """Shapes and dtypes (shaped_operands); the ``written`` arrays writable and apart from the rest."""
    shaped_operands(op, arrays, names, shapes, optional=("b_hh",))
    for name, a in zip(names, arrays):
        if name in written:
            in_place(op, name, a)
    # the written arrays first, as the compiled check takes them (so both name a pair alike)
    pairs = sorted(zip(names, arrays), key=lambda pair: pair[0] not in written)
    separate(op, pairs, written=set(written))


def _with_bias(gh, b_hh):
    return gh if b_hh is None else gh + b_hh


def lstm_step_forward(gh, gi, b_hh, c_prev, gates, c, h):
    """Write c', h' and the gates (i, f, g, o) of one LSTM step."""
    B, H = step_state("lstm_step_forward", "c_prev", c_prev)
    _check("lstm_step_forward", (gh, gi, b_hh, c_prev, gates, c, h),
           ("gh", "gi", "b_hh", "c_prev", "gates", "c", "h"),
           ((B, 4 * H), (B, 4 * H), (4 * H,), (B, H), (B, 4 * H), (B, H), (B, H)), ("gates", "c", "h"))
    pre = gi + _with_bias(gh, b_hh)
    i, f, o = _sigmoid(pre[:, :H]), _sigmoid(pre[:, H:2 * H]), _sigmoid(pre[:, 3 * H:])
    g = np.tanh(pre[:, 2 * H:3 * H])
    c[...] = f * c_prev + i * g
    h[...] = o * np.tanh(c)
    gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:] = i, f, g, o


def lstm_step_backward(dh, dc, gates, c_prev, c, dpre):
    """From dL/dh', dL/dc' (``dc``, overwritten with dL/dc) and the saved gates, write dL/d(pre-activations)."""
    B, H = step_state("lstm_step_backward", "c_prev", c_prev)
    _check("lstm_step_backward", (dh, dc, gates, c_prev, c, dpre), ("dh", "dc", "gates", "c_prev", "c", "dpre"),
           ((B, H), (B, H), (B, 4 * H), (B, H), (B, H), (B, 4 * H)), ("dc", "dpre"))
    one = c.dtype.type(1)
    i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    tc = np.tanh(c)
    dct = dc + dh * o * (one - tc * tc)
    dpre[:, :H] = dct * g * i * (one - i)
    dpre[:, H:2 * H] = dct * c_prev * f * (one - f)
    dpre[:, 2 * H:3 * H] = dct * i * (one - g * g)
    dpre[:, 3 * H:] = dh * tc * o * (one - o)
    dc[...] = dct * f


def gru_step_forward(gh, gi, b_hh, h_prev, gates, h):
    """Write h' and the saved (r, z, n, W_hn h + b_hn) of one GRU step."""
    B, H = step_state("gru_step_forward", "h_prev", h_prev)
    _check("gru_step_forward", (gh, gi, b_hh, h_prev, gates, h), ("gh", "gi", "b_hh", "h_prev", "gates", "h"),
           ((B, 3 * H), (B, 3 * H), (3 * H,), (B, H), (B, 4 * H), (B, H)), ("gates", "h"))
    ghb = _with_bias(gh, b_hh)
    r = _sigmoid(gi[:, :H] + ghb[:, :H])
    z = _sigmoid(gi[:, H:2 * H] + ghb[:, H:2 * H])
    hn = ghb[:, 2 * H:]
    n = np.tanh(gi[:, 2 * H:] + r * hn)
    h[...] = n + z * (h_prev - n)
    gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:] = r, z, n, hn


def gru_step_backward(dh, gates, h_prev, dgi, dgh, dh_prev):
    """From dL/dh' and the saved gates: dL/d(input projection), dL/d(gh + b_hh), and dL/dh through z."""
    B, H = step_state("gru_step_backward", "h_prev", h_prev)
    _check("gru_step_backward", (dh, gates, h_prev, dgi, dgh, dh_prev),
           ("dh", "gates", "h_prev", "dgi", "dgh", "dh_prev"),
           ((B, H), (B, 4 * H), (B, H), (B, 3 * H), (B, 3 * H), (B, H)), ("dgi", "dgh", "dh_prev"))
    one = h_prev.dtype.type(1)
    r, z, n, hn = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    dn = dh * (one - z) * (one - n * n)
    dz = dh * (h_prev - n) * z * (one - z)
    dr = dn * hn * r * (one - r)
    dgi[:, :H], dgi[:, H:2 * H], dgi[:, 2 * H:] = dr, dz, dn
    dgh[:, :H], dgh[:, H:2 * H], dgh[:, 2 * H:] = dr, dz, dn * r
    dh_prev[...] = dh * z


def rnn_step_forward(gh, gi, b_hh, h, relu):
    """Write h' = tanh(gi + gh + b_hh) (or relu) of one plain RNN step."""
    relu = flag("rnn_step_forward", "relu", relu)
    B, H = step_state("rnn_step_forward", "h", h)
    _check("rnn_step_forward", (gh, gi, b_hh, h), ("gh", "gi", "b_hh", "h"), ((B, H), (B, H), (H,), (B, H)),
           ("h",))
    pre = gi + _with_bias(gh, b_hh)
    h[...] = np.where(pre > 0, pre, pre.dtype.type(0)) if relu else np.tanh(pre)


def rnn_step_backward(dh, h, dpre, relu):
    """dL/d(pre-activation) of one plain RNN step from dL/dh' and h'."""
    relu = flag("rnn_step_backward", "relu", relu)
    B, H = step_state("rnn_step_backward", "h", h)
    _check("rnn_step_backward", (dh, h, dpre), ("dh", "h", "dpre"), ((B, H), (B, H), (B, H)), ("dpre",))
    dpre[...] = np.where(h > 0, dh, dh.dtype.type(0)) if relu else dh * (h.dtype.type(1) - h * h)


def _blocks(mode, hs):
    """The rows each of the kernel's threads carries through the sequence (checks.scan_row_blocks)."""
    B, H = hs.shape[1], hs.shape[2]
    if checks.scan_row_blocks(B, H, checks.SCAN_GATES[mode], hs.dtype.itemsize):
        return [slice(start, stop) for start, stop in checks.scan_blocks(B)]
    return [slice(0, B)]


def recurrent_scan_forward(mode, gi, w_hh, b_hh, hs, cs, gates):
    """All T steps of one layer and direction: hs[0] (and cs[0]) in; the rest of hs, cs and gates out."""
    checks.scan_forward_operands("recurrent_scan_forward", mode, gi, w_hh, b_hh, hs, cs, gates)
    for rows in _blocks(mode, hs):
        for s in range(gi.shape[0]):
            gh = gemm(hs[s, rows], w_hh, trans_b=True)
            if mode == "LSTM":
                lstm_step_forward(gh, gi[s, rows], b_hh, cs[s, rows], gates[s, rows], cs[s + 1, rows],
                                  hs[s + 1, rows])
            elif mode == "GRU":
                gru_step_forward(gh, gi[s, rows], b_hh, hs[s, rows], gates[s, rows], hs[s + 1, rows])
            else:
                rnn_step_forward(gh, gi[s, rows], b_hh, hs[s + 1, rows], mode == "RNN_RELU")


def recurrent_scan_backward(mode, g, w_hh, hs, cs, gates, dgi, dgh, dh, dc):
    """The scan's backward, last step first: dh (and dc) carry the state's gradient back to the start."""
    _, T, B, H, _ = checks.scan_backward_operands("recurrent_scan_backward", mode, g, w_hh, hs, cs, gates,
                                                  dgi, dgh, dh, dc)
    for rows in _blocks(mode, hs):
        through_z = np.empty(dh[rows].shape, hs.dtype) if mode == "GRU" else None
        for s in range(T - 1, -1, -1):
            dh_s = g[s, 0, rows] + dh[rows]
            if mode == "LSTM":
                dc[rows] += g[s, 1, rows]
                lstm_step_backward(dh_s, dc[rows], gates[s, rows], cs[s, rows], cs[s + 1, rows], dgi[s, rows])
                dh[rows] = gemm(dgi[s, rows], w_hh)
            elif mode == "GRU":
                gru_step_backward(dh_s, gates[s, rows], hs[s, rows], dgi[s, rows], dgh[s, rows], through_z)
                dh[rows] = gemm(dgh[s, rows], w_hh) + through_z
            else:
                rnn_step_backward(dh_s, hs[s + 1, rows], dgi[s, rows], mode == "RNN_RELU")
                dh[rows] = gemm(dgi[s, rows], w_hh)
