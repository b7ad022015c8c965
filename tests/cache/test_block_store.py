"""``kavier.cache.block_store``: the batch paths equal the per-key calls."""

from __future__ import annotations

import numpy as np
import pytest

from kavier.cache.block_store import BlockStore


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
