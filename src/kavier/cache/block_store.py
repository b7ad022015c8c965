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

from kavier.cache.eviction import LruPolicy, TtlPolicy, make_policy


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
        self.policy = make_policy(policy, seed, capacity=self._capacity_entries)
        self.ttl_s = (300.0 if ttl_s is None else float(ttl_s)) if self.policy.expires_idle else None
        # LRU (and TTL, LRU-ordered) keeps its order in one OrderedDict: the hot paths below work
        # on it directly, exactly as the policy's methods would.
        self._lru = self.policy._order if type(self.policy) in (LruPolicy, TtlPolicy) else None
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
        if self.ttl_s is None:
            entries = self.entries
            while j < n and keys[j] in entries:
                j += 1
        else:
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

    def pin_all(self, keys: Sequence[Hashable], now: float) -> int:
        """:meth:`pin` each key in order; returns the blocks that stopped being evictable."""
        entries = self.entries
        policy = self.policy
        order = self._lru
        gone = 0
        for key in keys:
            e = entries[key]
            if order is None:
                policy.on_hit(key)
            e.last_use = now
            e.ref += 1
            if e.ref == 1:
                if order is None:
                    policy.remove(key)
                else:
                    order.pop(key, None)
                gone += e.blocks
                self.evictable_tokens -= e.tokens
        self.evictable_blocks -= gone
        return gone

    def unpin_all(self, keys: Sequence[Hashable], now: float) -> int:
        """:meth:`unpin` each key, last first; returns the blocks that became evictable."""
        get = self.entries.get
        order = self._lru
        freed = 0
        tokens = 0
        if order is None:
            add = self.policy.add
            for key in reversed(keys):
                e = get(key)
                if e is not None:
                    e.ref -= 1
                    e.last_use = now
                    if e.ref == 0:
                        add(key)
                        freed += e.blocks
                        tokens += e.tokens
        else:
            # a key is in the LRU order exactly while its entry is unpinned: a released entry
            # is appended at the end (what add's assignment + move_to_end does)
            for key in reversed(keys):
                e = get(key)
                if e is not None:
                    e.ref -= 1
                    e.last_use = now
                    if e.ref == 0:
                        order[key] = None
                        freed += e.blocks
                        tokens += e.tokens
        self.evictable_blocks += freed
        self.evictable_tokens += tokens
        return freed

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

    def insert_units(
        self,
        keys: Sequence[Hashable],
        start: int,
        unit: int,
        covered: int,
        block_size: int,
        budget: int,
        now: float,
        held: list | None,
    ) -> int:
        """:meth:`insert` ``keys[start:]`` (unit ``j`` holding ``min(unit, covered - j * unit)``
        tokens in ``ceil(tokens / block_size)`` blocks), skipping cached ones, until a unit's blocks
        exceed what is left of ``budget``; pinned (keys appended to ``held``) unless ``held`` is
        None. Only for a store without a capacity (every insertion fits). Returns the blocks used."""
        entries = self.entries
        order = self._lru
        on_insert = None if order is not None else self.policy.on_insert
        pinned = held is not None
        ref = 1 if pinned else 0
        whole = covered // unit  # units before this index hold ``unit`` tokens
        whole_blocks = -(-unit // block_size)
        left = budget
        tokens_in = 0
        inserted = 0
        evictable_blocks = 0
        for j in range(start, len(keys)):
            key = keys[j]
            if key in entries:
                continue
            if j < whole:
                tokens, blocks = unit, whole_blocks
            else:
                tokens = covered - j * unit
                blocks = -(-tokens // block_size)
            if blocks > left:
                break
            left -= blocks
            entries[key] = Entry(tokens, blocks, ref, now)
            tokens_in += tokens
            inserted += 1
            if on_insert is not None:
                on_insert(key)
            if pinned:
                held.append(key)
            else:
                if order is None:
                    self.policy.add(key)
                else:
                    order[key] = None  # a new key: appended at the end
                evictable_blocks += blocks
        self.tokens += tokens_in
        self.insertions += inserted
        if not pinned:
            self.evictable_blocks += evictable_blocks
            self.evictable_tokens += tokens_in
        return budget - left

    def evict_one(self) -> bool:
        """Evict the policy's victim; False when nothing is evictable."""
        key = self.policy.victim()
        if key is None:
            return False
        self._drop(key, self.entries[key], expired=False)
        return True

    def reclaim(self, limit: int) -> None:
        """Evict (policy order) until at most ``limit`` blocks are evictable, or none are left."""
        if self.evictable_blocks <= limit:
            return
        order = self._lru
        if order is None or self.on_evict is not None:
            while self.evictable_blocks > limit and self.evict_one():
                pass
            return
        pop_entry = self.entries.pop
        pop_oldest = order.popitem
        evictable = self.evictable_blocks
        tokens = 0
        n = 0
        while evictable > limit and order:
            e = pop_entry(pop_oldest(False)[0])
            evictable -= e.blocks
            tokens += e.tokens
            n += 1
        self.evictable_blocks = evictable
        self.tokens -= tokens
        self.evictable_tokens -= tokens
        self.evictions += n

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
