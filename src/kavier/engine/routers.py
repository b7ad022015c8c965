"""Routers: which replica a new request goes to.

A router is a small object with ``pick(request, replicas) -> index``; ``request`` has
``session_id``, ``row`` and ``ids`` (its prefix-cache identity, or None) attributes and replicas
expose ``outstanding`` (running + waiting requests) and ``kv_fraction`` (KV blocks in use /
capacity). To add a router, write a class with that method and add it to ``ROUTERS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class Router(Protocol):
    """Chooses a replica for each arriving request."""

    def pick(self, request: Any, replicas: Sequence[Any]) -> int: ...


class RoundRobin:
    """Replicas in turn."""

    def __init__(self, seed: int = 0) -> None:
        self._next = 0

    def pick(self, request: Any, replicas: Sequence[Any]) -> int:
        index = self._next % len(replicas)
        self._next += 1
        return index


class RandomRouter:
    """A uniformly random replica (seeded)."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)

    def pick(self, request: Any, replicas: Sequence[Any]) -> int:
        return int(self._rng.integers(len(replicas)))


class LeastOutstanding:
    """The replica with the fewest running + waiting requests (lowest index on ties)."""

    def __init__(self, seed: int = 0) -> None:
        pass

    def pick(self, request: Any, replicas: Sequence[Any]) -> int:
        loads = [replica.outstanding for replica in replicas]
        return loads.index(min(loads))


class LeastKv:
    """The replica with the lowest KV-cache occupancy, then the fewest outstanding requests."""

    def __init__(self, seed: int = 0) -> None:
        pass

    def pick(self, request: Any, replicas: Sequence[Any]) -> int:
        return min(range(len(replicas)), key=lambda i: (replicas[i].kv_fraction, replicas[i].outstanding, i))


class SessionAffinity:
    """A session's requests stay on one replica (its KV/prefix state stays warm); requests
    without a session, and a session's first request, go to the least-loaded replica."""

    def __init__(self, seed: int = 0) -> None:
        self._home: dict[int, int] = {}
        self._fallback = LeastOutstanding()

    def pick(self, request: Any, replicas: Sequence[Any]) -> int:
        session = request.session_id
        if session < 0:
            return self._fallback.pick(request, replicas)
        home = self._home.get(session)
        if home is None:
            home = self._fallback.pick(request, replicas)
            self._home[session] = home
        return home


class PrefixAffinity:
    """The replica holding the longest cached prefix of the request (its GPU prefix cache), with a
    load guard: when that replica has more than ``guard`` outstanding requests above the least
    loaded one, the request goes to the least loaded replica instead. Ties on the prefix go to the
    least loaded of the tied replicas. Without a block prefix cache it is ``least_outstanding``."""

    def __init__(self, seed: int = 0, cache: Any = None, guard: int = 8) -> None:
        self._cache = cache
        self._guard = guard

    def pick(self, request: Any, replicas: Sequence[Any]) -> int:
        loads = [replica.outstanding for replica in replicas]
        least = loads.index(min(loads))
        ids = getattr(request, "ids", None)
        if self._cache is None or ids is None or not self._cache.in_gpu:
            return least
        best, best_key = least, (0, -loads[least], -least)
        for i in range(len(replicas)):
            key = (self._cache.cached_units(i, ids), -loads[i], -i)
            if key > best_key:
                best, best_key = i, key
        if loads[best] > loads[least] + self._guard:
            return least
        return best


ROUTERS: dict[str, type] = {
    "round_robin": RoundRobin,
    "random": RandomRouter,
    "least_outstanding": LeastOutstanding,
    "least_kv": LeastKv,
    "session_affinity": SessionAffinity,
    "prefix_affinity": PrefixAffinity,
}


def make_router(name: str, seed: int = 0, cache: Any = None, guard: int = 8) -> Router:
    """A router by name (``cache`` and ``guard`` are for ``prefix_affinity``)."""
    if name == "prefix_affinity":
        return PrefixAffinity(seed, cache, guard)
    return ROUTERS[name](seed)
