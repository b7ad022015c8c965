"""Routers: which replica a new request goes to.

A router is a small object with ``pick(request, replicas) -> index``; ``request`` has
``session_id`` and ``row`` attributes and replicas expose ``outstanding`` (running + waiting
requests) and ``kv_fraction`` (KV blocks in use / capacity). To add a router, write a class with
that method and add it to ``ROUTERS``.
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


ROUTERS: dict[str, type] = {
    "round_robin": RoundRobin,
    "random": RandomRouter,
    "least_outstanding": LeastOutstanding,
    "least_kv": LeastKv,
    "session_affinity": SessionAffinity,
}


def make_router(name: str, seed: int = 0) -> Router:
    """A router by name."""
    return ROUTERS[name](seed)
