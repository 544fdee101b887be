"""The generator's seeds, as PyTorch takes them."""
import pytest

import nnlite as nl

from helpers import torch_or_skip

# torch.Generator().initial_seed()
PYTORCH_DEFAULT_SEED = 67280421310721


def test_a_negative_seed_counts_modulo_2_to_the_64_as_in_pytorch():
    # it used to stop in NumPy with "expected non-negative integer", naming no seed
    g = nl.Generator(-1)
    assert g.initial_seed() == 2**64 - 1
    assert (nl.rand(4, generator=g).data == nl.rand(4, generator=nl.Generator(2**64 - 1)).data).all()
    assert nl.manual_seed(-5).initial_seed() == 2**64 - 5
    nl.manual_seed(0)


def test_a_seed_outside_64_bits_is_refused_with_the_range_and_the_seed():
    for bad in (2**64, -2**63 - 1):
        with pytest.raises(ValueError, match=rf"expected a seed in \[-2\*\*63, 2\*\*64\), got {bad}$"):
            nl.Generator(bad)
    with pytest.raises(TypeError, match="expected an int, got float"):
        nl.manual_seed(1.5)


def test_an_unseeded_generator_starts_from_pytorchs_default_seed():
    # it used to seed itself from fresh entropy: two unseeded generators drew differently
    a, b = nl.Generator(), nl.Generator()
    assert a.initial_seed() == PYTORCH_DEFAULT_SEED
    assert (nl.rand(5, generator=a).data == nl.rand(5, generator=b).data).all()


def test_the_default_seed_is_pytorchs():
    assert torch_or_skip().Generator().initial_seed() == PYTORCH_DEFAULT_SEED


def test_a_generator_takes_pytorchs_device_argument():
    # torch.Generator(device="cpu") is how PyTorch code makes one; nnlite refused the keyword
    g = nl.Generator(device="cpu").manual_seed(3)
    assert g.device == "cpu" and g.initial_seed() == 3
    with pytest.raises(ValueError, match="expected device='cpu', got 'cuda'"):
        nl.Generator(device="cuda")


def test_seed_and_initial_seed_as_in_pytorch():
    # Generator.seed() and nl.initial_seed() were missing; nl.seed() drew only 63 bits
    g = nl.Generator(1)
    s = g.seed()
    assert g.initial_seed() == s and 0 <= s < 2**64
    assert nl.seed() == nl.initial_seed() == nl.random.default_generator().initial_seed()
    assert nl.manual_seed(11).initial_seed() == nl.initial_seed() == 11
    nl.manual_seed(0)
