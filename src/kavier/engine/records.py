"""Per-request records and per-request activity profiles of the sequential (thesis) execution.

Column names and units follow the output contract in DESIGN.md (``requests.parquet``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from kavier.engine.sequential import SequentialTimes
from kavier.io.columns import arrow_table
from kavier.workload.chunk import RequestChunk

REQUEST_COLUMNS = (
    "request_id",
    "session_id",
    "arrival_s",
    "start_s",
    "first_token_s",
    "finish_s",
    "num_input_tokens",
    "num_output_tokens",
    "cached_tokens",
    "queue_s",
    "prefill_s",
    "decode_s",
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "replica",
    "preemptions",
)


@dataclass(frozen=True)
class UtilizationProfile:
    """The thesis's GPU utilisation over one request: ``edge`` during the first ``warmup_s``
    and last ``cooldown_s`` seconds, ``busy`` in between (thesis Listing 4.3)."""

    busy: float = 0.95
    edge: float = 0.5
    warmup_s: float = 0.2
    cooldown_s: float = 0.2

    def knots(self, duration_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Offsets (s) where the busy part starts and ends for each request duration."""
        warm = np.minimum(self.warmup_s, duration_s)
        cool_start = np.maximum(duration_s - self.cooldown_s, warm)
        return warm, cool_start

    def integral(
        self, x_s: np.ndarray, duration_s: np.ndarray, warm: np.ndarray, cool: np.ndarray
    ) -> np.ndarray:
        """Utilisation x seconds accumulated from a request's start to offset ``x_s`` (>= 0).

        ``edge * min(x, D) + (busy - edge) * clip(x - warm, 0, cool - warm)``: the edge level
        throughout the request plus the extra of the busy part.
        """
        total = np.minimum(x_s, duration_s)
        total *= self.edge
        extra = np.subtract(x_s, warm)
        np.clip(extra, 0.0, cool - warm, out=extra)
        extra *= self.busy - self.edge
        total += extra
        return total


def request_table(
    chunk: RequestChunk, times: SequentialTimes, first_token_offset_s: float
) -> dict[str, np.ndarray]:
    """The contract's per-request columns for a processed chunk."""
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


def to_arrow(columns: dict[str, np.ndarray]) -> pa.Table:
    """The request columns as an Arrow table in contract order."""
    return arrow_table({name: columns[name] for name in REQUEST_COLUMNS})


@dataclass
class Segments:
    """Pieces of GPU activity: on ``[t0, t1)`` of ``replica``, utilisation ``util`` and KV
    bytes ``kv0 + kv_slope (t - t0)``; ``row`` is the request's row in the chunk's records and
    ``in_prefill`` tells the phase."""

    replica: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    util: np.ndarray
    kv0: np.ndarray
    kv_slope: np.ndarray
    row: np.ndarray
    in_prefill: np.ndarray


def activity_segments(
    rec: dict[str, np.ndarray],
    profile: UtilizationProfile,
    kv_bytes_per_token: float,
) -> Segments:
    """Split each GPU request into segments of constant utilisation and linear KV growth.

    KV bytes grow from the cached tokens to the prompt during prefill and from the prompt to
    prompt + output during decode; ``kv_bytes_per_token`` is 0 when the KV cache is off.
    """
    gpu_rows = np.flatnonzero((rec["replica"] >= 0) & ((rec["prefill_s"] + rec["decode_s"]) > 0))
    start = rec["start_s"][gpu_rows]
    prefill = rec["prefill_s"][gpu_rows]
    decode = rec["decode_s"][gpu_rows]
    n_in = rec["num_input_tokens"][gpu_rows].astype(np.float64)
    n_out = rec["num_output_tokens"][gpu_rows].astype(np.float64)
    cached = rec["cached_tokens"][gpu_rows].astype(np.float64)
    replica = rec["replica"][gpu_rows]
    duration = prefill + decode
    warm, cool = profile.knots(duration)
    points = np.sort(np.stack([np.zeros_like(duration), warm, cool, prefill, duration], axis=1), axis=1)
    o0 = points[:, :-1].ravel()
    o1 = points[:, 1:].ravel()
    k = points.shape[1] - 1
    mid = 0.5 * (o0 + o1)
    dur_r = np.repeat(duration, k)
    warm_r, cool_r, pre_r = np.repeat(warm, k), np.repeat(cool, k), np.repeat(prefill, k)
    util = np.where((mid < warm_r) | (mid >= cool_r), profile.edge, profile.busy)
    in_prefill = mid < pre_r
    with np.errstate(invalid="ignore", divide="ignore"):
        pre_rate = np.where(pre_r > 0, (np.repeat(n_in - cached, k)) / pre_r, 0.0)
        dec_rate = np.where(dur_r - pre_r > 0, np.repeat(n_out, k) / np.maximum(dur_r - pre_r, 1e-300), 0.0)
    tokens0 = np.where(
        in_prefill,
        np.repeat(cached, k) + pre_rate * o0,
        np.repeat(n_in, k) + dec_rate * (o0 - pre_r),
    )
    slope = np.where(in_prefill, pre_rate, dec_rate)
    base = np.repeat(start, k)
    return Segments(
        replica=np.repeat(replica, k),
        t0=base + o0,
        t1=base + o1,
        util=util,
        kv0=tokens0 * kv_bytes_per_token,
        kv_slope=slope * kv_bytes_per_token,
        row=np.repeat(gpu_rows, k),
        in_prefill=in_prefill,
    )


def count_steps(rec: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Queue and running-count changes: waiting +1 at arrival, -1 at start; running +1 at
    start, -1 at finish (GPU requests only)."""
    gpu = rec["replica"] >= 0
    arrival, start, finish = rec["arrival_s"][gpu], rec["start_s"][gpu], rec["finish_s"][gpu]
    replica = rec["replica"][gpu]
    n = arrival.shape[0]
    ones, zeros = np.ones(n), np.zeros(n)
    t = np.concatenate([arrival, start, finish])
    rep = np.concatenate([replica, replica, replica])
    deltas = {
        "waiting": np.concatenate([ones, -ones, zeros]),
        "running": np.concatenate([zeros, ones, -ones]),
    }
    return rep, t, deltas
