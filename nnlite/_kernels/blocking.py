"""How the matrix products are cut into blocks, derived from this machine's caches.

Two sets of block sizes, both read once when the kernels are imported:

* ``gemm_tiled`` (the cache-blocked teaching kernel in ``_gemm.pyx``):
  ``kc``, the depth of a packed block, is chosen so that one ``kc x 16`` float
  sliver of B fills half of the L1 data cache (the other half holds the A
  sliver and the tile being stored): ``kc = L1d / 2 / 64 bytes``, rounded down
  to a power of two. ``mc``, the rows of A per packed block, so that the
  ``mc x kc`` block of A takes 3/16 of L2 (the rest holds the B slivers
  streaming through and the C rows being updated): ``mc = 3 L2 / 16 / (4 kc)``,
  rounded down to a multiple of the micro-tile's 6 rows.
* the BLAS door (``_blas.pyx``, every other product): C is cut into blocks of
  about ``block`` rows or columns, one one-thread BLAS call each, so that a
  ``block x block`` float block of C fills half of L2: ``block = sqrt(L2 / 8)``,
  rounded down to a power of two. A side of C this long cuts in two
  (``min_split = block / 2``), and a product with a long inner dimension and a
  small C is summed in chunks of ``k_block = 4 block``. ``min_split_work``, the
  product size below which one call does everything, is a matter of what a
  thread costs to start, not of caches: fixed at 2**21 multiply-adds.

On this project's first AMD EPYC (Zen 3: 32 KiB L1d, 512 KiB L2 a core) the
formulas give ``kc = 256, mc = 96, block = 256, k_block = 1024``: the values
these kernels had when they were fixed constants, and the fallback where the
cache sizes cannot be read. A core with 1 MiB of L2 (a Xeon, or the Zen 4 EPYC
of the AVX-512 benchmark tables) gets ``mc = 192``.

``kc`` and ``k_block`` decide the order in which a sum over k is added up, so
the results' last bits depend on them: the compiled ``gemm_tiled`` and its twin
read ``kc`` and ``mc`` from here, and both stay equal bit for bit; the chunks of
``k_block`` are each one BLAS call, whose twin is compared to within rounding
anyway. Neither depends on the thread count.

``NNLITE_GEMM_BLOCKING="kc=128,mc=48"`` (any of the five names) overrides the
derived values, for tuning (a ``block`` given without ``k_block`` brings
``k_block = 4 block``); ``gemm_blocking()`` reports what is in use, and so does
``nnlite._kernels.machine()``.
"""
import math
import os

__all__ = ["cache_sizes", "derive", "gemm_blocking"]

FALLBACK_L1D = 32 * 1024     # bytes: the sizes of the machine the constants were measured on
FALLBACK_L2 = 512 * 1024
MICRO_ROWS = 6               # rows of gemm_tiled's micro-tile (NNL_MR in _gemm.pyx)
SLIVER_BYTES = 16 * 4        # one k of a B sliver: 16 floats (NNL_NR_F32)
NAMES = ("kc", "mc", "block", "k_block", "min_split_work")


def _size(text):
    """'32K' or '1024K' (sysfs) -> bytes."""
    text = text.strip().upper()
    scale = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * scale


def cache_sizes():
    """(L1 data cache, L2 cache) of one core in bytes, and where they were read:
    ``"sysconf"``, ``"sysfs"`` or ``"fallback"`` (32 KiB and 512 KiB, the caches of the
    machine the blocks were first tuned on)."""
    names = getattr(os, "sysconf_names", {})
    if "SC_LEVEL1_DCACHE_SIZE" in names and "SC_LEVEL2_CACHE_SIZE" in names:
        try:
            l1, l2 = os.sysconf("SC_LEVEL1_DCACHE_SIZE"), os.sysconf("SC_LEVEL2_CACHE_SIZE")
            if l1 > 0 and l2 > 0:
                return l1, l2, "sysconf"
        except (OSError, ValueError):
            pass
    found = {}
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for index in sorted(name for name in os.listdir(base) if name.startswith("index")):
            path = os.path.join(base, index)
            with open(os.path.join(path, "level")) as f:
                level = int(f.read())
            with open(os.path.join(path, "type")) as f:
                kind = f.read().strip()
            with open(os.path.join(path, "size")) as f:
                size = _size(f.read())
            if kind in ("Data", "Unified"):
                found.setdefault(level, size)
    except (OSError, ValueError):
        found = {}
    if found.get(1) and found.get(2):
        return found[1], found[2], "sysfs"
    return FALLBACK_L1D, FALLBACK_L2, "fallback"


def _power_of_two_at_most(x):
    return 1 << max(0, int(math.floor(math.log2(max(x, 1)))))


def derive(l1d, l2):
    """The block sizes for caches of ``l1d`` and ``l2`` bytes (the formulas above)."""
    kc = min(max(_power_of_two_at_most(l1d / 2 / SLIVER_BYTES), 64), 1024)
    mc = min(max(int(3 * l2 / 16 / (4 * kc)) // MICRO_ROWS * MICRO_ROWS, MICRO_ROWS), 1020)
    block = min(max(_power_of_two_at_most(math.sqrt(l2 / 8)), 64), 2048)
    return {"kc": kc, "mc": mc, "block": block, "k_block": 4 * block, "min_split_work": 1 << 21}


def _override(values, text):
    """Apply ``NNLITE_GEMM_BLOCKING`` ("kc=128,mc=48") to ``values``; clear errors."""
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, number = item.partition("=")
        name = name.strip().lower()
        if name not in NAMES:
            raise ValueError(f"NNLITE_GEMM_BLOCKING: unknown name {name!r} in {text!r}; "
                             f"expected some of {', '.join(NAMES)}")
        try:
            value = int(number)
        except ValueError:
            raise ValueError(f"NNLITE_GEMM_BLOCKING: {name} must be a whole number, got {number!r}") from None
        if value < 1 or (name == "mc" and value % MICRO_ROWS) or (name == "block" and value < 2):
            raise ValueError(f"NNLITE_GEMM_BLOCKING: {name}={value} is out of range (positive; "
                             f"mc a multiple of {MICRO_ROWS}; block at least 2)")
        values[name] = value
        if name == "block" and "k_block=" not in text.replace(" ", "").lower():
            values["k_block"] = 4 * value   # the chunks follow the blocks unless given
    return values


def gemm_blocking():
    """The block sizes in use: ``kc``, ``mc``, ``block``, ``k_block``, ``min_split_work``,
    the cache sizes they came from (``l1d``, ``l2``, bytes) and ``source`` (where the sizes
    were read; ``"+env"`` when ``NNLITE_GEMM_BLOCKING`` changed any)."""
    l1d, l2, source = cache_sizes()
    values = derive(l1d, l2)
    text = os.environ.get("NNLITE_GEMM_BLOCKING", "")
    if text.strip():
        values = _override(values, text)
        source += "+env"
    values.update(l1d=l1d, l2=l2, source=source)
    return values
