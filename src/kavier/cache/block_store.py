"""A store of cached prefix units: GPU KV memory of a replica, a global index, or a lower tier.

Entries are keyed by hash-chained unit keys (:mod:`kavier.cache.keys`). Each entry holds
``tokens`` tokens and, in a replica's GPU memory, ``blocks`` KV blocks. An entry is *pinned*
while running requests use it (``ref > 0``) and then cannot be evicted; released entries are
*evictable* and ordered by the eviction policy. ``evictable_blocks`` is what the replica can
reclaim on demand: the engine counts those blocks as free and evicts when it actually needs
them (vLLM's cached-but-free blocks).

Capacity: ``capacity_tokens`` (0 = unlimited; a replica's GPU store is then bounded by its free KV
memory). With policy ``ttl``, an entry idle ``ttl_s`` seconds expires: it is dropped when next seen.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from kavier.cache.eviction import make_policy


@dataclass(slots=True)
class Entry:
    """One cached unit."""

    tokens: int
    blocks: int
    ref: int = 0
    last_use: float = 0.0


class BlockStore:
    """Cached units with pinning, capacity, an eviction policy and optional idle expiry."""

    def __init__(
        self,
        policy: str = "lru",
        capacity_tokens: int = 0,
        ttl_s: float | None = None,
        seed: int = 0,
        on_evict: Callable[[Hashable, Entry], None] | None = None,
    ) -> None:
        self.entries: dict[Hashable, Entry] = {}
        self.capacity_tokens = int(capacity_tokens)
        self.ttl_s = (300.0 if ttl_s is None else float(ttl_s)) if policy == "ttl" else None
        self.policy = make_policy(policy, seed, capacity=self._capacity_entries)
        self.on_evict = on_evict
        self.tokens = 0
        self.evictable_blocks = 0
        self.evictable_tokens = 0
        self.evictions = 0
        self.expirations = 0
        self.insertions = 0

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self.entries

    def _capacity_entries(self) -> int:
        if self.capacity_tokens and self.entries:
            mean = self.tokens / len(self.entries)
            return max(1, int(self.capacity_tokens / max(mean, 1.0)))
        return max(1, len(self.entries))

    # -- lookups ---------------------------------------------------------------------------------

    def _alive(self, key: Hashable, now: float) -> Entry | None:
        e = self.entries.get(key)
        if e is None:
            return None
        if self.ttl_s is not None and e.ref == 0 and now - e.last_use >= self.ttl_s:
            self._drop(key, e, expired=True)
            return None
        return e

    def match(self, keys: Sequence[Hashable], now: float, start: int = 0) -> int:
        """How many of ``keys[start:]`` are cached, counting from ``start`` until the first miss."""
        n = len(keys)
        j = start
        while j < n and self._alive(keys[j], now) is not None:
            j += 1
        if j < n:
            self.policy.on_miss(keys[j])
        return j - start

    def peek(self, keys: Sequence[Hashable]) -> int:
        """Leading cached keys, without side effects (routers use it)."""
        entries = self.entries
        j = 0
        for key in keys:
            if key not in entries:
                break
            j += 1
        return j

    def expire(self, now: float) -> None:
        """Drop every evictable entry idle for ``ttl_s`` (LRU order makes this a prefix scan)."""
        if self.ttl_s is None:
            return
        policy = self.policy
        while True:
            key = policy.oldest()
            if key is None:
                return
            e = self.entries[key]
            if now - e.last_use < self.ttl_s:
                return
            self._drop(key, e, expired=True)

    # -- pinning ---------------------------------------------------------------------------------

    def pin(self, key: Hashable, now: float) -> int:
        """Mark a hit entry in use; returns the blocks that stopped being evictable."""
        e = self.entries[key]
        self.policy.on_hit(key)
        e.last_use = now
        e.ref += 1
        if e.ref == 1:
            self.policy.remove(key)
            self.evictable_blocks -= e.blocks
            self.evictable_tokens -= e.tokens
            return e.blocks
        return 0

    def touch(self, key: Hashable, now: float) -> None:
        """A hit on an entry that is not pinned (stores outside GPU memory)."""
        e = self.entries[key]
        self.policy.on_hit(key)
        e.last_use = now
        if e.ref == 0:
            self.policy.remove(key)
            self.policy.add(key)

    def unpin(self, key: Hashable, now: float) -> int:
        """Release one use; returns the blocks that became evictable."""
        e = self.entries.get(key)
        if e is None:
            return 0
        e.ref -= 1
        e.last_use = now
        if e.ref == 0:
            self.policy.add(key)
            self.evictable_blocks += e.blocks
            self.evictable_tokens += e.tokens
            return e.blocks
        return 0

    # -- insertion and eviction -----------------------------------------------------------------

    def insert(self, key: Hashable, tokens: int, blocks: int, now: float, pinned: bool) -> bool:
        """Add an entry (pinned by its inserting request, or evictable); False if it cannot fit."""
        if key in self.entries:
            return False
        if self.capacity_tokens:
            if tokens > self.capacity_tokens:
                return False
            while self.tokens + tokens > self.capacity_tokens:
                if not self.evict_one():
                    return False
        e = Entry(tokens, blocks, 1 if pinned else 0, now)
        self.entries[key] = e
        self.tokens += tokens
        self.insertions += 1
        self.policy.on_insert(key)
        if not pinned:
            self.policy.add(key)
            self.evictable_blocks += blocks
            self.evictable_tokens += tokens
        return True

    def evict_one(self) -> bool:
        """Evict the policy's victim; False when nothing is evictable."""
        key = self.policy.victim()
        if key is None:
            return False
        self._drop(key, self.entries[key], expired=False)
        return True

    def remove(self, key: Hashable) -> None:
        """Drop an evictable entry without counting an eviction (exclusive promotion)."""
        e = self.entries.get(key)
        if e is not None and e.ref == 0:
            self.policy.forget(key)
            del self.entries[key]
            self.tokens -= e.tokens
            self.evictable_blocks -= e.blocks
            self.evictable_tokens -= e.tokens

    def _drop(self, key: Hashable, e: Entry, expired: bool) -> None:
        self.policy.forget(key)
        del self.entries[key]
        self.tokens -= e.tokens
        self.evictable_blocks -= e.blocks
        self.evictable_tokens -= e.tokens
        if expired:
            self.expirations += 1
        else:
            self.evictions += 1
            if self.on_evict is not None:
                self.on_evict(key, e)
