"""Wrong arguments to the analysis functions raise errors that name the function, the expectation and the value."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.analysis import (activation_stats, effective_dimensionality, entropy, parameter_snapshot,
                             perturbation_sensitivity, quality_metrics, update_ratios, weight_histograms)
from nnlite.nn import functional as F


def _batch():
    nl.manual_seed(0)
    return nl.randn(6, 4), nl.tensor(np.array([0, 1, 2, 0, 1, 2]))


def test_entropy_of_no_labels_is_an_error():
    with pytest.raises(ValueError, match=r"entropy: expected at least one label, got shape \(0,\)"):
        entropy(np.array([], dtype=int))


def test_histogram_bins_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="bins must be a positive integer, got 0"):
        weight_histograms(nn.Linear(4, 3), bins=0)


def test_information_counts_must_be_integers_and_rows_present():
    from nnlite.analysis import mutual_information, unit_mutual_information, weight_entropy
    with pytest.raises(ValueError, match="bits must be an integer between 1 and 24, got 2.5"):
        weight_entropy(np.linspace(-1, 1, 10), bits=2.5)          # was 2^2.5 - 1 levels
    with pytest.raises(ValueError, match="bins must be an integer >= 1, got 2.5"):
        mutual_information(np.linspace(-1, 1, 10), np.arange(10) % 2, bins=2.5)
    with pytest.raises(ValueError, match=r"unit_mutual_information: expected activations with at least one "
                                         r"row, got shape \(0, 3\)"):
        unit_mutual_information(np.zeros((0, 3)), np.zeros(0, int))


def test_effective_dimensionality_takes_a_vector_of_eigenvalues():
    with pytest.raises(ValueError, match=r"1-D array of eigenvalues, got shape \(2, 2\)"):
        effective_dimensionality(np.eye(2))


def test_update_ratios_with_a_snapshot_of_another_model():
    other = parameter_snapshot(nn.Sequential(nn.Linear(4, 3)))   # names '0.weight', '0.bias'
    with pytest.raises(KeyError, match="snapshot holds none of the model's parameters"):
        update_ratios(nn.Linear(4, 3), other)


def test_activation_stats_without_batches():
    with pytest.raises(ValueError, match="at least one batch"):
        activation_stats(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), [])


def test_perturbation_sensitivity_needs_a_draw():
    with pytest.raises(ValueError, match="n_draws must be a positive integer, got 0"):
        perturbation_sensitivity(nn.Linear(4, 3), F.cross_entropy, [_batch()], [0.1], n_draws=0)


def test_quality_metrics_of_something_that_holds_no_weights():
    with pytest.raises(TypeError, match="expected a Module or a mapping of names to weights, got int"):
        quality_metrics(42)


def test_record_activations_takes_one_layer_name_as_a_string():
    from nnlite.analysis import record_activations
    model = nn.Sequential()
    model.add_module("fc1", nn.Linear(4, 3))
    assert list(record_activations(model, [_batch()], layers="fc1")) == ["fc1"]


def test_scores_must_match_the_model_parameters():
    from nnlite.analysis import effective_parameters, loss_after_removal
    model = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"scores\['nope'\] has shape \(2,\), but the model's parameter is missing"):
        effective_parameters(model, F.cross_entropy, [_batch()], scores={"nope": np.ones(2)})
    with pytest.raises(ValueError, match=r"scores\['weight'\] has shape \(4, 3\), but the model's parameter is "
                                         r"shape \(3, 4\)"):
        loss_after_removal(model, F.cross_entropy, [_batch()], {"weight": np.ones((4, 3))}, [0.5])


@pytest.mark.parametrize("call", [
    lambda a: a.report(np.zeros(3)), lambda a: a.flops(np.zeros(3), nl.randn(2, 4)),
    lambda a: a.weight_histograms(np.zeros(3)), lambda a: a.parameter_norms(np.zeros(3)),
    lambda a: a.gradient_stats(np.zeros(3)), lambda a: a.magnitude_importance(np.zeros(3)),
    lambda a: a.record_activations(np.zeros(3), nl.randn(2, 4))])
def test_an_array_where_a_model_is_expected(call):
    from nnlite import analysis
    with pytest.raises(TypeError, match="expected an nn.Module, got ndarray"):
        call(analysis)


def test_report_names_an_optimizer_that_is_not_one():
    from nnlite.analysis import report
    with pytest.raises(TypeError, match="report: expected optimizer to be an nl.optim.Optimizer or None, got str"):
        report(nn.Linear(4, 3), optimizer="adam")


def test_snapshot_and_vector_must_be_mappings():
    from nnlite.analysis import hessian_vector_product
    model = nn.Linear(4, 3)
    with pytest.raises(TypeError, match="update_ratios: expected before as a parameter_snapshot"):
        update_ratios(model, np.zeros(3))
    with pytest.raises(TypeError, match="hessian_vector_product: expected vector as a mapping"):
        hessian_vector_product(model, F.cross_entropy, _batch(), np.zeros(15))


def test_snapshot_and_vector_entries_must_have_the_parameters_shapes():
    # Shapes that broadcast (a snapshot row) or hold the same number of entries (a transposed
    # weight) gave numbers for the wrong parameters instead of an error.
    from nnlite.analysis import hessian_vector_product
    model = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"snapshot of 'weight' has shape \(4,\), the parameter \(3, 4\)"):
        update_ratios(model, {"weight": np.zeros(4), "bias": np.zeros(3)})
    with pytest.raises(ValueError, match=r"vector\['weight'\] must have the parameter's shape \(3, 4\), "
                                         r"got \(4, 3\)"):
        hessian_vector_product(model, F.cross_entropy, _batch(), {"weight": np.ones((4, 3)), "bias": np.ones(3)})


def test_a_batch_without_samples_is_named():
    from nnlite.analysis import mean_gradient, per_sample_gradients
    x, y = _batch()
    with pytest.raises(ValueError, match=r"at least one sample, got an input of shape \(0, 4\) at position 0"):
        mean_gradient(nn.Linear(4, 3), F.cross_entropy, [(x[:0], y[:0])])
    with pytest.raises(ValueError, match="at least one sample"):
        per_sample_gradients(nn.Linear(4, 3), F.cross_entropy, x[:0], y[:0])


def test_generator_must_be_a_generator():
    from nnlite.analysis import hessian_trace
    with pytest.raises(TypeError, match="hessian_trace: generator must be an nl.Generator or None, got int"):
        hessian_trace(nn.Linear(4, 3), F.cross_entropy, _batch(), n_probes=2, generator=5)


@pytest.mark.parametrize("kwargs, message", [
    ({"iters": 0}, "iters must be a positive integer, got 0"),
    ({"tol": -1.0}, "tol must be >= 0, got -1.0"),
    ({"tol": float("nan")}, "tol must be >= 0, got nan"),
    ({"k": 2.0}, r"k must be an integer between 1 and the number of parameters \(15\), got 2.0"),   # a slice
    ({"k": True}, r"k must be an integer between 1 and the number of parameters \(15\), got True")])
def test_lanczos_settings_are_checked(kwargs, message):
    from nnlite.analysis import hessian_top_eigenvalues
    with pytest.raises(ValueError, match=message):
        hessian_top_eigenvalues(nn.Linear(4, 3), F.cross_entropy, _batch(), **kwargs)


def test_nan_thresholds_perturbations_and_scales_are_refused():
    from nnlite.analysis import effective_parameters, sensitive_parameters
    model, batch = nn.Linear(4, 3), _batch()
    with pytest.raises(ValueError, match="threshold must be >= 0, got nan"):
        effective_parameters(model, F.cross_entropy, batch, threshold=float("nan"))
    with pytest.raises(ValueError, match="sensitive_parameters: threshold must be >= 0, got nan"):
        sensitive_parameters(model, F.cross_entropy, batch, threshold=float("nan"))
    with pytest.raises(ValueError, match="perturbation must be None or a finite number > 0, got -1.0"):
        sensitive_parameters(model, F.cross_entropy, batch, perturbation=-1.0)
    with pytest.raises(ValueError, match=r"scales must be finite numbers >= 0, got \[nan\]"):
        perturbation_sensitivity(model, F.cross_entropy, batch, [float("nan")])
    with pytest.raises(ValueError, match="alpha must be a finite number > 0, got nan"):
        effective_dimensionality([1.0, 2.0], alpha=float("nan"))
    with pytest.raises(ValueError, match="expected real eigenvalues, got NaN"):
        effective_dimensionality([float("nan"), 1.0])


def test_removal_mask_scores():
    from nnlite.analysis import removal_mask
    with pytest.raises(TypeError, match="expected scores as a mapping"):
        removal_mask(np.zeros(3), 0.5)
    with pytest.raises(ValueError, match="at least one score, got an empty mapping"):
        removal_mask({}, 0.5)
    with pytest.raises(ValueError, match=r"without NaN, got NaN in \['b'\]"):
        removal_mask({"a": np.ones(2), "b": np.array([np.nan, 1.0])}, 0.5)


def test_non_finite_weights_and_activations_are_named():
    from nnlite.analysis import mutual_information, spectral_norm, unit_mutual_information, weight_entropy
    bad = np.array([[np.inf, 1.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match="as_matrix: expected a finite weight"):
        spectral_norm(bad)   # was nan from the SVD
    with pytest.raises(ValueError, match="weight_entropy: expected finite weights"):
        weight_entropy(np.array([np.nan, 1.0]))   # was 0 bits
    with pytest.raises(ValueError, match="mutual_information: expected finite activations"):
        unit_mutual_information(np.full((6, 2), np.nan), np.arange(6) % 2)   # was 0 bits per unit
    with pytest.raises(ValueError, match=r"at least one row, got shape \(0, 2\)"):
        mutual_information(np.zeros((0, 2)), np.zeros(0, int))
    model = nn.Linear(2, 2)
    model.weight.data[0, 0] = np.nan
    with pytest.raises(ValueError, match="histograms: weight holds NaN or inf"):
        weight_histograms(model)


def test_measuring_a_training_model_leaves_its_running_statistics():
    from nnlite import analysis
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    x, y = _batch()
    before = {k: v.data.copy() for k, v in model.state_dict().items()}
    analysis.flops(model, x)
    analysis.activation_stats(model, x)
    analysis.mean_gradient(model, F.cross_entropy, (x, y))
    analysis.hessian_trace(model, F.cross_entropy, (x, y), n_probes=1)
    analysis.loss_after_removal(model, F.cross_entropy, (x, y), analysis.magnitude_importance(model), [0.5])
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.data, before[key], err_msg=key)


def test_measuring_a_qat_model_leaves_its_buffers_shapes():
    # Its observers replace their buffers by per-channel arrays at the first forward pass; the
    # values were put back into those, so the state_dict came back with other shapes.
    from nnlite import analysis
    qat = nl.quantization.prepare_qat(nn.Sequential(nn.Linear(4, 3)))
    before = {k: v.data.copy() for k, v in qat.state_dict().items()}
    analysis.flops(qat, _batch()[0])
    after = qat.state_dict()
    assert list(after) == list(before)
    for k, v in before.items():
        np.testing.assert_array_equal(after[k].data, v)
        assert after[k].data.shape == v.shape


def test_report_with_an_example_input_without_samples():
    from nnlite.analysis import report
    with pytest.raises(ValueError, match=r"report: example_input has no samples \(shape \(0, 4\)\)"):
        report(nn.Linear(4, 3), example_input=nl.zeros(0, 4))   # was a ZeroDivisionError
