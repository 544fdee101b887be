"""Helpers shared by the tests: an optional torch oracle, thread switching, comparisons.

Fixtures live in conftest.py; plain functions live here and are imported by name
(``from helpers import torch_or_skip``), so a reader finds each one by grep.
"""
import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest

import nnlite as nl
import nnlite._kernels as kernels


def torch_or_skip():
    """Return the torch module, or skip the calling test (only that test) without PyTorch."""
    return pytest.importorskip("torch")


def sklearn_or_skip():
    """Return the sklearn module, or skip the calling test without scikit-learn."""
    return pytest.importorskip("sklearn")


def mnist1d_or_skip():
    """Return the mnist1d module (MNIST-1D's generator), or skip the calling test without it."""
    return pytest.importorskip("mnist1d")


@contextlib.contextmanager
def threads(n, serial_below=0):
    """Run kernels on ``n`` threads with the serial threshold lowered, so parallel paths run."""
    old_n = kernels.get_num_threads()
    old_thr = kernels._threads.get_serial_threshold() if kernels._threads else None
    kernels.set_num_threads(n)
    if kernels._threads is not None:
        kernels._threads.set_serial_threshold(serial_below)
    try:
        yield
    finally:
        kernels.set_num_threads(old_n)
        if kernels._threads is not None:
            kernels._threads.set_serial_threshold(old_thr)


def same_bytes_across_threads(fn, *args, counts=(1, 2, 4), **kwargs):
    """Call ``fn`` under each thread count; assert every array result is byte-identical."""
    results = []
    for n in counts:
        with threads(n):
            out = fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in args], **kwargs)
        outs = out if isinstance(out, tuple) else (out,)
        results.append([np.ascontiguousarray(o).tobytes() if isinstance(o, np.ndarray) else o for o in outs])
    for n, r in zip(counts[1:], results[1:]):
        assert r == results[0], f"{getattr(fn, '__name__', fn)}: {n} threads differ from {counts[0]}"


# ------------------------------------------------ an nnlite layer against torch's ---

def copy_to_torch(module, torch_module):
    """Load the nnlite module's state_dict into the torch module (keys must match)."""
    torch = torch_or_skip()
    state = {k: torch.tensor(np.asarray(v.data)) for k, v in module.state_dict().items()}
    torch_module.load_state_dict(state)


def compare(module, torch_module, x, train=True, steps=2, rtol=1e-7, atol=1e-10, seed=0):
    """Run ``steps`` forward/backward passes of both modules in float64 and compare everything.

    Outputs, input gradients, every parameter gradient, and finally the whole
    state_dict (running statistics included) must agree.
    """
    torch = torch_or_skip()
    module.double()
    torch_module.double()
    copy_to_torch(module, torch_module)
    module.train(train)
    torch_module.train(train)
    rng = np.random.default_rng(seed)
    assert list(module.state_dict()) == list(torch_module.state_dict())
    for _ in range(steps):
        module.zero_grad()
        torch_module.zero_grad()
        xn = nl.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
        xt = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
        y, yt = module(xn), torch_module(xt)
        assert y.shape == tuple(yt.shape)
        np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=rtol, atol=atol)
        g = rng.standard_normal(y.shape)
        y.backward(nl.tensor(g))
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(xn.grad.data, xt.grad.numpy(), rtol=rtol, atol=atol)
        torch_params = dict(torch_module.named_parameters())
        for name, p in module.named_parameters():
            np.testing.assert_allclose(p.grad.data, torch_params[name].grad.numpy(), rtol=rtol, atol=atol,
                                       err_msg=name)
    torch_state = torch_module.state_dict()
    for name, v in module.state_dict().items():
        np.testing.assert_allclose(np.asarray(v.data, dtype=np.float64), torch_state[name].double().numpy(),
                                   rtol=rtol, atol=atol, err_msg=name)
    return y


def load_from_torch_and_compare(module, torch_module, x, rtol=1e-5, atol=1e-5):
    """A torch state_dict loads into the nnlite module, and then both give the same outputs (eval)."""
    torch = torch_or_skip()
    module.eval()
    torch_module.eval()
    module.load_state_dict({k: v.numpy() for k, v in torch_module.state_dict().items()})
    with torch.no_grad():
        yt = torch_module(torch.tensor(x, dtype=torch.float32))
    y = module(nl.tensor(np.asarray(x, dtype=np.float32)))
    np.testing.assert_allclose(y.data, yt.numpy(), rtol=rtol, atol=atol)


def central_difference(loss, x, h=1e-6):
    """d loss / dx of the float64 array ``x`` by central differences, one element at a time."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        grad[idx] = (loss(up) - loss(down)) / (2 * h)
    return grad


def packed_heads(qkv, num_heads):
    """The (N, H, L, d) heads of Q, K and V of a packed (N, L, 3E) array [Q | K | V], as views."""
    n, length, width = qkv.shape
    rows = qkv.reshape(n, length, 3, num_heads, width // (3 * num_heads))
    return tuple(rows[:, :, i].transpose(0, 2, 1, 3) for i in range(3))


def f64(rng, *shape, requires_grad=True):
    return nl.tensor(rng.standard_normal(shape), requires_grad=requires_grad)


def run_cli(argv, capsys):
    """Run ``nnlite ARGV`` in-process; return (exit code, stdout, stderr)."""
    from nnlite.cli import main
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def run_fresh(args, cwd, timeout=300, **env):
    """Run ``python ARGS`` in a fresh interpreter, in ``cwd``; return the CompletedProcess.

    It imports the nnlite under test (installed, or built in place), never the unbuilt
    sources a working directory may hold. ``env`` adds variables; a value of None removes one.
    """
    environ = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(nl.__file__)))
    for name, value in env.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return subprocess.run([sys.executable] + list(args), cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=timeout)


def one_line_error(err):
    """True when stderr is exactly one ``nnlite: error:`` line (no traceback)."""
    lines = err.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("nnlite: error:") and "Traceback" not in err


def node_names(t):
    """The names of the graph nodes behind Tensor ``t`` (e.g. ``"MatMulBackward"``), each once."""
    seen, stack, names = set(), [t], []
    while stack:
        fn = stack.pop().grad_fn
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        names.append(fn.name)
        stack.extend(a for a in fn.inputs if isinstance(a, nl.Tensor))
    return names


def compare_output_and_grads(module, torch_module, x, tx, out, ref, atol=1e-11):
    """out equals torch's ref; after backward of sum(out^2), the input's and every parameter's gradients too."""
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    (out * out).sum().backward()
    (ref * ref).sum().backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-9, atol=atol)
    theirs = dict(torch_module.named_parameters())
    for name, p in module.named_parameters():
        np.testing.assert_allclose(p.grad.data, theirs[name].grad.numpy(), rtol=1e-9, atol=atol, err_msg=name)
