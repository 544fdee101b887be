"""Layers, containers, losses (``nnlite.nn``), with ``functional`` and ``init`` beside them."""
from ..parameter import Buffer, Parameter  # noqa: F401
from .module import Module  # noqa: F401
from . import functional  # noqa: F401
