"""Parameter analysis: how many parameters a model has, which of them matter, how healthy they are.

Readable Python over nnlite's own operations; each quantity's docstring gives
its formula and the paper it comes from. One concept per file:

* counting and cost (``counting.py``, ``flop_count.py``, ``effective.py``):
  :func:`report`, :func:`flops`, :func:`flops_by_layer`,
  :func:`effective_parameters`, :func:`sensitive_parameters`,
  :func:`effective_dimensionality`
* distributions (``distributions.py``, ``activations.py``):
  :func:`weight_histograms`, :func:`gradient_histograms`,
  :func:`parameter_norms`, :func:`gradient_stats`, :func:`parameter_snapshot`,
  :func:`update_ratios`, :func:`record_activations`, :func:`activation_stats`
* sensitivity (``fisher.py``, ``hessian.py``, ``importance.py``):
  :func:`per_sample_gradients`, :func:`fisher_diagonal`,
  :func:`hessian_vector_product`, :func:`hessian_trace`,
  :func:`hessian_top_eigenvalues`, :func:`mean_gradient`, the scores
  :func:`magnitude_importance`, :func:`gradient_importance`,
  :func:`taylor_importance`, :func:`snip_importance`,
  :func:`fisher_importance`, and :func:`removal_mask`,
  :func:`loss_after_removal`, :func:`perturbation_sensitivity`
* quality metrics (``spectra.py``): :func:`singular_values`,
  :func:`spectral_norm`, :func:`condition_number`, :func:`effective_rank`,
  :func:`stable_rank`, :func:`eigenvalues`, :func:`as_matrix`,
  :func:`quality_metrics`
* information content (``information.py``): :func:`entropy`,
  :func:`weight_entropy`, :func:`mutual_information`,
  :func:`unit_mutual_information`

Functions that average over data take ``batches``: an iterable of ``(input,
target)`` pairs such as a DataLoader, or one pair; averages run over samples.
"""
from .activations import activation_stats, record_activations
from .distributions import (gradient_histograms, gradient_stats, parameter_norms, parameter_snapshot,
                            update_ratios, weight_histograms)
from .effective import effective_dimensionality, effective_parameters, sensitive_parameters
from .fisher import fisher_diagonal, per_sample_gradients
from .flop_count import flops, flops_by_layer
from .hessian import hessian_top_eigenvalues, hessian_trace, hessian_vector_product
from .importance import (fisher_importance, gradient_importance, loss_after_removal, magnitude_importance,
                         mean_gradient, perturbation_sensitivity, removal_mask, snip_importance,
                         taylor_importance)
from .information import entropy, mutual_information, unit_mutual_information, weight_entropy
from .counting import Report, report
from .spectra import (as_matrix, condition_number, effective_rank, eigenvalues, quality_metrics,
                      singular_values, spectral_norm, stable_rank)

__all__ = ["report", "Report", "flops", "flops_by_layer", "effective_parameters", "sensitive_parameters",
           "effective_dimensionality",
           "weight_histograms", "gradient_histograms", "parameter_norms", "gradient_stats", "parameter_snapshot",
           "update_ratios", "record_activations", "activation_stats",
           "per_sample_gradients", "fisher_diagonal", "hessian_vector_product", "hessian_trace",
           "hessian_top_eigenvalues", "mean_gradient", "magnitude_importance", "gradient_importance",
           "taylor_importance", "snip_importance", "fisher_importance", "removal_mask", "loss_after_removal",
           "perturbation_sensitivity",
           "as_matrix", "singular_values", "spectral_norm", "condition_number", "effective_rank", "stable_rank",
           "eigenvalues", "quality_metrics", "entropy", "weight_entropy", "mutual_information",
           "unit_mutual_information"]
