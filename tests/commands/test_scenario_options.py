"""``kavier run``'s options come from the scenario model: every key is reachable, every legacy
spelling keeps its meaning, the help shows the groups and the registries' names."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from kavier import cli
from kavier.registry import EVICTION_POLICIES, POWER_MODELS, ROUTERS, SCHEDULERS
from kavier.scenario import Scenario, build_scenario
from kavier.settings import GROUPS
from kavier.settings.base import cli_metadata
from tests.cli_helper import SRC, kavier
from tests.settings.scoping import applicable, as_argv, context_for


def run_command() -> typer.core.TyperCommand:
    """``run`` as ``kavier run`` builds it."""
    return typer.main.get_command(cli._run_app()).commands["run"]


def scenario_of(*argv: object, app: typer.Typer | None = None) -> Scenario:
    """The scenario ``kavier run ARGV`` would simulate (the simulation itself is skipped)."""
    seen: list[Scenario] = []

    def capture(scenario: Scenario, **_: object) -> tuple[Path, dict[str, object]]:
        seen.append(scenario)
        return Path("unused"), {}

    with mock.patch("kavier.api.run_to_folder", capture):
        result = CliRunner().invoke(app or cli._run_app(), ["run", *map(str, argv), "-q"])
    assert result.exit_code == 0, result.output
    return seen[0]


def test_every_key_is_a_flag_or_said_to_be_file_only():
    params = {p.name: p for p in run_command().params}
    for key, field in Scenario.model_fields.items():
        if key in params:
            spellings = params[key].opts + params[key].secondary_opts
            assert "--" + key.replace("_", "-") in spellings, key
        else:
            assert cli_metadata(field).get("file_only"), key
            assert "scenario file only" in (field.description or ""), key


# Every flag spelling `kavier run` had before its options were generated, with what it set.
LEGACY = [
    (["--output-folder", "o"], {"output_folder": "o"}),
    (["--output_folder", "o"], {"output_folder": "o"}),
    (["-o", "o"], {"output_folder": "o"}),
    (["--kv-cache", "off"], {"kv_cache": False}),
    (["--kv_cache", "off"], {"kv_cache": False}),
    (["--kv_cache", "on"], {"kv_cache": True}),
    (["--prefix-len", "0"], {"prefix_len": 0}),
    (["--prefix_len", "512"], {"prefix_len": 512}),
    (["--export-rate", "0.5"], {"export_rate": 0.5}),
    (["--export_rate", "100ms"], {"export_rate": 0.1}),
    (["--flush-size", "7"], {"flush_size": 7}),
    (["--flush_size", "7"], {"flush_size": 7}),
    (["--prefix-cache-size", "3"], {"prefix_cache_size": 3}),
    (["--prefix_cache_size", "3"], {"prefix_cache_size": 3}),
    (["--prefix-cache-scope", "global"], {"prefix_cache_scope": "global"}),
    (["--prefix_cache_scope", "global"], {"prefix_cache_scope": "global"}),
    (["--prefix-cache-policy", "full"], {"prefix_cache_policy": "full"}),
    (["--prefix_cache_policy", "full"], {"prefix_cache_policy": "full"}),
    (["--prefix-cache", "off"], {"prefix_cache": "off"}),
    (["--prefix_cache", "thesis"], {"prefix_cache": "thesis"}),
    (["--think-time", "1"], {"think_time_s": 1.0}),
    (["--opendc"], {"opendc": True}),
    (["--no-opendc"], {"opendc": False}),
    (["--plots"], {"plots": True}),
    (["--no-plots"], {"plots": False}),
    (["--baseline"], {"baseline": True}),
    (["--carbon-trace-wrap"], {"carbon_trace_wrap": True}),
    (["--chunked-prefill", "off"], {"chunked_prefill": False}),
    (["--response-cache", "on"], {"response_cache": True}),
    (["--slo-ttft", "0.5", "--slo-tpot", "0.05"], {"slo_ttft": 0.5, "slo_tpot": 0.05}),
    (["--token-price-per-mtok", "1,3"], {"token_price_per_mtok": (1.0, 3.0)}),
    (["--pue", "1.2"], {"pue": 1.2}),
    (["--pue", "pue.csv"], {"pue": "pue.csv"}),
    (["--cache-tiers", "host-dram:64GiB,local-ssd:1TiB"], {"cache_tiers": "host-dram:64GiB,local-ssd:1TiB"}),
    (["--gpus", "4"], {"gpus": 4}),
    (["--catalog", "mine.toml"], {"catalog": "mine.toml"}),
    (["--start-time", "2022-07-01T00:00:00Z"], {"start_time": datetime(2022, 7, 1, tzinfo=UTC)}),
    (["--seed", "7"], {"seed": 7}),
    (["--preset", "thesis"], {"preset": "thesis"}),
    (
        ["--workload", "poisson", "--rate", "2.5", "--rate-scale", "0.5", "--num-requests", "20"],
        {"workload": "poisson", "rate": 2.5, "rate_scale": 0.5, "num_requests": 20},
    ),
    (
        ["--input-tokens", "512", "--output-tokens", "uniform:10:20", "--arrival-cv", "2"],
        {"input_tokens": "512", "output_tokens": "uniform:10:20", "arrival_cv": 2.0},
    ),
    (
        ["--trace", "t.csv", "--llm", "Llama-3.1-8B", "--gpu", "H100-SXM", "--num-sessions", "5"],
        {"trace": "t.csv", "llm": "Llama-3.1-8B", "gpu": "H100-SXM", "num_sessions": 5},
    ),
    (
        ["--power-model", "sqrt", "--gpu-idle-w", "20", "--gpu-max-w", "1.4e2"],
        {"power_model": "sqrt", "gpu_idle_w": 20.0, "gpu_max_w": 140.0},
    ),
    (
        ["--power-calibration", "1.2", "--power-asym-util", "0.4", "--carbon-intensity", "300"],
        {"power_calibration": 1.2, "power_asym_util": 0.4, "carbon_intensity": 300.0},
    ),
    (["--region", "NL", "--carbon-trace", "c.parquet"], {"region": "NL", "carbon_trace": "c.parquet"}),
    (
        ["--gpu-price-per-hour", "2", "--energy-price-per-kwh", "0.3", "--gpu-lifetime-years", "3"],
        {"gpu_price_per_hour": 2.0, "energy_price_per_kwh": 0.3, "gpu_lifetime_years": 3.0},
    ),
    (
        ["--scheduler", "static", "--replicas", "2", "--router", "random", "--max-num-seqs", "16"],
        {"scheduler": "static", "replicas": 2, "router": "random", "max_num_seqs": 16},
    ),
    (
        ["--max-batched-tokens", "512", "--block-size", "32", "--gpu-memory-utilization", "0.8"],
        {"max_batched_tokens": 512, "block_size": 32, "gpu_memory_utilization": 0.8},
    ),
    (
        ["--tp", "2", "--pp", "2", "--weight-dtype", "fp8", "--kv-dtype", "fp8", "--perf-profile", "p.toml"],
        {"tp": 2, "pp": 2, "weight_dtype": "fp8", "kv_dtype": "fp8", "perf_profile": "p.toml"},
    ),
    (["--workload", "closed-loop", "--concurrency", "4"], {"workload": "closed-loop", "concurrency": 4}),
    (
        ["--cache-eviction", "ttl", "--cache-ttl", "5min", "--cache-scope", "global"],
        {"cache_eviction": "ttl", "cache_ttl": 300.0, "cache_scope": "global"},
    ),
    (
        ["--cache-capacity-tokens", "100", "--cache-tier-policy", "exclusive"],
        {"cache_capacity_tokens": 100, "cache_tier_policy": "exclusive"},
    ),
    (
        ["--response-cache-latency", "5ms", "--affinity-load-guard", "2"],
        {"response_cache_latency": 0.005, "affinity_load_guard": 2},
    ),
]


@pytest.mark.parametrize(("argv", "values"), LEGACY, ids=[" ".join(a) for a, _ in LEGACY])
def test_legacy_spellings_keep_their_meaning(argv, values):
    # in the preset and with the settings where the keys act (kavier.settings.scope)
    context = {k: v for k, v in context_for(values).items() if k not in values}
    scenario = scenario_of(*argv, *as_argv(context))
    assert scenario == build_scenario(None, {**values, **context})
    for key, value in values.items():
        assert getattr(scenario, key) == value, key


def test_the_full_app_and_the_run_only_app_parse_alike():
    argv = ["--preset", "thesis", "--kv_cache", "off", "-o", "o", "--export-rate", "100ms", "--no-opendc"]
    assert scenario_of(*argv, app=cli.app) == scenario_of(*argv)


def test_flags_override_the_scenario_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        '[system]\ngpus = 2\n[serving]\npreset = "thesis"\n'
        '[thesis_cache]\nprefix_cache_size = 3\n[output]\nopendc = "off"\n'
    )
    scenario = scenario_of(path, "--gpus", 3, "--opendc")
    assert (scenario.gpus, scenario.prefix_cache_size, scenario.opendc) == (3, 3, True)


# A key, a value and how it is written on the command line.
FLAG_VALUES = st.one_of(
    st.integers(1, 64).map(lambda n: ("gpus", n, ["--gpus", str(n)])),
    st.floats(0.01, 1e3).map(lambda x: ("rate", x, ["--rate", repr(x)])),
    st.integers(1, 10_000).map(lambda ms: ("export_rate", ms * 1e-3, ["--export-rate", f"{ms}ms"])),
    st.booleans().map(lambda b: ("kv_cache", b, ["--kv-cache", "on" if b else "off"])),
    st.booleans().map(lambda b: ("opendc", b, ["--opendc" if b else "--no-opendc"])),
    st.sampled_from(ROUTERS.names()).map(lambda r: ("router", r, ["--router", r])),
    st.sampled_from(POWER_MODELS.names()).map(lambda p: ("power_model", p, ["--power-model", p])),
    st.integers(1, 4096).map(lambda n: ("input_tokens", str(n), ["--input-tokens", str(n)])),
    st.tuples(st.integers(0, 99), st.integers(0, 99)).map(
        lambda p: (
            "token_price_per_mtok",
            (float(p[0]), float(p[1])),
            ["--token-price-per-mtok", f"{p[0]},{p[1]}"],
        )
    ),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
        lambda t: ("start_time", t, ["--start-time", t.isoformat()])
    ),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(FLAG_VALUES, max_size=5, unique_by=lambda item: item[0]))
def test_any_flags_give_the_scenario_of_their_values(items):
    kept = applicable({key: value for key, value, _ in items})
    argv = [word for key, _, words in items if key in kept for word in words]
    expected = build_scenario(None, kept)
    assert scenario_of(*argv) == expected


def _help(*command: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "400"}
    done = subprocess.run(
        [sys.executable, "-m", "kavier", *command, "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return done.stdout


def test_run_help_shows_every_group_panel_with_registry_names_and_defaults():
    text = _help("run")
    for group in GROUPS:
        assert f"─ {group.panel} ─" in text, group.panel
    for registry in (SCHEDULERS, ROUTERS, EVICTION_POLICIES, POWER_MODELS):
        assert f"known: {', '.join(registry.names())}" in text
    assert "continuous; thesis preset: sequential" in text  # a preset's default beside the field's
    assert (
        "--output-folder,--output_folder" in text
        and "Keys only a scenario file can set: replica_groups" in text
    )


def test_plan_help_keeps_its_own_options_and_groups_the_scenario_ones():
    text = _help("plan")
    assert "candidate GPU names, comma-separated" in text and "TTFT SLO, s (or 500ms)" in text
    assert "─ Serving engine ─" in text and f"known: {', '.join(ROUTERS.names())}" in text
    assert "--gpu-memory-utilization" not in text  # not among plan's scenario keys


def _one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("flag", "registry"),
    [
        ("--scheduler", SCHEDULERS),
        ("--router", ROUTERS),
        ("--cache-eviction", EVICTION_POLICIES),
        ("--power-model", POWER_MODELS),
    ],
)
def test_unknown_policy_names_give_one_line_errors_listing_the_registry(tmp_path, flag, registry):
    line = _one_line_error(kavier("run", flag, "foo", "-o", tmp_path / "o", "-q"))
    assert f"{flag} foo: unknown {registry.kind} 'foo'; known: {', '.join(registry.names())}" in line


def test_bad_values_and_misplaced_file_keys_give_one_line_errors(tmp_path):
    line = _one_line_error(kavier("run", "--gpus", "x", "-o", tmp_path / "o"))
    assert line.startswith("error: --gpus x:")
    assert "--think-time 5kg" in _one_line_error(kavier("run", "--think-time", "5kg", "-o", tmp_path / "o"))
    path = tmp_path / "s.toml"
    path.write_text("[cache]\nprefix_len = 512\n")
    line = _one_line_error(kavier("run", path, "-o", tmp_path / "o"))
    assert "did you mean [thesis_cache] prefix_len?" in line
