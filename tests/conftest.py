"""Fixtures shared by the tests (plain helper functions are in helpers.py)."""
import os

import numpy as np
import pytest

import nnlite as nl


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same state of nnlite's default generator (which a fresh process
    seeds from the operating system), so a test that draws without seeding draws the same numbers
    on every run, whatever ran before it."""
    nl.manual_seed(0)


@pytest.fixture(autouse=True)
def backend(request):
    """The kernel backend a test runs on: ``NNLITE_BACKEND`` (default "cython"), restored afterwards.

    tests/core and tests/nn run unchanged on either backend:
    ``NNLITE_BACKEND=reference python -m pytest tests/core tests/nn`` runs them on the
    NumPy twins. A test that switches backends itself cannot leak the switch.
    """
    name = os.environ.get("NNLITE_BACKEND", "cython")
    before = nl.get_backend()
    nl.set_backend(name)
    yield name
    nl.set_backend(before)


@pytest.fixture
def restore_threads():
    """`--threads` and `set_num_threads` are process-wide; put the count back for the other tests."""
    before = nl.get_num_threads()
    yield
    nl.set_num_threads(before)
