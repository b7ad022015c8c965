"""Routers: which replica a new request goes to.

A router is a class registered in :data:`kavier.registry.ROUTERS`, built once per run as
``cls(setup)`` from a :class:`RouterSetup`, with one method::

    pick(request: RequestView, replicas: Sequence[ReplicaView]) -> int

that returns the index of the replica the request joins. Contract (checked by the contract
tests for every registered router): the index is in ``range(len(replicas))``, the router only
reads the views (it changes no replica), and the same seed and the same calls give the same
picks. A new router is one class in this module (or in a user's module imported before the
run) with ``@ROUTERS.register("name")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kavier.registry import ROUTERS


class RequestView(Protocol):
    """What a router may read of an arriving request."""

    @property
    def session_id(self) -> int:
        """The request's session (negative: none)."""

    @property
    def ids(self) -> Any:
        """Its prefix-cache identity (:class:`kavier.cache.keys.PrefixIds`), or None."""


class ReplicaView(Protocol):
    """What a router may read of a replica."""

    @property
    def outstanding(self) -> int:
        """Requests running or waiting on the replica."""

    @property
    def kv_fraction(self) -> float:
        """KV blocks in use / the replica's KV blocks (0..1)."""


class PrefixIndexView(Protocol):
    """What a router may ask the cluster's block prefix cache."""

    @property
    def in_gpu(self) -> bool:
        """True when the cache lives in the replicas' GPU memory (scope ``replica``/``session``)."""

    def cached_units(self, replica: int, ids: Any) -> int:
        """Leading prefix units of ``ids`` cached on ``replica``."""


@dataclass(frozen=True)
class RouterSetup:
    """Everything a router may be built from: the run's seed, the block prefix cache (or None)
    and ``affinity_load_guard`` (requests; ``prefix_affinity``'s load guard)."""

    seed: int = 0
    cache: PrefixIndexView | None = None
    affinity_load_guard: int = 8


class Router(Protocol):
    """Chooses a replica for each arriving request (see the module docstring)."""

    def __init__(self, setup: RouterSetup) -> None: ...

    def pick(self, request: RequestView, replicas: Sequence[ReplicaView]) -> int: ...


@ROUTERS.register("round_robin")
class RoundRobin:
    """Replicas in turn."""

    def __init__(self, setup: RouterSetup) -> None:
        self._next = 0

    def pick(self, request: RequestView, replicas: Sequence[ReplicaView]) -> int:
        index = self._next % len(replicas)
        self._next += 1
        return index


@ROUTERS.register("random")
class RandomRouter:
    """A uniformly random replica (seeded)."""

    def __init__(self, setup: RouterSetup) -> None:
        import numpy as np  # here, so that listing the routers (kavier run --help) needs no numpy

        self._rng = np.random.default_rng(setup.seed)

    def pick(self, request: RequestView, replicas: Sequence[ReplicaView]) -> int:
        return int(self._rng.integers(len(replicas)))


@ROUTERS.register("least_outstanding")
class LeastOutstanding:
    """The replica with the fewest running + waiting requests (lowest index on ties)."""

    def __init__(self, setup: RouterSetup) -> None:
        pass

    def pick(self, request: RequestView, replicas: Sequence[ReplicaView]) -> int:
        loads = [replica.outstanding for replica in replicas]
        return loads.index(min(loads))


@ROUTERS.register("least_kv")
class LeastKv:
    """The replica with the lowest KV-cache occupancy, then the fewest outstanding requests."""

    def __init__(self, setup: RouterSetup) -> None:
        pass

    def pick(self, request: RequestView, replicas: Sequence[ReplicaView]) -> int:
        return min(range(len(replicas)), key=lambda i: (replicas[i].kv_fraction, replicas[i].outstanding, i))


@ROUTERS.register("session_affinity")
class SessionAffinity:
    """A session's requests stay on one replica (its KV/prefix state stays warm); requests
    without a session, and a session's first request, go to the least-loaded replica."""

    def __init__(self, setup: RouterSetup) -> None:
        self._home: dict[int, int] = {}
        self._fallback = LeastOutstanding(setup)

    def pick(self, request: RequestView, replicas: Sequence[ReplicaView]) -> int:
        session = request.session_id
        if session < 0:
            return self._fallback.pick(request, replicas)
        home = self._home.get(session)
        if home is None:
            home = self._fallback.pick(request, replicas)
            self._home[session] = home
        return home


@ROUTERS.register("prefix_affinity")
class PrefixAffinity:
    """The replica holding the longest cached prefix of the request, with a load guard.

    When that replica has more than ``affinity_load_guard`` outstanding requests above the least
    loaded one, the request goes to the least loaded replica instead. Ties on the prefix go to
    the least loaded of the tied replicas. Without a block prefix cache in GPU memory it is
    ``least_outstanding``."""

    def __init__(self, setup: RouterSetup) -> None:
        self._cache = setup.cache
        self._guard = setup.affinity_load_guard

    def pick(self, request: RequestView, replicas: Sequence[ReplicaView]) -> int:
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


def make_router(name: str, setup: RouterSetup) -> Router:
    """The router registered as ``name``, built from ``setup``."""
    return ROUTERS.get(name)(setup)
