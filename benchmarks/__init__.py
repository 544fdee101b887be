"""nnlite's speed measurements, side by side with PyTorch, NumPy and JAX.

One package in two places: ``benchmarks`` at the top of a source checkout, and
``nnlite.benchmarks`` inside an installed nnlite (the wheel maps this folder
there), which is what ``nnlite bench`` runs. The modules import each other
relatively (``from .harness import paired_medians``), so the same files work in
both. ``run_all`` runs them all; ``harness`` holds the paired timing.
"""
