"""The edge prompt-response cache of the thesis's reference architecture.

An exact repeat of a whole prompt (same token ids, or the same Mooncake block chain and length)
is answered from the cache after ``latency_s``, with no GPU work. An answer becomes usable when
the request that produced it has finished; capacity in entries, LRU.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable


class ResponseCache:
    """LRU map from a prompt's identity to the time its answer is ready (seconds)."""

    def __init__(self, capacity: int, latency_s: float) -> None:
        self.capacity = int(capacity)
        self.latency_s = float(latency_s)
        self._ready: OrderedDict[Hashable, float] = OrderedDict()
        self.lookups = 0
        self.hits = 0
        self.evictions = 0

    def lookup(self, key: Hashable | None, now: float) -> bool:
        """True when ``key``'s answer is cached and ready at ``now``; a new key is reserved."""
        if key is None:
            return False
        self.lookups += 1
        ready = self._ready.get(key)
        if ready is not None:
            self._ready.move_to_end(key)
            if ready <= now:
                self.hits += 1
                return True
            return False
        if len(self._ready) >= self.capacity:
            self._ready.popitem(last=False)
            self.evictions += 1
        self._ready[key] = math.inf
        return False

    def answered(self, key: Hashable | None, t: float) -> None:
        """The request that reserved ``key`` finished at ``t``: its answer is usable from then."""
        if key is not None and key in self._ready and t < self._ready[key]:
            self._ready[key] = t
