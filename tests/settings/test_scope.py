"""Every option of ``kavier run`` in every preset either changes what the run writes or is
rejected with one line naming where it applies (kavier.settings.scope).

The options are walked from the scenario's fields (every key that has a flag), not from a list
kept here; what is kept here is, for a key whose changed value cannot be derived from its field
(a file, a name, a bound), the value to try, and for a key whose effect needs a load that the
small base workload lacks, that load.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from typer.testing import CliRunner

from kavier import cli
from kavier.commands.scenario_options import _unwrap, field_registry, option_parameters
from kavier.errors import KavierError, KavierWarning, ScenarioError
from kavier.scenario import PRESETS, Scenario, build_scenario
from kavier.settings.scope import SCOPES, Scope, scope_note
from tests.settings.scoping import as_argv

RUN_KEYS = [p.name for p in option_parameters()]
PRESET_NAMES = tuple(PRESETS)
WALL_KEYS = {"wall_time_s", "events_per_wall_s", "simulated_s_per_wall_s"}

# A small open-loop workload that still fills batches and the KV cache of one A10.
BASE = {
    "workload": "poisson",
    "num_requests": 12,
    "rate": 40.0,
    "input_tokens": "uniform:200:600",
    "output_tokens": "uniform:5:30",
    "opendc": False,
}

# Values that cannot be derived from the field (files, names, bounds), or whose effect needs
# settings of their own to show (given beside the value).
FILES = "FILES"  # replaced by the folder of test files


def _values(files: Path) -> dict[str, tuple[Any, dict[str, Any]]]:
    ids = str(files / "ids.jsonl")
    cycle = str(files / "cycle.jsonl")
    long_prompts = {"input_tokens": "uniform:3000:4000", "num_requests": 8}
    shared = {"workload": "chat", "num_sessions": 3}
    return {
        "llm": ("Llama-3.2-1B", {}),
        "gpu": ("A100-80GB", {}),
        "gpus": (2, {}),
        "catalog": (str(files / "catalog.toml"), {}),
        "gpu_memory_utilization": (0.8, {}),
        "replicas": (2, {}),
        "tp": (2, {"gpus": 2}),
        "pp": (2, {"gpus": 2}),
        "weight_dtype": ("fp8", {}),
        "kv_dtype": ("fp8", {}),
        "activation_reserve_gib": (4.0, {}),
        "trace": (str(files / "trace.csv"), {}),
        "input_tokens": ("300", {}),
        "output_tokens": ("7", {}),
        "rate": (5.0, {}),
        "num_requests": (5, {}),
        "num_sessions": (2, {}),
        "session_rate": (3.0, {"num_sessions": 3}),
        "think_time_s": (0.5, {"num_requests": 6, "concurrency": 2}),
        "concurrency": (2, {"num_requests": 6}),
        "seed": (7, {}),
        "max_num_seqs": (2, {}),
        "max_batched_tokens": (512, long_prompts),
        "chunked_prefill": (True, {**long_prompts, "max_batched_tokens": 4096, "engine": "vllm-v0"}),
        "block_size": (64, {}),
        "max_model_len": (3500, {**long_prompts, "output_tokens": "16"}),
        "affinity_load_guard": (0, {**shared, "replicas": 2}),
        "router": ("round_robin", {"replicas": 2}),
        "scheduler": ("static", {}),
        "slo_ttft": (0.01, {}),
        "slo_tpot": (0.001, {}),
        "compute_saturation_tokens": (5000.0, {}),
        "comm_cache_bytes": (1e3, {}),
        "perf_profile": (str(files / "profile.toml"), {}),
        "prefix_cache": ("off", shared),
        "prefix_len": (16, shared),
        "prefix_cache_size": (1, {**shared, "prefix_len": 16}),
        "prefix_cache_scope": ("global", {"trace": ids, "prefix_len": 16}),
        "prefix_cache_policy": ("full", {**shared, "prefix_len": 16}),
        "cache_eviction": ("random", {"trace": cycle, "cache_capacity_tokens": 1024}),
        "cache_ttl": (0.001, shared),
        "cache_scope": ("global", {**shared, "replicas": 2, "router": "round_robin"}),
        "cache_capacity_tokens": (16, shared),
        "cache_capacity_bytes": (1e6, shared),
        "cache_tiers": ("host-dram:1GiB", {**shared, "cache_capacity_tokens": 64}),
        "cache_tier_policy": ("exclusive", {**shared, "cache_capacity_tokens": 64}),
        "response_cache": (True, {"trace": ids}),
        "response_cache_size": (1, {"trace": cycle}),
        "response_cache_latency": (0.5, {"trace": ids}),
        "baseline": (True, shared),
        "pue": (str(files / "pue.csv"), {}),
        "region": ("NL", {}),
        "carbon_trace": (str(files / "carbon.csv"), {}),
        "carbon_trace_wrap": (
            True,
            {"carbon_trace": str(files / "carbon.csv"), "start_time": "2022-01-01T05:00:00Z"},
        ),
        "token_price_per_mtok": ("1,3", {}),
        "output_folder": ("(set in the test: a folder under tmp_path)", {}),
        "name": ("other", {"opendc": True}),
        "gpu_max_w": (400.0, {}),
        "gpu_idle_w": (40.0, {}),
        "flush_size": (3, {}),
        "start_time": ("2023-05-01T00:00:00Z", {"opendc": True}),
        "export_rate": (0.25, {}),
        "timeline": (True, {}),
        "power_calibration": (2.0, {}),
        "power_active_floor": (0.5, {}),
        "edge_utilization": (0.9, {}),
        "rate_scale": (2.0, {}),
        "engine": ("vllm-v0", {}),
        "workload": ("gamma", {"arrival_cv": 3.0}),
    }


def _derived(key: str, default: Any) -> Any:
    """A value other than ``default``, from the key's type (None: not derivable)."""
    field = Scenario.model_fields[key]
    core, _ = _unwrap(field)
    registry = field_registry(field)
    if registry is not None:
        return next(name for name in registry.names() if name != default)
    if typing.get_origin(core) is typing.Literal:
        return next(v for v in typing.get_args(core) if v != default)
    if core is bool:
        return not default
    if core is int:
        return 2 if default is None else max(1, default // 2)
    if core is float:
        return 0.5 if default in (None, 0.0) else default / 2
    return None


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files some keys name: a trace, a catalogue, a profile, carbon and PUE series."""
    folder = tmp_path_factory.mktemp("files")
    rows = "\n".join(f"{i * 0.05},{100 + 30 * i},{5 + i}" for i in range(10))
    (folder / "trace.csv").write_text("ts,num_input_tokens,num_output_tokens\n" + rows + "\n")
    # four sessions sending the same prompt twice: exact repeats, and prefixes shared across sessions
    same = [
        {
            "ts": 0.4 * i,
            "num_input_tokens": 600,
            "num_output_tokens": 8,
            "session_id": i % 4,
            "hash_ids": [1, 2],
        }
        for i in range(8)
    ]
    (folder / "ids.jsonl").write_text("".join(json.dumps(row) + "\n" for row in same))
    # five one-block prompts in turn: a cache holding two hits only if it does not evict in order
    cycle = [
        {"ts": 0.5 * i, "num_input_tokens": 512, "num_output_tokens": 4, "hash_ids": [i % 5]}
        for i in range(20)
    ]
    (folder / "cycle.jsonl").write_text("".join(json.dumps(row) + "\n" for row in cycle))
    a10 = (Path(cli.__file__).parent / "library/data/gpus.toml").read_text().split("[gpus.A10]\n")[1]
    a10 = a10.split("\n[")[0].replace("price_per_hour_usd = 0.86", "price_per_hour_usd = 9.99")
    (folder / "catalog.toml").write_text("[gpus.A10]\n" + a10 + "\n")
    (folder / "profile.toml").write_text("compute_efficiency = 0.2\nmemory_efficiency = 0.3\n")
    ms0 = 1_640_995_200_000
    hours = "\n".join(f"{ms0 + h * 3_600_000},{100 + 50 * h}" for h in range(4))
    (folder / "carbon.csv").write_text("timestamp,carbon_intensity\n" + hours + "\n")
    (folder / "pue.csv").write_text(f"timestamp,pue\n{ms0},1.3\n{ms0 + 3_600_000},1.5\n")
    return folder


def _fingerprint(folder: Path) -> dict[str, Any]:
    """What a run wrote: every file's bytes (the summary without wall-clock keys), less
    scenario.json, which records every key whether it acted or not."""
    seen: dict[str, Any] = {"folder": folder.name}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = str(path.relative_to(folder))
        if name == "scenario.json":
            continue
        if name == "summary.json":
            summary = json.loads(path.read_text())
            seen[name] = {k: v for k, v in summary.items() if k not in WALL_KEYS}
        else:
            seen[name] = path.read_bytes()
    return seen


def _run(tmp: Path, values: dict[str, Any]) -> dict[str, Any] | str:
    """Run ``kavier run`` with ``values`` as flags: its outputs, or its one-line error."""
    values = {"output_folder": str(tmp / "out"), **values}
    argv = ["run", "-q", *as_argv(values)]
    errors: list[str] = []
    with mock.patch.object(cli, "print_error", errors.append):
        result = CliRunner().invoke(cli._run_app(), argv)
    if errors:
        return str(errors[0])
    if isinstance(result.exception, KavierError):
        return str(result.exception)
    assert result.exit_code == 0, (argv, result.output, result.exception)
    return _fingerprint(Path(values["output_folder"]))


def _case(key: str, preset: str, files: Path) -> tuple[dict[str, Any], Any]:
    """The settings a key is tried under in a preset (the base workload, its needs' examples and
    what its effect needs) and the value it is changed to."""
    value, extra = _values(files).get(key, (None, {}))
    if value is None:
        value = _derived(key, PRESETS[preset].get(key, Scenario.model_fields[key].default))
    assert value is not None, f"{key}: give a value to try in _values"
    context = {**BASE, "preset": preset}
    for need in SCOPES.get(key, Scope()).needs:
        context.update(need.example)
    context.update(extra)
    if context.get("workload") == "chat":
        context.pop("num_requests", None)
        context.pop("rate", None)
        context.pop("input_tokens", None)
        context.pop("output_tokens", None)
        context.setdefault("num_sessions", 3)
    if context.get("workload") == "closed-loop":
        context.pop("rate", None)
    if context.get("trace") is None:
        context.pop("trace", None)
    if key == "trace":
        for generated in ("workload", "num_requests", "rate", "input_tokens", "output_tokens"):
            context.pop(generated, None)
    context.pop(key, None)
    return context, value


def test_every_key_of_the_scope_table_and_the_value_table_is_a_run_option(files):
    assert set(SCOPES) <= set(Scenario.model_fields)
    assert set(_values(files)) <= set(RUN_KEYS)
    assert len(RUN_KEYS) > 90  # the walk covers the generated options, not a few


@pytest.mark.parametrize("preset", PRESET_NAMES)
@pytest.mark.parametrize("key", RUN_KEYS)
def test_every_option_acts_or_is_rejected_in_one_line(key, preset, files, tmp_path, recwarn):
    context, value = _case(key, preset, files)
    if key == "output_folder":
        value = str(tmp_path / "elsewhere")
    if key == "preset":
        pytest.skip("the preset itself is what is walked over")
    scope = SCOPES.get(key, Scope())
    try:
        build_scenario(None, context)
    except ScenarioError as exc:  # the context itself does not apply to this preset
        assert preset not in scope.presets or "preset" in str(exc), exc
        context = {k: v for k, v in context.items() if k in {"preset", *BASE}}
    changed = _run(tmp_path / "b", {**context, key: value})
    if isinstance(changed, str):
        assert "\n" not in changed, changed
        flag = "--" + key.replace("_", "-")
        # rejected where the key (or this value of it) does not apply, naming the preset that takes it
        assert preset not in scope.presets or "--preset " in changed, f"{flag} {value!r} rejected: {changed}"
        assert "--preset " in changed, changed
        return
    assert preset in scope.presets, f"{key} accepted in the {preset} preset"
    # without the key the run may fail (e.g. a carbon trace too short without wrapping): a change too
    before = _run(tmp_path / "a", {**context, "output_folder": str(tmp_path / "b" / "out")})
    assert changed != before, f"--{key.replace('_', '-')} {value!r} changed nothing in the {preset} preset"
    flag = "--" + key.replace("_", "-")
    idle = [str(w.message) for w in recwarn if "changes nothing" in str(w.message)]
    assert not [m for m in idle if m.startswith(flag + " ")], idle


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"prefix_len": 512}, "--prefix-len acts only with --prefix-cache thesis"),
        ({"prefix_cache_size": 3}, "--prefix-cache-size acts only with --prefix-cache thesis"),
        ({"prefix_cache_scope": "global"}, "--prefix-cache-scope acts only with --prefix-cache thesis"),
        ({"kv_cache": False}, "--kv-cache applies to the thesis preset (--preset thesis)"),
        ({"prefix_cache_policy": "full"}, "--prefix-cache-policy applies to the thesis preset"),
        ({"preset": "thesis", "tp": 2}, "--tp applies to the serving preset (--preset serving)"),
        ({"preset": "thesis", "perf_profile": "p.toml"}, "--perf-profile applies to the serving preset"),
        (
            {"prefix_cache": "off", "cache_capacity_tokens": 10},
            "--cache-capacity-tokens acts only with --prefix-cache block",
        ),
        ({"response_cache_size": 3}, "--response-cache-size acts only with --response-cache on"),
    ],
)
def test_a_key_where_it_changes_nothing_is_a_one_line_error(values, needle):
    with pytest.raises(ScenarioError) as info:
        build_scenario(None, values)
    assert needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"preset": "thesis"},
        {"prefix_len": 1024, "prefix_cache_size": 10},  # the defaults, spelt out
        {"prefix_cache": "thesis", "prefix_len": 256},
        {"preset": "thesis", "kv_cache": False, "prefix_cache_policy": "full"},
    ],
)
def test_defaults_and_keys_where_they_act_are_accepted(values):
    build_scenario(None, values)


@pytest.mark.parametrize(
    ("values", "line"),
    [
        ({"rate": 3.0}, "--rate changes nothing without --workload poisson|gamma"),  # chat's default
        ({"cache_ttl": 5.0}, "--cache-ttl changes nothing without --cache-eviction ttl"),
        ({"power_calibration": 2.0}, "--power-calibration changes nothing without --power-model mse"),
    ],
)
def test_a_soft_need_warns_in_one_line_without_failing(values, line):
    with pytest.warns(KavierWarning) as caught:
        build_scenario(None, values)
    assert [str(w.message) for w in caught] == [line]


def test_the_help_says_where_a_key_acts():
    assert scope_note("kv_cache") == " [thesis preset only]"
    assert scope_note("prefix_len") == " [needs --prefix-cache thesis (the thesis preset's default)]"
    assert scope_note("llm") == ""
