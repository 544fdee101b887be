"""The floating-point work of one training step: the products of forward and backward.

The forward pass is counted by nnlite's own counter
(:func:`nnlite.analysis.flops_by_layer`): every Linear and convolution, and in
MultiheadAttention the input projections, the scores ``Q K^T`` and the
weighted sum of values; a multiply-add is 2 FLOPs, elementwise work is left
out. Backward repeats each product twice: once for the gradient of the weight
(``dW = dY^T X``, the same multiply-adds as ``Y = X W^T``) and once for the
gradient of the input (``dX = dY W``, the same again). So a step does 3 times
the forward products, the usual rule, less one forward's worth for every layer
whose input needs no gradient (the first layer on the data: nothing asks for
``dX`` there, and neither nnlite nor PyTorch computes it). The optimizer's
update and the elementwise passes are not counted: they are memory-bound, and
counting them would not change what the step's GFLOP/s says about the products.

A product the counter cannot see (one written with ``F.linear`` or ``@`` in a
custom ``forward``, such as a tied output layer) is passed in by the caller as
``unseen_forward``; its input is taken to need a gradient.
"""
import nnlite as nl
from nnlite.analysis import flops_by_layer


def layers_on_data(model, inputs):
    """Names of the counted layers whose first input needs no gradient, from one forward pass with autograd on."""
    counted = flops_by_layer(model, inputs)
    modules = dict(model.named_modules())
    on_data, handles = set(), []
    for name in counted:
        def hook(module, args, output, name=name):
            if not getattr(args[0], "requires_grad", False):
                on_data.add(name)
        handles.append(modules[name].register_forward_hook(hook))
    try:
        with nl.enable_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return on_data, counted


def step_flops(model, inputs, unseen_forward=0):
    """FLOPs of one training step of ``model`` on ``inputs`` (a tuple of positional inputs): forward + backward.

    ``3 * forward - (forward of the layers whose input needs no gradient)``, with
    ``unseen_forward`` (products the layer counter cannot see) counted 3 times.
    """
    on_data, counted = layers_on_data(model, inputs)
    forward = sum(counted.values()) + unseen_forward
    return int(3 * forward - sum(counted[name] for name in on_data))
