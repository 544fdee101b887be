"""The examples in the docstrings of nnlite.func, nnlite.meta and nnlite.nas run and print what they say."""
import doctest
import importlib

import pytest

import nnlite as nl


@pytest.mark.parametrize("module", ["nnlite.func", "nnlite.meta.maml", "nnlite.meta.metasgd", "nnlite.meta.sinusoid",
                                    "nnlite.meta.hypernetwork", "nnlite.nas.darts", "nnlite.nas.latency"])
def test_docstring_examples(module):
    mod = importlib.import_module(module)
    nl.manual_seed(0)
    result = doctest.testmod(mod, extraglobs={"nl": nl}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
