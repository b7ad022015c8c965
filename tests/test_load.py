"""``kavier.load``: stable, backlogged or overloaded from the waiting queue's growth."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kavier.load import BACKLOGGED, OVERLOADED, STABLE, classify_load, load_warning


def fifo_queue(rate_rps: float, service_rps: float, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Arrival and start times (s) of an M/M/1 FIFO queue with these rates."""
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1 / rate_rps, n))
    service = rng.exponential(1 / service_rps, n)
    start = np.empty(n)
    free = 0.0
    for i, t in enumerate(arrival):
        start[i] = max(t, free)
        free = start[i] + service[i]
    return arrival, start


def test_ten_percent_of_capacity_is_stable_with_no_growth():
    arrival, start = fifo_queue(1.0, 10.0, 2000)
    report = classify_load(arrival, start)
    assert report.state == STABLE
    assert abs(report.run.queue_growth_requests_per_s) < 0.01
    assert report.run.arrival_rate_requests_per_s == pytest.approx(1.0, rel=0.1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_three_times_capacity_grows_at_arrival_minus_service_rate(seed):
    arrival, start = fifo_queue(30.0, 10.0, 3000, seed)
    report = classify_load(arrival, start)
    assert report.state == OVERLOADED
    assert report.run.queue_growth_requests_per_s == pytest.approx(30.0 - 10.0, rel=0.1)
    assert report.run.growth_share == pytest.approx(2 / 3, abs=0.05)


def test_slightly_over_capacity_is_backlogged():
    """Arrivals 4 % above the service rate: the queue grows, by under 10 % of the arrivals."""
    arrival, start = fifo_queue(10.4, 10.0, 20000, seed=5)
    report = classify_load(arrival, start)
    assert report.state == BACKLOGGED
    assert 0.01 <= report.run.growth_share < 0.10


def test_each_replica_is_judged_and_the_worst_is_the_runs():
    """One replica at 3x its capacity, one at 10 %: run overloaded, replicas told apart, and the
    replicas' growth rates add up to the run's."""
    a0, s0 = fifo_queue(30.0, 10.0, 3000, seed=1)
    a1, s1 = fifo_queue(1.0, 10.0, 100, seed=2)
    a1 = a1 * (a0.max() / a1.max())  # over the same window
    arrival, start = np.concatenate([a0, a1]), np.concatenate([s0, s1 * (a0.max() / a1.max())])
    replica = np.array([0] * a0.size + [1] * a1.size)
    report = classify_load(arrival, start, replica, num_replicas=3)
    assert [r.state for r in report.replicas] == [OVERLOADED, STABLE, STABLE]
    assert report.state == OVERLOADED
    growth = [r.queue_growth_requests_per_s for r in report.replicas]
    assert sum(growth) == pytest.approx(report.run.queue_growth_requests_per_s)
    assert growth[0] == pytest.approx(20.0, rel=0.1)


def test_edge_served_requests_never_queue():
    arrival, start = fifo_queue(30.0, 10.0, 1000)
    replica = np.full(arrival.size, -1)
    assert classify_load(arrival, start, replica, num_replicas=1).state == STABLE


def test_requests_arriving_at_once_that_wait_are_a_backlog_without_a_rate():
    arrival = np.zeros(50)
    start = np.arange(50) * 0.1
    report = classify_load(arrival, start)
    assert report.state == BACKLOGGED and report.run.queue_growth_requests_per_s is None
    assert classify_load(arrival, arrival).state == STABLE  # all started at once: no wait


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1e4), min_size=1, max_size=60))
def test_a_queue_that_never_waits_is_stable_and_flat(arrivals):
    """No request waits: nothing grows, whatever the arrivals."""
    arrival = np.array(arrivals)
    report = classify_load(arrival, arrival.copy())
    assert report.state == STABLE
    assert report.run.queue_growth_requests_per_s in (None, 0.0)


def test_warning_is_one_line_and_only_when_not_stable():
    arrival, start = fifo_queue(30.0, 10.0, 3000)
    summary = classify_load(arrival, start, np.zeros(arrival.size, dtype=int), 2).summary()
    line = load_warning(summary)
    assert line is not None and "\n" not in line
    assert line.startswith("load overloaded:") and "requests/s" in line and "replicas: 0" in line
    assert load_warning({**summary, "load_state": STABLE}) is None
    assert load_warning({}) is None
