"""The contract of every router in ``kavier.registry.ROUTERS``.

From ``kavier.engine.routers``: a router built as ``cls(RouterSetup)`` answers ``pick(request,
replicas)`` with an index in ``range(len(replicas))``, only reads the views (it changes no
replica), and gives the same picks for the same seed and the same calls; in a run, every request
is then served exactly once. The tests are parametrised over the registry's names as read at
collection time, so a newly registered router is checked too.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kavier
from kavier.engine.routers import RouterSetup, make_router
from kavier.registry import ROUTERS
from tests.contracts import assert_registered_once
from tests.runs import SERVE

NAMES = ROUTERS.names()


@dataclass
class Replica:
    """What a router may read of a replica (kavier.engine.routers.ReplicaView)."""

    outstanding: int
    kv_fraction: float


@dataclass
class Request:
    """What a router may read of a request (kavier.engine.routers.RequestView)."""

    session_id: int
    ids: Any


@dataclass
class PrefixIndex:
    """A block prefix cache as a router sees it: leading units of ``ids`` cached per replica."""

    in_gpu: bool
    cached: dict[tuple[int, Any], int]

    def cached_units(self, replica: int, ids: Any) -> int:
        return self.cached.get((replica, ids), 0)


@st.composite
def routing(draw):
    """A set-up and a sequence of (request, replica views) calls on a fixed number of replicas."""
    n = draw(st.integers(1, 8))
    prefixes = st.sampled_from(["a", "b", "c"])
    cached = draw(
        st.dictionaries(st.tuples(st.integers(0, n - 1), prefixes), st.integers(0, 12), max_size=10)
    )
    cache = draw(st.none() | st.builds(PrefixIndex, st.booleans(), st.just(cached)))
    setup = RouterSetup(
        seed=draw(st.integers(0, 2**32 - 1)), cache=cache, affinity_load_guard=draw(st.integers(0, 8))
    )
    replica = st.builds(Replica, st.integers(0, 40), st.floats(0.0, 1.0))
    call = st.tuples(
        st.builds(Request, st.integers(-1, 5), st.none() | prefixes),
        st.lists(replica, min_size=n, max_size=n),
    )
    return setup, draw(st.lists(call, min_size=1, max_size=30))


def picks(name: str, setup: RouterSetup, calls: list) -> list[int]:
    router = make_router(name, setup)
    out = []
    for request, replicas in calls:
        before = copy.deepcopy((request, replicas))
        index = router.pick(request, replicas)
        assert isinstance(index, int | np.integer) and not isinstance(index, bool), type(index)
        assert 0 <= index < len(replicas), (index, len(replicas))
        assert (request, replicas) == before, "the router changed what it was shown"
        out.append(int(index))
    return out


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None)
@given(routing())
def test_picks_are_in_range_read_only_and_repeatable(name, case):
    setup, calls = case
    first = picks(name, setup, calls)
    again = picks(name, copy.deepcopy(setup), copy.deepcopy(calls))
    assert again == first, "the same seed and calls gave other picks"


@pytest.mark.parametrize("name", NAMES)
def test_a_run_with_the_router_serves_every_request_once(name):
    kw = dict(workload="chat", num_sessions=8, session_rate=2.0, replicas=3, router=name, seed=5, **SERVE)
    a = kavier.simulate(**kw)
    t = a.requests
    assert sorted(t.column("request_id").to_pylist()) == list(range(t.num_rows))
    assert t.num_rows == a.summary["num_requests"] > 0
    assert a.summary["output_tokens"] == sum(t.column("num_output_tokens").to_pylist())
    assert set(t.column("replica").to_pylist()) <= {0, 1, 2}
    b = kavier.simulate(**kw)
    assert a.requests.equals(b.requests)


class LastReplica:
    """Always the last replica (a test router)."""

    def __init__(self, setup: RouterSetup) -> None:
        self.calls = 0

    def pick(self, request, replicas) -> int:
        self.calls += 1
        return len(replicas) - 1


def test_a_registered_router_is_listed_and_used_by_a_run(register):
    register(ROUTERS, "test-last", LastReplica)
    assert ROUTERS.names()[-1] == "test-last"
    req = {"num_input_tokens": [100] * 12, "num_output_tokens": [10] * 12, "arrival_s": np.arange(12) * 0.01}
    r = kavier.simulate(requests=req, replicas=3, router="test-last", **SERVE)
    assert r.summary["router"] == "test-last"
    assert r.requests.column("replica").to_pylist() == [2] * 12


def test_a_router_name_is_registered_once(register):
    register(ROUTERS, "test-once", LastReplica)
    assert_registered_once(ROUTERS, "test-once", LastReplica, type("Other", (LastReplica,), {}))
