"""Sequential runs a Linear followed by a ReLU as one fused kernel pass, with the same numbers."""
import numpy as np

import nnlite as nl
from nnlite import nn


def _unfused(model, x):
    for module in model:
        x = module(x)
    return x


def test_linear_relu_in_sequential_is_fused_and_identical():
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    x = nl.randn(6, 5, requires_grad=True)
    y = model(x)
    assert type(y._ctx).__name__ == "Linear" and type(model[1](model[0](x))._ctx).__name__ == "Relu"
    grads = nl.grad(y.sum(), [x] + list(model.parameters()))
    ref = _unfused(model, x)
    ref_grads = nl.grad(ref.sum(), [x] + list(model.parameters()))
    assert y.data.tobytes() == ref.data.tobytes()
    for g, r in zip(grads, ref_grads):
        assert g.data.tobytes() == r.data.tobytes()


def test_fused_graph_node_and_hooks_disable_fusion():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    x = nl.randn(2, 3, requires_grad=True)
    assert type(model(x)._ctx).__name__ == "LinearReLU"
    seen = []
    model[1].register_forward_hook(lambda module, args, out: seen.append(np.array(args[0].data)))
    out = model(x)
    assert len(seen) == 1 and seen[0].shape == (2, 3)   # the hook saw the value between the two
    assert type(out._ctx).__name__ == "Relu"


def test_fused_path_keeps_the_linear_error_message():
    model = nn.Sequential(nn.Linear(4, 2), nn.ReLU())
    try:
        model(nl.randn(3, 5))
    except ValueError as e:
        assert "Linear(in_features=4): input has 5 features" in str(e)
    else:
        raise AssertionError("expected a ValueError")
