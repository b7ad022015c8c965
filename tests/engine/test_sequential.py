"""``kavier.engine.sequential``: FCFS queueing for the next free GPU, cache hits, invariants."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kavier.cache.prefix_thesis import ThesisPrefixCache
from kavier.engine.sequential import EDGE_REPLICA, SequentialCluster


def test_one_gpu_queues_fcfs():
    cluster = SequentialCluster(1)
    t = cluster.process(
        np.array([0.0, 1.0, 10.0]), np.array([2.0, 2.0, 2.0]), np.array([3.0, 3.0, 3.0]), [None] * 3
    )
    assert np.allclose(t.start_s, [0.0, 5.0, 10.0])
    assert t.replica.tolist() == [0, 0, 0]


def test_two_gpus_take_the_next_free_one():
    cluster = SequentialCluster(2)
    t = cluster.process(np.zeros(3), np.array([1.0, 5.0, 1.0]), np.zeros(3), [None] * 3)
    assert np.allclose(t.start_s, [0.0, 0.0, 1.0])
    assert t.replica.tolist() == [0, 1, 0]


def test_prefill_hit_skips_prefill_once_the_prefix_is_ready():
    cache = ThesisPrefixCache(10)
    cluster = SequentialCluster(2, cache, "prefill")
    # request 1 starts at 0.5 on GPU 1 while request 0's prefill (ends at 2.0) is still running
    t = cluster.process(
        np.array([0.0, 0.5, 3.0]),
        np.array([2.0, 2.0, 2.0]),
        np.array([1.0, 1.0, 1.0]),
        ["k", "k", "k"],
    )
    assert t.hit.tolist() == [False, False, True]
    assert np.allclose(t.prefill_s, [2.0, 2.0, 0.0])


def test_full_policy_answers_repeats_at_arrival_without_a_gpu():
    cache = ThesisPrefixCache(10)
    cluster = SequentialCluster(1, cache, "full")
    t = cluster.process(np.array([0.0, 1.0, 20.0]), np.full(3, 2.0), np.full(3, 5.0), ["k", "k", "k"])
    # request 1 arrives before request 0's response exists (t=7): it is processed normally
    assert t.hit.tolist() == [False, False, True]
    assert t.replica.tolist() == [0, 0, EDGE_REPLICA]
    assert np.isclose(t.start_s[2], 20.0) and t.decode_s[2] == 0.0


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 5), st.floats(0, 3), st.floats(0, 3)), min_size=1, max_size=60),
    st.integers(1, 4),
)
def test_invariants(rows, gpus):
    arrivals = np.cumsum([r[0] for r in rows])
    pre = np.array([r[1] for r in rows])
    dec = np.array([r[2] for r in rows])
    t = SequentialCluster(gpus).process(arrivals, pre, dec, [None] * len(rows))
    finish = t.start_s + pre + dec
    assert np.all(t.start_s >= arrivals)
    assert np.all(np.diff(t.start_s) >= -1e-12)  # FCFS: starts follow arrival order
    for g in range(gpus):  # a GPU runs one request at a time
        mine = np.flatnonzero(t.replica == g)
        assert np.all(t.start_s[mine][1:] >= finish[mine][:-1] - 1e-9)
    # work-conserving: nobody waits while a GPU is idle
    waited = t.start_s > arrivals + 1e-9
    for i in np.flatnonzero(waited):
        busy = [
            (t.start_s[j] <= t.start_s[i] - 1e-12 < finish[j])
            or (t.start_s[j] < t.start_s[i] and finish[j] >= t.start_s[i] - 1e-9)
            for j in range(i)
            if t.replica[j] == t.replica[i]
        ]
        assert any(busy)


def _run_chunks(fast, rows, capacity, cache_on, cut):
    cache = ThesisPrefixCache(capacity) if cache_on else None
    cluster = SequentialCluster(1, cache, "prefill")
    arrivals = np.cumsum([r[0] for r in rows])
    pre = np.array([r[1] for r in rows])
    dec = np.array([r[2] for r in rows])
    keys = [r[3] for r in rows]
    run = cluster.process if fast else cluster.process_general
    parts = [
        run(arrivals[a:b], pre[a:b], dec[a:b], keys[a:b]) for a, b in ((0, cut), (cut, len(rows))) if b > a
    ]
    joined = {
        f: np.concatenate([getattr(p, f) for p in parts])
        for f in ("start_s", "prefill_s", "decode_s", "replica", "hit")
    }
    state = (cluster._free, None if cache is None else (cache.lookups, cache.hits, cache.insertions))
    store = None if cache is None else (list(cache._store.items()), cache.evictions)
    return joined, state, store


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.5, 1.0, 2.5]) | st.floats(0, 5),
            st.sampled_from([0.0, 1.0, 2.0]) | st.floats(0, 3),
            st.sampled_from([0.0, 1.0]) | st.floats(0, 3),
            st.none() | st.integers(0, 6) | st.tuples(st.just("session"), st.integers(0, 3)),
        ),
        min_size=1,
        max_size=80,
    ),
    st.integers(1, 5),
    st.booleans(),
    st.integers(0, 80),
)
def test_one_gpu_fast_path_is_bit_identical_to_the_general_loop(rows, capacity, cache_on, cut):
    fast = _run_chunks(True, rows, capacity, cache_on, min(cut, len(rows)))
    ref = _run_chunks(False, rows, capacity, cache_on, min(cut, len(rows)))
    for name in ref[0]:
        assert fast[0][name].dtype == ref[0][name].dtype
        assert fast[0][name].tobytes() == ref[0][name].tobytes(), name
    assert fast[1:] == ref[1:]
