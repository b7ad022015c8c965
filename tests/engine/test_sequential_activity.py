"""``kavier.engine.sequential_activity``: KV bytes follow the tokens in context."""

import numpy as np
import pyarrow.compute as pc
import pytest

from tests.runs import T_T, thesis_simulate


def test_kv_bytes_follow_tokens_in_context():
    req = {"num_input_tokens": [1000], "num_output_tokens": [100], "arrival_s": [0.0]}
    r = thesis_simulate(requests=req, prefix_len=0, export_rate=0.001)
    kv = r.timeseries.column("kv_used_bytes").to_numpy()
    per_token = 128 * 1024
    assert kv.max() == pytest.approx(1100 * per_token, rel=1e-3)
    prefill = r.requests.column("prefill_s")[0].as_py()
    decode = r.requests.column("decode_s")[0].as_py()
    # linear growth 0 -> 1000 over prefill, 1000 -> 1100 over decode
    expected = per_token * (1000 * prefill / 2 + (1000 + 50) * decode)
    width = r.timeseries.column("interval_s").to_numpy()
    assert float(np.sum(kv * width)) == pytest.approx(expected, rel=1e-9)
    off = thesis_simulate(requests=req, prefix_len=0, kv_cache=False)
    assert pc.max(off.timeseries.column("kv_used_bytes")).as_py() == 0.0
    assert off.requests.column("decode_s")[0].as_py() == pytest.approx(100 * 101 / 2 * T_T)
