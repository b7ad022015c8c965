"""What to simulate: the scenario model, presets, and loading from TOML, YAML or JSON files.

A scenario is flat: every key is also a CLI flag (``prefix_len`` <-> ``--prefix-len``) and a
sweep axis. Values are SI (seconds, tokens, requests/s); ``start_time`` is an ISO-8601 instant.
Resolution order: preset defaults < scenario file < command-line flags.
"""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kavier.errors import ScenarioError

PRESETS: dict[str, dict[str, Any]] = {
    # Real serving: continuous batching with a paged KV cache on each replica, the batched
    # roofline performance model, many replicas behind a router.
    "serving": {
        "scheduler": "continuous",
        "perf_model": "serving",
        "prefix_cache": "block",
    },
    # The thesis prototype: one request at a time per GPU, thesis roofline model, thesis
    # prefix cache (exact match on the first prefix_len tokens, capacity in prompts, LRU).
    "thesis": {
        "scheduler": "sequential",
        "perf_model": "thesis",
        "prefix_cache": "thesis",
    },
}
DEFAULT_PRESET = "serving"


DURATION_UNITS = {"ms": 1e-3, "s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> Any:
    """Seconds from a number or a string with a unit (``0.1``, ``"100ms"``, ``"5 min"``)."""
    if isinstance(value, str):
        text = value.strip().lower()
        for unit in sorted(DURATION_UNITS, key=len, reverse=True):
            if text.endswith(unit):
                number = text[: -len(unit)].strip()
                try:
                    return float(number) * DURATION_UNITS[unit]
                except ValueError:
                    break
        try:
            return float(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a duration; give seconds (0.1) or a unit: ms, s, min, h"
            ) from None
    return value


def _on_off(value: Any) -> Any:
    """Accept on/off, true/false, yes/no and 1/0 for boolean switches."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"on", "true", "yes", "1"}:
            return True
        if lowered in {"off", "false", "no", "0"}:
            return False
    return value


class Scenario(BaseModel):
    """A fully described simulation: system, workload, models, caches and outputs."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = "default"
    preset: Literal["serving", "thesis"] = DEFAULT_PRESET
    scheduler: Literal["continuous", "static", "sequential"] = "continuous"
    perf_model: Literal["serving", "thesis"] = "serving"
    prefix_cache: Literal["block", "thesis", "off"] = "block"

    # System.
    llm: str = "Llama-3-8B"
    gpu: str = "A10"
    gpus: int = Field(1, ge=1, description="independent GPUs, each one request at a time")
    catalog: str | None = Field(None, description="user TOML catalogue adding models/GPUs")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)

    # Serving engine (preset serving).
    replicas: int | None = Field(None, ge=1, description="model replicas; default gpus / (tp x pp)")
    router: Literal[
        "round_robin", "random", "least_outstanding", "least_kv", "session_affinity", "prefix_affinity"
    ] = "least_outstanding"
    affinity_load_guard: int = Field(8, ge=0, description="prefix_affinity: max extra outstanding requests")
    max_num_seqs: int = Field(256, ge=1)
    max_batched_tokens: int = Field(8192, ge=1)
    chunked_prefill: bool = True
    block_size: int = Field(16, ge=1, description="tokens per KV block")
    tp: int = Field(1, ge=1, description="tensor-parallel GPUs per replica")
    pp: int = Field(1, ge=1, description="pipeline stages per replica")
    weight_dtype: Literal["bf16", "fp16", "fp8", "int8", "int4"] = "bf16"
    kv_dtype: Literal["bf16", "fp16", "fp8", "int8"] = "bf16"
    activation_reserve_gib: float = Field(1.0, ge=0, description="GiB per GPU kept for activations")
    iteration_overhead_s: float = Field(0.0, ge=0, description="s per engine iteration")
    comm_efficiency: float = Field(0.7, gt=0, le=1, description="achieved / peak interconnect bandwidth")
    # More serving-model constants (kavier.perf.serving.ServingPerfParams; same defaults; a
    # perf_profile's values replace them).
    decode_seq_overhead_s: float = Field(
        0.0, ge=0, description="s per decoding sequence per iteration, not divided by tp"
    )
    prefill_seq_overhead_s: float = Field(
        0.0, ge=0, description="s per sequence with a prefill chunk in an iteration, not divided by tp"
    )
    attention_efficiency: float = Field(
        0.0, ge=0, le=1, description="achieved / peak FLOP/s of attention kernels; 0 = compute_efficiency"
    )
    comm_latency_s: float = Field(
        10e-6, ge=0, description="s, latency of one all-reduce between two GPUs (a ring of tp pays tp - 1)"
    )
    comm_cache_bytes: float = Field(
        0.0,
        ge=0,
        description="bytes: all-reduce message size at which half spills from on-chip cache; 0 = no spill",
    )
    comm_spill_efficiency: float = Field(
        0.15, gt=0, le=1, description="achieved / peak interconnect bandwidth of the spilled all-reduce part"
    )
    context_terms: bool = Field(True, description="attention FLOPs and KV reads in the serving model")
    perf_profile: str | None = Field(None, description="calibrated constants (kavier calibrate)")
    replica_groups: list[dict[str, Any]] | None = Field(
        None, description="heterogeneous replicas: [{count, gpu, llm, tp, pp, weight_dtype}, ...]"
    )
    slo_ttft: float | None = Field(None, gt=0, description="s, for goodput")
    slo_tpot: float | None = Field(None, gt=0, description="s, for goodput")
    concurrency: int = Field(8, ge=1, description="closed-loop clients")
    think_time_s: float = Field(0.0, ge=0, description="closed-loop think time between requests")

    # Workload: a trace file, or a generator.
    trace: str | None = None
    workload: Literal["chat", "poisson", "gamma", "closed-loop"] = "chat"
    num_requests: int = Field(1000, ge=1)
    rate: float = Field(1.0, gt=0, description="requests/s for poisson/gamma")
    arrival_cv: float = Field(1.0, gt=0, description="coefficient of variation for gamma")
    input_tokens: str = "lognormal:mean=1000,cv=0.5"
    output_tokens: str = "lognormal:mean=250,cv=0.6"
    num_sessions: int = Field(100, ge=1)
    session_rate: float | None = Field(None, gt=0, description="new chat sessions per second")
    rate_scale: float = Field(
        1.0,
        gt=0,
        description=(
            "multiplier on the arrival rate: trace inter-arrival times are divided by it; "
            "generators' rate and session_rate multiplied by it (not for closed-loop)"
        ),
    )
    seed: int = 0

    # Thesis performance model (DESIGN.md).
    kv_cache: bool = True
    compute_efficiency: float = Field(0.30, gt=0, le=1)
    memory_efficiency: float = Field(0.60, gt=0, le=1)
    overhead_s: float = Field(0.025, ge=0)
    busy_utilization: float = Field(0.95, ge=0, le=1)
    edge_utilization: float = Field(0.5, ge=0, le=1)
    warmup_s: float = Field(0.2, ge=0)
    cooldown_s: float = Field(0.2, ge=0)

    # Thesis prefix cache.
    prefix_len: int = Field(1024, ge=0, description="tokens that must match; 0 disables")
    prefix_cache_size: int = Field(10, ge=1, description="capacity in prompts")
    prefix_cache_scope: Literal["session", "global"] = "session"
    prefix_cache_policy: Literal["prefill", "full"] = "prefill"

    # Block prefix cache (serving engine) and the edge prompt-response cache.
    cache_eviction: Literal["lru", "lfu", "fifo", "random", "ttl", "arc"] = "lru"
    cache_ttl: float = Field(300.0, gt=0, description="s of idle time before an entry expires (ttl)")
    cache_scope: Literal["replica", "session", "global"] = "replica"
    cache_capacity_tokens: int = Field(0, ge=0, description="tokens per GPU store; 0 = free KV memory")
    cache_capacity_bytes: float | None = Field(
        None, gt=0, description="bytes per GPU store (instead of tokens)"
    )
    cache_tiers: str | list[dict[str, Any]] | None = Field(
        None, description="lower tiers: 'host-dram:64GiB,local-ssd:1TiB,remote:10TiB' or tables"
    )
    cache_tier_policy: Literal["inclusive", "exclusive", "write-through"] = "inclusive"
    response_cache: bool = Field(False, description="edge prompt-response cache (exact repeats)")
    response_cache_size: int = Field(10_000, ge=1, description="entries")
    response_cache_latency: float = Field(0.005, ge=0, description="s per answer from the cache")
    baseline: bool = Field(False, description="also run without caches and report the savings")

    # Power, energy and carbon.
    power_model: Literal[
        "activity", "constant", "linear", "square", "cubic", "sqrt", "mse", "asymptotic", "asymptotic-dvfs"
    ] = "activity"
    gpu_idle_w: float | None = Field(None, ge=0, description="W; default from the library")
    gpu_max_w: float | None = Field(None, gt=0, description="W; default from the library")
    power_calibration: float = Field(1.4, gt=0, description="mse exponent r")
    power_asym_util: float = Field(0.3, gt=0, description="asymptotic models' a")
    power_memory_weight: float = Field(0.5, ge=0, description="activity model's memory weight")
    pue: float | str = Field(1.0, description="power usage effectiveness, or a series file")
    carbon_intensity: float | None = Field(None, ge=0, description="gCO2/kWh, constant")
    region: str | None = Field(None, description="grid region for an annual-average intensity")
    carbon_trace: str | None = Field(None, description="OpenDC carbon trace (parquet/CSV)")
    carbon_trace_wrap: bool = False

    # Cost and embodied carbon.
    gpu_price_per_hour: float | None = Field(None, ge=0, description="US$/GPU-hour; library default")
    energy_price_per_kwh: float = Field(0.10, ge=0, description="US$/kWh of facility energy")
    token_price_per_mtok: tuple[float, float] | None = Field(
        None, description="US$ per million input and output tokens (revenue view)"
    )
    gpu_lifetime_years: float = Field(5.0, gt=0)

    # Outputs.
    output_folder: str = "kavier_output"
    export_rate: float = Field(1.0, gt=0, description="seconds per timeseries interval/fragment")
    flush_size: int = Field(10_000, ge=1, description="requests per streamed chunk")
    start_time: datetime = datetime(2022, 1, 1, tzinfo=UTC)
    opendc: bool = True
    plots: bool = False

    _on_off = field_validator(
        "kv_cache",
        "opendc",
        "plots",
        "carbon_trace_wrap",
        "chunked_prefill",
        "context_terms",
        "response_cache",
        "baseline",
        mode="before",
    )(_on_off)
    _durations = field_validator(
        "export_rate",
        "overhead_s",
        "warmup_s",
        "cooldown_s",
        "cache_ttl",
        "response_cache_latency",
        mode="before",
    )(parse_duration)

    @field_validator("input_tokens", "output_tokens", mode="before")
    @classmethod
    def _fixed_length(cls, value: Any) -> Any:
        """A plain number of tokens (``output_tokens = 200`` in TOML) is the fixed-length spec."""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("token_price_per_mtok", mode="before")
    @classmethod
    def _price_pair(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p for p in value.replace(";", ",").split(",") if p.strip()]
            if len(parts) == 1:
                parts = parts * 2
            try:
                return tuple(float(p) for p in parts)
            except ValueError:
                raise ValueError(f"{value!r}: give 'input,output' US$ per million tokens") from None
        return value

    @field_validator("pue", mode="before")
    @classmethod
    def _pue(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return value  # a path to a PUE series
        if isinstance(value, int | float) and value < 1.0:
            raise ValueError(f"{value}: PUE is facility energy / IT energy, so >= 1.0")
        return value

    @field_validator("start_time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @model_validator(mode="after")
    def _rate_scale_needs_arrivals(self) -> Scenario:
        # A closed-loop workload has no arrival rate: its load is set by concurrency and
        # think time, so a rate multiplier would silently do nothing.
        if self.rate_scale != 1.0 and self.workload == "closed-loop" and not self.trace:
            raise ValueError(
                f"rate_scale {self.rate_scale:g} needs arrivals (a trace or a poisson/gamma/chat "
                "generator); a closed-loop workload's load is set by concurrency and think_time_s"
            )
        return self

    @property
    def num_replicas(self) -> int:
        """Replicas of the serving engine (groups add up)."""
        if self.replica_groups:
            return sum(int(g.get("count", 1)) for g in self.replica_groups)
        if self.replicas is not None:
            return self.replicas
        return max(1, self.gpus // (self.tp * self.pp))

    def to_json_dict(self) -> dict[str, Any]:
        """The scenario as plain JSON values, enough to rerun it exactly."""
        return json.loads(self.model_dump_json())


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
    data = read_mapping(path)
    # Allow grouping tables ([workload], [cache] ...) by flattening one level.
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update({k.replace("-", "_"): v for k, v in value.items()})
        else:
            flat[key.replace("-", "_")] = value
    # Relative paths in a file are relative to the file.
    for key in ("trace", "catalog"):
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
    if preset not in PRESETS:
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
        known = ", ".join(sorted(Scenario.model_fields))
        return f"{source}: unknown key {field!r}; known keys: {known}"
    value = err.get("input")
    if not err.get("loc"):  # a check across fields (model validator): its message says it all
        return f"{source}: {msg}"
    if field in flags:
        return f"--{field.replace('_', '-')} {value}: {msg}"
    return f"{source}: {field} = {value!r}: {msg}"
