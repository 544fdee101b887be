"""The examples in the docstrings of nnlite.monitor run and print what they say."""
import doctest
import importlib

import pytest

import nnlite as nl


@pytest.mark.parametrize("module", ["landscape", "parameter_monitor", "convergence", "graph"])
def test_docstring_examples(module):
    mod = importlib.import_module(f"nnlite.monitor.{module}")
    nl.manual_seed(0)
    result = doctest.testmod(mod, extraglobs={"nl": nl}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
