"""The hand-written vector code gives the same bytes at 256 and 512 bits.

_lanes.h and _shifted_gemm.h are written once on the vector types of _vector.h.
vector_width_driver.c runs their row sums and shifted products on fixed inputs;
here it is compiled with ``-DNNLITE_VECTOR_BITS=256`` and ``512`` (on a machine
without AVX-512 the 512-bit source runs as 256-bit halves, each lane the same
IEEE operation an AVX-512 machine does) and the two outputs must be equal byte
for byte. Compiling the C directly, not the Cython modules, keeps this to a few
seconds. The same check on the built modules (layer norm, softmax, batch norm,
convolution) is ``tests/_kernels/vector_width_outputs.py``, run by hand on two
builds.
"""
import os
import platform
import re
import shutil
import subprocess
import sysconfig

import pytest

import nnlite

HERE = os.path.dirname(os.path.abspath(__file__))
KERNELS = os.path.join(os.path.dirname(os.path.abspath(nnlite.__file__)), "_kernels")
DRIVER = os.path.join(HERE, "vector_width_driver.c")


def _compiler():
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) or shutil.which("gcc") or shutil.which("cc")


def _run(tmp_path, flags):
    """Compile the driver with ``flags`` (and the build's -O3 -ffp-contract=off), run it:
    (stdout bytes, the width it reports)."""
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler to build the vector-width driver")
    exe = str(tmp_path / ("driver" + "".join(f.strip("-=") for f in flags)))
    base = [cc, "-O3", "-ffp-contract=off", "-Wno-psabi", f"-I{KERNELS}", DRIVER, "-o", exe, "-lm"]
    built = subprocess.run(base[:1] + ["-march=native"] + base[1:] + flags, capture_output=True)
    if built.returncode != 0:   # a compiler without -march=native: its default target
        built = subprocess.run(base + flags, capture_output=True, text=True)
        assert built.returncode == 0, built.stderr
    ran = subprocess.run([exe], capture_output=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout, int(ran.stderr.decode().split()[-1])


def test_512_bit_source_gives_the_256_bit_bytes(tmp_path):
    out256, bits256 = _run(tmp_path, ["-DNNLITE_VECTOR_BITS=256"])
    out512, bits512 = _run(tmp_path, ["-DNNLITE_VECTOR_BITS=512"])
    assert (bits256, bits512) == (256, 512)
    assert len(out256) > 80_000   # every row sum and product was written
    assert out512 == out256


def test_lane_structs_give_the_vector_types_bytes(tmp_path):
    """The fallback for compilers without vector types (structs of lanes), at both widths,
    equals the vector code built without FMA (the fallback multiplies, then adds)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("compares against an x86-64 build without FMA")
    plain, _ = _run(tmp_path, ["-march=x86-64", "-DNNLITE_VECTOR_BITS=256"])
    assert _run(tmp_path, ["-march=x86-64", "-DNNLITE_VECTOR_BITS=512"])[0] == plain
    for bits in (256, 512):
        assert _run(tmp_path, ["-march=x86-64", "-DNNLITE_LANE_STRUCTS",
                               f"-DNNLITE_VECTOR_BITS={bits}"])[0] == plain


def test_the_avx512_source_compiles(tmp_path):
    """The native AVX-512 path (_mm512 FMAs, 8-row tiles, zmm registers) compiles even where
    it cannot run; on an AVX-512 machine the first test above runs it."""
    cc = _compiler()
    if cc is None or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("needs a C compiler for x86-64")
    built = subprocess.run([cc, "-O3", "-march=skylake-avx512", "-ffp-contract=off", "-Wall", "-Werror",
                            "-Wno-unused-function", f"-I{KERNELS}", "-c", DRIVER, "-o", str(tmp_path / "avx512.o")],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    if shutil.which("objdump"):   # binutils present: the product's FMAs are 512-bit ones
        listing = subprocess.run(["objdump", "-d", str(tmp_path / "avx512.o")], capture_output=True,
                                 text=True)
        assert re.search(r"vfmadd\d+ps .*zmm", listing.stdout)


def test_built_modules_report_their_width():
    _conv = pytest.importorskip("nnlite._kernels._conv")
    bits, emulated = _conv.vector_width()
    assert bits in (256, 512)
    assert emulated == (bits == 512 and "avx512f" not in _cpu_flags())


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return []
