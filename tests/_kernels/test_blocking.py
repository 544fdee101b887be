"""GEMM block sizes derived from the machine's caches (nnlite/_kernels/blocking.py)."""
import pytest
from helpers import run_fresh

from nnlite._kernels import blocking
from nnlite._kernels.reference import _gemm as gemm_twins


def test_formulas_give_the_former_constants_on_a_512k_l2_core():
    assert blocking.derive(32 * 1024, 512 * 1024) == {
        "kc": 256, "mc": 96, "block": 256, "k_block": 1024, "min_split_work": 1 << 21}


@pytest.mark.parametrize("l1d,l2,kc,mc,block", [
    (32 * 1024, 1024 * 1024, 256, 192, 256),      # a Xeon core with 1 MiB of L2
    (48 * 1024, 2048 * 1024, 256, 384, 512),      # 48 KiB L1d, 2 MiB L2
    (16 * 1024, 256 * 1024, 128, 96, 128),
])
def test_formulas_follow_the_caches(l1d, l2, kc, mc, block):
    chosen = blocking.derive(l1d, l2)
    assert (chosen["kc"], chosen["mc"], chosen["block"], chosen["k_block"]) == (kc, mc, block, 4 * block)
    assert chosen["mc"] % blocking.MICRO_ROWS == 0
    assert chosen["kc"] * blocking.SLIVER_BYTES <= l1d / 2


def test_cache_sizes_are_positive_and_name_their_source():
    l1d, l2, source = blocking.cache_sizes()
    assert l1d > 0 and l2 >= l1d
    assert source in ("sysconf", "sysfs", "fallback")


def test_override_and_its_errors(monkeypatch):
    monkeypatch.setenv("NNLITE_GEMM_BLOCKING", "kc=64, mc=12")
    chosen = blocking.gemm_blocking()
    assert (chosen["kc"], chosen["mc"]) == (64, 12)
    assert chosen["source"].endswith("+env")
    for bad, words in (("kc=0", "kc=0 is out of range"), ("mc=13", "multiple of 6"),
                       ("nc=4", "unknown name 'nc'"), ("kc=big", "whole number, got 'big'")):
        monkeypatch.setenv("NNLITE_GEMM_BLOCKING", bad)
        with pytest.raises(ValueError, match=words):
            blocking.gemm_blocking()


def test_compiled_kernels_and_twin_use_the_chosen_blocks():
    _gemm = pytest.importorskip("nnlite._kernels._gemm")
    _blas = pytest.importorskip("nnlite._kernels._blas")
    chosen = blocking.gemm_blocking()
    assert _gemm.tiled_blocks() == (chosen["kc"], chosen["mc"]) == (gemm_twins._TILED_KC, gemm_twins._TILED_MC)
    assert _blas.gemm_blocks() == (chosen["block"], chosen["block"] // 2, chosen["min_split_work"],
                                   chosen["k_block"])


CHECK_SMALL_BLOCKS = """
import numpy as np
import nnlite as nl
from nnlite._kernels import _gemm, _blas
from nnlite._kernels.reference import _gemm as twins
assert _gemm.tiled_blocks() == (64, 12) == (twins._TILED_KC, twins._TILED_MC)
assert _blas.gemm_blocks() == (64, 32, 4096, 256)
rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    a, b = rng.standard_normal((50, 200)).astype(dtype), rng.standard_normal((200, 70)).astype(dtype)
    assert _gemm.gemm_tiled(a, b).tobytes() == twins.gemm_tiled(a, b).tobytes()
    w, g = rng.standard_normal((2000, 20)).astype(dtype), rng.standard_normal((2000, 30)).astype(dtype)
    for x, y, ta in ((a, b, False), (w, g, True)):   # row blocks; inner-dimension chunks
        runs = []
        for threads in (1, 2, 4):
            nl.set_num_threads(threads)
            runs.append(_gemm.gemm(x, y, ta, False).tobytes())
            runs.append(_gemm.gemm_tiled(a, b).tobytes())
        assert len(set(runs[0::2])) == 1 and len(set(runs[1::2])) == 1
        np.testing.assert_allclose(_gemm.gemm(x, y, ta, False), (x.T if ta else x) @ y, rtol=1e-3, atol=1e-3)
print("ok")
"""


def test_small_blocks_keep_twin_equality_and_thread_bit_identity(tmp_path):
    """Blocks far from the defaults (many KC blocks, many BLAS tasks and k chunks): the
    tiled kernel still equals its twin bit for bit, and every product gives the same bits
    on 1, 2 and 4 threads. Run in a fresh process, since the blocks are read at import."""
    pytest.importorskip("nnlite._kernels._gemm")
    ran = run_fresh(["-c", CHECK_SMALL_BLOCKS], tmp_path,
                    NNLITE_GEMM_BLOCKING="kc=64,mc=12,block=64,min_split_work=4096")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "ok"
