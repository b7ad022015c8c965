"""Serving-engine settings: the preset, batching, routing and the latency targets."""

from typing import Literal

from pydantic import Field

from kavier.registry import ROUTERS, SCHEDULERS
from kavier.settings.base import Seconds, Settings, Switch, policy_name

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
    max_num_seqs: int = Field(256, ge=1, description="sequences (count) per batch")
    max_batched_tokens: int = Field(8192, ge=1, description="tokens (count) per engine iteration")
    chunked_prefill: Switch = Field(
        True, description="split long prefills over iterations (continuous scheduler)"
    )
    block_size: int = Field(16, ge=1, description="tokens per KV block (count)")
    slo_ttft: Seconds | None = Field(None, gt=0, description="time-to-first-token SLO in s, for goodput")
    slo_tpot: Seconds | None = Field(None, gt=0, description="time-per-output-token SLO in s, for goodput")
