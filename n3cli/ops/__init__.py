"""Numerical kernels of the N3 block: patch geometry, continuous kNN, aggregation.

Two implementations share :mod:`n3cli.ops.geometry` and :mod:`n3cli.ops.knn`:
``reference`` gathers every query's candidates explicitly (tests only, small inputs);
``blocked`` groups queries into spatial blocks and uses dense GEMMs over the union of their
windows (inference and training).
"""

from n3cli.ops.geometry import PatchGrid
from n3cli.ops.knn import continuous_knn, log1mexp

__all__ = ["PatchGrid", "continuous_knn", "log1mexp"]
