"""``kavier.workload.limit``: KAVIER_MAX_REQUESTS cuts every workload to its first N requests."""

from __future__ import annotations

import numpy as np
import pytest

import kavier
from kavier.errors import WorkloadError
from kavier.scenario import build_scenario
from kavier.workload.build import workload_source
from kavier.workload.source import concat_chunks


def requests(**keys) -> np.ndarray:
    source = workload_source(build_scenario(overrides=keys))
    return concat_chunks(source.chunks(7)).num_input_tokens


def test_unset_leaves_the_workload_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAVIER_MAX_REQUESTS", raising=False)
    assert len(requests(workload="poisson", num_requests=50)) == 50


def test_the_first_n_requests_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAVIER_MAX_REQUESTS", raising=False)
    whole = requests(trace="mooncake-synthetic")
    monkeypatch.setenv("KAVIER_MAX_REQUESTS", "23")
    cut = requests(trace="mooncake-synthetic")
    assert np.array_equal(cut, whole[:23])
    assert len(requests(workload="poisson", num_requests=5)) == 5  # fewer than the cap: all


def test_closed_loop_and_simulate_obey_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAVIER_MAX_REQUESTS", "12")
    result = kavier.simulate(workload="closed-loop", concurrency=4, num_requests=100, opendc=False)
    assert result.requests.num_rows == 12


@pytest.mark.parametrize("value", ["0", "-3", "ten", "1.5"])
def test_a_bad_value_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("KAVIER_MAX_REQUESTS", value)
    with pytest.raises(WorkloadError, match="KAVIER_MAX_REQUESTS"):
        requests(workload="poisson", num_requests=5)
