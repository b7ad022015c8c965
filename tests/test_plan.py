"""Capacity planning: pure searches, SLO checks, rate_scale, end-to-end plans and the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

import kavier
from cli_helper import kavier as kavier_cli
from kavier.errors import ScenarioError
from kavier.plan import PlanSettings, SloSpec, plan_cheapest, plan_max_rate
from kavier.plan.candidates import candidates
from kavier.plan.evaluate import Evaluator
from kavier.plan.search import max_feasible_scale, min_feasible
from kavier.plan.slo import check_slo
from kavier.scenario import build_scenario
from kavier.workload.build import workload_source
from kavier.workload.source import concat_chunks

# A small open-loop workload that one H100 cannot serve within the SLOs but a few can.
TINY = {
    "llm": "Llama-3.1-8B",
    "workload": "poisson",
    "rate": 30.0,
    "num_requests": 300,
    "input_tokens": "1000",
    "output_tokens": "64",
    "seed": 3,
}
TINY_SLO = SloSpec(ttft_s=0.4, tpot_s=0.04)


# --- pure searches ---------------------------------------------------------------------------


class Counting:
    """A monotone oracle that records every question."""

    def __init__(self, ok):
        self.ok = ok
        self.asked: list = []

    def __call__(self, x):
        self.asked.append(x)
        return self.ok(x)


@pytest.mark.parametrize("hi", [1, 7, 64, 1000])
def test_min_feasible_finds_every_threshold_with_logarithmic_evaluations(hi):
    for threshold in range(1, hi + 1):
        oracle = Counting(lambda n, t=threshold: n >= t)
        found = min_feasible(oracle, 1, hi)
        assert found.value == threshold
        assert len(oracle.asked) == len(set(oracle.asked)) == found.evaluations  # never twice
        assert found.evaluations <= 2 * math.ceil(math.log2(threshold)) + 1 if threshold > 1 else 1
        if threshold > 1:
            assert found.tried[threshold - 1] is False  # the answer's predecessor was seen to fail


def test_min_feasible_reports_none_beyond_the_limit():
    oracle = Counting(lambda n: n >= 100)
    found = min_feasible(oracle, 1, 64)
    assert found.value is None
    assert oracle.asked == [1, 2, 4, 8, 16, 32, 64]
    with pytest.raises(ValueError):
        min_feasible(oracle, 0, 4)


def test_min_feasible_gives_up_on_a_plateau():
    oracle = Counting(lambda n: False)
    found = min_feasible(oracle, 1, 1024, give_up=lambda m, n: n >= 8)
    assert found.value is None and found.gave_up and oracle.asked == [1, 2, 4, 8]


@pytest.mark.parametrize("threshold", [0.0123, 0.5, 0.999, 1.0, 1.7, 3.3, 100.0])
@pytest.mark.parametrize("tolerance", [0.02, 0.1])
def test_max_feasible_scale_converges_within_the_tolerance(threshold, tolerance):
    oracle = Counting(lambda s: s <= threshold)
    found = max_feasible_scale(oracle, start=1.0, tolerance=tolerance)
    assert found.value is not None and found.failed_at is not None
    assert found.value <= threshold < found.failed_at
    assert found.failed_at / found.value <= 1 + tolerance
    bracket = abs(math.log2(threshold)) + 2
    bisect = math.ceil(math.log2(math.log(2) / math.log1p(tolerance))) + 1
    assert found.evaluations <= bracket + bisect
    assert len(oracle.asked) == len(set(oracle.asked))


def test_max_feasible_scale_limits():
    capped = max_feasible_scale(lambda s: True, max_scale=8.0)
    assert capped.value == 8.0 and capped.capped
    never = max_feasible_scale(lambda s: False, min_scale=0.25)
    assert never.value is None and never.failed_at == 0.25


# --- SLO check --------------------------------------------------------------------------------


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


# --- rate_scale ---------------------------------------------------------------------------------


def _arrivals(**keys) -> np.ndarray:
    return concat_chunks(workload_source(build_scenario(None, keys)).chunks(64)).arrival_s


@pytest.mark.parametrize("arrival", ["poisson", "gamma"])
def test_rate_scale_halves_generator_inter_arrival_times_exactly(arrival):
    keys = {"workload": arrival, "rate": 3.0, "num_requests": 500, "arrival_cv": 2.0}
    one, two = _arrivals(**keys), _arrivals(**keys, rate_scale=2.0)
    assert np.array_equal(two, one * 0.5)
    np.testing.assert_allclose(_arrivals(**keys, rate_scale=3.0), one / 3.0, rtol=1e-12)


def test_rate_scale_divides_trace_arrivals(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text(
        "ts,num_input_tokens,num_output_tokens\n" + "".join(f"{7 + i * 1.5},100,10\n" for i in range(20))
    )
    one = _arrivals(trace=str(trace))
    two = _arrivals(trace=str(trace), rate_scale=2.0)
    assert np.array_equal(two, one * 0.5) and one[-1] == pytest.approx(28.5)
    res = kavier.simulate(trace=str(trace), llm="Llama-3-8B", gpu="A10", rate_scale=2.0)
    assert np.array_equal(res.requests.column("arrival_s").to_numpy(), one * 0.5)


def test_rate_scale_divides_in_memory_and_cli_arrivals(tmp_path):
    arrivals = [0.0, 3.0, 5.0, 9.0]
    columns = {"num_input_tokens": [100] * 4, "num_output_tokens": [10] * 4, "arrival_s": arrivals}
    res = kavier.simulate(requests=columns, llm="Llama-3-8B", gpu="A10", rate_scale=4.0)
    assert res.requests.column("arrival_s").to_pylist() == [0.0, 0.75, 1.25, 2.25]
    trace = tmp_path / "t.csv"
    trace.write_text("ts,num_input_tokens,num_output_tokens\n0,100,10\n3,100,10\n5,100,10\n9,100,10\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "kavier", "run", "--trace", str(trace), "--rate-scale", "4", "-o", str(out)]
    cmd.append("-q")
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert pq.read_table(out / "requests.parquet").column("arrival_s").to_pylist() == [0.0, 0.75, 1.25, 2.25]


def test_rate_scale_multiplies_chat_session_rate():
    keys = {"num_sessions": 30}
    src1 = concat_chunks(workload_source(build_scenario(None, keys)).chunks(64))
    src2 = concat_chunks(workload_source(build_scenario(None, {**keys, "rate_scale": 2.0})).chunks(64))
    starts1 = np.sort(src1.arrival_s[src1.turn_id == 0])
    starts2 = np.sort(src2.arrival_s[src2.turn_id == 0])
    assert np.array_equal(starts2, starts1 * 0.5)  # sessions start twice as often
    assert len(src1) == len(src2)


def test_rate_scale_one_keeps_outputs_identical_and_closed_loop_rejects_it():
    keys = {"workload": "poisson", "num_requests": 50, "rate": 4.0, "llm": "Llama-3-8B", "gpu": "A10"}
    a, b = kavier.simulate(**keys), kavier.simulate(**keys, rate_scale=1.0)
    assert a.requests.equals(b.requests) and a.summary.keys() == b.summary.keys()
    assert a.scenario.to_json_dict()["rate_scale"] == 1.0
    with pytest.raises(ScenarioError, match="closed-loop"):
        build_scenario(None, {"workload": "closed-loop", "rate_scale": 2.0})
    with pytest.raises(ScenarioError, match="rate-scale 0"):
        build_scenario(None, {"rate_scale": 0})


# --- end to end -------------------------------------------------------------------------------


def test_candidates_filter_and_fit():
    base = build_scenario(None, {"llm": "Llama-3.1-70B"})
    cands = candidates(base, ["A100-80GB", "a100-80gb"], None)  # an alias collapses
    assert [(c.tp, c.unfit is None) for c in cands] == [(1, False), (2, True), (4, True), (8, True)]
    assert "does not fit" in cands[0].unfit
    odd = candidates(base, ["H100-SXM"], [3])
    assert "does not divide" in odd[0].unfit


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
    slo = SloSpec(ttft_s=0.05)  # below one 1000-token prefill on an H100
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


# --- CLI --------------------------------------------------------------------------------------


WORKLOAD_FLAGS = (
    "--workload", "poisson", "--rate", "30", "--num-requests", "300", "--input-tokens", "1000",
    "--output-tokens", "64", "--seed", "3", "--llm", "Llama-3.1-8B",
)  # fmt: skip


def test_cli_prints_a_table_and_writes_plan_json(tmp_path):
    out = tmp_path / "sub" / "plan.json"
    res = kavier_cli(
        "plan", *WORKLOAD_FLAGS, "--gpus", "H100-SXM,A100-80GB", "--tp", "1,2", "--slo-ttft", "400ms",
        "--slo-tpot", "0.04", "--max-replicas", "16", "--jobs", "1", "--out", out,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "Kavier plan" in res.stdout and "answer:" in res.stdout and "H100-SXM" in res.stdout
    data = json.loads(out.read_text())
    assert data["mode"] == "cheapest" and data["feasible"] is True
    assert data["slo"]["slo_ttft_s"] == 0.4 and len(data["candidates"]) == 4
    answer = data["answer"]
    for key in (
        "gpu",
        "tp",
        "replicas",
        "cost_total_usd",
        "energy_facility_kwh",
        "co2_total_g",
        "usd_per_hour",
    ):
        assert key in answer
    assert answer["meets_slo"] is True
    assert not list(out.parent.glob(".*tmp*"))


def test_cli_max_rate_mode(tmp_path):
    res = kavier_cli(
        "plan", *WORKLOAD_FLAGS, "--num-requests", "150", "--gpus", "H100-SXM", "--tp", "1",
        "--replicas", "2", "--slo-ttft", "0.4", "--max-rate", "--tolerance", "0.1", "--jobs", "1",
        "--out", tmp_path / "p.json", "-q",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["mode"] == "max_rate" and data["answer"]["rate_scale"] > 0
    assert "req/s" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--gpus", "Z9000", "--slo-ttft", "1"), "Z9000"),
        (("--gpus", "H100-SXM"), "give an SLO"),
        (("--llm", "Llama-3.1-405B", "--gpus", "A10", "--tp", "1,2", "--slo-ttft", "1"), "fits none"),
        (("--gpus", "H100-SXM", "--tp", "one", "--slo-ttft", "1"), "--tp"),
        (("--gpus", "H100-SXM", "--slo-ttft", "soon"), "--slo-ttft"),
        (("--gpus", "H100-SXM", "--slo-ttft", "1", "--slo-percentile", "120"), "percentile"),
    ],
)
def test_cli_bad_input_is_a_one_line_error(args, message):
    res = kavier_cli("plan", "--workload", "poisson", "--num-requests", "20", *args)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "error" in lines[0] and message in lines[0], res.stderr


def test_cli_no_feasible_configuration_exits_1_with_the_best_found(tmp_path):
    res = kavier_cli(
        "plan", *WORKLOAD_FLAGS, "--gpus", "A10", "--tp", "1", "--max-replicas", "2", "--slo-ttft", "0.05",
        "--jobs", "1", "-q", "--out", tmp_path / "p.json",
    )  # fmt: skip
    assert res.returncode == 1
    assert "no configuration meets" in res.stderr and "closest: A10 tp=1 x2" in res.stderr
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["feasible"] is False and data["answer"] is None and data["best_found"]["replicas"] == 2
