"""The thesis prefix cache: exact match on the first ``prefix_len`` tokens, capacity in prompts, LRU.

A key identifies the first ``prefix_len`` tokens of a prompt (from token ids, Mooncake
``hash_ids`` or session structure; see :func:`prefix_keys`). With session scope the key also
holds the session id. A hit skips the request's prefill (policy ``prefill``) or its whole
processing (policy ``full``, the prompt-response cache of the thesis's reference architecture).
An entry becomes usable when the request that inserted it has finished the work it caches
(``ready_at``), so concurrent GPUs never hit on a prefix still being computed.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np

from kavier.workload.chunk import RequestChunk


class ThesisPrefixCache:
    """LRU cache of prompt prefixes with a capacity counted in prompts."""

    def __init__(self, capacity_prompts: int) -> None:
        if capacity_prompts < 1:
            raise ValueError("capacity_prompts must be >= 1")
        self.capacity = int(capacity_prompts)
        self._store: OrderedDict[Hashable, float] = OrderedDict()
        self.lookups = 0
        self.hits = 0
        self.insertions = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._store)

    def lookup(self, key: Hashable, now_s: float, ready_at_s: float) -> bool:
        """Look ``key`` up at time ``now_s``; on a miss insert it, usable from ``ready_at_s``.

        Returns True on a hit (the entry exists and is ready). A present but not yet ready entry
        is a miss that does not re-insert. Inserting into a full cache evicts the least recently
        used entry.
        """
        self.lookups += 1
        store = self._store
        ready = store.get(key)
        if ready is not None:
            if ready <= now_s:
                store.move_to_end(key)
                self.hits += 1
                return True
            return False
        if len(store) >= self.capacity:
            store.popitem(last=False)
            self.evictions += 1
        store[key] = ready_at_s
        self.insertions += 1
        return False

    def set_ready(self, key: Hashable, ready_at_s: float) -> None:
        """Make an entry usable from ``ready_at_s`` if that is earlier than its current time."""
        current = self._store.get(key)
        if current is not None and ready_at_s < current:
            self._store[key] = ready_at_s


def prefix_keys(chunk: RequestChunk, prefix_len: int, session_scope: bool) -> list[Hashable | None]:
    """The cache key of each request's first ``prefix_len`` tokens, or None when it has none.

    A prompt shorter than ``prefix_len`` has no key (it is neither looked up nor inserted), as
    in the thesis. Identity comes from, in order of preference: token ids, Mooncake hash_ids
    (a prefix of L tokens is the first ceil(L / block) block ids), or session structure (turns of
    a session extend each other, so all of a session's long-enough prompts share the prefix).
    """
    n = len(chunk)
    keys: list[Hashable | None] = [None] * n
    if prefix_len <= 0 or n == 0:
        return keys
    long_enough = chunk.num_input_tokens >= prefix_len
    if chunk.input_tokens is None and chunk.hash_ids is None:
        if not chunk.session_prefix:
            return keys
        # Session identity: the session id itself is the key (whatever the scope, since it is
        # already per session). No other kind of key is an int, so kinds never collide.
        has_key = (long_enough & (chunk.session_id >= 0)).tolist()
        return [s if k else None for s, k in zip(chunk.session_id.tolist(), has_key, strict=True)]
    sessions = chunk.session_id.tolist()
    if chunk.input_tokens is not None:
        offsets = chunk.input_tokens.offsets.to_numpy()
        values = np.ascontiguousarray(chunk.input_tokens.values.to_numpy(zero_copy_only=False))
        values = values.astype(np.int64, copy=False)
        lengths = np.diff(offsets)
        for i in np.flatnonzero(long_enough & (lengths >= prefix_len)).tolist():
            start = int(offsets[i])
            keys[i] = values[start : start + prefix_len].tobytes()
    else:
        blocks = math.ceil(prefix_len / chunk.hash_block_tokens)
        offsets = chunk.hash_ids.offsets.to_numpy()
        values = np.ascontiguousarray(chunk.hash_ids.values.to_numpy(zero_copy_only=False))
        values = values.astype(np.int64, copy=False)
        lengths = np.diff(offsets)
        for i in np.flatnonzero(long_enough & (lengths >= blocks)).tolist():
            start = int(offsets[i])
            keys[i] = values[start : start + blocks].tobytes()
    if session_scope:
        keys = [None if k is None else (sessions[i], k) for i, k in enumerate(keys)]
    return keys
