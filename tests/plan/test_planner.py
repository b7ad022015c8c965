"""``kavier.plan.planner``: cheapest and max-rate plans, end to end in memory."""

from __future__ import annotations

import json
import math

import pytest

from kavier.errors import ScenarioError
from kavier.plan import PlanSettings, SloSpec, plan_cheapest, plan_max_rate
from kavier.plan.evaluate import Evaluator
from kavier.scenario import build_scenario

# A small open-loop workload that one H100 cannot serve within the SLOs but a few can.
TINY = {
    "llm": "Llama-3.1-8B",
    "workload": "poisson",
    "rate": 80.0,
    "num_requests": 800,
    "input_tokens": "1000",
    "output_tokens": "64",
    "seed": 3,
}


TINY_SLO = SloSpec(ttft_s=0.4, tpot_s=0.04)


def test_cheapest_plan_answer_meets_and_one_replica_less_misses():
    base = build_scenario(None, TINY)
    plan = plan_cheapest(base, TINY_SLO, PlanSettings(gpus=("H100-SXM",), tps=(1,), max_replicas=16))
    assert plan.winner == 0
    answer = plan.answer.answer
    assert answer.replicas >= 2, "the tiny workload should need more than one replica"
    check = Evaluator(base, TINY_SLO)
    assert check("H100-SXM", 1, answer.replicas, 1.0).meets
    assert not check("H100-SXM", 1, answer.replicas - 1, 1.0).meets
    # Reported figures are those of the answer's run.
    assert answer.summary["num_gpus"] == answer.replicas
    assert answer.summary["cost_total_usd"] > 0 and answer.summary["co2_total_g"] > 0
    assert answer.usd_per_hour == pytest.approx(
        answer.replicas * answer.summary["gpu_price_per_hour_usd"]
        + answer.summary["cost_energy_usd"] / answer.summary["simulated_time_s"] * 3600
    )
    # Evaluations logarithmic: gallop 1, 2, 4 ... then bisect.
    assert plan.evaluations <= 2 * math.ceil(math.log2(answer.replicas)) + 1
    json.dumps(plan.to_json_dict(), allow_nan=False)


def test_cheapest_plan_ranks_by_total_cost_and_reports_infeasible():
    base = build_scenario(None, TINY)
    settings = PlanSettings(gpus=("A10", "H100-SXM"), tps=(1, 2), max_replicas=2)
    plan = plan_cheapest(base, TINY_SLO, settings)
    by = {(r.candidate.gpu, r.candidate.tp): r for r in plan.results}
    assert by[("A10", 1)].status.startswith("needs > 2 replicas") and by[("A10", 1)].closest is not None
    feasible = [r for r in plan.results if r.ok]
    assert plan.answer is min(feasible, key=lambda r: r.answer.summary["cost_total_usd"])


def test_cheapest_plan_stops_at_the_latency_floor():
    base = build_scenario(None, TINY)
    slo = SloSpec(ttft_s=0.01)  # below one 1000-token prefill on an H100
    plan = plan_cheapest(base, slo, PlanSettings(gpus=("H100-SXM",), tps=(1,), max_replicas=1024))
    r = plan.results[0]
    assert plan.winner is None and plan.best_found == 0
    assert r.status.startswith("latency floor") and len(r.tried) < 10
    rate = plan_max_rate(base, slo, PlanSettings(gpus=("H100-SXM",), tps=(1,), replicas=1))
    assert rate.winner is None and rate.results[0].status == "fails even at rate_scale 0.0156"
    assert [e.rate_scale for e in rate.results[0].tried] == [2.0**-k for k in range(7)][::-1]


def test_max_rate_plan_brackets_the_threshold():
    base = build_scenario(None, {**TINY, "num_requests": 200})
    settings = PlanSettings(gpus=("H100-SXM",), tps=(1,), replicas=2, tolerance=0.05)
    plan = plan_max_rate(base, TINY_SLO, settings)
    r = plan.answer
    assert r is not None and r.answer.meets
    failed = [e for e in r.tried if not e.meets and e.rate_scale > r.answer.rate_scale]
    assert failed and min(e.rate_scale for e in failed) / r.answer.rate_scale <= 1.05
    one = next(e for e in r.tried if e.rate_scale == 1.0)
    assert r.answer.offered_rate_rps == pytest.approx(one.offered_rate_rps * r.answer.rate_scale, rel=1e-9)


def test_plan_rejects_closed_loop_max_rate_and_the_thesis_preset():
    settings = PlanSettings(gpus=("H100-SXM",), tps=(1,))
    with pytest.raises(ScenarioError, match="arrivals"):
        plan_max_rate(build_scenario(None, {"workload": "closed-loop"}), TINY_SLO, settings)
    with pytest.raises(ScenarioError, match="serving engine"):
        plan_cheapest(build_scenario(None, {"preset": "thesis"}), TINY_SLO, settings)
