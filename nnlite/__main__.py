"""``python -m nnlite``: the same as the ``nnlite`` command."""
import sys

from .cli import main

sys.exit(main())
