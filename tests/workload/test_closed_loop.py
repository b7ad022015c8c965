"""``kavier.workload.closed_loop``: clients keep their concurrency."""

import numpy as np

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
