"""``kavier.workload.closed_loop``: clients keep their concurrency."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import kavier


def test_closed_loop_keeps_concurrency():
    r = kavier.simulate(
        workload="closed-loop",
        concurrency=4,
        num_requests=60,
        input_tokens="200",
        output_tokens="20",
        think_time_s=0.5,
    )
    assert r.requests.num_rows == 60
    t = r.requests
    arrival, finish = t.column("arrival_s").to_numpy(), t.column("finish_s").to_numpy()
    for moment in np.linspace(0, finish.max(), 50):
        assert np.sum((arrival <= moment) & (finish > moment)) <= 4


@settings(max_examples=15, deadline=None)
@given(limit=st.integers(min_value=400, max_value=1200), seed=st.integers(min_value=0, max_value=50))
def test_requests_over_max_model_len_are_rejected_and_counted_among_those_sent(limit, seed):
    # vLLM's server answers a request longer than max_model_len with HTTP 400: the client
    # counts it as sent and sends its next one; served + rejected = num_requests
    r = kavier.simulate(
        workload="closed-loop",
        concurrency=3,
        num_requests=40,
        input_tokens="uniform:50:1000",
        output_tokens="100",
        max_model_len=limit,
        seed=seed,
    )
    t = r.requests
    held = t.column("num_input_tokens").to_numpy() + t.column("num_output_tokens").to_numpy()
    assert np.all(held <= limit)
    assert t.num_rows + r.summary["rejected_requests"] == 40
    assert r.summary["num_requests"] == t.num_rows
