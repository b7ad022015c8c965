"""The block prefix cache of a serving cluster: GPU stores, lower tiers, and their decisions.

Scopes (``--cache-scope``):

- ``replica`` (default): each replica caches units in its own KV memory, as vLLM's automatic
  prefix caching does; cached blocks are shared by the requests that hit them and freed (evicted)
  when the replica needs memory.
- ``session``: the same, with keys tied to the session (no sharing across sessions).
- ``global``: one idealised cluster-wide index that holds no replica memory (an upper bound on
  what a perfect shared KV store could give; a hit still allocates the request's blocks).

Tiers below GPU memory (``host-dram``, ``local-ssd`` per replica, ``remote`` shared by the
cluster) hold units demoted from the level above. A lookup first matches the GPU store, then keeps
walking the unit chain through the lower tiers; the lower-tier part is loaded only when its
transfer (per tier used: latency + bytes / bandwidth) is faster than recomputing those tokens
with the replica's performance model, and the transfer time is added to the iteration that
starts the request's prefill (the batch waits for the load, as a synchronous KV connector does).

Tier policies (``--cache-tier-policy``): ``inclusive`` (default; eviction demotes a unit one tier
down, a hit copies it up and the lower copy stays), ``exclusive`` (a hit moves the unit up: the
lower copy is dropped), ``write-through`` (every unit computed is written to every lower tier at
once; eviction then drops it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from kavier.cache.block_store import BlockStore, Entry
from kavier.cache.keys import PrefixIds
from kavier.errors import ScenarioError

TIER_NAMES = ("host-dram", "local-ssd", "remote")
# Defaults per tier: (bandwidth B/s, latency s). Host DRAM over PCIe 5 x16 (~50 GB/s nominal, ~25
# achieved); a datacenter NVMe SSD (~6 GB/s); a remote store over one 100 Gb/s RDMA NIC.
TIER_DEFAULTS: dict[str, tuple[float, float]] = {
    "host-dram": (25e9, 10e-6),
    "local-ssd": (6e9, 100e-6),
    "remote": (12.5e9, 1e-3),
}
TIER_POLICIES = ("inclusive", "exclusive", "write-through")
_SIZE_UNITS = {"tib": 2**40, "gib": 2**30, "mib": 2**20, "tb": 1e12, "gb": 1e9, "mb": 1e6, "b": 1}


@dataclass
class TierSpec:
    """A cache tier below GPU memory (capacity in bytes, bandwidth in B/s, latency in s)."""

    name: str
    capacity_bytes: float
    bandwidth: float
    latency_s: float


def parse_size(text: Any, what: str) -> float:
    """Bytes from a number or a string with a unit (``64GiB``, ``1.5TB``)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    s = str(text).strip().lower().replace(" ", "")
    for unit in sorted(_SIZE_UNITS, key=len, reverse=True):
        if s.endswith(unit):
            try:
                return float(s[: -len(unit)]) * _SIZE_UNITS[unit]
            except ValueError:
                break
    try:
        return float(s)
    except ValueError:
        raise ScenarioError(f"{what}: {text!r} is not a size; write e.g. 64GiB, 1TB or bytes") from None


def parse_tiers(value: Any) -> list[TierSpec]:
    """Tiers from ``"host-dram:64GiB,local-ssd:1TiB"`` or a list of tables
    (``name``, ``capacity`` (size), ``bandwidth_gbps`` (GB/s), ``latency_s``)."""
    if value is None or value == "" or value == []:
        return []
    items: list[dict[str, Any]] = []
    if isinstance(value, str):
        for part in value.split(","):
            if not part.strip():
                continue
            name, _, cap = part.partition(":")
            items.append({"name": name.strip(), "capacity": cap.strip() or None})
    elif isinstance(value, list):
        items = [dict(v) for v in value]
    else:
        raise ScenarioError("cache_tiers: give 'host-dram:64GiB,local-ssd:1TiB' or a list of tables")
    tiers: list[TierSpec] = []
    for item in items:
        name = str(item.get("name", "")).strip()
        if name not in TIER_NAMES:
            raise ScenarioError(f"cache_tiers: unknown tier {name!r}; choose from {', '.join(TIER_NAMES)}")
        unknown = set(item) - {"name", "capacity", "bandwidth_gbps", "latency_s"}
        if unknown:
            raise ScenarioError(f"cache_tiers[{name}]: unknown keys {sorted(unknown)}")
        if item.get("capacity") is None:
            raise ScenarioError(f"cache_tiers[{name}]: give a capacity, e.g. {name}:64GiB")
        bw, lat = TIER_DEFAULTS[name]
        bw = float(item.get("bandwidth_gbps", bw / 1e9)) * 1e9
        lat = float(item.get("latency_s", lat))
        cap = parse_size(item["capacity"], f"cache_tiers[{name}].capacity")
        if cap <= 0 or bw <= 0 or lat < 0 or not math.isfinite(cap + bw + lat):
            raise ScenarioError(f"cache_tiers[{name}]: capacity and bandwidth must be > 0, latency >= 0")
        tiers.append(TierSpec(name, cap, bw, lat))
    order = [TIER_NAMES.index(t.name) for t in tiers]
    if order != sorted(order) or len(set(order)) != len(order):
        raise ScenarioError("cache_tiers: list each tier once, fastest first (host-dram, local-ssd, remote)")
    return tiers


@dataclass
class CacheStats:
    """Cluster-wide counters (tokens, bytes, seconds)."""

    lookups: int = 0
    hit_requests: int = 0
    lookup_tokens: int = 0
    hit_tokens: dict[str, int] = field(default_factory=lambda: {"gpu": 0, **{t: 0 for t in TIER_NAMES}})
    bytes_loaded: float = 0.0
    bytes_offloaded: float = 0.0
    load_s: float = 0.0
    loads_declined: int = 0


@dataclass(slots=True)
class Admission:
    """What a lookup gave one request."""

    pinned_blocks: int  # GPU blocks that stopped being evictable
    cached: int  # prompt tokens not recomputed (GPU hits + loads)
    shared_blocks: int  # blocks the request borrows from the GPU store
    load_s: float  # transfer time from lower tiers


class PrefixCacheSystem:
    """GPU stores (per replica, or one global index), lower tiers, stats and the decisions."""

    def __init__(
        self,
        replicas: int,
        kv_bytes_per_token: list[float],
        block_size: int,
        scope: str = "replica",
        policy: str = "lru",
        capacity_tokens: int = 0,
        ttl_s: float | None = None,
        tiers: list[TierSpec] | None = None,
        tier_policy: str = "inclusive",
        seed: int = 0,
    ) -> None:
        self.scope = scope
        self.in_gpu = scope != "global"
        self.bs = block_size
        self.kvbpt = kv_bytes_per_token
        self.tier_policy = tier_policy
        self.stats = CacheStats()
        self.tiers = tiers or []
        demote = bool(self.tiers) and tier_policy != "write-through"
        if self.in_gpu:
            self.gpu = [
                BlockStore(
                    policy, capacity_tokens, ttl_s, seed + i, partial(self._demote, i, 0) if demote else None
                )
                for i in range(replicas)
            ]
        else:
            on_evict = partial(self._demote, 0, 0) if demote else None
            shared = BlockStore(policy, capacity_tokens, ttl_s, seed, on_evict)
            self.gpu = [shared] * replicas
        kv_min = min(kv_bytes_per_token)
        remote: BlockStore | None = None
        self.lower: list[list[tuple[TierSpec, BlockStore]]] = []
        for i in range(replicas):
            levels: list[tuple[TierSpec, BlockStore]] = []
            for level, spec in enumerate(self.tiers, start=1):
                cap_tokens = max(1, int(spec.capacity_bytes // kv_min))
                if spec.name == "remote":
                    if remote is None:
                        remote = BlockStore("lru", cap_tokens, None, seed, partial(self._demote, i, level))
                    store = remote
                elif self.in_gpu:
                    store = BlockStore("lru", cap_tokens, None, seed, partial(self._demote, i, level))
                elif i == 0:
                    store = BlockStore("lru", cap_tokens, None, seed, partial(self._demote, 0, level))
                else:
                    store = self.lower[0][level - 1][1]
                levels.append((spec, store))
            self.lower.append(levels)

    # -- tiers ---------------------------------------------------------------------------------

    def _demote(self, replica: int, level: int, key: Any, entry: Entry) -> None:
        """An entry evicted from ``level`` (0 = GPU) goes one tier down (inclusive/exclusive)."""
        if self.tier_policy == "write-through":
            return
        levels = self.lower[replica]
        if level < len(levels):
            _, store = levels[level]
            if key not in store and store.insert(key, entry.tokens, 0, entry.last_use, pinned=False):
                self.stats.bytes_offloaded += entry.tokens * self.kvbpt[replica]

    def _write_through(self, replica: int, key: Any, tokens: int, now: float) -> None:
        for _, store in self.lower[replica]:
            if key in store:
                store.touch(key, now)
            elif store.insert(key, tokens, 0, now, pinned=False):
                self.stats.bytes_offloaded += tokens * self.kvbpt[replica]

    # -- routers --------------------------------------------------------------------------------

    def cached_units(self, replica: int, ids: PrefixIds | None) -> int:
        """Leading units of ``ids`` in the replica's GPU store (no side effects)."""
        if ids is None or not ids.keys:
            return 0
        return self.gpu[replica].peek(ids.keys)

    # -- a request's life -------------------------------------------------------------------------

    def admit(self, replica: int, seq: Any, prompt_len: int, now: float, perf: Any, first: bool) -> Admission:
        """Look a request up when it is admitted; pin its GPU hits and decide on loads.

        ``seq.held`` receives the pinned keys. ``first`` is False for a re-admission after
        preemption (not counted again in the statistics).
        """
        ids: PrefixIds | None = seq.ids
        stats = self.stats
        if first:
            stats.lookups += 1
            stats.lookup_tokens += seq.n_in
        if ids is None or not ids.keys:
            return Admission(0, 0, 0, 0.0)
        bs = self.bs
        store = self.gpu[replica]
        store.expire(now)
        keys = ids.keys
        n_gpu = store.match(keys, now)
        cap = ((prompt_len - 1) // bs) * bs
        gpu_tokens = ids.tokens_of(n_gpu)
        usable = min((gpu_tokens // bs) * bs, cap)
        pinned_blocks = 0
        shared = 0
        if usable > 0:
            n_use = -(-usable // ids.unit)
            if self.in_gpu:
                seq.held = list(keys[:n_use])
                pinned_blocks = store.pin_all(seq.held, now)
                shared = usable // bs
        if not self.in_gpu:
            for j in range(n_gpu - 1, -1, -1):  # deepest first: a chain's root is the most recent
                store.touch(keys[j], now)
        cached, load_s = usable, 0.0
        loaded_by: dict[str, int] = {}
        if self.lower[replica] and usable == gpu_tokens and n_gpu < len(keys):
            cached, load_s, loaded_by = self._load(replica, ids, n_gpu, usable, cap, prompt_len, now, perf)
        if first:
            stats.hit_tokens["gpu"] += gpu_tokens
            for name, tokens in loaded_by.items():
                stats.hit_tokens[name] += tokens
            if gpu_tokens or loaded_by:
                stats.hit_requests += 1
        return Admission(pinned_blocks, cached, shared, load_s)

    def _load(
        self,
        replica: int,
        ids: PrefixIds,
        j0: int,
        have: int,
        cap: int,
        prompt_len: int,
        now: float,
        perf: Any,
    ) -> tuple[int, float, dict[str, int]]:
        keys = ids.keys
        found: list[tuple[int, int]] = []  # (level index, tokens)
        total = 0
        levels = self.lower[replica]
        for j in range(j0, len(keys)):
            key = keys[j]
            hit = next((i for i, (_, s) in enumerate(levels) if s._alive(key, now) is not None), None)
            if hit is None:
                break
            tokens = ids.unit_tokens(j)
            if have + total + tokens > cap:
                break
            found.append((hit, tokens))
            total += tokens
        total = (total // self.bs) * self.bs
        if total <= 0:
            return have, 0.0, {}
        per_level: dict[int, int] = {}
        budget = total
        for level, tokens in found:
            take = min(tokens, budget)
            if take <= 0:
                break
            per_level[level] = per_level.get(level, 0) + take
            budget -= take
        kvbpt = self.kvbpt[replica]
        transfer = sum(
            levels[i][0].latency_s + t * kvbpt / levels[i][0].bandwidth for i, t in per_level.items()
        )
        rest = max(1, prompt_len - have - total)
        with_load = perf.iteration(rest, rest * (have + total + (rest + 1) / 2.0), have + total, 0, 0).time_s
        without = perf.iteration(
            rest + total, (rest + total) * (have + (rest + total + 1) / 2.0), have, 0, 0
        ).time_s
        if transfer >= without - with_load:
            self.stats.loads_declined += 1
            return have, 0.0, {}
        used = 0
        for j in range(j0, j0 + len(found)):
            if used >= total:
                break
            key = keys[j]
            for _, store in levels:
                if key in store:
                    if self.tier_policy == "exclusive":
                        store.remove(key)
                    else:
                        store.touch(key, now)
                    break
            used += ids.unit_tokens(j)
        self.stats.bytes_loaded += total * kvbpt
        self.stats.load_s += transfer
        return have + total, transfer, {levels[i][0].name: t for i, t in per_level.items()}

    def on_prefilled(self, replica: int, seq: Any, own_blocks: int, now: float) -> int:
        """The prompt is in KV memory: cache its units. Returns blocks moved from the request's own
        blocks into (pinned) GPU entries."""
        ids: PrefixIds | None = seq.ids
        if ids is None or not ids.keys:
            return 0
        if seq.held is None:
            seq.held = []
        return self._insert(replica, seq, ids.keys, len(seq.held), own_blocks, now, pinned=True)

    def on_finish(self, replica: int, seq: Any, own_blocks: int, now: float) -> tuple[int, int]:
        """A request finished: cache its answer's full units (session structure) and release its
        pins. Returns (own blocks moved into evictable entries, pinned blocks made evictable)."""
        ids: PrefixIds | None = seq.ids
        moved = 0
        if ids is not None and ids.final_keys is not None and len(ids.final_keys) > len(ids.keys):
            moved = self._insert(replica, seq, ids.final_keys, len(ids.keys), own_blocks, now, pinned=False)
        return moved, self.release(replica, seq, now)

    def release(self, replica: int, seq: Any, now: float) -> int:
        """Unpin a request's hits (finish or preemption); returns blocks that became evictable."""
        freed = 0
        if seq.held:
            # deepest first: a chain's root is the most recent
            freed = self.gpu[replica].unpin_all(seq.held, now)
            seq.held = []
        return freed

    def _insert(
        self, replica: int, seq: Any, keys: Any, start: int, own_blocks: int, now: float, pinned: bool
    ) -> int:
        store = self.gpu[replica]
        bs = self.bs
        unit = seq.ids.unit
        moved = 0
        write_through = self.tier_policy == "write-through" and self.lower[replica]
        if self.in_gpu and not store.capacity_tokens and not write_through:
            # every insertion fits: the store's batch insert does the same, without the calls
            covered = seq.ids.covered if keys is seq.ids.keys else (len(keys) + 1) * unit
            return store.insert_units(
                keys, start, unit, covered, bs, own_blocks, now, seq.held if pinned else None
            )
        for j in range(start, len(keys)):
            key = keys[j]
            tokens = seq.ids.unit_tokens(j) if keys is seq.ids.keys else unit
            if key in store:
                continue
            if self.in_gpu:
                blocks = -(-tokens // bs)
                if blocks > own_blocks - moved:
                    break
                if store.insert(key, tokens, blocks, now, pinned):
                    moved += blocks
                    if pinned:
                        seq.held.append(key)
                elif self.lower[replica]:  # the GPU store is full of pinned units: offload
                    self._demote(replica, 0, key, Entry(tokens, 0, 0, now))
            elif not store.insert(key, tokens, 0, now, pinned=False) and self.lower[replica]:
                self._demote(replica, 0, key, Entry(tokens, 0, 0, now))
            if write_through:
                self._write_through(replica, key, tokens, now)
        return moved

    # -- summary ----------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The cache keys of summary.json (tokens, bytes, seconds)."""
        s = self.stats
        stores = {id(g): g for g in self.gpu}
        lower = {id(st): st for levels in self.lower for _, st in levels}
        hit_tokens = sum(s.hit_tokens.values())
        out: dict[str, Any] = {
            "prefix_cache_lookups": s.lookups,
            "prefix_cache_hits": s.hit_requests,
            "prefix_cache_hit_ratio": s.hit_requests / s.lookups if s.lookups else 0.0,
            "prefix_cache_token_hit_ratio": hit_tokens / s.lookup_tokens if s.lookup_tokens else 0.0,
            "prefix_cache_hit_tokens": hit_tokens,
            "prefix_cache_evictions": sum(g.evictions for g in stores.values()),
            "prefix_cache_expirations": sum(g.expirations for g in stores.values()),
            "prefix_cache_bytes_loaded": s.bytes_loaded,
            "prefix_cache_bytes_offloaded": s.bytes_offloaded,
            "prefix_cache_load_s": s.load_s,
            "prefix_cache_loads_declined": s.loads_declined,
        }
        for name, tokens in s.hit_tokens.items():
            out[f"prefix_cache_hit_tokens_{name.replace('-', '_')}"] = tokens
        out["prefix_cache_lower_tier_evictions"] = sum(st.evictions for st in lower.values())
        return out
