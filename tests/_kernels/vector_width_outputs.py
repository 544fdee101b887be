"""Outputs of the built kernels that use the vector code, saved from one build and compared
with another: a 256-bit and a 512-bit build must give the same bytes.

    python setup.py build_ext --inplace --force                         # 256-bit (AVX2)
    python tests/_kernels/vector_width_outputs.py save /tmp/widths
    NNLITE_VECTOR_BITS=512 python setup.py build_ext --inplace --force  # 512 (emulated on AVX2)
    python tests/_kernels/vector_width_outputs.py compare /tmp/widths

Compared byte for byte: layer norm, RMS norm, group norm and batch norm (forward and
backward), softmax and log-softmax (forward and backward), cross-entropy, and the
convolution's forward and input gradient where they run as shifted products (the plan
must agree in both builds; it is saved and checked too). The convolution's weight
gradient ends each sum in a sum of a vector's lanes, so it is compared to within
rounding (a relative 1e-5 in float32, 1e-12 in float64). test_vector_width.py makes the
same byte-for-byte check on the C headers alone, in every test run.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.getcwd())   # the checkout being measured, as in run from its root

from nnlite._kernels import _conv, _norm, _softmax  # noqa: E402

CLOSE = {"conv_weight_grad"}   # lane sums: equal to rounding, not in bytes


def outputs():
    """name -> array, from fixed random inputs, for float32 and float64."""
    out = {}
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(7)
        tag = np.dtype(dtype).name

        def r(*shape):
            return (rng.standard_normal(shape) * 2 + 0.3).astype(dtype)

        for width in (1, 15, 17, 64, 100, 129, 1000):
            x, w, b, g = r(9, width), r(width), r(width), r(9, width)
            y, mean, rstd = _norm.layer_norm_forward(x, w, b, 1e-5)
            gx, gw, gb = _norm.layer_norm_backward(g, x, w, mean, rstd)
            y2, rrms = _norm.rms_norm_forward(x, w, 1e-6)
            out.update({f"layer_norm_{tag}_{width}_{i}": a for i, a in enumerate((y, mean, rstd, gx, gw, gb))})
            out.update({f"rms_norm_{tag}_{width}_{i}": a for i, a in enumerate((y2, rrms))})
            s = _softmax.softmax_forward(x)
            ls = _softmax.log_softmax_forward(x)
            out[f"softmax_{tag}_{width}"] = s
            out[f"softmax_grad_{tag}_{width}"] = _softmax.softmax_backward(g, s)
            out[f"log_softmax_{tag}_{width}"] = ls
            out[f"log_softmax_grad_{tag}_{width}"] = _softmax.log_softmax_backward(g, ls)
            target = rng.integers(0, width, 9)
            loss = _softmax.cross_entropy_forward(x, target, None, -100, 0.1, "mean")
            out[f"cross_entropy_{tag}_{width}"] = np.asarray(loss[0] if isinstance(loss, tuple) else loss)
        for shape in ((4, 3, 50), (2, 5, 129), (8, 16, 7)):
            x, g = r(*shape), r(*shape)
            w, b = r(shape[1]), r(shape[1])
            rm, rv = np.zeros(shape[1], dtype), np.ones(shape[1], dtype)
            y, sm, si = _norm.batch_norm_forward(x, w, b, rm, rv, True, 0.1, 1e-5)
            grads = _norm.batch_norm_backward(g, x, w, sm, si, True)
            out.update({f"batch_norm_{tag}_{shape}_{i}": a for i, a in enumerate((y, sm, si, rm, rv) + tuple(grads))})
            yg, mg, rg = _norm.group_norm_forward(x, 1, w, b, 1e-5)
            out[f"group_norm_{tag}_{shape}"] = yg
        for x_shape, w_shape, pad in (((4, 6, 14, 14), (16, 6, 5, 5), 0), ((3, 3, 20, 20), (11, 3, 3, 3), 1),
                                      ((2, 8, 16, 16), (13, 8, 3, 3), 1)):
            geo = ((1, 1), (pad, pad), (1, 1), 1)
            x, w = r(*x_shape), r(*w_shape)
            y = _conv.conv2d_forward(x, w, None, *geo)
            g = r(*y.shape)
            name = f"conv_{tag}_{x_shape}_{w_shape}"
            out[f"{name}_plan"] = np.array(_conv.shifted_paths(x_shape, w_shape, *geo, dtype=dtype))
            out[f"{name}_forward"] = y
            out[f"{name}_input_grad"] = _conv.conv2d_backward_input(g, w, x.shape, *geo)
            out[f"conv_weight_grad_{tag}_{x_shape}"] = _conv.conv2d_backward_weight(g, x, w.shape, *geo)
    return out


def main(argv):
    if len(argv) != 3 or argv[1] not in ("save", "compare"):
        raise SystemExit(__doc__)
    path = os.path.join(argv[2], "vector_width_outputs.npz")
    # (builds from before vector_width() existed were all 256-bit)
    bits, emulated = _conv.vector_width() if hasattr(_conv, "vector_width") else (256, False)
    ours = outputs()
    if argv[1] == "save":
        os.makedirs(argv[2], exist_ok=True)
        np.savez(path, **ours)
        print(f"saved {len(ours)} outputs of the {bits}-bit build{' (emulated)' if emulated else ''} to {path}")
        return 0
    theirs = np.load(path)
    different = []
    for name, a in ours.items():
        b = theirs[name]
        if any(name.startswith(c) for c in CLOSE):
            rtol = 1e-5 if a.dtype == np.float32 else 1e-12
            same = np.allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
        else:
            same = a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
        if not same:
            different.append(name)
    print(f"{bits}-bit build{' (emulated)' if emulated else ''}: {len(ours) - len(different)} of {len(ours)} "
          f"outputs equal to the saved ones")
    for name in different:
        print("  differs:", name)
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
