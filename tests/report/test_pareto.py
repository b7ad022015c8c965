"""``kavier.report.pareto``: the front is exactly the non-dominated set."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kavier.report.pareto import dominates, pareto_front

objective = st.one_of(st.integers(0, 4).map(float), st.floats(0, 10, allow_nan=False))


points_strategy = st.integers(1, 4).flatmap(
    lambda k: st.lists(st.lists(objective, min_size=k, max_size=k), min_size=1, max_size=40)
)


@settings(max_examples=200, deadline=None)
@given(points_strategy)
def test_pareto_front_is_exactly_the_non_dominated_set(points):
    pts = np.asarray(points, dtype=float)
    front = pareto_front(pts)
    members = pts[front]
    assert front.any(), "a finite non-empty set always has a non-dominated point"
    for i, p in enumerate(pts):
        if front[i]:
            assert not any(dominates(q, p) for q in pts), "a front member is dominated"
        else:
            assert any(dominates(m, p) for m in members), "a non-member is not dominated by the front"


@settings(max_examples=100, deadline=None)
@given(points_strategy, st.data())
def test_pareto_front_ignores_rows_with_nan(points, data):
    pts = np.asarray(points, dtype=float)
    bad = data.draw(st.lists(st.booleans(), min_size=len(pts), max_size=len(pts)))
    with_nan = pts.copy()
    with_nan[np.asarray(bad), 0] = np.nan
    front = pareto_front(with_nan)
    assert not front[np.asarray(bad)].any()
    good = ~np.asarray(bad)
    if good.any():
        np.testing.assert_array_equal(front[good], pareto_front(pts[good]))


def test_pareto_front_small_example():
    pts = np.array([[1, 5, 5], [2, 2, 2], [3, 3, 3], [1, 5, 5], [0, 9, 9], [2, 2, 3]], dtype=float)
    # [3,3,3] and [2,2,3] are dominated by [2,2,2]; duplicates [1,5,5] both stay.
    assert pareto_front(pts).tolist() == [True, True, False, True, True, False]
    assert pareto_front(np.empty((0, 3))).tolist() == []
    with pytest.raises(ValueError):
        pareto_front(np.zeros(3))
