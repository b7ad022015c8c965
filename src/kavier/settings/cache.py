"""Cache settings: the serving engine's block prefix cache, its tiers, and the response cache."""

from typing import Any, Literal

from pydantic import Field

from kavier.registry import EVICTION_POLICIES
from kavier.settings.base import Seconds, Settings, Switch, cli, policy_name

EvictionName = policy_name(EVICTION_POLICIES)


class CacheSettings(Settings):
    """Which prefix cache runs and, for the block cache, where it keeps KV blocks (scope, capacity,
    lower tiers) and what it evicts; the edge prompt-response cache; the no-cache baseline."""

    table = "cache"
    panel = "Caches"

    prefix_cache: Literal["block", "thesis", "off"] = Field(
        "block",
        description="block: hash-chained KV blocks (serving engine); thesis: the thesis's cache; off",
        json_schema_extra=cli("--prefix_cache"),
    )
    cache_eviction: EvictionName = Field("lru", description="block cache eviction policy")
    cache_ttl: Seconds = Field(
        300.0, gt=0, description="s of idle time before an entry expires (ttl eviction; or 5min)"
    )
    cache_scope: Literal["replica", "session", "global"] = Field(
        "replica",
        description="replica: each replica's KV memory; session: keys tied to the session; global: one index",
    )
    cache_capacity_tokens: int = Field(
        0, ge=0, description="tokens per GPU store (count); 0 = the free KV memory"
    )
    cache_capacity_bytes: float | None = Field(
        None, gt=0, description="bytes per GPU store (instead of tokens)"
    )
    cache_tiers: str | list[dict[str, Any]] | None = Field(
        None,
        description=(
            "tiers below GPU memory with their capacities in bytes: 'host-dram:64GiB,local-ssd:1TiB,"
            "remote:10TiB', or (in a file) tables {name, capacity, bandwidth_gbps, latency_s}"
        ),
        json_schema_extra=cli(metavar="TIER:SIZE,..."),
    )
    cache_tier_policy: Literal["inclusive", "exclusive", "write-through"] = Field(
        "inclusive", description="how blocks move between tiers"
    )
    response_cache: Switch = Field(False, description="edge prompt-response cache (exact repeats)")
    response_cache_size: int = Field(10_000, ge=1, description="response cache entries (count)")
    response_cache_latency: Seconds = Field(
        0.005, ge=0, description="s per answer from the response cache (or 5ms)"
    )
    baseline: Switch = Field(
        False,
        description="also run without caches and report the savings",
        json_schema_extra=cli(style="flag"),
    )
