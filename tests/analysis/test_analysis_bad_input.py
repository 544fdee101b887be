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
