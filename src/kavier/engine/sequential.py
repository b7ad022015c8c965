"""Sequential GPUs: each runs one request at a time; requests queue FCFS for the next free GPU.

The thesis's execution model. Because a request's service time is known when it starts, the
whole future of a sequential GPU is known in closed form: admitting a request fixes its start
and finish at once, and no per-token or per-phase events are needed. Routing to the GPU that
frees first, at arrival, equals a global FCFS queue served by the next free GPU, since starts
are non-decreasing in arrival order.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from kavier.cache.prefix_thesis import ThesisPrefixCache

EDGE_REPLICA = -1  # requests answered by the prompt-response cache without any GPU work


@dataclass
class SequentialTimes:
    """Per-request outcome of a chunk (seconds; replica -1 = served from the response cache)."""

    start_s: np.ndarray
    prefill_s: np.ndarray
    decode_s: np.ndarray
    replica: np.ndarray
    hit: np.ndarray


class SequentialCluster:
    """``num_gpus`` GPUs running requests one at a time, fed from one FCFS queue."""

    def __init__(
        self,
        num_gpus: int,
        cache: ThesisPrefixCache | None = None,
        cache_policy: str = "prefill",
    ) -> None:
        self.num_gpus = int(num_gpus)
        self.cache = cache
        self.full_policy = cache_policy == "full"
        self._free = [(0.0, g) for g in range(self.num_gpus)]  # heap of (free_at_s, gpu)

    def process(
        self,
        arrival_s: np.ndarray,
        prefill_s: np.ndarray,
        decode_s: np.ndarray,
        keys: list[Hashable | None],
    ) -> SequentialTimes:
        """Admit a chunk of arrival-ordered requests; returns their starts and service times."""
        if self.num_gpus == 1 and not (self.full_policy and self.cache is not None):
            return self._process_one_gpu(arrival_s, prefill_s, decode_s, keys)
        return self.process_general(arrival_s, prefill_s, decode_s, keys)

    def _process_one_gpu(
        self,
        arrival_s: np.ndarray,
        prefill_s: np.ndarray,
        decode_s: np.ndarray,
        keys: list[Hashable | None],
    ) -> SequentialTimes:
        """:meth:`process_general` for one GPU and the prefill policy, in one tight loop.

        The same arithmetic in the same order (``start = max(arrival, free)``, ``finish =
        start + prefill + decode``) and the same cache operations as
        :meth:`ThesisPrefixCache.lookup`, inlined: the results are bit-identical.
        """
        n = arrival_s.shape[0]
        pre_l = prefill_s.astype(np.float64, copy=False).tolist()
        dec_l = decode_s.astype(np.float64, copy=False).tolist()
        start: list[float] = [0.0] * n
        f = self._free[0][0]
        cache = self.cache
        if cache is None or all(k is None for k in keys):
            for i, a in enumerate(arrival_s.tolist()):
                s = a if a > f else f
                start[i] = s
                f = s + pre_l[i] + dec_l[i]
            hit = np.zeros(n, dtype=bool)
        else:
            hits: list[int] = []
            store = cache._store
            get = store.get
            move_to_end = store.move_to_end
            popitem = store.popitem
            capacity = cache.capacity
            size = len(store)
            lookups = insertions = evictions = 0
            for i, a in enumerate(arrival_s.tolist()):
                s = a if a > f else f
                start[i] = s
                p = pre_l[i]
                key = keys[i]
                if key is not None:
                    lookups += 1
                    ready = get(key)
                    if ready is None:
                        if size >= capacity:
                            popitem(last=False)
                            evictions += 1
                        else:
                            size += 1
                        store[key] = s + p
                        insertions += 1
                    elif ready <= s:
                        move_to_end(key)
                        hits.append(i)
                        p = 0.0
                        pre_l[i] = 0.0
                f = s + p + dec_l[i]
            cache.lookups += lookups
            cache.hits += len(hits)
            cache.insertions += insertions
            cache.evictions += evictions
            hit = np.zeros(n, dtype=bool)
            hit[hits] = True
        self._free[0] = (f, 0)
        return SequentialTimes(
            start_s=np.array(start, dtype=np.float64),
            prefill_s=np.array(pre_l, dtype=np.float64),
            decode_s=np.array(dec_l, dtype=np.float64),
            replica=np.zeros(n, dtype=np.int32),
            hit=hit,
        )

    def process_general(
        self,
        arrival_s: np.ndarray,
        prefill_s: np.ndarray,
        decode_s: np.ndarray,
        keys: list[Hashable | None],
    ) -> SequentialTimes:
        """Any number of GPUs and either cache policy (the reference for the fast path)."""
        n = arrival_s.shape[0]
        start = np.empty(n)
        replica = np.empty(n, dtype=np.int32)
        hit = np.zeros(n, dtype=bool)
        pre = prefill_s.astype(np.float64, copy=True)
        dec = decode_s.astype(np.float64, copy=True)
        arrivals = arrival_s.tolist()
        pre_l = pre.tolist()
        dec_l = dec.tolist()
        free = self._free
        cache = self.cache
        full = self.full_policy
        lookup = cache.lookup if cache is not None else None
        inf = float("inf")
        for i in range(n):
            a = arrivals[i]
            key = keys[i] if lookup is not None else None
            if key is not None and full and lookup(key, a, inf):
                start[i] = a
                replica[i] = EDGE_REPLICA
                hit[i] = True
                pre_l[i] = 0.0
                dec_l[i] = 0.0
                continue
            f, g = free[0]
            s = a if a > f else f
            p = pre_l[i]
            if key is not None and not full and lookup(key, s, s + p):
                hit[i] = True
                p = 0.0
                pre_l[i] = 0.0
            finish = s + p + dec_l[i]
            if key is not None and full:
                cache.set_ready(key, finish)
            heapq.heapreplace(free, (finish, g))
            start[i] = s
            replica[i] = g
        return SequentialTimes(
            start_s=start,
            prefill_s=np.asarray(pre_l),
            decode_s=np.asarray(dec_l),
            replica=replica,
            hit=hit,
        )
