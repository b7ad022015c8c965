"""Performance-model settings: which model times prefill and decode, and its free constants.

Both models share the efficiencies, the per-prefill overhead and the utilisation profile, so
they form one group rather than a thesis group and a serving group.
"""

from typing import Literal

from pydantic import Field

from kavier.settings.base import Seconds, Settings, Switch, cli


class PerformanceSettings(Settings):
    """How long prefill and decode take: the thesis's per-request roofline or the serving
    engine's batched one, their efficiencies and overheads, and the GPU utilisation profile."""

    table = "performance"
    panel = "Performance model"

    perf_model: Literal["serving", "thesis"] = Field(
        "serving", description="serving: batched roofline per iteration; thesis: the thesis's per-request one"
    )
    kv_cache: Switch = Field(
        True,
        description="thesis model: decode reads cached keys/values; off: each token recomputes them",
        json_schema_extra=cli("--kv_cache"),
    )
    compute_efficiency: float | None = Field(
        None,
        gt=0,
        le=1,
        description=(
            "achieved / peak FLOP/s (fraction); default: the engine's profile for the GPU (thesis: 0.30)"
        ),
    )
    memory_efficiency: float | None = Field(
        None,
        gt=0,
        le=1,
        description=(
            "achieved / peak memory bandwidth (fraction); default: the engine's profile for the GPU "
            "(thesis: 0.60)"
        ),
    )
    overhead_s: Seconds | None = Field(
        None,
        ge=0,
        description=(
            "s added to an iteration holding a prefill (thesis: to each request's prefill, 25ms); "
            "default: the engine's profile"
        ),
    )
    compute_saturation_tokens: float | None = Field(
        None,
        ge=0,
        description=(
            "tokens per iteration at which the dense matmuls reach half of compute_efficiency "
            "(0 = one efficiency for every shape); default: the engine's profile"
        ),
    )
    roofline_norm: float | None = Field(
        None,
        ge=0,
        description=(
            "p of the p-norm joining an iteration's compute and memory seconds, (c^p + m^p)^(1/p) "
            "(0 = max: perfect overlap); default: the engine's profile"
        ),
    )
    busy_utilization: float = Field(
        0.95, gt=0, le=1, description="GPU utilisation (fraction) while busy; activity power model's u_busy"
    )
    edge_utilization: float = Field(
        0.5, ge=0, le=1, description="thesis model: GPU utilisation (fraction) in warm-up and cool-down"
    )
    warmup_s: Seconds = Field(
        0.2, ge=0, description="thesis model: s at edge utilisation as a request begins"
    )
    cooldown_s: Seconds = Field(
        0.2, ge=0, description="thesis model: s at edge utilisation as a request ends"
    )
    iteration_overhead_s: float | None = Field(
        None, ge=0, description="s per engine iteration; default: the engine's profile"
    )
    comm_efficiency: float | None = Field(
        None,
        gt=0,
        le=1,
        description="achieved / peak interconnect bandwidth (fraction); default: the engine's profile",
    )
    decode_seq_overhead_s: float | None = Field(
        None,
        ge=0,
        description=(
            "s per decoding sequence per iteration, not divided by tp; default: the engine's profile"
        ),
    )
    prefill_seq_overhead_s: float | None = Field(
        None,
        ge=0,
        description=(
            "s per sequence with a prefill chunk in an iteration, not divided by tp; default: the "
            "engine's profile"
        ),
    )
    attention_efficiency: float | None = Field(
        None,
        ge=0,
        le=1,
        description=(
            "achieved / peak FLOP/s of attention kernels (fraction; 0 = compute_efficiency); "
            "default: the engine's profile"
        ),
    )
    comm_latency_s: float | None = Field(
        None,
        ge=0,
        description=(
            "s, latency of one all-reduce between two GPUs (a ring of tp pays tp - 1); default: the "
            "engine's profile"
        ),
    )
    comm_cache_bytes: float = Field(
        0.0,
        ge=0,
        description="bytes: all-reduce message size at which half spills from on-chip cache; 0 = no spill",
    )
    comm_spill_efficiency: float = Field(
        0.15,
        gt=0,
        le=1,
        description="achieved / peak interconnect bandwidth (fraction) of the spilled all-reduce part",
    )
    context_terms: Switch = Field(
        True, description="serving model: count attention FLOPs and KV reads that grow with context"
    )
    perf_profile: str | None = Field(
        None, description="TOML file of calibrated constants (kavier calibrate); its values replace these"
    )
