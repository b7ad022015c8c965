"""How an iteration's compute and memory seconds join into its time.

A GPU overlaps its memory traffic with its arithmetic, but not perfectly: near the roofline's
ridge, where both take about as long, a kernel is slower than the larger of the two
(``kavier validate xla-gemm`` measures it on real GEMMs). The join is the p-norm
``(compute^p + memory^p)^(1/p)`` with ``p = ServingPerfParams.roofline_norm``; ``p = 0`` means
``max`` (perfect overlap, the roofline itself). ``p`` of 1 would be no overlap at all.
"""

from __future__ import annotations

import numpy as np


def roofline_s(
    compute_s: float | np.ndarray, memory_s: float | np.ndarray, norm: float
) -> float | np.ndarray:
    """Seconds of work needing ``compute_s`` of compute and ``memory_s`` of memory traffic
    (floats, or arrays of one shape): their ``max`` when ``norm`` is 0, else their p-norm with
    ``p = norm``."""
    if isinstance(compute_s, np.ndarray) or isinstance(memory_s, np.ndarray):
        big = np.maximum(compute_s, memory_s)
        if norm <= 0:
            return big
        small = np.minimum(compute_s, memory_s)
        ratio = np.divide(small, big, out=np.zeros_like(big, dtype=np.float64), where=big > 0)
        return big * (1.0 + ratio**norm) ** (1.0 / norm)
    big = max(compute_s, memory_s)
    if norm <= 0 or big <= 0:
        return big
    return big * (1.0 + (min(compute_s, memory_s) / big) ** norm) ** (1.0 / norm)


def overlap_factor(compute_s: float, memory_s: float, norm: float) -> float:
    """The join's seconds over ``max(compute_s, memory_s)`` (>= 1; 1 for ``norm`` 0)."""
    big = max(compute_s, memory_s)
    return roofline_s(compute_s, memory_s, norm) / big if norm > 0 and big > 0 else 1.0
