"""``kavier plan`` on the command line: the table, plan.json, max-rate mode, one-line errors and
``--pessimistic``."""

from __future__ import annotations

import json
import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kavier.commands.plan import _pessimistic_targets
from kavier.errors import ScenarioError
from kavier.perf.profiles import HERE as PROFILE_ROOT
from kavier.plan import PlanSettings, SloSpec, plan_cheapest
from kavier.registry import ENGINES
from kavier.scenario import build_scenario
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


class Lines:
    """Stands in for the console: keeps what is printed."""

    def __init__(self):
        self.lines = []

    def print(self, text, **_):
        self.lines.append(text)


def ttft_tpot_q10(engine="vllm-v1"):
    data = tomllib.loads((PROFILE_ROOT / engine / "bands.toml").read_text(encoding="utf-8"))
    return data["ttft"]["q10"], data["tpot"]["q10"]


def test_pessimistic_targets_tighten_each_slo_by_its_band():
    """--pessimistic divides each SLO by 1 / (1 + q10): target x (1 + q10) with the shipped bands."""
    q_ttft, q_tpot = ttft_tpot_q10()
    assert q_ttft < 0 and q_tpot < 0  # the shipped bands: predictions may run low
    base = build_scenario(None, {"llm": "Llama-3.1-8B"})
    err = Lines()
    ttft, tpot = _pessimistic_targets(base, 0.4, 0.04, err)
    assert ttft == pytest.approx(0.4 * (1 + q_ttft), rel=1e-12)
    assert tpot == pytest.approx(0.04 * (1 + q_tpot), rel=1e-12)
    assert err.lines[0].startswith(f"pessimistic: TTFT SLO 0.4 s -> {ttft:.4g} s")
    assert err.lines[1].startswith(f"pessimistic: TPOT SLO 0.04 s -> {tpot:.4g} s")
    only, none = _pessimistic_targets(base, 0.4, None, Lines())
    assert only == ttft and none is None  # an SLO not given stays unset


@given(target=st.floats(1e-3, 100), q10=st.floats(-0.9, 2.0))
def test_pessimistic_targets_never_loosen(target, q10):
    """The tightened SLO is target / max(1 / (1 + q10), 1): never above the target."""
    base = build_scenario(None, {})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("kavier.perf.profiles.bands", lambda engine: {"ttft": (q10, q10 + 1.0)})
        ttft, tpot = _pessimistic_targets(base, target, target, Lines())
    assert ttft == pytest.approx(target / max(1 / (1 + q10), 1.0), rel=1e-12)
    assert ttft <= target
    if q10 >= 0:
        assert ttft == target  # predictions that run high never loosen the SLO
    elif q10 < -1e-9:
        assert ttft < target
    assert tpot == target  # no tpot band: untouched


def test_pessimistic_needs_the_engines_bands(register):
    """--pessimistic with an engine that ships no bands is an error naming the option and engine."""

    class NoBands:
        name = "test-no-bands"
        profile_family = "no-such-family"

    register(ENGINES, "test-no-bands", NoBands)
    base = build_scenario(None, {"engine": "test-no-bands"})
    with pytest.raises(ScenarioError, match="--pessimistic: engine test-no-bands ships no bands"):
        _pessimistic_targets(base, 0.4, 0.04, Lines())


def test_pessimistic_plan_needs_at_least_as_many_replicas():
    """Planned against the tightened SLOs, the cheapest plan has no fewer replicas (here: more)."""
    base = build_scenario(
        None,
        {
            "llm": "Llama-3.1-8B",
            "workload": "poisson",
            "rate": 25.0,
            "num_requests": 300,
            "input_tokens": "1000",
            "output_tokens": "64",
            "seed": 3,
            "prefix_cache": "off",
        },
    )
    settings = PlanSettings(gpus=("H100-SXM",), tps=(1,), max_replicas=16, jobs=1)
    plain = plan_cheapest(base, SloSpec(ttft_s=0.4, tpot_s=0.04), settings).answer.answer
    tight = SloSpec(*_pessimistic_targets(base, 0.4, 0.04, Lines()))
    pessimistic = plan_cheapest(base, tight, settings).answer.answer
    assert pessimistic.replicas >= plain.replicas
    assert pessimistic.replicas > plain.replicas, "this workload was chosen so that the band matters"


def test_cli_pessimistic_plans_for_the_tightened_slos(tmp_path):
    """`kavier plan --pessimistic` says how it tightened the SLOs and plans for them (plan.json)."""
    res = kavier_cli(
        "plan", *WORKLOAD_FLAGS, "--gpus", "H100-SXM", "--tp", "1", "--slo-ttft", "400ms",
        "--slo-tpot", "0.04", "--max-replicas", "8", "--jobs", "1", "--pessimistic", "-q",
        "--out", tmp_path / "p.json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    q_ttft, q_tpot = ttft_tpot_q10()
    slo = json.loads((tmp_path / "p.json").read_text())["slo"]
    assert slo["slo_ttft_s"] == pytest.approx(0.4 * (1 + q_ttft), rel=1e-12)
    assert slo["slo_tpot_s"] == pytest.approx(0.04 * (1 + q_tpot), rel=1e-12)
    assert "pessimistic: TTFT SLO 0.4 s ->" in res.stderr and "pessimistic: TPOT SLO 0.04 s ->" in res.stderr


def test_gpu_types_is_plans_candidate_list_and_gpus_stays_an_alias():
    import typer

    from kavier import cli

    group = typer.main.get_command(cli.app)
    plan = group.get_command(typer.Context(group), "plan")
    option = next(p for p in plan.params if p.name == "gpus")
    assert option.opts[:2] == ["--gpu-types", "--gpus"]
