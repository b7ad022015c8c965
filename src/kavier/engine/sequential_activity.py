"""GPU activity of requests that run one at a time (the sequential backend).

A request alone on its GPU uses it with the thesis's utilisation profile (warm-up, busy,
cool-down) and holds KV bytes that grow linearly through prefill and through decode; queue
counts change at arrival, start and finish.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kavier.events import Records
from kavier.perf.utilization import UtilizationProfile


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
    rec: Records,
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


def count_steps(rec: Records) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
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
