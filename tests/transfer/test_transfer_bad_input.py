"""The transfer helpers name a wrong head, class count or class split instead of failing later."""
import pytest

from nnlite import nn
from nnlite.transfer import mnist1d_shift, reinitialize_head


def test_reinitialize_head_checks_the_head_and_the_class_count():
    model = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got 0"):
        reinitialize_head(model, 0)
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got 2.0"):
        reinitialize_head(model, 2.0)
    with pytest.raises(TypeError, match="model.linear must be an nn.Linear, got NoneType"):
        reinitialize_head(model, 2)


def test_mnist1d_shift_needs_disjoint_classes_and_some_labels():
    with pytest.raises(ValueError, match="source and target must be disjoint"):
        mnist1d_shift(source=(0, 1), target=(1, 2))
    with pytest.raises(ValueError, match="labels_per_class must be a positive integer, got 0"):
        mnist1d_shift(labels_per_class=0)
    with pytest.raises(ValueError, match="labels_per_class must be a positive integer, got 2.0"):
        mnist1d_shift(labels_per_class=2.0)   # passed int(2.0) == 2.0, then failed inside NumPy's choice


def test_a_float64_model_gets_a_float64_head():
    import numpy as np
    model = nn.Sequential(nn.Linear(4, 3)).double()
    model.linear = nn.Linear(4, 3).double()
    assert reinitialize_head(model, 5).weight.dtype == np.float64


def test_rates_decays_and_models_are_checked():
    import numpy as np
    from nnlite.transfer import GradualUnfreezing, discriminative_param_groups, feature_extraction
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 3))
    with pytest.raises(ValueError, match="lr must be a finite number > 0, got nan"):
        discriminative_param_groups(model, float("nan"))
    with pytest.raises(ValueError, match="decay must be a finite number >= 1, got nan"):
        discriminative_param_groups(model, 0.1, decay=float("nan"))
    with pytest.raises(ValueError, match="GradualUnfreezing: decay must be a finite number >= 1, got 0"):
        GradualUnfreezing(model, 0.1, decay=0)   # was a ZeroDivisionError at the first unfreezing
    with pytest.raises(ValueError, match="every must be an integer >= 1, got 1.5"):
        GradualUnfreezing(model, 0.1, every=1.5)
    with pytest.raises(TypeError, match="blocks: expected an nn.Module, got ndarray"):
        discriminative_param_groups(np.zeros(3), 0.1)
    with pytest.raises(TypeError, match="feature_extraction: expected an nn.Module, got ndarray"):
        feature_extraction(np.zeros(3), 3)
