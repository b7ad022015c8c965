"""Pure searches over a yes/no oracle assumed monotone (no simulation in here).

- :func:`min_feasible`: the smallest integer in ``[lo, hi]`` where ``ok`` holds (replicas), by
  galloping up from ``lo`` (1, 2, 4, ...) and bisecting the last bracket: about
  ``2 log2(answer)`` evaluations, and never more than ``2 ceil(log2(hi - lo + 1)) + 1``.
- :func:`max_feasible_scale`: the largest positive multiplier where ``ok`` holds (the arrival
  rate), by galloping (x2 or /2) from ``start`` and bisecting geometrically until the bracket's
  ratio is within ``1 + tolerance``.

Both assume monotonicity (more replicas never hurt; more load never helps). A simulator of a
real system is only approximately monotone (routing and batching interact), so the answer is
"the smallest value found where ok holds and whose predecessor was seen to fail"; callers can
check neighbours explicitly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class IntSearch:
    """Result of :func:`min_feasible`: ``value`` (None if even ``hi`` fails) and the points tried."""

    value: int | None
    tried: dict[int, bool] = field(default_factory=dict)
    gave_up: bool = False  # stopped early because ``give_up`` said more would not help

    @property
    def evaluations(self) -> int:
        """Distinct points the oracle was asked about."""
        return len(self.tried)


def min_feasible(
    ok: Callable[[int], bool],
    lo: int = 1,
    hi: int = 64,
    give_up: Callable[[int, int], bool] | None = None,
) -> IntSearch:
    """The smallest ``n`` in ``[lo, hi]`` with ``ok(n)``, assuming ``ok`` is monotone in ``n``.

    Gallops ``lo, lo+1, lo+3, lo+7, ...`` (steps doubling, clamped to ``hi``), then bisects the
    bracket between the last failure and the first success. Each point is asked at most once.
    ``give_up(m, n)``, asked after two successive gallop points ``m < n`` both failed, may stop
    the search (value None, ``gave_up``), e.g. when doubling ``m`` changed nothing.
    """
    if lo < 1 or hi < lo:
        raise ValueError(f"need 1 <= lo <= hi, got lo={lo}, hi={hi}")
    tried: dict[int, bool] = {}

    def ask(n: int) -> bool:
        if n not in tried:
            tried[n] = bool(ok(n))
        return tried[n]

    bad = lo - 1  # largest value known to fail (lo - 1: none yet)
    step = 1
    n = lo
    while not ask(n):
        if give_up is not None and bad >= lo and give_up(bad, n):
            return IntSearch(None, tried, gave_up=True)
        bad = n
        if n == hi:
            return IntSearch(None, tried)
        n = min(hi, lo - 1 + 2 * step)
        step *= 2
    good = n
    while good - bad > 1:
        mid = (bad + good) // 2
        if ask(mid):
            good = mid
        else:
            bad = mid
    return IntSearch(good, tried)


@dataclass
class ScaleSearch:
    """Result of :func:`max_feasible_scale`.

    ``value``: the largest multiplier seen to pass (None if even ``min_scale`` fails);
    ``failed_at``: the smallest seen to fail above it (None if ``max_scale`` still passes, i.e.
    the answer is capped); ``tried``: every multiplier asked, with its verdict.
    """

    value: float | None
    failed_at: float | None
    tried: dict[float, bool] = field(default_factory=dict)

    @property
    def evaluations(self) -> int:
        """Distinct multipliers the oracle was asked about."""
        return len(self.tried)

    @property
    def capped(self) -> bool:
        """True when the search stopped at ``max_scale`` with the oracle still passing."""
        return self.value is not None and self.failed_at is None


def max_feasible_scale(
    ok: Callable[[float], bool],
    start: float = 1.0,
    tolerance: float = 0.02,
    min_scale: float = 1.0 / 1024,
    max_scale: float = 1024.0,
) -> ScaleSearch:
    """The largest multiplier ``s`` with ``ok(s)``, within relative ``tolerance``.

    Gallops from ``start`` by factors of 2 (up while ``ok`` holds, down while it fails), then
    bisects geometrically (``sqrt(lo * hi)``) until ``hi / lo <= 1 + tolerance``; ``lo`` passed
    and ``hi`` failed, so the true threshold of a monotone oracle lies in ``[lo, hi)``.
    Evaluations: ``|log2(answer / start)| + 1`` to bracket plus ``ceil(log2(ln 2 / ln(1 + tol)))``.
    """
    if not (tolerance > 0 and 0 < min_scale <= start <= max_scale):
        raise ValueError("need tolerance > 0 and 0 < min_scale <= start <= max_scale")
    tried: dict[float, bool] = {}

    def ask(s: float) -> bool:
        if s not in tried:
            tried[s] = bool(ok(s))
        return tried[s]

    if ask(start):
        lo = start
        while True:
            if lo >= max_scale:
                return ScaleSearch(lo, None, tried)
            hi = min(lo * 2.0, max_scale)
            if not ask(hi):
                break
            lo = hi
    else:
        hi = start
        while True:
            if hi <= min_scale:
                return ScaleSearch(None, hi, tried)
            lo = max(hi / 2.0, min_scale)
            if ask(lo):
                break
            hi = lo
    while hi / lo > 1.0 + tolerance:
        mid = math.sqrt(lo * hi)
        if ask(mid):
            lo = mid
        else:
            hi = mid
    return ScaleSearch(lo, hi, tried)
