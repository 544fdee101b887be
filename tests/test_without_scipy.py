"""nnlite needs no SciPy at run time: it imports, initialises, trains and runs erf/GELU with SciPy blocked."""
from helpers import run_fresh

CODE = """
import sys
sys.modules["scipy"] = None          # any "import scipy..." now raises ImportError
import numpy as np
import nnlite as nl

nl.manual_seed(0)
model = nl.nn.Sequential(nl.nn.Linear(4, 8), nl.nn.GELU(), nl.nn.Linear(8, 1))
nl.nn.init.trunc_normal_(model[0].weight, std=0.5, a=-1.0, b=1.0)
assert np.abs(model[0].weight.data).max() <= 1.0
opt = nl.optim.Adam(model.parameters(), lr=1e-2)
x, y = nl.randn(16, 4), nl.randn(16, 1)
losses = []
for backend in ("cython", "reference"):          # the reference GELU twins use erf too
    nl.set_backend(backend)
    for _ in range(10):
        opt.zero_grad()
        loss = nl.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss))
assert losses[-1] < losses[0], losses
t = nl.tensor([0.5, -1.0], dtype=nl.float64, requires_grad=True)
(g,) = nl.grad(nl.erf(t).sum(), t)
assert abs(float(nl.erf(t).data[0]) - 0.5204998778130465) < 1e-15
assert np.allclose(g.data, 2 / np.sqrt(np.pi) * np.exp(-t.data ** 2))
loaded = [m for m, mod in sys.modules.items() if mod is not None and m.split(".")[0] == "scipy"]
assert not loaded, loaded
print("ok")
"""


def test_nnlite_builds_initialises_and_trains_a_model_with_scipy_blocked(tmp_path):
    result = run_fresh(["-c", CODE], tmp_path, NNLITE_BACKEND=None)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
