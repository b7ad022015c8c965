"""``kavier.cache.hierarchy``: the block prefix cache of a serving cluster, its scopes, capacity,
lower tiers and block accounting."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kavier
from kavier.cache.hierarchy import parse_tiers
from kavier.errors import KavierError
from tests.runs import SERVE, UNIT


def mooncake_like(n: int, seed: int, gap_s: float = 30.0, roots: int = 4, depth: int = 6):
    """Requests of whole 512-token blocks drawn from a few shared chains, spaced ``gap_s`` apart
    (so each finishes before the next arrives and the cache sees them in order)."""
    rng = np.random.default_rng(seed)
    chains = [[r * 1000 + j for j in range(depth)] for r in range(roots)]
    hash_ids, next_id = [], 10**6
    for _ in range(n):
        chain = chains[int(rng.integers(roots))]
        shared = int(rng.integers(0, depth + 1))
        fresh = int(rng.integers(1 if shared == 0 else 0, 3))
        ids = chain[:shared] + list(range(next_id, next_id + fresh))
        next_id += fresh
        hash_ids.append(ids)
    return {
        "num_input_tokens": np.array([len(h) * UNIT for h in hash_ids]),
        "num_output_tokens": np.full(n, 4),
        "arrival_s": np.arange(n) * gap_s,
        "hash_ids": hash_ids,
    }


def exact_reuse(hash_ids: list[list[int]]) -> float:
    """Token share of blocks whose id, with the same preceding ids, appeared in an earlier request."""
    seen: set[tuple[int, ...]] = set()
    hit = total = 0
    for ids in hash_ids:
        for j in range(len(ids)):
            key = tuple(ids[: j + 1])
            total += UNIT
            if key in seen:
                hit += UNIT
            seen.add(key)
    return hit / total


def lru_reference(hash_ids: list[list[int]], capacity_blocks: int) -> float:
    """A plain LRU of chained blocks: the leading cached blocks hit (touched deepest first), the
    rest are inserted in order, evicting the least recently used."""
    cache: OrderedDict[tuple[int, ...], None] = OrderedDict()
    hit = total = 0
    for ids in hash_ids:
        keys = [tuple(ids[: j + 1]) for j in range(len(ids))]
        n = 0
        while n < len(keys) and keys[n] in cache:
            n += 1
        for key in reversed(keys[:n]):
            cache.move_to_end(key)
        hit += n * UNIT
        total += len(keys) * UNIT
        for key in keys[n:]:
            if key in cache:
                continue
            while len(cache) >= capacity_blocks:
                cache.popitem(last=False)
            cache[key] = None
    return hit / total


def test_unlimited_global_cache_equals_exact_block_reuse():
    req = mooncake_like(120, seed=1)
    s = kavier.simulate(requests=req, cache_scope="global", **SERVE).summary
    assert s["prefix_cache_token_hit_ratio"] == pytest.approx(exact_reuse(req["hash_ids"]), abs=1e-12)
    assert 0.2 < s["prefix_cache_token_hit_ratio"] < 0.9


@pytest.mark.parametrize("capacity_blocks", [2, 5, 11])
def test_lru_of_capacity_c_equals_the_reference(capacity_blocks):
    req = mooncake_like(150, seed=2)
    s = kavier.simulate(
        requests=req, cache_scope="global", cache_capacity_tokens=capacity_blocks * UNIT, **SERVE
    ).summary
    assert s["prefix_cache_token_hit_ratio"] == pytest.approx(
        lru_reference(req["hash_ids"], capacity_blocks), abs=1e-12
    )


def test_a_hit_prefills_only_the_uncached_suffix():
    # Two identical 4-block prompts, far apart: the second reuses all but the last block's last
    # token (one token is always computed), rounded down to a KV block of 16 tokens.
    req = {
        "num_input_tokens": np.array([4 * UNIT, 4 * UNIT]),
        "num_output_tokens": np.array([8, 8]),
        "arrival_s": np.array([0.0, 100.0]),
        "hash_ids": [[1, 2, 3, 4], [1, 2, 3, 4]],
    }
    r = kavier.simulate(requests=req, **SERVE)
    cached = r.requests.column("cached_tokens").to_pylist()
    assert cached == [0, 4 * UNIT - 16]
    prefill = r.requests.column("prefill_s").to_pylist()
    assert prefill[1] < prefill[0] / 3  # 16 tokens + fixed overheads vs 2,048 tokens
    assert r.summary["prefix_cache_hits"] == 1


def test_block_accounting_returns_every_block(tmp_path):
    # Tight KV memory forces evictions and preemptions; run_serving asserts at the end that all
    # blocks are free or held by evictable entries (AssertionError otherwise).
    s = kavier.simulate(
        workload="chat", num_sessions=30, session_rate=2.0, gpu_memory_utilization=0.25, **SERVE
    ).summary
    assert s["prefix_cache_token_hit_ratio"] > 0.3
    assert s["prefix_cache_evictions"] > 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sessions=st.integers(1, 12),
    policy=st.sampled_from(["lru", "lfu", "fifo", "random", "ttl", "arc"]),
    scope=st.sampled_from(["replica", "session", "global"]),
    memory=st.sampled_from([0.22, 0.3, 0.9]),
    capacity=st.sampled_from([0, 2000, 50_000]),
    seed=st.integers(0, 3),
)
def test_invariants_under_caching(sessions, policy, scope, memory, capacity, seed):
    kw = dict(
        workload="chat",
        num_sessions=sessions,
        session_rate=1.0,
        replicas=2,
        gpu_memory_utilization=memory,
        cache_eviction=policy,
        cache_scope=scope,
        cache_capacity_tokens=capacity,
        cache_ttl=30.0,
        seed=seed,
        **SERVE,
    )
    a = kavier.simulate(**kw)
    ids = a.requests.column("request_id").to_pylist()
    assert sorted(ids) == list(range(len(ids)))  # every request finishes exactly once
    n_in = np.array(a.requests.column("num_input_tokens").to_pylist())
    cached = np.array(a.requests.column("cached_tokens").to_pylist())
    assert np.all((cached >= 0) & (cached < np.maximum(n_in, 1)))
    assert a.summary["output_tokens"] == sum(a.requests.column("num_output_tokens").to_pylist())
    b = kavier.simulate(**kw)
    assert a.requests.equals(b.requests)  # same seed, same result


def _two_turns(gap_s: float = 200.0, turns: int = 2):
    n_in = [3000 + 700 * k for k in range(turns)]
    return {
        "num_input_tokens": np.array(n_in),
        "num_output_tokens": np.full(turns, 100),
        "arrival_s": np.arange(turns) * gap_s,
        "session_id": np.zeros(turns, dtype=np.int64),
    }


def test_lower_tier_hit_when_gpu_cache_is_tiny():
    # GPU cache of 256 tokens: the first turn's blocks are demoted to host DRAM, and the second
    # turn loads them back (a PCIe copy is far faster than recomputing 3,000 tokens).
    req = _two_turns()
    s = kavier.simulate(
        requests=req, cache_capacity_tokens=256, cache_tiers="host-dram:4GiB", **SERVE
    ).summary
    assert s["prefix_cache_hit_tokens_host_dram"] > 2000
    kv = s["kv_bytes_per_token"]
    assert s["prefix_cache_bytes_loaded"] == pytest.approx(s["prefix_cache_hit_tokens_host_dram"] * kv)
    assert s["prefix_cache_load_s"] > 0
    # The same tier at 1 kB/s: loading would be slower than recomputing, so it is declined.
    slow = [{"name": "host-dram", "capacity": "4GiB", "bandwidth_gbps": 1e-6}]
    s2 = kavier.simulate(requests=req, cache_capacity_tokens=256, cache_tiers=slow, **SERVE).summary
    assert s2["prefix_cache_hit_tokens_host_dram"] == 0
    assert s2["prefix_cache_loads_declined"] >= 1


def test_tier_specs_and_errors():
    tiers = parse_tiers("host-dram:64GiB,remote:1TB")
    assert [t.name for t in tiers] == ["host-dram", "remote"]
    assert tiers[0].capacity_bytes == 64 * 2**30 and tiers[1].capacity_bytes == 1e12
    for bad in ("gpu-hbm:1GiB", "host-dram", "remote:1TB,host-dram:1GiB", "host-dram:lots"):
        with pytest.raises(KavierError):
            parse_tiers(bad)
