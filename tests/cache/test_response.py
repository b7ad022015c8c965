"""``kavier.cache.response``: the edge prompt-response cache answers exact repeats."""

from __future__ import annotations

import numpy as np
import pytest

import kavier
from tests.runs import SERVE, UNIT


def test_response_cache_answers_exact_repeats_without_gpu_work():
    req = {
        "num_input_tokens": np.array([UNIT * 2, UNIT * 2, UNIT * 2]),
        "num_output_tokens": np.array([50, 50, 50]),
        "arrival_s": np.array([0.0, 100.0, 200.0]),
        "hash_ids": [[1, 2], [1, 2], [1, 3]],
    }
    r = kavier.simulate(requests=req, response_cache=True, response_cache_latency=0.004, **SERVE)
    rows = r.requests.to_pylist()
    assert rows[1]["replica"] == -1 and rows[1]["ttft_s"] == pytest.approx(0.004)
    assert rows[1]["e2e_s"] == pytest.approx(0.004)
    assert rows[0]["replica"] >= 0 and rows[2]["replica"] >= 0  # different last block: a miss
    assert r.summary["response_cache_hits"] == 1
