"""Numerical kernels of the N3 block: patch geometry, continuous kNN, aggregation.

The implementations share :mod:`n3cli.ops.geometry` and :mod:`n3cli.ops.knn`:
``reference`` gathers every query's candidates explicitly (tests only, small inputs, never
imported by the production model); ``blocked`` (patch space) and ``cells`` (stride cells,
when the patch is a multiple of the stride) group queries into spatial blocks, planned by
:mod:`n3cli.ops.plan`, and use dense GEMMs over the union of their windows (inference and
training; :func:`n3cli.ops.blocked.n3_aggregate_blocked` picks between the two).
"""

from n3cli.ops.geometry import PatchGrid
from n3cli.ops.knn import continuous_knn, log1mexp

__all__ = ["PatchGrid", "continuous_knn", "log1mexp"]
