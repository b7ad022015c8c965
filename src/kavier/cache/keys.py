"""Block identity for the block prefix cache: hash-chained keys per request.

A request's prompt is cut into cache *units* of ``unit`` tokens; unit ``j``'s key identifies the
unit's content *and everything before it* (a hash chain, as vLLM and SGLang key KV blocks), so
equal keys mean equal prefixes. Identity comes from, in order of preference:

- **token ids** (``input_tokens``): units of ``block_size`` tokens; only full units have keys
  (a trailing partial block is not cacheable, as in vLLM);
- **Mooncake ``hash_ids``**: one unit per id (``hash_block_tokens`` tokens, the last one possibly
  partial), key ``j`` = hash of ids ``0..j``;
- **session structure** (``session_prefix``: a turn's prompt = the previous prompt + the previous
  answer + new text): unit ``j`` of a session is the same content in every turn that holds it,
  so the keys are ``(session << 32) + j`` as a ``range`` (no per-block work); the answer's full
  blocks are cacheable too (``final_keys``).

With ``session_scope`` every key is also tied to the request's session, so only turns of one
session share. ``response_key`` identifies the whole prompt for the edge prompt-response cache
(None when the workload cannot tell exact repeats: session structure only says prompts grow).

Keys are Python ints from ``hash`` of tuples: their values differ between processes, but only
their equality is used, so results do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kavier.workload.chunk import RequestChunk

_SESSION_SHIFT = 32


@dataclass(slots=True)
class PrefixIds:
    """One request's cache identity (tokens; see the module docstring)."""

    keys: Sequence[int]  # prompt units, in order
    unit: int  # tokens per unit
    covered: int  # prompt tokens the keys cover (the last unit may be partial)
    final_keys: Sequence[int] | None = None  # prompt + answer units (session structure only)
    response_key: int | None = None  # the whole prompt, for the prompt-response cache

    def unit_tokens(self, j: int) -> int:
        """Tokens of unit ``j`` (the last unit of a Mooncake prompt may be partial)."""
        return min(self.unit, self.covered - j * self.unit)

    def tokens_of(self, n: int) -> int:
        """Tokens covered by the first ``n`` units."""
        return min(n * self.unit, self.covered)


def prefix_ids(chunk: RequestChunk, block_size: int, session_scope: bool) -> list[PrefixIds | None]:
    """The cache identity of every request in ``chunk`` (None when the workload gives none)."""
    n = len(chunk)
    out: list[PrefixIds | None] = [None] * n
    if n == 0:
        return out
    sessions = chunk.session_id.tolist()
    n_in = chunk.num_input_tokens.tolist()
    if chunk.input_tokens is not None:
        offsets = chunk.input_tokens.offsets.to_numpy()
        values = np.ascontiguousarray(chunk.input_tokens.values.to_numpy(zero_copy_only=False))
        values = values.astype(np.int64, copy=False)
        bs = int(block_size)
        for i in range(n):
            start, stop = int(offsets[i]), int(offsets[i + 1])
            tokens = values[start:stop]
            full = tokens.size // bs
            h = hash(("session", sessions[i])) if session_scope else 0
            keys: list[int] = []
            if full:
                blocks = tokens[: full * bs].reshape(full, bs)
                for row in blocks:
                    h = hash((h, row.tobytes()))
                    keys.append(h)
            response = hash((h, tokens[full * bs :].tobytes(), int(tokens.size)))
            out[i] = PrefixIds(keys, bs, full * bs, None, response)
        return out
    if chunk.hash_ids is not None:
        unit = int(chunk.hash_block_tokens)
        offsets = chunk.hash_ids.offsets.to_numpy()
        ids = chunk.hash_ids.values.to_numpy(zero_copy_only=False).astype(np.int64, copy=False).tolist()
        bounds = offsets.tolist()
        for i in range(n):
            h = hash(("session", sessions[i])) if session_scope else 0
            keys = [h := hash((h, block_id)) for block_id in ids[bounds[i] : bounds[i + 1]]]
            covered = min(n_in[i], len(keys) * unit)
            if covered < len(keys) * unit:
                keys = keys[: -(-covered // unit)] if covered else []
            out[i] = PrefixIds(keys, unit, covered, None, hash((h, n_in[i])) if keys else None)
        return out
    if chunk.session_prefix:
        bs = int(block_size)
        n_out = chunk.num_output_tokens.tolist()
        for i in range(n):
            s = sessions[i]
            if s < 0:
                continue
            base = (s + 1) << _SESSION_SHIFT
            full = n_in[i] // bs
            out[i] = PrefixIds(
                range(base, base + full), bs, full * bs, range(base, base + (n_in[i] + n_out[i]) // bs)
            )
        return out
    return out
