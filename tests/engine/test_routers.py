"""``kavier.engine.routers``: each router's placement (the shared contract is in
test_router_contract.py)."""

from __future__ import annotations

import numpy as np

import kavier
from tests.runs import SERVE


def test_routers():
    req = {
        "num_input_tokens": [100] * 12,
        "num_output_tokens": [10] * 12,
        "arrival_s": np.arange(12) * 0.001,
        "session_id": [0, 1, 2, 3] * 3,
    }
    rr = kavier.simulate(requests=req, replicas=3, router="round_robin").requests
    assert sorted(rr.column("replica").to_pylist()) == [0] * 4 + [1] * 4 + [2] * 4
    aff = kavier.simulate(requests=req, replicas=3, router="session_affinity").requests
    by_session = {}
    for s, rep in zip(aff.column("session_id").to_pylist(), aff.column("replica").to_pylist(), strict=True):
        by_session.setdefault(s, set()).add(rep)
    assert all(len(v) == 1 for v in by_session.values())
    for name in ("random", "least_outstanding", "least_kv"):
        assert kavier.simulate(requests=req, replicas=3, router=name).requests.num_rows == 12


def test_prefix_affinity_sends_turns_to_their_prefix():
    sessions, turns = 6, 4  # round robin then scatters a session across replicas
    n = sessions * turns
    sid = np.repeat(np.arange(sessions), turns)
    turn = np.tile(np.arange(turns), sessions)
    req = {
        "num_input_tokens": 2000 + 600 * turn,
        "num_output_tokens": np.full(n, 200),
        "arrival_s": turn * 60.0 + sid * 0.5,
        "session_id": sid,
    }
    kw = dict(requests=req, replicas=4, **SERVE)
    affinity = kavier.simulate(router="prefix_affinity", **kw).summary
    spread = kavier.simulate(router="round_robin", **kw).summary
    assert affinity["prefix_cache_token_hit_ratio"] > spread["prefix_cache_token_hit_ratio"]
    # Every later turn finds its whole previous context on the replica it was sent to.
    expected = sum((2000 + 600 * (k - 1) + 200) // 16 * 16 for k in range(1, turns)) * sessions
    assert affinity["prefix_cache_hit_tokens"] == expected
