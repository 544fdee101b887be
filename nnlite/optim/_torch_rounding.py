"""Torch-parity rounding for the optimizer update rules.

Not part of any algorithm. The rules in :class:`~nnlite.optim.Adam` and
:class:`~nnlite.optim.RMSprop` call :func:`torch_lerp` where the plain formula
``(1 - w) * start + w * end`` would differ from ``torch.optim`` in the last bit;
the fused kernels in ``nnlite/_kernels/_optim.pyx`` round the same way, so the
rules, the kernels and torch.optim agree to the last bit. A reader can read
every ``torch_lerp(m, g, 1 - beta1)`` as ``beta1 * m + (1 - beta1) * g``.
"""

__all__ = ["torch_lerp"]


def torch_lerp(start, end, weight):
    """``start + weight * (end - start)``, rounded the way ``torch.lerp`` rounds it.

    Mathematically this is the running average ``(1 - weight) * start + weight * end``
    (Adam's first moment, centred RMSprop's mean gradient). torch evaluates it
    from whichever end ``weight`` is closer to, with ``weight`` and ``1 - weight``
    rounded to the buffers' dtype, so the result is exact at ``weight = 0`` and
    ``weight = 1``. The plain formula differs from it in the last bit.
    """
    w = start.dtype.type(weight)
    if abs(w) < 0.5:
        return start + w * (end - start)
    return end - (end - start) * (start.dtype.type(1) - w)
