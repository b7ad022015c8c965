"""``kavier.plan.search``: pure searches over a monotone yes/no oracle."""

from __future__ import annotations

import math

import pytest

from kavier.plan.search import max_feasible_scale, min_feasible


class Counting:
    """A monotone oracle that records every question."""

    def __init__(self, ok):
        self.ok = ok
        self.asked: list = []

    def __call__(self, x):
        self.asked.append(x)
        return self.ok(x)


@pytest.mark.parametrize("hi", [1, 7, 64, 1000])
def test_min_feasible_finds_every_threshold_with_logarithmic_evaluations(hi):
    for threshold in range(1, hi + 1):
        oracle = Counting(lambda n, t=threshold: n >= t)
        found = min_feasible(oracle, 1, hi)
        assert found.value == threshold
        assert len(oracle.asked) == len(set(oracle.asked)) == found.evaluations  # never twice
        assert found.evaluations <= 2 * math.ceil(math.log2(threshold)) + 1 if threshold > 1 else 1
        if threshold > 1:
            assert found.tried[threshold - 1] is False  # the answer's predecessor was seen to fail


def test_min_feasible_reports_none_beyond_the_limit():
    oracle = Counting(lambda n: n >= 100)
    found = min_feasible(oracle, 1, 64)
    assert found.value is None
    assert oracle.asked == [1, 2, 4, 8, 16, 32, 64]
    with pytest.raises(ValueError):
        min_feasible(oracle, 0, 4)


def test_min_feasible_gives_up_on_a_plateau():
    oracle = Counting(lambda n: False)
    found = min_feasible(oracle, 1, 1024, give_up=lambda m, n: n >= 8)
    assert found.value is None and found.gave_up and oracle.asked == [1, 2, 4, 8]


@pytest.mark.parametrize("threshold", [0.0123, 0.5, 0.999, 1.0, 1.7, 3.3, 100.0])
@pytest.mark.parametrize("tolerance", [0.02, 0.1])
def test_max_feasible_scale_converges_within_the_tolerance(threshold, tolerance):
    oracle = Counting(lambda s: s <= threshold)
    found = max_feasible_scale(oracle, start=1.0, tolerance=tolerance)
    assert found.value is not None and found.failed_at is not None
    assert found.value <= threshold < found.failed_at
    assert found.failed_at / found.value <= 1 + tolerance
    bracket = abs(math.log2(threshold)) + 2
    bisect = math.ceil(math.log2(math.log(2) / math.log1p(tolerance))) + 1
    assert found.evaluations <= bracket + bisect
    assert len(oracle.asked) == len(set(oracle.asked))


def test_max_feasible_scale_limits():
    capped = max_feasible_scale(lambda s: True, max_scale=8.0)
    assert capped.value == 8.0 and capped.capped
    never = max_feasible_scale(lambda s: False, min_scale=0.25)
    assert never.value is None and never.failed_at == 0.25
