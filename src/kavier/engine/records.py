"""Request records: the per-request columns of ``requests.parquet`` (seconds, tokens).

Each backend turns what it simulated into :data:`kavier.events.Records`: the sequential backend
from the closed-form times of a chunk of requests, the serving backend from its finished
sequences.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kavier.engine.sequential import SequentialTimes
from kavier.events import Records
from kavier.workload.chunk import RequestChunk


def request_table(chunk: RequestChunk, times: SequentialTimes, first_token_offset_s: float) -> Records:
    """The records of a chunk run by the sequential backend (its closed-form times)."""
    arrival = chunk.arrival_s
    start = times.start_s
    prefill = times.prefill_s
    decode = times.decode_s
    n_out = chunk.num_output_tokens
    finish = start + prefill + decode
    produces = (n_out >= 1) & (decode > 0)
    first_token = start + prefill + np.where(produces, np.minimum(first_token_offset_s, decode), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(n_out >= 2, (finish - first_token) / np.maximum(n_out - 1, 1), np.nan)
    cached = np.where(times.hit, chunk.num_input_tokens, 0).astype(np.int64)
    return {
        "request_id": chunk.request_id.astype(np.int64),
        "session_id": chunk.session_id.astype(np.int64),
        "arrival_s": arrival,
        "start_s": start,
        "first_token_s": first_token,
        "finish_s": finish,
        "num_input_tokens": chunk.num_input_tokens.astype(np.int64),
        "num_output_tokens": n_out.astype(np.int64),
        "cached_tokens": cached,
        "queue_s": start - arrival,
        "prefill_s": prefill,
        "decode_s": decode,
        "ttft_s": first_token - arrival,
        "tpot_s": tpot,
        "e2e_s": finish - arrival,
        "replica": times.replica.astype(np.int32),
        "preemptions": np.zeros(len(chunk), dtype=np.int32),
    }


def records_from(finished: list[tuple[Any, int, float]]) -> Records:
    """The records of finished sequences ``(seq, replica, mean batch size)`` of the serving
    backend, sorted by request id."""
    finished = sorted(finished, key=lambda f: f[0].request_id)
    seqs = [f[0] for f in finished]
    arrival = np.array([s.arrival for s in seqs])
    start = np.array([s.start for s in seqs])
    first = np.array([s.first_token for s in seqs])
    finish = np.array([s.finish for s in seqs])
    n_out = np.array([s.n_out for s in seqs], dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(n_out >= 2, (finish - first) / np.maximum(n_out - 1, 1), np.nan)
    return {
        "request_id": np.array([s.request_id for s in seqs], dtype=np.int64),
        "session_id": np.array([s.session_id for s in seqs], dtype=np.int64),
        "arrival_s": arrival,
        "start_s": start,
        "first_token_s": first,
        "finish_s": finish,
        "num_input_tokens": np.array([s.n_in for s in seqs], dtype=np.int64),
        "num_output_tokens": n_out,
        "cached_tokens": np.array([s.cached for s in seqs], dtype=np.int64),
        "queue_s": start - arrival,
        "prefill_s": first - start,
        "decode_s": finish - first,
        "ttft_s": first - arrival,
        "tpot_s": tpot,
        "e2e_s": finish - arrival,
        "replica": np.array([f[1] for f in finished], dtype=np.int32),
        "preemptions": np.array([s.preemptions for s in seqs], dtype=np.int32),
        "_batch": np.array([f[2] for f in finished]),
    }
