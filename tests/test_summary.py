"""``kavier.summary``: ``--baseline`` savings against the same run without caches."""

from __future__ import annotations

import pytest

import kavier
from tests.runs import SERVE


def test_baseline_reports_savings():
    s = kavier.simulate(workload="chat", num_sessions=20, baseline=True, **SERVE).summary
    assert s["saved_gpu_s"] == pytest.approx(s["baseline_gpu_busy_s"] - s["gpu_busy_s"])
    assert s["saved_prefill_s"] > 0 and s["saved_energy_j"] > 0 and s["saved_cost_usd"] > 0
    assert s["saved_co2_g"] > 0 and s["ttft_mean_change_s"] < 0
