"""Serving-engine settings: the preset, batching, routing and the latency targets."""

from typing import Literal

from pydantic import Field

from kavier.registry import ENGINES, ROUTERS, SCHEDULERS
from kavier.settings.base import Seconds, Settings, Switch, policy_name

EngineName = policy_name(ENGINES)
SchedulerName = policy_name(SCHEDULERS)
RouterName = policy_name(ROUTERS)


class ServingSettings(Settings):
    """How requests are served: the preset, each replica's scheduler and batch limits, the
    router in front of the replicas, and the SLOs goodput is counted against."""

    table = "serving"
    panel = "Serving engine"

    preset: Literal["serving", "thesis"] = Field(
        "serving",
        description=(
            "serving: continuous batching, paged KV cache, batched performance model; thesis: one "
            "request at a time per GPU, the thesis's model and prefix cache. Sets scheduler, "
            "perf_model and prefix_cache unless they are given"
        ),
    )
    scheduler: SchedulerName = Field("continuous", description="how a replica forms its batches")
    router: RouterName = Field("least_outstanding", description="how requests are spread over the replicas")
    affinity_load_guard: int = Field(
        8,
        ge=0,
        description="prefix_affinity: most outstanding requests (count) above the least-loaded replica",
    )
    engine: EngineName = Field(
        "vllm-v1",
        description=(
            "the serving engine whose scheduling and calibrated timing the replicas follow "
            "(docs/engines.md); it sets max_num_seqs, max_batched_tokens and chunked_prefill "
            "unless they are given"
        ),
    )
    max_num_seqs: int | None = Field(
        None, ge=1, description="sequences (count) per batch; default: the engine's (vllm-v1: 1024 or 256)"
    )
    max_batched_tokens: int | None = Field(
        None,
        ge=1,
        description="tokens (count) per engine iteration; default: the engine's (vllm-v1: 8192 or 2048)",
    )
    chunked_prefill: Switch | None = Field(
        None, description="split long prefills over iterations; default: the engine's (vllm-v1: always on)"
    )
    max_model_len: int | None = Field(
        None,
        ge=1,
        description=(
            "tokens (count, prompt + output) a request may hold: a longer one is rejected before "
            "the engine sees it, as vLLM's server answers it 400 (summary: rejected_requests); "
            "default: none rejected"
        ),
    )
    frontend_s_per_request: Seconds | None = Field(
        None,
        ge=0,
        description=(
            "seconds the server's one request-processing thread spends on each request before the "
            "engine sees it (parsing, chat template, set-up); default: the engine's (vllm-v1: 0.5 ms)"
        ),
    )
    frontend_s_per_token: float | None = Field(
        None,
        ge=0,
        description="seconds that thread spends per prompt token (tokenizing); default: the engine's (1 us)",
    )
    block_size: int = Field(16, ge=1, description="tokens per KV block (count)")
    slo_ttft: Seconds | None = Field(None, gt=0, description="time-to-first-token SLO in s, for goodput")
    slo_tpot: Seconds | None = Field(None, gt=0, description="time-per-output-token SLO in s, for goodput")
