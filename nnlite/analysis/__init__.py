"""Parameter analysis: how many parameters a model has, which of them matter, how healthy they are.

Readable Python over nnlite's own operations; each quantity's docstring gives
its formula and the paper it comes from.

* counting and cost: :func:`flops`, :func:`flops_by_layer`
* sensitivity: :func:`fisher_diagonal`, :func:`per_sample_gradients`,
  :func:`hessian_vector_product`, :func:`hessian_trace`,
  :func:`hessian_top_eigenvalues`
"""
from .fisher import fisher_diagonal, per_sample_gradients
from .flop_count import flops, flops_by_layer
from .hessian import hessian_top_eigenvalues, hessian_trace, hessian_vector_product

__all__ = ["flops", "flops_by_layer", "fisher_diagonal", "per_sample_gradients", "hessian_vector_product",
           "hessian_trace", "hessian_top_eigenvalues"]
