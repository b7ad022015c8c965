"""``kavier.scenario``: flat keys, group accessors, scenario.json order and grouping-table checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kavier.errors import ScenarioError
from kavier.registry import EVICTION_POLICIES, POWER_MODELS, ROUTERS, SCHEDULERS
from kavier.scenario import LEGACY_KEY_ORDER, Scenario, build_scenario
from kavier.settings import GROUPS, CacheSettings, SystemSettings
from tests.settings.scoping import applicable

# The default scenario's scenario.json as the flat (ungrouped) scenario model of Kavier 0.1 wrote it.
LEGACY_DEFAULT_JSON = (
    '{"name": "default", "preset": "serving", "scheduler": "continuous", "perf_model": "serving", '
    '"prefix_cache": "block", "llm": "Llama-3-8B", "gpu": "A10", "gpus": 1, "catalog": null, '
    '"gpu_memory_utilization": 0.9, "replicas": null, "router": "least_outstanding", '
    '"affinity_load_guard": 8, "max_num_seqs": 256, "max_batched_tokens": 8192, "chunked_prefill": true, '
    '"block_size": 16, "tp": 1, "pp": 1, "weight_dtype": "bf16", "kv_dtype": "bf16", '
    '"activation_reserve_gib": 1.0, "iteration_overhead_s": 0.0, "comm_efficiency": 0.7, '
    '"decode_seq_overhead_s": 0.0, "prefill_seq_overhead_s": 0.0, "attention_efficiency": 0.0, '
    '"comm_latency_s": 1e-05, "comm_cache_bytes": 0.0, "comm_spill_efficiency": 0.15, '
    '"context_terms": true, "perf_profile": null, "replica_groups": null, "slo_ttft": null, '
    '"slo_tpot": null, "concurrency": 8, "think_time_s": 0.0, "trace": null, "workload": "chat", '
    '"num_requests": 1000, "rate": 1.0, "arrival_cv": 1.0, "input_tokens": "lognormal:mean=1000,cv=0.5", '
    '"output_tokens": "lognormal:mean=250,cv=0.6", "num_sessions": 100, "session_rate": null, '
    '"rate_scale": 1.0, "seed": 0, "kv_cache": true, "compute_efficiency": 0.3, "memory_efficiency": 0.6, '
    '"overhead_s": 0.025, "busy_utilization": 0.95, "edge_utilization": 0.5, "warmup_s": 0.2, '
    '"cooldown_s": 0.2, "prefix_len": 1024, "prefix_cache_size": 10, "prefix_cache_scope": "session", '
    '"prefix_cache_policy": "prefill", "cache_eviction": "lru", "cache_ttl": 300.0, '
    '"cache_scope": "replica", "cache_capacity_tokens": 0, "cache_capacity_bytes": null, '
    '"cache_tiers": null, "cache_tier_policy": "inclusive", "response_cache": false, '
    '"response_cache_size": 10000, "response_cache_latency": 0.005, "baseline": false, '
    '"power_model": "activity", "gpu_idle_w": null, "gpu_max_w": null, "power_calibration": 1.4, '
    '"power_asym_util": 0.3, "power_memory_weight": 0.5, "pue": 1.0, "carbon_intensity": null, '
    '"region": null, "carbon_trace": null, "carbon_trace_wrap": false, "gpu_price_per_hour": null, '
    '"energy_price_per_kwh": 0.1, "token_price_per_mtok": null, "gpu_lifetime_years": 5.0, '
    '"output_folder": "kavier_output", "export_rate": 1.0, "flush_size": 10000, '
    '"start_time": "2022-01-01T00:00:00Z", "opendc": true, "plots": false}'
)


def test_a_legacy_scenario_json_reruns_with_its_values_and_key_order():
    """An output folder's scenario.json of Kavier 0.1 loads, keeps every value, and is written
    back with the legacy keys first in their old order (newer keys, e.g. ``engine``, after)."""
    legacy = json.loads(LEGACY_DEFAULT_JSON)
    dumped = Scenario(**legacy).to_json_dict()
    assert list(dumped)[: len(legacy)] == list(legacy)
    assert {k: dumped[k] for k in legacy} == legacy
    assert set(dumped) - set(legacy) >= {"engine", "compute_saturation_tokens", "power_active_floor"}


def test_groups_partition_the_scenario_keys():
    keys = [key for group in GROUPS for key in group.model_fields]
    assert len(keys) == len(set(keys))  # no key in two groups
    assert set(keys) == set(Scenario.model_fields)
    assert set(LEGACY_KEY_ORDER) <= set(keys)
    assert len({group.table for group in GROUPS}) == len(GROUPS)
    assert all(issubclass(Scenario, group) for group in GROUPS)


def test_every_group_validator_survives_in_the_scenario():
    # Validators of two groups under one attribute name would shadow each other in Scenario.
    for group in GROUPS:
        for kind in ("field_validators", "model_validators"):
            own = getattr(group.__pydantic_decorators__, kind)
            assert set(own) <= set(getattr(Scenario.__pydantic_decorators__, kind)), (group, kind)


def test_every_key_has_a_description():
    for key, field in Scenario.model_fields.items():
        assert field.description and len(field.description) > 10, key


def test_flat_attributes_and_copies_work_as_before():
    scenario = build_scenario(None, {"preset": "thesis", "gpus": 4, "kv_cache": "off"})
    assert scenario.llm == "Llama-3-8B" and scenario.gpus == 4 and scenario.kv_cache is False
    assert scenario.scheduler == "sequential" and scenario.num_replicas == 4
    plain = scenario.model_copy(update={"prefix_cache": "off"})
    assert plain.prefix_cache == "off" and scenario.prefix_cache == "thesis"
    assert Scenario(**scenario.to_json_dict()) == scenario


def test_settings_gives_one_groups_values_as_its_model():
    scenario = build_scenario(None, {"cache_eviction": "arc", "gpu": "H100-SXM", "tp": 2})
    cache = scenario.settings(CacheSettings)
    assert isinstance(cache, CacheSettings) and cache.cache_eviction == "arc"
    assert set(type(cache).model_fields) == set(CacheSettings.model_fields)
    system = scenario.settings(SystemSettings)
    assert (system.gpu, system.tp, system.num_replicas) == ("H100-SXM", 2, scenario.num_replicas)
    with pytest.raises(TypeError):
        scenario.settings(Scenario)


@pytest.mark.parametrize(
    ("key", "registry"),
    [
        ("scheduler", SCHEDULERS),
        ("router", ROUTERS),
        ("cache_eviction", EVICTION_POLICIES),
        ("power_model", POWER_MODELS),
    ],
)
def test_policy_keys_take_every_registered_name_and_only_those(key, registry):
    for name in registry.names():
        assert getattr(Scenario(**{key: name}), key) == name
    with pytest.raises(ScenarioError) as info:
        build_scenario(None, {key: "nonesuch"})
    message = str(info.value)
    assert "\n" not in message and "'nonesuch'" in message
    assert f"known: {', '.join(registry.names())}" in message


def _write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_grouping_tables_hold_their_groups_keys(tmp_path):
    path = _write(
        tmp_path,
        '[system]\ngpu = "H100-SXM"\ntp = 2\n[cache]\nprefix-cache = "thesis"\n'
        '[thesis_cache]\nprefix_len = 512\n[workload]\nworkload = "poisson"\n',
    )
    scenario = build_scenario(path)
    assert (scenario.gpu, scenario.tp, scenario.prefix_cache) == ("H100-SXM", 2, "thesis")
    assert scenario.prefix_len == 512 and scenario.workload == "poisson"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "[cache]\nprefix_len = 512\n",
            "[cache] 'prefix_len' is not a cache key (did you mean [thesis_cache] prefix_len?)",
        ),
        (
            "[cache]\ncache_evicton = 'lru'\n",
            "[cache] 'cache_evicton' is not a cache key (did you mean cache_eviction",
        ),
        ("[system]\nroutr = 'random'\n", "(did you mean [serving] router?)"),
        ("[caches]\ncache_ttl = 5\n", "[caches] is not a group of scenario keys (did you mean cache?)"),
        ("gpuz = 2\n", "key 'gpuz' is not a scenario key (did you mean gpu, gpus?)"),
    ],
)
def test_misplaced_or_misspelt_keys_give_one_line_suggestions(tmp_path, text, needle):
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        build_scenario(path)
    message = str(info.value)
    assert needle in message and str(path) in message and "\n" not in message


_seconds = st.floats(1e-3, 1e3, allow_nan=False)


SCENARIO_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "preset": st.sampled_from(["serving", "thesis"]),
        "gpus": st.integers(1, 64),
        "tp": st.sampled_from([1, 2, 4, 8]),
        "replicas": st.none() | st.integers(1, 16),
        "replica_groups": st.none() | st.just([{"count": 2, "gpu": "A10", "tp": 1}]),
        "router": st.sampled_from(ROUTERS.names()),
        "scheduler": st.sampled_from(SCHEDULERS.names()),
        "cache_eviction": st.sampled_from(EVICTION_POLICIES.names()),
        "power_model": st.sampled_from(POWER_MODELS.names()),
        "workload": st.sampled_from(["chat", "poisson", "gamma", "closed-loop"]),
        "rate_scale": st.floats(0.1, 10),
        "input_tokens": st.integers(1, 4096),
        "export_rate": _seconds,
        "slo_ttft": st.none() | _seconds,
        "think_time_s": st.sampled_from(["500ms", "2s", 0.25]),
        "kv_cache": st.sampled_from([True, False, "on", "off"]),
        "token_price_per_mtok": st.none() | st.tuples(st.floats(0, 100), st.floats(0, 100)),
        "pue": st.floats(1, 3) | st.just("pue_series.csv"),
        "cache_tiers": st.none() | st.just("host-dram:64GiB,local-ssd:1TiB"),
        "start_time": st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
        ),
        "seed": st.integers(0, 2**31),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SCENARIO_VALUES)
def test_scenario_json_round_trips(values):
    assume(not (values.get("workload") == "closed-loop" and values.get("rate_scale", 1.0) != 1.0))
    scenario = build_scenario(None, applicable(values))
    written = scenario.to_json_dict()
    assert tuple(written) == Scenario.json_key_order()
    assert tuple(written)[: len(LEGACY_KEY_ORDER)] == LEGACY_KEY_ORDER
    text = json.dumps(written)
    again = Scenario(**json.loads(text))
    assert again == scenario
    assert json.dumps(again.to_json_dict()) == text
