"""Build nnlite's Cython kernels.

Every ``nnlite/_kernels/*.pyx`` becomes one extension module. The build uses
``-O3`` and OpenMP when the compiler supports it; without OpenMP the kernels
still build and run serially (a warning says so); without a working C compiler
nothing is built and the install still succeeds, running every kernel on its
NumPy twin (a warning says so). ``-ffast-math`` is never
used: it would let the compiler reorder reductions and break the promise that
results are bit-identical across thread counts.

Set ``NNLITE_KERNELS=gemm,conv`` to build only some modules (useful while
working on one kernel).

The hand-written vector code (``_lanes.h``, ``_shifted_gemm.h``) uses 512-bit
vectors where the target has AVX-512F and 256-bit ones otherwise
(``_vector.h``). ``NNLITE_VECTOR_BITS=256`` or ``512`` overrides that choice; 512
on a machine without AVX-512 builds the 512-bit source with each operation done
as two 256-bit halves, giving the bytes an AVX-512 machine gives: a test build
(slow), not one to use. Pass ``--force`` when switching, since a changed macro
does not make setuptools recompile.
"""
import glob
import os
import shutil
import sys
import tempfile
import warnings

import numpy as np
from setuptools import Extension, find_namespace_packages, setup
from setuptools.command.build_ext import build_ext


def compiler_builds(compiler, source, flags, link=False):
    """Compile (and optionally link) a tiny C program with ``flags``; True when it works."""
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(source)
        objs = compiler.compile([src], output_dir=tmp, extra_postargs=flags)
        if link:
            compiler.link_executable(objs, os.path.join(tmp, "probe"), extra_postargs=flags)
        return True
    except Exception:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def compiler_accepts(compiler, flags):
    return compiler_builds(compiler, "int main(void){return 0;}\n", flags)


def compiler_has_openmp(compiler):
    return compiler_builds(compiler, "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n",
                           ["-fopenmp"], link=True)


def target_flags(compiler):
    """Instruction-set flags: the build machine's own (``-march=native``) by default.

    Wider vector units (AVX2 on most x86 machines) roughly double the float32
    throughput of the elementwise, normalisation and im2col loops. The build
    is from source on the machine that runs it, so that is safe; set
    ``NNLITE_MARCH=x86-64`` (or any other ``-march`` value) to build for older
    or other machines. ``-ffp-contract=off`` keeps the compiler from fusing a
    multiply and an add into one FMA: the fused form rounds once instead of
    twice, so the kernels would stop matching their NumPy twins bit for bit.
    (The convolution's shifted products ask for FMA explicitly; see _shifted_gemm.h.)
    """
    march = os.environ.get("NNLITE_MARCH", "native")
    flags = [f"-march={march}", "-ffp-contract=off"]
    if compiler_accepts(compiler, flags):
        return flags
    if compiler_accepts(compiler, ["-ffp-contract=off"]):
        return ["-ffp-contract=off"]
    return []


class BuildExt(build_ext):
    def build_extensions(self):
        if not compiler_accepts(self.compiler, []):
            # The install still succeeds: nnlite runs every kernel on its NumPy twin and says so on import.
            # Optional extensions are the ones setuptools skips when copying and installing.
            warnings.warn("nnlite: no working C compiler; the kernels are not built, and nnlite will run on its "
                          "NumPy reference twins (slow). Install a C compiler and reinstall to build them.")
            for ext in self.extensions:
                ext.optional = True
            return
        msvc = self.compiler.compiler_type == "msvc"
        openmp = (not msvc) and compiler_has_openmp(self.compiler)
        if not openmp and not msvc:
            warnings.warn("nnlite: the compiler has no OpenMP; kernels will run on one thread.")
        arch = [] if msvc else target_flags(self.compiler)
        for ext in self.extensions:
            if msvc:
                ext.extra_compile_args += ["/O2", "/openmp"]
            else:
                ext.extra_compile_args += ["-O3"] + arch
                if ("NNLITE_VECTOR_BITS", "512") in ext.define_macros:
                    # GCC notes that 64-byte vectors are passed differently without AVX-512;
                    # _vector.h's functions are all static inline, so no call crosses an ABI
                    ext.extra_compile_args.append("-Wno-psabi")
                if openmp:
                    ext.extra_compile_args.append("-fopenmp")
                    ext.extra_link_args.append("-fopenmp")
        super().build_extensions()


def vector_macros():
    """``NNLITE_VECTOR_BITS`` from the environment as a C macro (see _vector.h), or none."""
    bits = os.environ.get("NNLITE_VECTOR_BITS")
    if not bits:
        return []
    if bits not in ("256", "512"):
        raise SystemExit(f"NNLITE_VECTOR_BITS must be 256 or 512, got {bits!r}")
    return [("NNLITE_VECTOR_BITS", bits)]


def extensions():
    from Cython.Build import cythonize

    wanted = os.environ.get("NNLITE_KERNELS")
    wanted = set(wanted.split(",")) if wanted else None
    exts = []
    for path in sorted(glob.glob(os.path.join("nnlite", "_kernels", "*.pyx"))):
        stem = os.path.splitext(os.path.basename(path))[0]
        if wanted is not None and stem.lstrip("_") not in wanted and stem not in wanted and stem not in ("_threads", "_blas"):
            continue
        exts.append(Extension(
            f"nnlite._kernels.{stem}", [path],
            include_dirs=[np.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")] + vector_macros(),
        ))
    return cythonize(exts, language_level=3, compiler_directives={
        "boundscheck": False, "wraparound": False, "cdivision": True,
        "initializedcheck": False, "nonecheck": False,
    })


# The wheel carries the top-level benchmarks/ folder as the subpackage nnlite.benchmarks, so that
# `nnlite bench` runs from an installed nnlite; the files stay where the project keeps them, and
# benchmarks/results/ (the committed tables) is not part of any package.
setup(packages=find_namespace_packages(include=["nnlite*"]) + ["nnlite.benchmarks"],
      package_dir={"nnlite.benchmarks": "benchmarks"},
      ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
