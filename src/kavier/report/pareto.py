"""The Pareto front (non-dominated set) of points whose objectives are all minimised.

A point ``a`` dominates ``b`` when ``a`` is no worse than ``b`` in every objective and strictly
better in at least one. Identical points do not dominate each other, so duplicates on the front
are all kept. Points with a NaN (or infinite) objective are never on the front and are not used
to dominate others: a run without a cost cannot be compared.
"""

from __future__ import annotations

import numpy as np

__all__ = ["dominates", "pareto_front"]


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """True when ``a`` dominates ``b`` (all objectives minimised)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return bool(np.all(a <= b) and np.any(a < b))


def pareto_front(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``points`` (shape ``[n, k]``, all minimised).

    Rows holding a non-finite value are ``False`` and do not dominate anything. Objectives may be
    in any units; only their order matters. ``O(n² k)`` in the worst case, vectorised per row,
    which is fine for the thousands of runs a sweep produces.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2:
        raise ValueError(f"points must be a 2-D array [runs, objectives], got shape {pts.shape}")
    n = pts.shape[0]
    finite = np.all(np.isfinite(pts), axis=1)
    front = finite.copy()
    cand = pts[finite]
    idx = np.flatnonzero(finite)
    for row, i in enumerate(idx):
        p = cand[row]
        no_worse = np.all(cand <= p, axis=1)
        better = np.any(cand < p, axis=1)
        if np.any(no_worse & better):
            front[i] = False
    assert front.shape == (n,)
    return front
