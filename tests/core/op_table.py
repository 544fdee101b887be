"""The table of differentiable ops checked against finite differences and PyTorch.

Each case: (id, nnlite function, torch function or None, input shapes, input kind).
Input kind "any" draws standard normals; "pos" draws values in [0.5, 2]; "away"
keeps values away from kinks (|x| >= 0.2) so finite differences are clean;
"zeros" draws standard normals with about a third of them exactly 0 (products,
whose gradients must not divide by the elements).
"""
import numpy as np

import nnlite as nl


def _t(name):
    def f(*xs):
        import torch
        return name(torch, *xs)
    return f


_CAUSAL_5 = np.where(np.tril(np.ones((5, 5), bool)), 0.0, -np.inf)   # float64, as the table's inputs


def _torch_packed_attention(T, qkv, heads, causal):
    """PyTorch's attention on the heads of a packed (N, L, 3E) [Q | K | V], heads merged back."""
    n, length, width = qkv.shape
    q, k, v = (t.transpose(1, 2) for t in qkv.reshape(n, length, 3, heads, width // (3 * heads)).unbind(2))
    out = T.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return out.transpose(1, 2).reshape(n, length, width // 3)


CASES = [
    # arithmetic, with broadcasting in each direction
    ("add", lambda a, b: a + b, _t(lambda T, a, b: a + b), [(3, 4), (4,)], "any"),
    ("add_bcast_left", lambda a, b: a + b, _t(lambda T, a, b: a + b), [(1, 4), (3, 1)], "any"),
    ("sub", lambda a, b: a - b, _t(lambda T, a, b: a - b), [(2, 3, 4), (3, 1)], "any"),
    ("mul", lambda a, b: a * b, _t(lambda T, a, b: a * b), [(3, 1), (1, 5)], "any"),
    ("div", lambda a, b: a / b, _t(lambda T, a, b: a / b), [(3, 4), (3, 4)], "pos"),
    ("pow_scalar", lambda a: a ** 3, _t(lambda T, a: a ** 3), [(3, 4)], "any"),
    ("pow_tensor", lambda a, b: a ** b, _t(lambda T, a, b: a ** b), [(3, 4), (4,)], "pos"),
    ("rpow", lambda a: 2.0 ** a, _t(lambda T, a: 2.0 ** a), [(5,)], "any"),
    ("neg", lambda a: -a, _t(lambda T, a: -a), [(3, 4)], "any"),
    ("abs", lambda a: a.abs(), _t(lambda T, a: a.abs()), [(3, 4)], "away"),
    ("sign", lambda a: a * a.sign(), _t(lambda T, a: a * a.sign()), [(3, 4)], "away"),
    ("scalar_ops", lambda a: (1.0 - a) * 2.0 / 3.0 + 1.0, _t(lambda T, a: (1.0 - a) * 2.0 / 3.0 + 1.0), [(4,)], "any"),
    ("rdiv", lambda a: 1.0 / a, _t(lambda T, a: 1.0 / a), [(4,)], "pos"),
    # pointwise
    ("exp", nl.exp, _t(lambda T, a: T.exp(a)), [(3, 4)], "any"),
    ("log", nl.log, _t(lambda T, a: T.log(a)), [(3, 4)], "pos"),
    ("sqrt", nl.sqrt, _t(lambda T, a: T.sqrt(a)), [(3, 4)], "pos"),
    ("rsqrt", nl.rsqrt, _t(lambda T, a: T.rsqrt(a)), [(3, 4)], "pos"),
    ("reciprocal", nl.reciprocal, _t(lambda T, a: T.reciprocal(a)), [(3, 4)], "away"),
    ("tanh", nl.tanh, _t(lambda T, a: T.tanh(a)), [(3, 4)], "any"),
    ("sigmoid", nl.sigmoid, _t(lambda T, a: T.sigmoid(a)), [(3, 4)], "any"),
    ("relu", nl.relu, _t(lambda T, a: T.relu(a)), [(3, 4)], "away"),
    ("gelu", nl.gelu, _t(lambda T, a: T.nn.functional.gelu(a)), [(3, 4)], "any"),
    ("gelu_tanh", lambda a: nl.gelu(a, approximate="tanh"),
     _t(lambda T, a: T.nn.functional.gelu(a, approximate="tanh")), [(3, 4)], "any"),
    ("silu", nl.silu, _t(lambda T, a: T.nn.functional.silu(a)), [(3, 4)], "any"),
    ("softplus", nl.softplus, _t(lambda T, a: T.nn.functional.softplus(a)), [(3, 4)], "any"),
    ("leaky_relu", lambda a: nl.leaky_relu(a, 0.2), _t(lambda T, a: T.nn.functional.leaky_relu(a, 0.2)),
     [(3, 4)], "away"),
    ("elu", nl.elu, _t(lambda T, a: T.nn.functional.elu(a)), [(3, 4)], "any"),
    ("elu_alpha", lambda a: nl.elu(a, 0.5), _t(lambda T, a: T.nn.functional.elu(a, 0.5)), [(3, 4)], "away"),
    ("selu", nl.selu, _t(lambda T, a: T.nn.functional.selu(a)), [(3, 4)], "away"),
    ("softplus_beta", lambda a: nl.softplus(a * 10, beta=2.0, threshold=5.0),
     _t(lambda T, a: T.nn.functional.softplus(a * 10, beta=2.0, threshold=5.0)), [(3, 4)], "away"),
    ("hardtanh", lambda a: nl.hardtanh(a * 2, -0.5, 1.5), _t(lambda T, a: T.nn.functional.hardtanh(a * 2, -0.5, 1.5)),
     [(3, 4)], "away"),
    ("relu6", lambda a: nl.relu6(a * 4), _t(lambda T, a: T.nn.functional.relu6(a * 4)), [(3, 4)], "away"),
    ("hardsigmoid", lambda a: nl.hardsigmoid(a * 2), _t(lambda T, a: T.nn.functional.hardsigmoid(a * 2)),
     [(3, 4)], "away"),
    ("hardswish", lambda a: nl.hardswish(a * 2), _t(lambda T, a: T.nn.functional.hardswish(a * 2)), [(3, 4)], "away"),
    ("logsigmoid", lambda a: nl.logsigmoid(a * 3), _t(lambda T, a: T.nn.functional.logsigmoid(a * 3)), [(3, 4)], "any"),
    ("softsign", nl.softsign, _t(lambda T, a: T.nn.functional.softsign(a)), [(3, 4)], "away"),
    ("mish", lambda a: nl.mish(a * 3), _t(lambda T, a: T.nn.functional.mish(a * 3)), [(3, 4)], "any"),
    ("erf", nl.erf, _t(lambda T, a: T.erf(a)), [(6,)], "any"),
    ("sin_cos", lambda a: nl.sin(a) * nl.cos(a), _t(lambda T, a: T.sin(a) * T.cos(a)), [(6,)], "any"),
    # elementary functions, on inputs inside each domain
    ("log1p", nl.log1p, _t(lambda T, a: T.log1p(a)), [(3, 4)], "pos"),
    ("expm1", nl.expm1, _t(lambda T, a: T.expm1(a)), [(3, 4)], "any"),
    ("log2", nl.log2, _t(lambda T, a: T.log2(a)), [(3, 4)], "pos"),
    ("log10", lambda a: a.log10(), _t(lambda T, a: a.log10()), [(3, 4)], "pos"),
    ("exp2", nl.exp2, _t(lambda T, a: T.exp2(a)), [(3, 4)], "any"),
    ("tan", lambda a: nl.tan(a * 0.5), _t(lambda T, a: T.tan(a * 0.5)), [(3, 4)], "any"),
    ("asin", lambda a: nl.asin((a - 1.25) * 1.2), _t(lambda T, a: T.asin((a - 1.25) * 1.2)), [(3, 4)], "pos"),
    ("acos", lambda a: nl.acos((a - 1.25) * 1.2), _t(lambda T, a: T.acos((a - 1.25) * 1.2)), [(3, 4)], "pos"),
    ("atan", nl.atan, _t(lambda T, a: T.atan(a)), [(3, 4)], "any"),
    ("sinh", nl.sinh, _t(lambda T, a: T.sinh(a)), [(3, 4)], "any"),
    ("cosh", nl.cosh, _t(lambda T, a: T.cosh(a)), [(3, 4)], "any"),
    ("asinh", nl.asinh, _t(lambda T, a: T.asinh(a)), [(3, 4)], "any"),
    ("acosh", lambda a: nl.acosh(a + 1), _t(lambda T, a: T.acosh(a + 1)), [(3, 4)], "pos"),
    ("atanh", lambda a: nl.atanh((a - 1.25) * 1.2), _t(lambda T, a: T.atanh((a - 1.25) * 1.2)), [(3, 4)], "pos"),
    ("atan2", nl.atan2, _t(lambda T, a, b: T.atan2(a, b)), [(3, 4), (4,)], "any"),
    ("hypot", nl.hypot, _t(lambda T, a, b: T.hypot(a, b)), [(3, 4), (3, 1)], "any"),
    ("logaddexp", nl.logaddexp, _t(lambda T, a, b: T.logaddexp(a, b)), [(3, 4), (4,)], "any"),
    ("logaddexp2", nl.logaddexp2, _t(lambda T, a, b: T.logaddexp2(a, b)), [(3, 1), (4,)], "any"),
    ("xlogy", lambda a, b: nl.xlogy(a - 1, b), _t(lambda T, a, b: T.xlogy(a - 1, b)), [(3, 4), (4,)], "pos"),
    ("logit", lambda a: nl.logit(a * 0.4), _t(lambda T, a: T.logit(a * 0.4)), [(3, 4)], "pos"),
    ("logit_eps", lambda a: nl.logit(a * 0.4, eps=0.3), _t(lambda T, a: T.logit(a * 0.4, eps=0.3)), [(3, 4)], "pos"),
    ("sinc", nl.sinc, _t(lambda T, a: T.sinc(a)), [(3, 4)], "any"),
    ("deg2rad", lambda a: nl.deg2rad(a) ** 2, _t(lambda T, a: T.deg2rad(a) ** 2), [(4,)], "any"),
    ("rad2deg", lambda a: nl.rad2deg(a) ** 2, _t(lambda T, a: T.rad2deg(a) ** 2), [(4,)], "any"),
    # rounding: flat steps (zero slope), so multiplied by the input to leave a gradient to check
    ("floor", lambda a: nl.floor(a * 3) * a, _t(lambda T, a: T.floor(a * 3) * a), [(3, 4)], "any"),
    ("ceil", lambda a: nl.ceil(a * 3) * a, _t(lambda T, a: T.ceil(a * 3) * a), [(3, 4)], "any"),
    ("round", lambda a: nl.round(a * 3) * a, _t(lambda T, a: T.round(a * 3) * a), [(3, 4)], "any"),
    ("round_decimals", lambda a: a.round(decimals=1) * a, _t(lambda T, a: a.round(decimals=1) * a), [(3, 4)], "any"),
    ("trunc", lambda a: nl.trunc(a * 3) * a, _t(lambda T, a: T.trunc(a * 3) * a), [(3, 4)], "any"),
    ("frac", lambda a: nl.frac(a * 3), _t(lambda T, a: T.frac(a * 3)), [(3, 4)], "any"),
    ("remainder", lambda a, b: nl.remainder(a * 3, b), _t(lambda T, a, b: T.remainder(a * 3, b)), [(3, 4), (4,)],
     "away"),
    ("fmod", lambda a, b: nl.fmod(a * 3, b), _t(lambda T, a, b: T.fmod(a * 3, b)), [(3, 4), (3, 1)], "away"),
    ("mod_operator", lambda a: (a * 3) % 0.7, _t(lambda T, a: (a * 3) % 0.7), [(3, 4)], "any"),
    # interpolation and fused updates
    ("lerp", lambda a, b: nl.lerp(a, b, 0.3), _t(lambda T, a, b: T.lerp(a, b, 0.3)), [(3, 4), (4,)], "any"),
    ("lerp_tensor_weight", nl.lerp, _t(lambda T, a, b, w: T.lerp(a, b, w)), [(3, 4), (4,), (3, 1)], "any"),
    ("addcmul", lambda a, b, c: nl.addcmul(a, b, c, value=0.5),
     _t(lambda T, a, b, c: T.addcmul(a, b, c, value=0.5)), [(3, 4), (4,), (3, 1)], "any"),
    ("addcdiv", lambda a, b, c: a.addcdiv(b, c, value=-2),
     _t(lambda T, a, b, c: a.addcdiv(b, c, value=-2)), [(3, 4), (4,), (3, 1)], "pos"),
    ("nan_to_num", lambda a: nl.nan_to_num(nl.log(a), nan=0.5),
     _t(lambda T, a: T.nan_to_num(T.log(a), nan=0.5)), [(3, 4)], "any"),
    # scans
    ("cumsum", lambda a: a.cumsum(1) ** 2, _t(lambda T, a: a.cumsum(1) ** 2), [(3, 4)], "any"),
    ("cumsum_dim0", lambda a: nl.cumsum(a, 0) ** 2, _t(lambda T, a: T.cumsum(a, 0) ** 2), [(3, 4, 2)], "any"),
    ("cumprod", lambda a: nl.cumprod(a, 1), _t(lambda T, a: T.cumprod(a, 1)), [(3, 5)], "any"),
    ("cumprod_zeros", lambda a: nl.cumprod(a, 1), _t(lambda T, a: T.cumprod(a, 1)), [(4, 5)], "zeros"),
    ("cumprod_zeros_dim0", lambda a: a.cumprod(0), _t(lambda T, a: a.cumprod(0)), [(5, 3)], "zeros"),
    ("logcumsumexp", lambda a: nl.logcumsumexp(a * 3, 1), _t(lambda T, a: T.logcumsumexp(a * 3, 1)), [(3, 5)],
     "any"),
    ("cummax", lambda a: nl.cummax(a, 1).values ** 2, _t(lambda T, a: T.cummax(a, 1).values ** 2), [(3, 5)], "any"),
    ("cummin", lambda a: a.cummin(0)[0] ** 2, _t(lambda T, a: a.cummin(0)[0] ** 2), [(5, 3)], "any"),
    # selection
    ("maximum", nl.maximum, _t(lambda T, a, b: T.maximum(a, b)), [(3, 4), (4,)], "any"),
    ("minimum", nl.minimum, _t(lambda T, a, b: T.minimum(a, b)), [(3, 4), (3, 1)], "any"),
    ("clamp", lambda a: nl.clamp(a, -0.5, 0.7), _t(lambda T, a: T.clamp(a, -0.5, 0.7)), [(4, 5)], "any"),
    ("clamp_min", lambda a: a.clamp(min=0.1), _t(lambda T, a: a.clamp(min=0.1)), [(4, 5)], "any"),
    ("where", lambda a, b: nl.where(a > 0, a, b), _t(lambda T, a, b: T.where(a > 0, a, b)), [(3, 4), (4,)], "away"),
    # matmul, every rank combination
    ("matmul_2d", nl.matmul, _t(lambda T, a, b: a @ b), [(3, 4), (4, 5)], "any"),
    ("matmul_1d_1d", nl.matmul, _t(lambda T, a, b: a @ b), [(4,), (4,)], "any"),
    ("matmul_1d_2d", nl.matmul, _t(lambda T, a, b: a @ b), [(4,), (4, 3)], "any"),
    ("matmul_2d_1d", nl.matmul, _t(lambda T, a, b: a @ b), [(3, 4), (4,)], "any"),
    ("matmul_batched", nl.matmul, _t(lambda T, a, b: a @ b), [(2, 3, 4), (2, 4, 5)], "any"),
    ("matmul_bcast", nl.matmul, _t(lambda T, a, b: a @ b), [(2, 1, 3, 4), (3, 4, 2)], "any"),
    ("matmul_transposed", lambda a, b: a.T @ b.T, _t(lambda T, a, b: a.T @ b.T), [(4, 3), (5, 4)], "any"),
    ("matmul_4d", nl.matmul, _t(lambda T, a, b: a @ b), [(2, 3, 4, 5), (2, 3, 5, 2)], "any"),
    # attention's heads: (N, L, H, d) storage read as (N, H, L, d), and a key transposed in place
    ("matmul_4d_heads", lambda a, b: a.transpose(1, 2) @ b.transpose(1, 2).transpose(-1, -2),
     _t(lambda T, a, b: a.transpose(1, 2) @ b.transpose(1, 2).transpose(-1, -2)), [(2, 4, 3, 5), (2, 6, 3, 5)], "any"),
    # self-attention from one packed [Q | K | V] projection (MultiheadAttention's packed path)
    ("packed_attention", lambda a: nl.ops.packed_attention.packed_attention(a, 2),
     _t(lambda T, a: _torch_packed_attention(T, a, 2, False)), [(2, 5, 12)], "any"),
    ("packed_attention_causal", lambda a: nl.ops.packed_attention.packed_attention(a, 2, _CAUSAL_5),
     _t(lambda T, a: _torch_packed_attention(T, a, 2, True)), [(2, 5, 12)], "any"),
    ("matmul_5d", nl.matmul, _t(lambda T, a, b: a @ b), [(2, 1, 2, 3, 4), (2, 1, 2, 4, 3)], "any"),
    # reductions over each dim
    ("sum_all", lambda a: a.sum(), _t(lambda T, a: a.sum()), [(3, 4)], "any"),
    ("sum_dim0", lambda a: a.sum(0), _t(lambda T, a: a.sum(0)), [(3, 4)], "any"),
    ("sum_dim1_keep", lambda a: a.sum(1, keepdim=True), _t(lambda T, a: a.sum(1, keepdim=True)), [(3, 4)], "any"),
    ("sum_dims", lambda a: a.sum((0, 2)), _t(lambda T, a: a.sum((0, 2))), [(2, 3, 4)], "any"),
    ("mean", lambda a: a.mean(-1), _t(lambda T, a: a.mean(-1)), [(3, 4)], "any"),
    ("var", lambda a: a.var(0), _t(lambda T, a: a.var(0)), [(5, 4)], "any"),
    ("var_biased", lambda a: a.var(1, correction=0, keepdim=True),
     _t(lambda T, a: a.var(1, correction=0, keepdim=True)), [(3, 5)], "any"),
    ("std", lambda a: a.std(), _t(lambda T, a: a.std()), [(3, 4)], "any"),
    ("max_all", lambda a: a.max(), _t(lambda T, a: a.max()), [(3, 4)], "any"),
    ("max_dim", lambda a: a.max(1).values, _t(lambda T, a: a.max(1).values), [(3, 4)], "any"),
    ("min_dim_keep", lambda a: a.min(0, keepdim=True).values, _t(lambda T, a: a.min(0, keepdim=True).values), [(3, 4)], "any"),
    ("amax", lambda a: a.amax((0, 1)), _t(lambda T, a: a.amax((0, 1))), [(3, 4, 2)], "any"),
    ("logsumexp", lambda a: a.logsumexp(1), _t(lambda T, a: a.logsumexp(1)), [(3, 4)], "any"),
    ("prod_all", lambda a: a.prod(), _t(lambda T, a: a.prod()), [(3, 4)], "any"),
    ("prod_dim", lambda a: nl.prod(a, 1), _t(lambda T, a: T.prod(a, 1)), [(3, 4)], "any"),
    ("prod_dim_keep", lambda a: nl.prod(a, 0, keepdim=True), _t(lambda T, a: T.prod(a, 0, keepdim=True)),
     [(3, 4)], "any"),
    ("prod_zeros", lambda a: a.prod(1), _t(lambda T, a: a.prod(1)), [(4, 5)], "zeros"),
    ("prod_all_zeros", lambda a: a.prod(), _t(lambda T, a: a.prod()), [(4, 5)], "zeros"),
    ("norm", lambda a: a.norm(), _t(lambda T, a: a.norm()), [(3, 4)], "any"),
    # shapes
    ("reshape", lambda a: a.reshape(4, 3) * nl.arange(3).double(), _t(lambda T, a: a.reshape(4, 3) * T.arange(3).double()), [(3, 4)], "any"),
    ("view_flat", lambda a: a.view(-1) * nl.arange(12).double(), _t(lambda T, a: a.view(-1) * T.arange(12).double()), [(3, 4)], "any"),
    ("transpose", lambda a: a.transpose(0, 2) * 2, _t(lambda T, a: a.transpose(0, 2) * 2), [(2, 3, 4)], "any"),
    ("permute", lambda a: a.permute(2, 0, 1).reshape(4, 6) @ nl.ones(6, 2, dtype=nl.float64),
     _t(lambda T, a: a.permute(2, 0, 1).reshape(4, 6) @ T.ones(6, 2, dtype=T.float64)), [(2, 3, 4)], "any"),
    ("flatten", lambda a: a.flatten(1) ** 2, _t(lambda T, a: a.flatten(1) ** 2), [(2, 3, 4)], "any"),
    ("squeeze_unsqueeze", lambda a: a.unsqueeze(1).squeeze(2) ** 2, _t(lambda T, a: a.unsqueeze(1).squeeze(2) ** 2), [(3, 1, 4)], "any"),
    ("expand", lambda a: a.expand(3, 4) ** 2, _t(lambda T, a: a.expand(3, 4) ** 2), [(1, 4)], "any"),
    ("cat", lambda a, b: nl.cat([a, b, a], 1) ** 2, _t(lambda T, a, b: T.cat([a, b, a], 1) ** 2), [(2, 3), (2, 1)], "any"),
    ("stack", lambda a, b: nl.stack([a, b], -1) ** 2, _t(lambda T, a, b: T.stack([a, b], -1) ** 2), [(2, 3), (2, 3)], "any"),
    ("split", lambda a: a.split(2, 1)[1] ** 2, _t(lambda T, a: a.split(2, 1)[1] ** 2), [(3, 5)], "any"),
    ("chunk", lambda a: a.chunk(3, 0)[2] * 3, _t(lambda T, a: a.chunk(3, 0)[2] * 3), [(7, 2)], "any"),
    # indexing
    ("slice", lambda a: a[1:, ::2] ** 2, _t(lambda T, a: a[1:, ::2] ** 2), [(3, 5)], "any"),
    ("int_index", lambda a: a[1] ** 2, _t(lambda T, a: a[1] ** 2), [(3, 5)], "any"),
    ("repeated_index", lambda a: a[[0, 2, 0, 0]] ** 2, _t(lambda T, a: a[[0, 2, 0, 0]] ** 2), [(3, 5)], "any"),
    ("bool_mask", lambda a: a[a.detach() > 0] ** 2, _t(lambda T, a: a[a.detach() > 0] ** 2), [(3, 5)], "any"),
    ("gather", lambda a: a.gather(1, nl.tensor([[0, 0], [2, 1], [1, 1]])) ** 2,
     _t(lambda T, a: a.gather(1, T.tensor([[0, 0], [2, 1], [1, 1]])) ** 2), [(3, 4)], "any"),
    ("masked_fill", lambda a: a.masked_fill(nl.tensor([True, False, True, False]), 0.5) ** 2,
     _t(lambda T, a: a.masked_fill(T.tensor([True, False, True, False]), 0.5) ** 2), [(3, 4)], "any"),
    ("index_select", lambda a: a.index_select(1, nl.tensor([2, 0, 2])) ** 2,
     _t(lambda T, a: a.index_select(1, T.tensor([2, 0, 2])) ** 2), [(3, 4)], "any"),
    ("narrow", lambda a: a.narrow(1, 1, 2) ** 2, _t(lambda T, a: a.narrow(1, 1, 2) ** 2), [(3, 4)], "any"),
    ("movedim", lambda a: a.movedim(0, 2) * nl.arange(3).double(),
     _t(lambda T, a: a.movedim(0, 2) * T.arange(3).double()), [(3, 4, 2)], "any"),
    ("unflatten", lambda a: a.unflatten(1, (2, 2)) ** 2, _t(lambda T, a: a.unflatten(1, (2, 2)) ** 2), [(3, 4)], "any"),
    ("std_dim", lambda a: a.std(1), _t(lambda T, a: a.std(1)), [(3, 4)], "any"),
    ("min_all", lambda a: a.min(), _t(lambda T, a: a.min()), [(3, 4)], "any"),
    ("amin", lambda a: a.amin(0), _t(lambda T, a: a.amin(0)), [(3, 4)], "any"),
    ("square", nl.square, _t(lambda T, a: T.square(a)), [(3, 4)], "any"),
    ("clone", lambda a: a.clone() * 2, _t(lambda T, a: a.clone() * 2), [(3, 4)], "any"),
    # softmax
    ("softmax", lambda a: nl.softmax(a, dim=1), _t(lambda T, a: T.softmax(a, dim=1)), [(3, 4)], "any"),
    ("softmax_dim0", lambda a: nl.softmax(a, dim=0), _t(lambda T, a: T.softmax(a, dim=0)), [(3, 4, 2)], "any"),
    ("log_softmax", lambda a: nl.log_softmax(a, dim=-1), _t(lambda T, a: T.log_softmax(a, dim=-1)), [(3, 4)], "any"),
    # graph shapes: a diamond and a reused node
    ("diamond", lambda a: (a.exp() * a.sin() + a.exp()).sum(0), _t(lambda T, a: (a.exp() * a.sin() + a.exp()).sum(0)), [(3, 4)], "any"),
    ("reused", lambda a: (lambda h: h * h + h)(a.tanh()), _t(lambda T, a: (lambda h: h * h + h)(a.tanh())), [(3, 4)], "any"),
]

SECOND_ORDER = {"mul", "div", "pow_scalar", "exp", "log", "tanh", "sigmoid", "gelu", "gelu_tanh",
                "silu", "softplus", "elu", "elu_alpha", "selu", "hardswish", "logsigmoid", "softsign", "mish",
                "matmul_2d", "matmul_batched", "matmul_1d_2d",
                "matmul_4d_heads",
                "packed_attention", "packed_attention_causal",
                "sum_dims", "mean",
                "var", "logsumexp", "softmax", "softmax_dim0", "log_softmax", "repeated_index",
                "gather", "cat", "diamond", "reused", "sqrt", "rsqrt", "reciprocal", "erf", "max_dim", "norm",
                "log1p", "expm1", "log2", "log10", "exp2", "tan", "asin", "acos", "atan", "sinh", "cosh",
                "asinh", "acosh", "atanh", "atan2", "hypot", "logaddexp", "logaddexp2", "xlogy", "logit",
                "sinc", "deg2rad", "frac", "remainder", "lerp_tensor_weight", "addcmul", "addcdiv",
                "cumsum", "cumprod", "cumprod_zeros", "cumprod_zeros_dim0", "logcumsumexp", "cummax",
                "prod_all", "prod_dim", "prod_zeros"}


def make_inputs(shapes, kind, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for s in shapes:
        if kind == "pos":
            a = rng.uniform(0.5, 2.0, s)
        elif kind == "away":
            a = rng.uniform(0.2, 2.0, s) * rng.choice([-1.0, 1.0], s)
        elif kind == "zeros":
            a = np.where(rng.random(s) < 0.35, 0.0, rng.standard_normal(s))
        else:
            a = rng.standard_normal(s)
        out.append(np.ascontiguousarray(a))
    return out
