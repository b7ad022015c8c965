"""The contract of every eviction policy in ``kavier.registry.EVICTION_POLICIES``.

From ``kavier.cache.eviction`` (the ``EvictionPolicy`` protocol) and ``kavier.cache.block_store``:
only keys given to ``add`` and not since removed or forgotten are evictable; ``len(policy)``
counts them and ``victim()`` returns one of them (None when there is none); ``on_hit``,
``on_insert`` and ``on_miss`` change no membership; the same seed and the same calls give the
same victims. Through a ``BlockStore``: a pinned entry is never evicted, and the store's
evictable blocks and tokens are those of its unpinned entries. The tests are parametrised over
the registry's names as read at collection time, so a newly registered policy is checked too.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kavier
from kavier.cache.block_store import BlockStore
from kavier.cache.eviction import make_policy
from kavier.registry import EVICTION_POLICIES
from tests.contracts import assert_registered_once
from tests.runs import SERVE

NAMES = EVICTION_POLICIES.names()

# --- the policy alone --------------------------------------------------------------------------

POLICY_OPS = ("add", "add", "remove", "forget", "on_hit", "on_insert", "on_miss", "evict")


@st.composite
def policy_ops(draw) -> list[tuple[str, int]]:
    """A long random sequence of policy calls (drawn from a seed, so it stays long)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 300))
    return [(POLICY_OPS[rng.integers(len(POLICY_OPS))], int(rng.integers(12))) for _ in range(n)]


def drive_policy(name: str, seed: int, ops: list[tuple[str, int]]) -> list[Hashable | None]:
    """Apply ``ops`` as a store would (``add`` only a key that is not evictable) and check the
    membership contract after each; returns the victims asked for."""
    policy = make_policy(name, seed, capacity=lambda: 6)
    evictable: set[int] = set()
    victims = []
    for op, key in ops:
        if op == "add":
            if key in evictable:
                continue
            policy.add(key)
            evictable.add(key)
        elif op in ("remove", "forget"):
            getattr(policy, op)(key)
            evictable.discard(key)
        elif op == "evict":
            victim = policy.victim()
            victims.append(victim)
            if victim is not None:
                policy.forget(victim)
                evictable.discard(victim)
        else:
            getattr(policy, op)(key)  # informs only
        assert len(policy) == len(evictable), (op, key)
        victim = policy.victim()
        assert (victim is None) == (not evictable)
        assert victim is None or victim in evictable, (victim, evictable)
    return victims


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=80, deadline=None)
@given(st.integers(0, 3), policy_ops())
def test_a_policy_counts_and_chooses_only_evictable_keys_and_repeats_itself(name, seed, ops):
    first = drive_policy(name, seed, ops)
    assert drive_policy(name, seed, ops) == first


@pytest.mark.parametrize("name", NAMES)
def test_adding_an_evictable_key_again_keeps_one_evictable_key(name):
    """(arc counted such a key twice, in T1 and T2, until the contract tests found it.)"""
    policy = make_policy(name, 0, capacity=lambda: 4)
    policy.add("k")
    policy.on_hit("k")
    policy.add("k")
    assert len(policy) == 1 and policy.victim() == "k"
    policy.forget("k")
    assert len(policy) == 0 and policy.victim() is None


# --- through a block store ---------------------------------------------------------------------

STORE_OPS = ("insert", "insert", "insert", "pin", "pin", "unpin", "unpin", "touch", "match", "evict")
STORE_OPS += ("reclaim", "remove", "expire", "pin_all", "unpin_all")


@st.composite
def store_ops(draw) -> list[tuple]:
    """A long random sequence of store calls: (operation, keys, tokens, blocks, inserted pinned,
    seconds since the previous call), drawn from a seed so that it stays long."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 250))
    return [
        (
            STORE_OPS[rng.integers(len(STORE_OPS))],
            [int(k) for k in rng.integers(0, 12, size=rng.integers(1, 5))],
            int(rng.integers(1, 41)),
            int(rng.integers(0, 4)),
            bool(rng.integers(2)),
            int(rng.integers(0, 21)),
        )
        for _ in range(n)
    ]


def check_store(store: BlockStore, refs: dict[int, int]) -> None:
    """The store agrees with the pins the test holds, and the policy with the store."""
    entries = store.entries
    gone = [k for k, r in refs.items() if r > 0 and k not in entries]
    assert not gone, f"pinned entries {gone} were evicted"
    for k in list(refs):
        if k not in entries:
            del refs[k]  # dropped while evictable: eviction, expiry or removal
    assert set(refs) == set(entries)
    assert all(entries[k].ref == r for k, r in refs.items())
    free = [k for k, e in entries.items() if e.ref == 0]
    assert len(store.policy) == len(free)
    victim = store.policy.victim()
    assert (victim is None) == (not free) and (victim is None or entries[victim].ref == 0)
    assert store.evictable_blocks == sum(entries[k].blocks for k in free)
    assert store.evictable_tokens == sum(entries[k].tokens for k in free)
    assert store.tokens == sum(e.tokens for e in entries.values())
    if store.capacity_tokens:
        assert store.tokens <= store.capacity_tokens
    if store.policy.expires_idle:
        oldest = store.policy.oldest()
        assert (oldest is None) == (not free) and (oldest is None or entries[oldest].ref == 0)


def drive_store(name: str, seed: int, capacity: int, ops: list) -> list:
    """Apply ``ops`` to a store, checking the contract after each; returns what each op did."""
    store = BlockStore(name, capacity_tokens=capacity, ttl_s=30.0, seed=seed)
    refs: dict[int, int] = {}
    now = 0.0
    trail = []
    for op, keys, tokens, blocks, pinned, dt in ops:
        now += dt
        key = keys[0]
        held = [k for k in dict.fromkeys(keys) if refs.get(k, 0) > 0]
        if op == "insert":
            done = store.insert(key, tokens, blocks, now, pinned)
            if done:
                refs[key] = 1 if pinned else 0
        elif op == "pin" and key in store:
            done = store.pin(key, now)
            refs[key] += 1
        elif op == "unpin" and held:
            done = store.unpin(held[0], now)
            refs[held[0]] -= 1
        elif op == "touch" and key in store and store.entries[key].ref == 0:
            done = store.touch(key, now)
        elif op == "match":
            done = store.match(keys, now)
        elif op == "evict":
            done = store.evict_one()
        elif op == "reclaim":
            store.reclaim(blocks)
            done = store.evictable_blocks
            assert done <= blocks or len(store.policy) == 0
        elif op == "remove":
            done = store.remove(key)
        elif op == "expire":
            done = store.expire(now)
        elif op == "pin_all":
            present = [k for k in dict.fromkeys(keys) if k in store]
            done = store.pin_all(present, now)
            for k in present:
                refs[k] += 1
        elif op == "unpin_all" and held:
            done = store.unpin_all(held, now)
            for k in held:
                refs[k] -= 1
        else:
            continue
        check_store(store, refs)
        trail.append((op, done, tuple(store.entries)))
    return trail


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 3), st.sampled_from([0, 30, 100]), store_ops())
def test_a_store_never_evicts_pinned_entries_and_counts_the_evictable_ones(name, seed, capacity, ops):
    first = drive_store(name, seed, capacity, ops)
    assert drive_store(name, seed, capacity, ops) == first, "the same seed and calls gave other victims"


@pytest.mark.parametrize("name", NAMES)
def test_a_store_under_pressure_evicts_only_unpinned_entries(name):
    store = BlockStore(name, capacity_tokens=4, seed=1)
    assert store.insert("pinned", 1, 1, 0.0, pinned=True)
    for t in range(1, 30):
        assert store.insert(f"k{t}", 1, 1, float(t), pinned=False)
        assert "pinned" in store and len(store) <= 4 and f"k{t}" in store
    assert store.evictions == 29 - 3
    assert not store.insert("big", 4, 1, 31.0, pinned=False)  # only 3 tokens can be freed


# --- registering a policy ----------------------------------------------------------------------


class MostRecentFirst:
    """The most recently added evictable key first (a test policy)."""

    expires_idle: ClassVar[bool] = False
    built = 0

    def __init__(self, seed: int = 0, capacity: Callable[[], int] | None = None) -> None:
        type(self).built += 1
        self._order: OrderedDict[Hashable, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._order)

    def add(self, key: Hashable) -> None:
        self._order[key] = None
        self._order.move_to_end(key)

    def remove(self, key: Hashable) -> None:
        self._order.pop(key, None)

    def victim(self) -> Hashable | None:
        return next(reversed(self._order), None)

    def forget(self, key: Hashable) -> None:
        self._order.pop(key, None)

    def on_hit(self, key: Hashable) -> None:
        pass

    def on_insert(self, key: Hashable) -> None:
        pass

    def on_miss(self, key: Hashable) -> None:
        pass


def test_a_registered_policy_is_listed_and_used_by_stores_and_runs(register):
    register(EVICTION_POLICIES, "test-mru", MostRecentFirst)
    assert EVICTION_POLICIES.names()[-1] == "test-mru"
    store = BlockStore("test-mru", capacity_tokens=3)
    for t, key in enumerate("abcd"):
        store.insert(key, 1, 0, float(t), pinned=False)
    assert set(store.entries) == {"a", "b", "d"}  # c was the most recent when d came
    built = MostRecentFirst.built
    r = kavier.simulate(
        workload="chat", num_sessions=6, cache_eviction="test-mru", gpu_memory_utilization=0.25, **SERVE
    )
    assert MostRecentFirst.built > built and r.scenario.cache_eviction == "test-mru"
    assert sorted(r.requests.column("request_id").to_pylist()) == list(range(r.requests.num_rows))


def test_an_eviction_policy_name_is_registered_once(register):
    register(EVICTION_POLICIES, "test-once", MostRecentFirst)
    assert_registered_once(
        EVICTION_POLICIES, "test-once", MostRecentFirst, type("Other", (MostRecentFirst,), {})
    )
