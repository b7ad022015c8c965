"""One thesis request with known idle and maximum power, and carbon trace files."""

from __future__ import annotations

import numpy as np

import kavier

IDLE, MAX = 50.0, 250.0


def one_request(**kw):
    req = {"num_input_tokens": [1000], "num_output_tokens": [100], "arrival_s": [0.0]}
    return kavier.simulate(requests=req, preset="thesis", prefix_len=0, gpu_idle_w=IDLE, gpu_max_w=MAX, **kw)


def write_trace(path, start_ms, values, step_ms=3_600_000):
    import pyarrow as pa
    import pyarrow.parquet as pq

    stamps = start_ms + np.arange(len(values), dtype=np.int64) * step_ms
    pq.write_table(pa.table({"timestamp": stamps, "carbon_intensity": np.asarray(values, float)}), path)
