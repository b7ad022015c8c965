"""``kavier.plan.slo``: percentiles, goodput and the backlog guard of an SLO check."""

from __future__ import annotations

import numpy as np
import pytest

from kavier.plan import SloSpec
from kavier.plan.slo import check_slo


def _records(n: int, ttft: float = 0.1, tpot: float = 0.01) -> dict[str, np.ndarray]:
    return {
        "arrival_s": np.arange(n, dtype=float),
        "ttft_s": np.full(n, ttft),
        "tpot_s": np.full(n, tpot),
        "queue_s": np.zeros(n),
        "num_output_tokens": np.full(n, 10),
    }


def test_slo_percentiles_and_goodput():
    rec = _records(1000)
    rec["ttft_s"][:5] = 9.0  # 0.5 % of requests are slow, early on
    check = check_slo(rec, SloSpec(ttft_s=0.5, tpot_s=0.05))
    assert check.meets and check.ttft_s == pytest.approx(0.1) and check.goodput_fraction == 0.995
    assert not check_slo(rec, SloSpec(ttft_s=0.5, percentile=99.9)).meets
    assert not check_slo(rec, SloSpec(ttft_s=0.5, min_goodput_fraction=0.999)).meets
    rec["tpot_s"][:] = np.nan  # single-token answers have no TPOT: not a violation
    assert check_slo(rec, SloSpec(tpot_s=0.001)).meets


def test_slo_tail_window_catches_a_growing_backlog():
    rec = _records(1000)
    rec["ttft_s"][-5:] = 9.0  # the same 0.5 %, but at the end: the queue is building up
    rec["queue_s"][-60:] = 5.0
    overall_only = check_slo(rec, SloSpec(ttft_s=0.5, tail_fraction=1.0, max_queue_s=10))
    assert overall_only.meets
    check = check_slo(rec, SloSpec(ttft_s=0.5))
    assert not check.meets and any(r.startswith("tail p99 TTFT") for r in check.reasons)
    # A TPOT-only SLO would be met by an ever-longer queue; the backlog guard says no.
    tpot_only = check_slo(rec, SloSpec(tpot_s=0.05))
    assert not tpot_only.meets and tpot_only.reasons[-1].startswith("backlog")


def test_slo_spec_rejects_nonsense():
    with pytest.raises(ValueError):
        SloSpec()
    with pytest.raises(ValueError):
        SloSpec(ttft_s=-1)
    with pytest.raises(ValueError):
        SloSpec(ttft_s=1, percentile=0)


def test_an_overloaded_run_fails_with_the_runs_own_load_state():
    """A queue growing at 1/3 of the arrival rate fails even with a lax queue limit; the verdict is
    kavier.load's (the one ``kavier run`` prints), on the same records."""
    from kavier.load import classify_load

    rec = _records(1000)
    rec["queue_s"] = 0.5 * rec["arrival_s"]  # served at 2/3 of the arrival rate
    check = check_slo(rec, SloSpec(ttft_s=0.5, max_queue_s=1e6))
    assert not check.meets and check.reasons == [
        "overloaded: the waiting queue grows by 0.333 requests/s over the second half of the arrivals"
    ]
    load = classify_load(rec["arrival_s"], rec["arrival_s"] + rec["queue_s"])
    assert check.load_state == load.state == "overloaded"
    assert check.queue_growth_requests_per_s == pytest.approx(1 / 3, rel=0.01)
    assert check_slo(_records(1000), SloSpec(ttft_s=0.5)).load_state == "stable"
