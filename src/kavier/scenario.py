"""What to simulate: the scenario model, presets, and loading from TOML, YAML or JSON files.

The scenario's keys are declared in groups (:mod:`kavier.settings`: system, workload, serving,
performance model, caches, thesis cache, energy, cost, outputs), and :class:`Scenario` inherits
them all, so its keys stay flat: every key is also a CLI flag (``prefix_len`` <->
``--prefix-len``) and a sweep axis. A scenario file may hold keys at the top level or in their
group's table (``[cache]``). Values are SI (seconds, tokens, requests/s); ``start_time`` is an
ISO-8601 instant. Resolution order: preset defaults < scenario file < command-line flags.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

from pydantic import ConfigDict, ValidationError, model_validator

from kavier.errors import ScenarioError, shown
from kavier.settings import (
    GROUPS,
    CacheSettings,
    CostSettings,
    EnergySettings,
    OutputSettings,
    PerformanceSettings,
    ServingSettings,
    Settings,
    SystemSettings,
    ThesisCacheSettings,
    WorkloadSettings,
)
from kavier.settings.base import DURATION_UNITS, option_flag, parse_duration
from kavier.settings.presets import DEFAULT_PRESET, PRESETS

__all__ = ["DURATION_UNITS", "Scenario", "build_scenario", "parse_duration", "read_mapping"]


# The order of the keys in scenario.json: the declaration order of the scenario from before its
# keys were grouped, kept so that every scenario.json stays byte-identical. Keys added since
# follow, group by group (see Scenario.json_key_order).
LEGACY_KEY_ORDER: tuple[str, ...] = (
    "name",
    "preset",
    "scheduler",
    "perf_model",
    "prefix_cache",
    "llm",
    "gpu",
    "gpus",
    "catalog",
    "gpu_memory_utilization",
    "replicas",
    "router",
    "affinity_load_guard",
    "max_num_seqs",
    "max_batched_tokens",
    "chunked_prefill",
    "block_size",
    "tp",
    "pp",
    "weight_dtype",
    "kv_dtype",
    "activation_reserve_gib",
    "iteration_overhead_s",
    "comm_efficiency",
    "decode_seq_overhead_s",
    "prefill_seq_overhead_s",
    "attention_efficiency",
    "comm_latency_s",
    "comm_cache_bytes",
    "comm_spill_efficiency",
    "context_terms",
    "perf_profile",
    "replica_groups",
    "slo_ttft",
    "slo_tpot",
    "concurrency",
    "think_time_s",
    "trace",
    "workload",
    "num_requests",
    "rate",
    "arrival_cv",
    "input_tokens",
    "output_tokens",
    "num_sessions",
    "session_rate",
    "rate_scale",
    "seed",
    "kv_cache",
    "compute_efficiency",
    "memory_efficiency",
    "overhead_s",
    "busy_utilization",
    "edge_utilization",
    "warmup_s",
    "cooldown_s",
    "prefix_len",
    "prefix_cache_size",
    "prefix_cache_scope",
    "prefix_cache_policy",
    "cache_eviction",
    "cache_ttl",
    "cache_scope",
    "cache_capacity_tokens",
    "cache_capacity_bytes",
    "cache_tiers",
    "cache_tier_policy",
    "response_cache",
    "response_cache_size",
    "response_cache_latency",
    "baseline",
    "power_model",
    "gpu_idle_w",
    "gpu_max_w",
    "power_calibration",
    "power_asym_util",
    "power_memory_weight",
    "pue",
    "carbon_intensity",
    "region",
    "carbon_trace",
    "carbon_trace_wrap",
    "gpu_price_per_hour",
    "energy_price_per_kwh",
    "token_price_per_mtok",
    "gpu_lifetime_years",
    "output_folder",
    "export_rate",
    "flush_size",
    "start_time",
    "opendc",
    "plots",
)

GroupT = TypeVar("GroupT", bound=Settings)


class Scenario(
    SystemSettings,
    WorkloadSettings,
    ServingSettings,
    PerformanceSettings,
    CacheSettings,
    ThesisCacheSettings,
    EnergySettings,
    CostSettings,
    OutputSettings,
):
    """A fully described simulation: system, workload, serving engine, performance model,
    caches, energy, cost and outputs; one flat model holding every group's keys."""

    # The schema (~50 ms to build) is built on the first validation, so that reading the
    # fields (the command line's options) does not pay for it.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)

    table: ClassVar[str] = ""
    panel: ClassVar[str] = ""

    @model_validator(mode="after")
    def _acts_where_set(self) -> Self:
        # every key set away from its default must act in this preset (kavier.settings.scope)
        from kavier.errors import warn
        from kavier.settings.scope import backend_preset, scope_error, scope_warnings, value_error
        from kavier.settings.system import layout_error

        message = value_error(self) or scope_error(self)
        if message is None and backend_preset(self) == "serving":
            message = layout_error(self)
        if message:
            raise ValueError(message)
        for line in scope_warnings(self):
            warn(line)
        return self

    def settings(self, group: type[GroupT]) -> GroupT:
        """One group's values as that group's model: ``scenario.settings(CacheSettings)``."""
        if group not in GROUPS:
            raise TypeError(f"{group!r} is not a group of the scenario; groups: {_names(GROUPS)}")
        return group.model_construct(**{key: getattr(self, key) for key in group.model_fields})

    def with_values(self, values: Mapping[str, Any]) -> Scenario:
        """A copy with ``values`` replacing keys, validated like a new scenario (one-line errors
        naming the keys): unlike ``model_copy(update=...)``, which checks nothing."""
        try:
            return Scenario(**{**self.model_dump(), **values})
        except ValidationError as exc:
            raise ScenarioError(_one_line(exc, "scenario", set(values))) from exc

    @classmethod
    def json_key_order(cls) -> tuple[str, ...]:
        """The order of keys in :meth:`to_json_dict`: the legacy keys, then newer ones by group."""
        return _json_key_order()

    def to_json_dict(self) -> dict[str, Any]:
        """The scenario as plain JSON values, enough to rerun it exactly (keys in
        :meth:`json_key_order`)."""
        values = json.loads(self.model_dump_json())
        return {key: _absolute_file(key, values[key]) for key in _json_key_order()}


# Keys whose value may name a file; stored absolute in scenario.json (when the file exists) so that
# ``kavier run OUT/scenario.json`` works from any folder.
FILE_KEYS = ("trace", "catalog", "perf_profile", "carbon_trace", "llm")


def _absolute_file(key: str, value: Any) -> Any:
    """``value`` as an absolute path when ``key`` names a file and ``value`` is an existing
    relative path; else ``value`` unchanged."""
    if key not in FILE_KEYS or not isinstance(value, str) or not value or Path(value).is_absolute():
        return value
    path = Path(value)
    return str(path.absolute()) if path.exists() else value


@cache
def _json_key_order() -> tuple[str, ...]:
    newer = [key for group in GROUPS for key in group.model_fields if key not in LEGACY_KEY_ORDER]
    return LEGACY_KEY_ORDER + tuple(newer)


def _names(groups: tuple[type[Settings], ...]) -> str:
    return ", ".join(group.__name__ for group in groups)


GROUP_TABLES: dict[str, type[Settings]] = {group.table: group for group in GROUPS}
"""Grouping table name (``cache``) -> the group whose keys it may hold."""

KEY_TABLES: dict[str, str] = {key: group.table for group in GROUPS for key in group.model_fields}
"""Scenario key -> the name of its group's table."""


def did_you_mean(key: str, candidates: Any = None) -> str:
    """`` (did you mean a, b?)`` for the candidates (default: scenario keys) close to ``key``."""
    pool = list(KEY_TABLES if candidates is None else candidates)
    close = difflib.get_close_matches(key, pool, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def unknown_key(source: str, key: str, where: str = "key") -> ScenarioError:
    """The one-line error for a name that is not a scenario key, with the close ones."""
    return ScenarioError(
        f"{source}: {where} {key!r} is not a scenario key{did_you_mean(key)}; see kavier run --help"
    )


def _key(name: Any) -> str:
    return str(name).replace("-", "_")


def flatten_group_table(source: str, table: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a grouping table (``[cache]``); each must belong to that table's group."""
    group = GROUP_TABLES.get(_key(table))
    if group is None:
        tables = ", ".join(GROUP_TABLES)
        hint = did_you_mean(_key(table), GROUP_TABLES)
        raise ScenarioError(f"{source}: [{table}] is not a group of scenario keys{hint}; groups: {tables}")
    flat: dict[str, Any] = {}
    for raw, value in values.items():
        key = _key(raw)
        if key not in group.model_fields:
            raise _misplaced(source, group, key)
        flat[key] = value
    return flat


def _misplaced(source: str, group: type[Settings], key: str) -> ScenarioError:
    """A key in a table of the wrong group (named with its own table), or an unknown one."""
    if key in KEY_TABLES:
        hint = f" (did you mean [{KEY_TABLES[key]}] {key}?)"
    else:
        hint = did_you_mean(key, group.model_fields)
        if not hint:
            close = difflib.get_close_matches(key, list(KEY_TABLES), n=3, cutoff=0.6)
            shown = ", ".join(f"[{KEY_TABLES[c]}] {c}" for c in close)
            hint = f" (did you mean {shown}?)" if close else ""
    return ScenarioError(f"{source}: [{group.table}] {key!r} is not a {group.table} key{hint}")


def flatten_scenario_mapping(source: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Scenario keys from a file's table: top-level keys, and grouping tables flattened one level
    (one-line errors for an unknown key or table, or a key in the wrong group's table)."""
    flat: dict[str, Any] = {}
    for raw, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten_group_table(source, str(raw), value))
            continue
        key = _key(raw)
        if key not in KEY_TABLES:
            raise unknown_key(source, key)
        flat[key] = value
    return flat


def read_mapping(path: Path, what: str = "scenario file") -> dict[str, Any]:
    """Read a TOML, YAML or JSON file holding a table of keys (one-line errors naming ``what``)."""
    if not path.is_file():
        raise ScenarioError(f"{what} {path} does not exist")
    suffix = path.suffix.lower()
    errors: tuple[type[Exception], ...] = (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeError)
    try:
        text = path.read_text(encoding="utf-8")
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix in {".yaml", ".yml"}:
            import yaml  # only for YAML files: ~10 ms to import

            errors += (yaml.YAMLError,)
            data = yaml.safe_load(text) or {}
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ScenarioError(f"{what} {path}: use .toml, .yaml/.yml or .json")
    except errors as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ScenarioError(f"{what} {path} is not valid {suffix[1:]}: {first}") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{what} {path} must hold a table of keys")
    return data


def _read_file(path: Path) -> dict[str, Any]:
    """Read a TOML, YAML or JSON scenario file into a flat dict (one-line errors)."""
    flat = flatten_scenario_mapping(str(path), read_mapping(path))
    # Relative paths in a file are relative to the file.
    for key in FILE_KEYS:
        if isinstance(flat.get(key), str) and not Path(flat[key]).is_absolute():
            candidate = path.parent / flat[key]
            if candidate.exists():
                flat[key] = str(candidate)
    return flat


def build_scenario(file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Scenario:
    """Resolve a scenario: preset defaults, then the file's keys, then ``overrides``."""
    values: dict[str, Any] = {}
    source = "scenario"
    if file is not None:
        values.update(_read_file(Path(file)))
        source = str(file)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    preset = values.get("preset", DEFAULT_PRESET)
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ScenarioError(f"{source}: unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    merged = {**PRESETS[preset], **values}
    try:
        return Scenario(**merged)
    except ValidationError as exc:
        flags = {k for k, v in (overrides or {}).items() if v is not None}
        raise ScenarioError(_one_line(exc, source, flags)) from exc


def _one_line(exc: ValidationError, source: str, flags: set[str]) -> str:
    """Condense a pydantic error into one line naming the field (or flag) and what is allowed."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err.get("loc", ())) or "?"
    msg = err.get("msg", "invalid value").removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        return str(unknown_key(source, field))
    value = err.get("input")
    if not err.get("loc"):  # a check across fields (model validator): its message says it all
        return msg if source == "scenario" else f"{source}: {msg}"
    if field in flags:
        return f"{option_flag(field, Scenario.model_fields[field])} {shown(value)}: {msg}"
    return f"{source}: {field} = {value!r}: {msg}"
