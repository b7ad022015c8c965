"""``kavier.cache.keys``: block identities are the hash chain of a request's ids."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("session_scope", [False, True])
def test_mooncake_keys_equal_the_hash_chain(session_scope):
    """prefix_ids on hash_ids == the per-id hash chain (truncated to the prompt, response key of
    the whole chain)."""
    import pyarrow as pa

    from kavier.cache.keys import prefix_ids
    from kavier.workload.chunk import RequestChunk

    rng = np.random.default_rng(7)
    n = 200
    lists = [[int(x) for x in rng.integers(0, 30, size=int(rng.integers(0, 9)))] for _ in range(n)]
    n_in = rng.integers(0, 5000, size=n)
    sessions = rng.integers(-1, 6, size=n)
    zeros = np.zeros(n, dtype=np.int64)
    chunk = RequestChunk(
        np.arange(n), zeros.astype(float), n_in, zeros + 1, sessions, zeros,
        hash_ids=pa.array(lists, type=pa.list_(pa.int64())), hash_block_tokens=512,
    )  # fmt: skip
    got = prefix_ids(chunk, 16, session_scope)
    for i in range(n):
        h = hash(("session", int(sessions[i]))) if session_scope else 0
        keys = []
        for block_id in lists[i]:
            h = hash((h, block_id))
            keys.append(h)
        covered = min(int(n_in[i]), len(keys) * 512)
        keys = keys[: -(-covered // 512)] if covered else []
        assert list(got[i].keys) == keys and got[i].covered == covered and got[i].unit == 512
        assert got[i].response_key == (hash((h, int(n_in[i]))) if keys else None)
