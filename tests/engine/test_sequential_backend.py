"""``kavier.engine.sequential_backend``: the thesis's GPUs (queueing, balance, prefix cache)."""

from __future__ import annotations

import numpy as np
import pytest

import kavier
from kavier.errors import KavierError, ScenarioError
from tests.runs import thesis_requests, thesis_simulate


def test_queueing_appears_when_arrivals_outpace_service():
    fast = thesis_simulate(requests=thesis_requests(gap=0.5), prefix_len=0).summary
    spaced = thesis_requests()
    spaced["arrival_s"] = np.arange(40) * 100.0  # longer than any request's service
    slow = thesis_simulate(requests=spaced, prefix_len=0).summary
    assert fast["queue_mean_s"] > 10.0
    assert slow["queue_mean_s"] == 0.0


def test_multi_gpu_balances_and_keeps_one_request_per_gpu():
    r = thesis_simulate(requests=thesis_requests(300, gap=0.2), gpus=3, prefix_len=0)
    replica = r.requests.column("replica").to_numpy()
    assert set(replica) == {0, 1, 2}
    running = r.timeseries.column("running").to_numpy()
    assert running.max() <= 1.0 + 1e-9


def test_prefix_cache_summary_and_cached_tokens():
    req = {
        "num_input_tokens": [2000, 2500, 3000, 500],
        "num_output_tokens": [10, 10, 10, 10],
        "arrival_s": [0.0, 100.0, 200.0, 300.0],
        "session_id": [1, 1, 1, 1],
    }
    r = thesis_simulate(requests=req, prefix_len=1024, prefix_cache_size=4)
    assert r.summary["prefix_cache_hits"] == 2
    assert r.summary["prefix_cache_hit_ratio"] == pytest.approx(2 / 4)
    assert r.requests.column("cached_tokens").to_pylist() == [0, 2500, 3000, 0]
    assert r.requests.column("prefill_s").to_pylist()[1:3] == [0.0, 0.0]


def test_block_cache_needs_the_serving_engine():
    with pytest.raises(KavierError, match="serving engine"):
        kavier.simulate(preset="thesis", prefix_cache="block")


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_num_seqs", 8), ("chunked_prefill", True), ("frontend_s_per_request", 0.001)],
)
def test_the_thesis_preset_rejects_the_serving_engines_keys(key, value):
    """A serving-engine key given to the thesis preset would do nothing: a one-line error names it."""
    with pytest.raises(ScenarioError, match=f"--{key.replace('_', '-')} applies to the serving preset"):
        kavier.simulate(preset="thesis", num_sessions=2, **{key: value})
