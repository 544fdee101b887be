"""setup.py: what the build does on a machine without a working C compiler."""
import os
import shutil
import subprocess
import sys

import pytest

# The source checkout these tests belong to (not the nnlite that is imported: that may be installed).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_without_a_compiler_the_build_succeeds_and_nnlite_runs_on_its_twins(tmp_path):
    pytest.importorskip("Cython")
    pytest.importorskip("setuptools")
    checkout = tmp_path / "clone"
    shutil.copytree(os.path.join(REPO, "nnlite"), checkout / "nnlite",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__"))
    for name in ("setup.py", "pyproject.toml"):
        shutil.copy(os.path.join(REPO, name), checkout / name)
    # /bin/false as the compiler and linker: every probe and every compile fails, as with no compiler at all.
    # NNLITE_KERNELS keeps the Cython translation to the two modules every build includes.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(CC="/bin/false", CXX="/bin/false", LDSHARED="/bin/false -shared", NNLITE_KERNELS="threads")
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=checkout,
                           capture_output=True, text=True, env=env, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    assert "no working C compiler" in build.stderr
    kernels = os.listdir(checkout / "nnlite" / "_kernels")
    assert not [n for n in kernels if n.endswith((".so", ".pyd"))]
    script = ("import nnlite as nl\nfrom nnlite import nn\nnl.manual_seed(0)\n"
              "print(tuple(nn.Linear(3, 2)(nl.randn(4, 3)).shape))")
    env.pop("NNLITE_KERNELS")
    run = subprocess.run([sys.executable, "-c", script], cwd=checkout, capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "(4, 2)" and "reference twins" in run.stderr
