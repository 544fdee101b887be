"""Sphinx configuration for nnlite's documentation.

The site builds offline and with ``-W``: MathJax is served from the
``sphinx-mathjax-offline`` package (no CDN), there is no intersphinx, and the
tutorials in ``tutorials/`` run during the build (sphinx-gallery), so an
assertion that fails in a tutorial fails the build.
"""
import os
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# An installed nnlite (with its compiled kernels) wins; a source checkout works too.
try:
    import nnlite  # noqa: F401
except ImportError:
    sys.path.insert(0, ROOT)
    import nnlite  # noqa: F401

sys.path.insert(0, os.path.join(HERE, "_ext"))

project = "nnlite"
author = "the nnlite authors"
copyright = "the nnlite authors, BSD-3-Clause"
release = version = nnlite.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
    "sphinx-mathjax-offline",   # the package's import name has hyphens
    "nnlite_docs",              # docs/_ext/nnlite_docs.py: the benchmark table directive
]

exclude_patterns = ["_build", "auto_tutorials/*.ipynb", "auto_tutorials/*.py",
                    "auto_tutorials/*.zip", "sg_execution_times.rst", "**.md5"]
templates_path = []
html_static_path = ["_static"]
html_css_files = ["nnlite.css"]
html_theme = "furo"
html_title = f"nnlite {release}"
pygments_style = "friendly"
pygments_dark_style = "monokai"

# One docstring style: reST, with numpydoc sections ("Parameters", "Returns")
# read by napoleon where a function has many arguments. No Google style.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_default_options = {"members": True, "show-inheritance": False}
autoclass_content = "class"
add_module_names = False

# Nothing is fetched from the network at build time.
intersphinx_mapping = {}

sphinx_gallery_conf = {
    "examples_dirs": os.path.join(ROOT, "tutorials"),
    "gallery_dirs": "auto_tutorials",
    "filename_pattern": r"plot_",
    "within_subsection_order": "FileNameSortKey",
    "write_computation_times": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "capture_repr": ("_repr_html_", "__repr__"),
    "abort_on_example_error": True,
    "min_reported_time": 0,
    "show_memory": False,
    "backreferences_dir": None,
    "doc_module": (),
    "plot_gallery": "True",
}

# matplotlib draws off-screen during the build.
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", message="Matplotlib is currently using agg")


def _skip_foreign(app, what, name, obj, skip, options):
    """Leave out class attributes that merely hold a NumPy function (``pick = np.max``)."""
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and (module == "numpy" or module.startswith("numpy.")):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign)
