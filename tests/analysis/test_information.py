"""Entropy of quantised weights and binned mutual information against exact counts."""
import numpy as np
import pytest

from nnlite.analysis import entropy, mutual_information, unit_mutual_information, weight_entropy


def test_entropy_counts_bits_of_the_empirical_distribution():
    assert entropy([0, 0, 0, 0]) == 0.0
    assert entropy(np.arange(8)) == pytest.approx(3.0)
    assert entropy([0, 0, 1, 2]) == pytest.approx(1.5)


def test_weight_entropy_is_at_most_bits_and_counts_levels():
    rng = np.random.default_rng(0)
    uniform = rng.uniform(-1, 1, 100_000)
    assert 7.9 < weight_entropy(uniform, bits=8) <= 8.0
    # Two values at the ends of the range: one bit, whatever the precision.
    assert weight_entropy(np.array([-0.3, 0.7, 0.7, -0.3]), bits=4) == pytest.approx(1.0)
    # A peaked (normal) distribution uses its levels unevenly: fewer bits than a uniform one.
    assert weight_entropy(rng.standard_normal(100_000), bits=8) < weight_entropy(uniform, bits=8) - 0.5
    assert weight_entropy(np.full(5, 2.0)) == 0.0
    with pytest.raises(ValueError, match="bits"):
        weight_entropy(uniform, bits=0)


def test_mutual_information_of_a_copy_is_the_label_entropy_and_of_noise_near_zero():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 20_000)
    # One unit that encodes the label exactly, at bin-separated levels.
    copy = labels[:, None].astype(float)
    assert mutual_information(copy, labels, bins=4) == pytest.approx(entropy(labels), rel=1e-12)
    # Activations independent of the labels: the plug-in estimate is small (its bias is about cells / N).
    noise = rng.standard_normal((20_000, 1))
    assert mutual_information(noise, labels, bins=10) < 0.01


def test_mutual_information_matches_a_hand_computed_joint_table():
    # T in {0, 1} (two bins), Y in {0, 1}: p(T,Y) = [[3, 1], [1, 3]] / 8.
    T = np.array([0, 0, 0, 0, 1, 1, 1, 1], float)[:, None]
    Y = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    joint = np.array([[3, 1], [1, 3]]) / 8
    expected = (joint * np.log2(joint / (0.5 * 0.5))).sum()
    assert mutual_information(T, Y, bins=2) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="8 activation rows but 7 labels"):
        mutual_information(T, Y[:7])


def test_unit_mutual_information_is_the_estimate_of_each_column_alone():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 5000)
    layer = np.stack([labels + 0.1 * rng.standard_normal(5000), rng.standard_normal(5000)], 1)
    per_unit = unit_mutual_information(layer, labels, bins=4)
    assert per_unit[0] == pytest.approx(mutual_information(layer[:, 0], labels, bins=4))
    assert per_unit[0] > 0.9 and per_unit[1] < 0.01
