"""The load observer: a simulated run's ``load_state`` and queue growth in ``summary.json``."""

from __future__ import annotations

import pytest

import kavier
from kavier.load import OVERLOADED, STABLE
from tests.runs import SERVE

# One H100 serving at most 16 sequences: the batch saturates at once, so capacity is steady.
RUN = {
    "workload": "poisson",
    "num_requests": 1000,
    "input_tokens": "512",
    "output_tokens": "128",
    "seed": 3,
    "prefix_cache": "off",
    "max_num_seqs": 16,
    "router": "round_robin",
    **SERVE,
}


@pytest.fixture(scope="module")
def capacity_rps() -> float:
    """Requests/s one replica completes when far more arrive than it can serve."""
    return kavier.simulate(rate=200.0, **RUN).summary["requests_per_s"]


def test_a_run_at_ten_percent_of_capacity_is_stable(capacity_rps):
    s = kavier.simulate(rate=0.1 * capacity_rps, **RUN).summary
    assert s["load_state"] == STABLE and s["load_state_per_replica"] == STABLE
    assert abs(s["queue_growth_requests_per_s"]) < 0.01 * s["load_window_arrival_rate_requests_per_s"]


@pytest.mark.parametrize("replicas", [1, 2])
def test_a_run_at_three_times_capacity_is_overloaded_per_replica_too(capacity_rps, replicas):
    """The queue grows at about arrival rate - service rate, on the run and on each replica."""
    s = kavier.simulate(rate=3 * replicas * capacity_rps, replicas=replicas, **RUN).summary
    assert s["load_state"] == OVERLOADED
    assert s["load_state_per_replica"] == ",".join([OVERLOADED] * replicas)
    expected = s["load_window_arrival_rate_requests_per_s"] - replicas * capacity_rps
    assert s["queue_growth_requests_per_s"] == pytest.approx(expected, rel=0.1)
    assert s["queue_growth_requests_per_s_max_replica"] == pytest.approx(expected / replicas, rel=0.15)
    assert s["queue_growth_share_of_arrivals"] == pytest.approx(2 / 3, abs=0.07)


def test_the_thesis_preset_is_classified_too():
    """The sequential backend's queue (one request at a time per GPU) overloads as well."""
    run = {"workload": "poisson", "rate": 50.0, "num_requests": 200, "opendc": False}
    s = kavier.simulate(preset="thesis", **run).summary
    assert s["load_state"] == OVERLOADED and s["queue_growth_requests_per_s"] > 0
