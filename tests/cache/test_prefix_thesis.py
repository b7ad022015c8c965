"""``kavier.cache.prefix_thesis``: LRU in prompts, readiness, keys from tokens / hash ids / sessions."""

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from kavier.cache.prefix_thesis import ThesisPrefixCache, prefix_keys
from kavier.workload.chunk import RequestChunk


def test_lru_evicts_least_recently_used():
    cache = ThesisPrefixCache(2)
    assert not cache.lookup("a", 0, 0)
    assert not cache.lookup("b", 0, 0)
    assert cache.lookup("a", 1, 1)  # a is now most recent
    assert not cache.lookup("c", 2, 2)  # evicts b
    assert cache.evictions == 1
    assert cache.lookup("a", 3, 3)
    assert not cache.lookup("b", 4, 4)
    assert (cache.hits, cache.lookups) == (2, 6)


def test_entry_not_ready_is_a_miss_without_reinsertion():
    cache = ThesisPrefixCache(4)
    assert not cache.lookup("a", 0.0, 5.0)
    assert not cache.lookup("a", 1.0, 9.0)  # still being computed
    assert cache.insertions == 1
    assert cache.lookup("a", 5.0, 99.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 12), max_size=200), st.integers(1, 6))
def test_matches_reference_lru(keys, capacity):
    cache = ThesisPrefixCache(capacity)
    ref: list[int] = []
    for k in keys:
        expected = k in ref
        if expected:
            ref.remove(k)
        elif len(ref) >= capacity:
            ref.pop(0)
        ref.append(k)
        assert cache.lookup(k, 0.0, 0.0) == expected
        assert len(cache) <= capacity


def _chunk(n_in, sessions, tokens=None, hashes=None, session_prefix=False):
    n = len(n_in)
    return RequestChunk(
        request_id=np.arange(n),
        arrival_s=np.zeros(n),
        num_input_tokens=np.array(n_in),
        num_output_tokens=np.ones(n, dtype=np.int64),
        session_id=np.array(sessions),
        turn_id=np.zeros(n, dtype=np.int64),
        input_tokens=None if tokens is None else pa.array(tokens, pa.list_(pa.int64())),
        hash_ids=None if hashes is None else pa.array(hashes, pa.list_(pa.int64())),
        session_prefix=session_prefix,
    )


def test_token_keys_match_on_first_prefix_len_tokens_only():
    chunk = _chunk([4, 4, 4, 1], [0, 1, 0, 0], tokens=[[1, 2, 3, 4], [1, 2, 9, 9], [1, 3, 3, 4], [1]])
    keys = prefix_keys(chunk, 2, session_scope=False)
    assert keys[0] == keys[1] != keys[2]
    assert keys[3] is None  # shorter than prefix_len
    scoped = prefix_keys(chunk, 2, session_scope=True)
    assert scoped[0] != scoped[1]  # different sessions


def test_hash_id_keys_use_leading_blocks():
    chunk = _chunk([1500, 1200, 1500], [-1, -1, -1], hashes=[[7, 8, 9], [7, 8], [7, 5, 9]])
    keys = prefix_keys(chunk, 1024, session_scope=False)  # 2 blocks of 512
    assert keys[0] == keys[1] != keys[2]


def test_session_structure_keys():
    chunk = _chunk([2000, 3000, 500, 2500], [3, 3, 3, 4], session_prefix=True)
    keys = prefix_keys(chunk, 1024, session_scope=True)
    assert keys[0] == keys[1] != keys[3]
    assert keys[2] is None
