"""Constants and checks shared by the calibration and profile tests."""

from __future__ import annotations

import pytest

from kavier.errors import KavierError
from kavier.perf.roofline import ServingPerfParams

TRUTH = ServingPerfParams(
    compute_efficiency=0.45,
    memory_efficiency=0.75,
    prefill_overhead_s=0.012,
    iteration_overhead_s=0.004,
    decode_seq_overhead_s=3e-4,
    prefill_seq_overhead_s=2e-3,
    attention_efficiency=0.3,
    comm_efficiency=0.5,
    comm_latency_s=2e-5,
    comm_cache_bytes=2e7,
    comm_spill_efficiency=0.2,
)


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    assert isinstance(exc.value, KavierError)
    return msg
