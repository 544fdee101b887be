"""Loading the kernel layer when ``import nnlite`` runs, with messages that say what happened.

Two situations used to end in a misleading message:

* **A source checkout that shadows an install.** Python imports the ``nnlite``
  folder of the current directory before the installed package, so running
  Python from a clone imports the uncompiled sources even when ``pip install .``
  built the kernels fine. The kernel layer's "not built" warning is then
  replaced by one that says which copy was imported and how to use the other
  (or build this one in place).
* **A bad ``NNLITE_BACKEND``.** Named in the error; when the ``nnlite``
  command is starting, reported in one line (exit code 2) instead of a traceback.

And a Ctrl-C while the ``nnlite`` command imports nnlite (before its ``main``
handles interrupts) ends it with exit code 130 and one line, not a traceback.
"""
import importlib
import os
import signal
import sys
import warnings

__all__ = ["import_kernels", "leave_quietly_on_interrupt"]


def _running_the_command():
    """True while ``nnlite ...`` or ``python -m nnlite ...`` is starting."""
    argv = getattr(sys, "orig_argv", None) or []
    if "-m" in argv:
        i = argv.index("-m")
        return i + 1 < len(argv) and argv[i + 1] == "nnlite"
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name in ("nnlite", "nnlite.exe", "nnlite-script.py")


def _leave(signum, frame):
    sys.stderr.write("nnlite: interrupted\n")
    sys.stderr.flush()
    os._exit(130)   # no interpreter finalization half-way through an import


def leave_quietly_on_interrupt():
    """While the ``nnlite`` command starts, Ctrl-C exits with 130; ``cli.main`` takes over from there."""
    if not _running_the_command():
        return
    try:
        signal.signal(signal.SIGINT, _leave)
    except ValueError:   # not the main thread: keep Python's handler
        pass


def _installed_copy(here):
    """The folder of an installed nnlite other than the one being imported, or None."""
    try:
        from importlib.metadata import PackageNotFoundError, distribution
        installed = os.path.abspath(str(distribution("nnlite").locate_file("nnlite/__init__.py")))
    except (ImportError, PackageNotFoundError, OSError, TypeError):
        return None
    if not os.path.isfile(installed) or os.path.dirname(installed) == here:
        return None
    return os.path.dirname(installed)


def source_checkout_note(package_dir):
    """What to tell the user when ``package_dir`` is a source checkout without compiled kernels."""
    root = os.path.dirname(package_dir)
    if not (os.path.isfile(os.path.join(root, "setup.py")) and os.path.isfile(os.path.join(root, "pyproject.toml"))):
        return None
    build = f"build them in place with `python setup.py build_ext --inplace` (in {root})"
    installed = _installed_copy(package_dir)
    if installed is not None:
        return (f"nnlite: imported the source checkout {package_dir} (it comes first on sys.path, e.g. as the "
                f"current directory), whose kernels are not compiled; the installed nnlite in {installed} is not "
                f"used. Run Python from another directory to use the installed package, or {build}. Running on "
                "the NumPy reference twins (slow) meanwhile.")
    return (f"nnlite: the source checkout {package_dir} has no compiled kernels; {build}, or install it with "
            "`pip install .`. Running on the NumPy reference twins (slow) meanwhile.")


def import_kernels():
    """Import ``nnlite._kernels``, rewording its start-up problems as described above."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            kernels = importlib.import_module("nnlite._kernels")
        except ValueError as e:
            backend = os.environ.get("NNLITE_BACKEND")
            if backend is None or backend in ("cython", "reference"):
                raise
            message = f"NNLITE_BACKEND={backend!r} names no backend; expected 'cython' or 'reference'"
            if _running_the_command():
                print(f"nnlite: error: {message}", file=sys.stderr)
                raise SystemExit(2) from None
            raise ValueError(message) from e
    package_dir = os.path.dirname(os.path.abspath(__file__))
    for w in caught:
        message = str(w.message)
        if "compiled kernels are not built" in message:
            message = source_checkout_note(package_dir) or message
        warnings.warn_explicit(message, w.category, w.filename, w.lineno)
    return kernels
