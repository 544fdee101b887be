"""The transfer helpers name a wrong head, class count or class split instead of failing later."""
import pytest

from nnlite import nn
from nnlite.transfer import mnist1d_shift, reinitialize_head


def test_reinitialize_head_checks_the_head_and_the_class_count():
    model = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got 0"):
        reinitialize_head(model, 0)
    with pytest.raises(TypeError, match="model.linear must be an nn.Linear, got NoneType"):
        reinitialize_head(model, 2)


def test_mnist1d_shift_needs_disjoint_classes_and_some_labels():
    with pytest.raises(ValueError, match="source and target must be disjoint"):
        mnist1d_shift(source=(0, 1), target=(1, 2))
    with pytest.raises(ValueError, match="labels_per_class must be a positive integer, got 0"):
        mnist1d_shift(labels_per_class=0)
