"""Closed-form arithmetic for runs of decode iterations whose cost grows linearly per step.

In a decode-only run every sequence adds one token per step, so each step's compute and memory
seconds are linear in the step index ``j``: ``c(j) = c0 + c1 j`` and ``m(j) = m0 + m1 j``, and the
step lasts ``t(j) = max(c(j), m(j)) + k``. Sums over ``k`` steps and the step at which a time is
crossed follow in closed form (at most one crossover between the compute- and memory-bound parts).
When compute and memory join by a p-norm rather than ``max``
(:mod:`kavier.perf.roofline_join`), a run charges every step ``overlap x max(c(j), m(j)) + k``:
the p-norm's factor over ``max`` taken at one step of the run (the model picks its middle), which
keeps the closed forms; the other steps' factors differ from it only as far as the run's
compute-to-memory ratio drifts with the growing context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def _sum_linear(a: float, b: float, j0: int, j1: int) -> float:
    """Sum of ``a + b j`` over integers ``j0 <= j < j1``."""
    n = j1 - j0
    if n <= 0:
        return 0.0
    return a * n + b * (j0 + j1 - 1) * n / 2.0


@dataclass(frozen=True)
class LinearRun:
    """A run of decode steps with linear compute/memory seconds and a constant extra.

    For what the run did, besides its times: ``comm`` and ``host`` split the constant extra per
    step (communication, host overhead), and the FLOPs and memory bytes per step are linear too,
    ``f0 + f1 j`` and ``b0 + b1 j``. ``overlap`` (>= 1) multiplies every step's ``max(c, m)``
    in its time (1: the roofline's max; :mod:`kavier.perf.roofline_join`); ``c`` and ``m`` stay
    the compute and memory seconds themselves.
    """

    c0: float
    c1: float
    m0: float
    m1: float
    extra: float
    comm: float = 0.0
    host: float = 0.0
    f0: float = 0.0
    f1: float = 0.0
    b0: float = 0.0
    b1: float = 0.0
    overlap: float = 1.0

    def flops_sum(self, steps: int) -> float:
        """FLOPs of the first ``steps`` steps."""
        return _sum_linear(self.f0, self.f1, 0, steps)

    def bytes_sum(self, steps: int) -> float:
        """Memory bytes moved by the first ``steps`` steps."""
        return _sum_linear(self.b0, self.b1, 0, steps)

    def total(self, steps: int) -> float:
        """Seconds taken by the first ``steps`` steps."""
        k = self.overlap
        a_c, a_m = k * self.c0 + self.extra, k * self.m0 + self.extra
        if self.c1 == self.m1 or steps <= 1:
            # one regime (or a single step): the larger line at j = 0 stays larger
            if a_c >= a_m and (self.c1 >= self.m1 or steps <= 1):
                return _sum_linear(a_c, k * self.c1, 0, steps)
            if a_m >= a_c and (self.m1 >= self.c1 or steps <= 1):
                return _sum_linear(a_m, k * self.m1, 0, steps)
        total = 0.0
        for j0, j1, a, b in self._ranges(steps):
            total += _sum_linear(a, b, j0, j1)
        return total

    def _ranges(self, steps: int) -> list[tuple[int, int, float, float]]:
        out: list[tuple[int, int, float, float]] = []
        k = self.overlap
        a_c, a_m = k * self.c0 + self.extra, k * self.m0 + self.extra
        b_c, b_m = k * self.c1, k * self.m1
        if steps <= 0:
            return out
        if self.c1 == self.m1:
            a, b = (a_c, b_c) if a_c >= a_m else (a_m, b_m)
            return [(0, steps, a, b)]
        cross = (self.m0 - self.c0) / (self.c1 - self.m1)
        split = min(max(math.ceil(cross), 0), steps)
        # j < cross: the regime that dominates at j = 0 when cross > 0.
        if self.c0 >= self.m0:
            before, after = (a_c, b_c), (a_m, b_m)
        else:
            before, after = (a_m, b_m), (a_c, b_c)
        if split > 0:
            out.append((0, split, *before))
        if split < steps:
            lo = split
            # after the crossover the other regime dominates (if cross <= 0 it is the max from 0)
            a, b = after if split > 0 or cross > 0 else before
            if cross <= 0:
                a, b = (a_c, b_c) if self.c1 > self.m1 else (a_m, b_m)
            out.append((lo, steps, a, b))
        return out

    def compute_sum(self, steps: int) -> float:
        """Seconds of compute over the first ``steps`` steps."""
        return _sum_linear(self.c0, self.c1, 0, steps)

    def memory_sum(self, steps: int) -> float:
        """Seconds of memory traffic over the first ``steps`` steps."""
        return _sum_linear(self.m0, self.m1, 0, steps)

    def steps_until(self, seconds: float, max_steps: int) -> int:
        """Smallest ``k`` (1..max_steps) whose cumulative time reaches ``seconds``."""
        if seconds <= 0:
            return 1
        done = 0.0
        for j0, j1, a, b in self._ranges(max_steps):
            span = _sum_linear(a, b, j0, j1)
            if done + span < seconds:
                done += span
                continue
            # solve sum_{j0 <= j < j0+n} (a + b j) >= seconds - done for the smallest n
            need = seconds - done
            lo, hi = 1, j1 - j0
            while lo < hi:
                mid = (lo + hi) // 2
                if _sum_linear(a, b, j0, j0 + mid) >= need - 1e-15:
                    hi = mid
                else:
                    lo = mid + 1
            return j0 + lo
        return max_steps
