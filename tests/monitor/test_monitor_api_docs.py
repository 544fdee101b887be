"""Every public name of nnlite.monitor and nnlite.plot has an autodoc entry, and the docs name the dashboard command."""
import os
import re

import pytest

import nnlite

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs")
AUTODOC = re.compile(r"^\s*\.\. auto(?:class|function|data)::\s+(\S+)", re.M)


def _page(name):
    with open(os.path.join(DOCS, "api", name), encoding="utf-8") as f:
        return f.read()


@pytest.mark.parametrize("module, page", [("monitor", "monitor.rst"), ("plot", "plot.rst")])
def test_every_public_name_has_an_entry(module, page):
    documented = set(AUTODOC.findall(_page(page)))
    names = {f"nnlite.{module}.{n}" for n in getattr(nnlite, module).__all__}
    assert names == documented
    assert f"\n   {module}\n" in _page("index.rst")


def test_the_docs_show_the_tensorboard_command():
    assert "tensorboard --logdir runs/tb" in _page("monitor.rst")
    assert "--tensorboard runs/tb" in _page("monitor.rst")
