"""``kavier plan`` on the command line: the table, plan.json, max-rate mode and one-line errors."""

from __future__ import annotations

import json

import pytest

from tests.cli_helper import kavier as kavier_cli

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
