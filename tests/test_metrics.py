"""``kavier.metrics``: ``percentile`` is ``np.percentile`` to the bit (it replaces it to keep
numpy.ma out of a run's start-up), and goodput under latency SLOs."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kavier
from kavier.metrics import percentile

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


anything = st.floats(width=64)


def _same(got: float, want: float) -> bool:
    return (math.isnan(got) and math.isnan(want)) or np.float64(got).tobytes() == np.float64(want).tobytes()


@settings(max_examples=300, deadline=None)
@given(st.lists(finite, min_size=1, max_size=60), st.sampled_from([0, 1, 25, 50, 90, 99, 99.9, 100]))
def test_percentile_is_numpys_to_the_bit(values, q):
    a = np.array(values)
    assert _same(percentile(a, q), float(np.percentile(a, q)))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf - inf, in numpy's and in ours
@settings(max_examples=200, deadline=None)
@given(st.lists(anything, min_size=1, max_size=20), st.floats(0, 100))
def test_percentile_with_nan_and_inf_is_numpys(values, q):
    a = np.array(values)
    assert _same(percentile(a, q), float(np.percentile(a, q)))


def test_percentile_of_large_and_integer_arrays():
    rng = np.random.default_rng(3)
    big = rng.lognormal(size=96_871)
    ints = rng.integers(0, 10_000, size=1001)
    for q in (50, 90, 99):
        assert _same(percentile(big, q), float(np.percentile(big, q)))
        assert _same(percentile(ints, q), float(np.percentile(ints, q)))
    assert math.isnan(percentile(np.array([]), 50))


def test_goodput_under_slos():
    r = kavier.simulate(num_sessions=20, slo_ttft=0.5, slo_tpot=0.06).summary
    assert 0 <= r["goodput_requests_per_s"] <= r["requests_per_s"]
    ok = kavier.simulate(num_sessions=20, slo_ttft=1e6, slo_tpot=1e6).summary
    assert ok["goodput_requests_per_s"] == pytest.approx(ok["requests_per_s"])
