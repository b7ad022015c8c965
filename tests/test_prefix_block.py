"""The block prefix cache, its eviction policies, tiers, the response cache, prefix_affinity and
--baseline savings."""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kavier
from kavier.cache.block_store import BlockStore
from kavier.cache.hierarchy import parse_tiers
from kavier.errors import KavierError

UNIT = 512
SERVE = {"llm": "Llama-3.1-8B", "gpu": "H100-SXM", "opendc": False}


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


def test_eviction_policies_choose_their_victims():
    def store(policy: str, **kw) -> BlockStore:
        st_ = BlockStore(policy, capacity_tokens=3, **kw)
        for t, key in enumerate("abc"):
            st_.insert(key, 1, 0, float(t), pinned=False)
        return st_

    lru = store("lru")
    lru.touch("a", 5.0)
    lru.insert("d", 1, 0, 6.0, pinned=False)
    assert set(lru.entries) == {"a", "c", "d"}  # b was least recently used

    fifo = store("fifo")
    fifo.touch("a", 5.0)
    fifo.insert("d", 1, 0, 6.0, pinned=False)
    assert set(fifo.entries) == {"b", "c", "d"}  # a was inserted first, hits do not matter

    lfu = store("lfu")
    for _ in range(3):
        lfu.touch("a", 5.0)
    lfu.touch("b", 5.0)
    lfu.insert("d", 1, 0, 6.0, pinned=False)
    assert set(lfu.entries) == {"a", "b", "d"}  # c had no hits

    rnd1, rnd2 = store("random", seed=3), store("random", seed=3)
    rnd1.insert("d", 1, 0, 6.0, pinned=False)
    rnd2.insert("d", 1, 0, 6.0, pinned=False)
    assert set(rnd1.entries) == set(rnd2.entries) and len(rnd1) == 3 and "d" in rnd1

    ttl = store("ttl", ttl_s=10.0)
    ttl.touch("c", 8.0)
    assert ttl.match(["a"], now=10.5) == 0  # idle 10.5 s: expired
    assert ttl.match(["c"], now=10.5) == 1  # used at 8 s
    assert ttl.expirations == 1

    pinned = BlockStore("lru", capacity_tokens=2)
    pinned.insert("a", 1, 0, 0.0, pinned=True)
    pinned.insert("b", 1, 0, 1.0, pinned=False)
    assert pinned.insert("c", 1, 0, 2.0, pinned=False)
    assert "a" in pinned and "b" not in pinned  # the pinned entry is never the victim
    assert not pinned.insert("d", 1, 0, 3.0, pinned=True) or "a" in pinned


def test_arc_resists_a_scan_that_flushes_lru():
    def run(policy: str) -> bool:
        s = BlockStore(policy, capacity_tokens=4)
        for t in range(3):  # a hot entry, hit repeatedly
            if not s.match(["hot"], float(t)):
                s.insert("hot", 1, 0, float(t), pinned=False)
            else:
                s.touch("hot", float(t))
        for i in range(6):  # a scan of one-time entries
            s.insert(f"scan{i}", 1, 0, 10.0 + i, pinned=False)
        return "hot" in s

    assert run("arc") and not run("lru")


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


def test_response_cache_answers_exact_repeats_without_gpu_work():
    req = {
        "num_input_tokens": np.array([UNIT * 2, UNIT * 2, UNIT * 2]),
        "num_output_tokens": np.array([50, 50, 50]),
        "arrival_s": np.array([0.0, 100.0, 200.0]),
        "hash_ids": [[1, 2], [1, 2], [1, 3]],
    }
    r = kavier.simulate(requests=req, response_cache=True, response_cache_latency=0.004, **SERVE)
    rows = r.requests.to_pylist()
    assert rows[1]["replica"] == -1 and rows[1]["ttft_s"] == pytest.approx(0.004)
    assert rows[1]["e2e_s"] == pytest.approx(0.004)
    assert rows[0]["replica"] >= 0 and rows[2]["replica"] >= 0  # different last block: a miss
    assert r.summary["response_cache_hits"] == 1


def test_prefix_affinity_sends_turns_to_their_prefix():
    sessions, turns = 6, 4  # round robin then scatters a session across replicas
    n = sessions * turns
    sid = np.repeat(np.arange(sessions), turns)
    turn = np.tile(np.arange(turns), sessions)
    req = {
        "num_input_tokens": 2000 + 600 * turn,
        "num_output_tokens": np.full(n, 200),
        "arrival_s": turn * 60.0 + sid * 0.5,
        "session_id": sid,
    }
    kw = dict(requests=req, replicas=4, **SERVE)
    affinity = kavier.simulate(router="prefix_affinity", **kw).summary
    spread = kavier.simulate(router="round_robin", **kw).summary
    assert affinity["prefix_cache_token_hit_ratio"] > spread["prefix_cache_token_hit_ratio"]
    # Every later turn finds its whole previous context on the replica it was sent to.
    expected = sum((2000 + 600 * (k - 1) + 200) // 16 * 16 for k in range(1, turns)) * sessions
    assert affinity["prefix_cache_hit_tokens"] == expected


def test_baseline_reports_savings():
    s = kavier.simulate(workload="chat", num_sessions=20, baseline=True, **SERVE).summary
    assert s["saved_gpu_s"] == pytest.approx(s["baseline_gpu_busy_s"] - s["gpu_busy_s"])
    assert s["saved_prefill_s"] > 0 and s["saved_energy_j"] > 0 and s["saved_cost_usd"] > 0
    assert s["saved_co2_g"] > 0 and s["ttft_mean_change_s"] < 0


def test_block_cache_needs_the_serving_engine():
    with pytest.raises(KavierError, match="serving engine"):
        kavier.simulate(preset="thesis", prefix_cache="block")


def test_cli_cache_flags(tmp_path):
    from typer.testing import CliRunner

    from kavier.cli import app

    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "run", "--llm", "Llama-3.1-8B", "--gpu", "H100-SXM", "--num-sessions", "10",
            "--cache-eviction", "arc", "--cache-tiers", "host-dram:8GiB", "--router", "prefix_affinity",
            "--baseline", "--output-folder", str(out), "-q",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert "saved_energy_j" in summary and "prefix_cache_token_hit_ratio" in summary
    scenario = json.loads((out / "scenario.json").read_text())
    assert scenario["cache_eviction"] == "arc" and scenario["router"] == "prefix_affinity"


def test_thesis_semantics_in_the_serving_engine_skip_the_prefill():
    req = {
        "num_input_tokens": np.array([1500, 1800]),
        "num_output_tokens": np.array([10, 10]),
        "arrival_s": np.array([0.0, 100.0]),
        "session_id": np.array([7, 7]),
    }
    r = kavier.simulate(requests=req, prefix_cache="thesis", prefix_len=1024, **SERVE)
    assert r.requests.column("cached_tokens").to_pylist() == [0, 1799]
    assert r.summary["prefix_cache_hits"] == 1 and r.summary["prefix_cache_lookups"] == 2


def _store_state(store: BlockStore) -> tuple:
    entries = tuple((k, e.tokens, e.blocks, e.ref, e.last_use) for k, e in store.entries.items())
    counters = (store.tokens, store.evictable_blocks, store.evictable_tokens, store.evictions)
    order = []
    while (key := store.policy.victim()) is not None:  # destructive: the eviction order
        order.append(key)
        store.policy.forget(key)
    return entries, counters, store.insertions, tuple(order)


@pytest.mark.parametrize("policy", ["lru", "ttl", "lfu", "fifo", "arc", "random"])
@pytest.mark.parametrize("seed", range(4))
def test_batch_store_paths_equal_the_per_key_calls(policy, seed):
    """insert_units / pin_all / unpin_all / reclaim == the per-key insert / pin / unpin / evict_one."""
    rng = np.random.default_rng(seed)
    fast, ref = BlockStore(policy, seed=seed), BlockStore(policy, seed=seed)
    held_fast: list[list[int]] = []
    held_ref: list[list[int]] = []
    for step in range(300):
        op = rng.integers(4)
        now = float(step)
        if op == 0:  # a request's units: a shared root chain, then its own
            unit, bs = int(rng.choice([16, 512])), 16
            n = int(rng.integers(1, 12))
            keys = [int(k) for k in rng.integers(0, 40, size=n)]
            if rng.random() < 0.7:  # hash chains hold distinct keys; test repeats too
                keys = list(dict.fromkeys(keys))
            covered = (len(keys) - 1) * unit + int(rng.integers(1, unit + 1))
            if rng.random() < 0.2:  # covered short of the keys: several partial units
                covered = max(1, covered - int(rng.integers(0, 3 * unit)))
            start = int(rng.integers(0, len(keys)))
            budget = int(rng.integers(0, 4 * len(keys) * unit // bs + 1))
            pinned = bool(rng.integers(2))
            hf: list[int] | None = [] if pinned else None
            used = fast.insert_units(keys, start, unit, covered, bs, budget, now, hf)
            hr: list[int] = []
            moved = 0
            for j in range(start, len(keys)):
                if keys[j] in ref:
                    continue
                tokens = min(unit, covered - j * unit)
                blocks = -(-tokens // bs)
                if blocks > budget - moved:
                    break
                assert ref.insert(keys[j], tokens, blocks, now, pinned)
                moved += blocks
                hr.append(keys[j])
            assert used == moved
            if pinned:
                assert hf == hr
                held_fast.append(hf)
                held_ref.append(hr)
        elif op == 1:  # pin a cached leading chain
            keys = [k for k in fast.entries if rng.random() < 0.5][: int(rng.integers(0, 8))]
            assert fast.pin_all(keys, now) == sum(ref.pin(k, now) for k in keys)
            held_fast.append(list(keys))
            held_ref.append(list(keys))
        elif op == 2 and held_fast:  # release one request's pins
            i = int(rng.integers(len(held_fast)))
            keys_f, keys_r = held_fast.pop(i), held_ref.pop(i)
            assert fast.unpin_all(keys_f, now) == sum(ref.unpin(k, now) for k in reversed(keys_r))
        else:  # reclaim down to a limit
            limit = int(rng.integers(0, max(1, ref.evictable_blocks) + 1))
            fast.reclaim(limit)
            while limit < ref.evictable_blocks and ref.evict_one():
                pass
        assert fast.evictable_blocks == ref.evictable_blocks
    assert _store_state(fast) == _store_state(ref)


@pytest.mark.parametrize("session_scope", [False, True])
def test_mooncake_keys_equal_the_hash_chain(session_scope):
    """prefix_ids on hash_ids == the per-id hash chain (truncated to the prompt, response key of
    the whole chain)."""
    import pyarrow as pa

    from kavier.cache.keys import prefix_ids
    from kavier.workload.chunk import RequestChunk

    rng = np.random.default_rng(7)
    n = 200
    lists = [[int(x) for x in rng.integers(0, 30, size=int(rng.integers(0, 9)))] for _ in range(n)]
    n_in = rng.integers(0, 5000, size=n)
    sessions = rng.integers(-1, 6, size=n)
    zeros = np.zeros(n, dtype=np.int64)
    chunk = RequestChunk(
        np.arange(n), zeros.astype(float), n_in, zeros + 1, sessions, zeros,
        hash_ids=pa.array(lists, type=pa.list_(pa.int64())), hash_block_tokens=512,
    )  # fmt: skip
    got = prefix_ids(chunk, 16, session_scope)
    for i in range(n):
        h = hash(("session", int(sessions[i]))) if session_scope else 0
        keys = []
        for block_id in lists[i]:
            h = hash((h, block_id))
            keys.append(h)
        covered = min(int(n_in[i]), len(keys) * 512)
        keys = keys[: -(-covered // 512)] if covered else []
        assert list(got[i].keys) == keys and got[i].covered == covered and got[i].unit == 512
        assert got[i].response_key == (hash((h, int(n_in[i]))) if keys else None)
