"""Eviction policies over a cache's *evictable* entries.

An entry in use by a running request is pinned and lives outside the policy (as vLLM removes
in-use blocks from its free queue); it re-enters with :meth:`~EvictionPolicy.add` when released.
The store asks :meth:`~EvictionPolicy.victim` for the next entry to drop and then calls
:meth:`~EvictionPolicy.forget`. Every policy is registered in
:data:`kavier.registry.EVICTION_POLICIES` and built as ``cls(seed, capacity)``.

- ``lru``: least recently released/used first.
- ``fifo``: oldest insertion first, whatever its use since.
- ``lfu``: fewest hits first, least recently used among equals.
- ``random``: uniformly random (seeded).
- ``ttl``: LRU order under pressure; besides, entries idle for ``ttl`` seconds expire (the store
  drops them, see :class:`~kavier.cache.block_store.BlockStore`), as OpenAI's 5–10 minute idle
  expiry of prompt caches.
- ``arc``: Adaptive Replacement Cache (Megiddo & Modha, FAST 2003): entries seen once (T1) and
  seen again (T2) in two LRU lists, ghost lists B1/B2 of recently evicted keys, and a target size
  ``p`` for T1 that grows on a B1 ghost hit and shrinks on a B2 ghost hit.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import ClassVar, Protocol

from kavier.registry import EVICTION_POLICIES


class EvictionPolicy(Protocol):
    """The order in which a store drops its evictable entries.

    The contract every registered policy keeps (checked by the contract tests):

    - only keys given to :meth:`add` and not since removed or forgotten are *evictable*;
      ``len(policy)`` counts them and :meth:`victim` returns one of them (or None when empty);
    - :meth:`remove` takes a key out because it is pinned again (it may come back with
      :meth:`add`); :meth:`forget` takes it out for good because the store dropped it;
    - :meth:`on_hit`, :meth:`on_insert` and :meth:`on_miss` only inform the policy (a lookup
      matched a key, a key was inserted, a lookup missed a key); they change no membership;
    - the same seed and the same calls give the same victims.

    ``expires_idle``: the store also drops entries idle for its TTL (the ``ttl`` policy); such a
    policy also has ``oldest()``, the least recently used evictable key.
    """

    expires_idle: ClassVar[bool]

    def __init__(self, seed: int = 0, capacity: Callable[[], int] | None = None) -> None: ...
    def __len__(self) -> int: ...
    def add(self, key: Hashable) -> None: ...
    def remove(self, key: Hashable) -> None: ...
    def victim(self) -> Hashable | None: ...
    def forget(self, key: Hashable) -> None: ...
    def on_hit(self, key: Hashable) -> None: ...
    def on_insert(self, key: Hashable) -> None: ...
    def on_miss(self, key: Hashable) -> None: ...


@EVICTION_POLICIES.register("lru")
class LruPolicy:
    """Least recently used first."""

    expires_idle: ClassVar[bool] = False

    def __init__(self, seed: int = 0, capacity: Callable[[], int] | None = None) -> None:
        self._order: OrderedDict[Hashable, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._order)

    def add(self, key: Hashable) -> None:
        self._order[key] = None
        self._order.move_to_end(key)

    def remove(self, key: Hashable) -> None:
        self._order.pop(key, None)

    def victim(self) -> Hashable | None:
        return next(iter(self._order), None)

    def oldest(self) -> Hashable | None:
        """The least recently used key (for TTL expiry)."""
        return next(iter(self._order), None)

    def forget(self, key: Hashable) -> None:
        self._order.pop(key, None)

    def on_hit(self, key: Hashable) -> None:
        pass

    def on_insert(self, key: Hashable) -> None:
        pass

    def on_miss(self, key: Hashable) -> None:
        pass


class _HeapPolicy:
    """A pool ordered by a priority tuple, with lazy deletion."""

    expires_idle: ClassVar[bool] = False

    def __init__(self, seed: int = 0, capacity: Callable[[], int] | None = None) -> None:
        self._heap: list[tuple] = []
        self._stamp: dict[Hashable, int] = {}  # key -> stamp of its valid heap entry
        self._tick = 0

    def __len__(self) -> int:
        return len(self._stamp)

    def _priority(self, key: Hashable) -> tuple:
        raise NotImplementedError

    def add(self, key: Hashable) -> None:
        self._tick += 1
        self._stamp[key] = self._tick
        heapq.heappush(self._heap, (*self._priority(key), self._tick, key))
        if len(self._heap) > 4 * len(self._stamp) + 64:
            self._heap = [e for e in self._heap if self._stamp.get(e[-1]) == e[-2]]
            heapq.heapify(self._heap)

    def remove(self, key: Hashable) -> None:
        self._stamp.pop(key, None)

    def victim(self) -> Hashable | None:
        heap = self._heap
        while heap:
            entry = heap[0]
            if self._stamp.get(entry[-1]) == entry[-2]:
                return entry[-1]
            heapq.heappop(heap)
        return None

    def on_hit(self, key: Hashable) -> None:
        pass

    def on_insert(self, key: Hashable) -> None:
        pass

    def on_miss(self, key: Hashable) -> None:
        pass


@EVICTION_POLICIES.register("fifo")
class FifoPolicy(_HeapPolicy):
    """Oldest insertion first, whatever its use since."""

    def __init__(self, seed: int = 0, capacity: Callable[[], int] | None = None) -> None:
        super().__init__()
        self._born: dict[Hashable, int] = {}
        self._count = 0

    def on_insert(self, key: Hashable) -> None:
        self._count += 1
        self._born[key] = self._count

    def _priority(self, key: Hashable) -> tuple:
        return (self._born.get(key, 0),)

    def forget(self, key: Hashable) -> None:
        self._stamp.pop(key, None)
        self._born.pop(key, None)


@EVICTION_POLICIES.register("lfu")
class LfuPolicy(_HeapPolicy):
    """Fewest hits first; least recently released among equals."""

    def __init__(self, seed: int = 0, capacity: Callable[[], int] | None = None) -> None:
        super().__init__()
        self._hits: dict[Hashable, int] = {}

    def on_hit(self, key: Hashable) -> None:
        self._hits[key] = self._hits.get(key, 0) + 1

    def _priority(self, key: Hashable) -> tuple:
        return (self._hits.get(key, 0),)

    def forget(self, key: Hashable) -> None:
        self._stamp.pop(key, None)
        self._hits.pop(key, None)


@EVICTION_POLICIES.register("random")
class RandomPolicy:
    """A uniformly random evictable entry (seeded)."""

    expires_idle: ClassVar[bool] = False

    def __init__(self, seed: int = 0, capacity: Callable[[], int] | None = None) -> None:
        import numpy as np  # here, so that listing the policies (kavier run --help) needs no numpy

        self._rng = np.random.default_rng(seed)
        self._keys: list[Hashable] = []
        self._index: dict[Hashable, int] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: Hashable) -> None:
        if key not in self._index:
            self._index[key] = len(self._keys)
            self._keys.append(key)

    def remove(self, key: Hashable) -> None:
        i = self._index.pop(key, None)
        if i is None:
            return
        last = self._keys.pop()
        if i < len(self._keys):
            self._keys[i] = last
            self._index[last] = i

    def victim(self) -> Hashable | None:
        if not self._keys:
            return None
        return self._keys[int(self._rng.integers(len(self._keys)))]

    def forget(self, key: Hashable) -> None:
        self.remove(key)

    def on_hit(self, key: Hashable) -> None:
        pass

    def on_insert(self, key: Hashable) -> None:
        pass

    def on_miss(self, key: Hashable) -> None:
        pass


@EVICTION_POLICIES.register("ttl")
class TtlPolicy(LruPolicy):
    """LRU order under pressure; besides, entries idle for the cache's TTL expire."""

    expires_idle: ClassVar[bool] = True


@EVICTION_POLICIES.register("arc")
class ArcPolicy:
    """Adaptive Replacement Cache (Megiddo & Modha, FAST 2003): recency and frequency lists.

    ``capacity()`` gives the cache's size in entries (it may change: a cache bounded by free KV
    memory has no fixed size), bounding the ghost lists and the target ``p``.
    """

    expires_idle: ClassVar[bool] = False

    def __init__(self, seed: int = 0, capacity: Callable[[], int] | None = None) -> None:
        self._capacity = capacity or (lambda: 1)
        self.t1: OrderedDict[Hashable, None] = OrderedDict()
        self.t2: OrderedDict[Hashable, None] = OrderedDict()
        self.b1: OrderedDict[Hashable, None] = OrderedDict()
        self.b2: OrderedDict[Hashable, None] = OrderedDict()
        self.frequent: set[Hashable] = set()  # keys that belong in T2 (hit since insertion)
        self.p = 0.0

    def __len__(self) -> int:
        return len(self.t1) + len(self.t2)

    def add(self, key: Hashable) -> None:
        if key in self.frequent:  # seen again: T2 (and out of T1, if it was still there)
            self.t1.pop(key, None)
            target = self.t2
        else:
            target = self.t1
        target[key] = None
        target.move_to_end(key)

    def remove(self, key: Hashable) -> None:
        self.t1.pop(key, None)
        self.t2.pop(key, None)

    def victim(self) -> Hashable | None:
        if self.t1 and (len(self.t1) > self.p or not self.t2):
            return next(iter(self.t1))
        if self.t2:
            return next(iter(self.t2))
        return None

    def forget(self, key: Hashable) -> None:
        self.remove(key)
        ghost = self.b2 if key in self.frequent else self.b1
        self.frequent.discard(key)
        ghost[key] = None
        c = max(1, self._capacity())
        while len(self.b1) > c:
            self.b1.popitem(last=False)
        while len(self.b2) > c:
            self.b2.popitem(last=False)

    def on_hit(self, key: Hashable) -> None:
        self.frequent.add(key)

    def on_insert(self, key: Hashable) -> None:
        pass

    def on_miss(self, key: Hashable) -> None:
        """A lookup missed ``key``: a ghost hit adapts ``p`` and the key returns as frequent."""
        c = max(1, self._capacity())
        if key in self.b1:
            self.p = min(float(c), self.p + max(1.0, len(self.b2) / max(len(self.b1), 1)))
            del self.b1[key]
            self.frequent.add(key)
        elif key in self.b2:
            self.p = max(0.0, self.p - max(1.0, len(self.b1) / max(len(self.b2), 1)))
            del self.b2[key]
            self.frequent.add(key)


def make_policy(name: str, seed: int = 0, capacity: Callable[[], int] | None = None) -> EvictionPolicy:
    """The eviction policy registered as ``name`` (one-line error for an unknown name)."""
    return EVICTION_POLICIES.get(name)(seed, capacity)
