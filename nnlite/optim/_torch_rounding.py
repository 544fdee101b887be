"""Torch-parity rounding for the optimizer update rules.

Not part of any algorithm. The rules in :class:`~nnlite.optim.Adam` and
:class:`~nnlite.optim.RMSprop` call :func:`torch_lerp` where ``torch.optim``
calls ``torch.lerp``: the running average evaluated in torch's order, not as the
plain formula ``(1 - w) * start + w * end``. The fused kernels in
``nnlite/_kernels/_optim.pyx`` round the same way, so rules and kernels agree to
the last bit, and both make torch.optim's operations in torch.optim's order.
They do not promise torch.optim's last bit: torch's vectorised CPU kernels
round some operations their own way (fused multiply-adds on CPUs that have
them, a square root that is not always correctly rounded), so single elements
can differ in the last bits and tests compare trajectories with a tolerance.
A reader can read every ``torch_lerp(m, g, 1 - beta1)`` as
``beta1 * m + (1 - beta1) * g``.
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
