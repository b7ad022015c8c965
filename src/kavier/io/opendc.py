"""OpenDC workload export: one task per request, fragments at the export rate.

Schema (OpenDC's workload format): tasks ``id`` int32, ``submission_time`` int64 ms,
``duration`` int64 ms, ``cpu_count`` int32, ``cpu_capacity`` double MHz, ``mem_capacity``
int64 (MiB), ``gpu_count`` int32, ``gpu_capacity`` double MHz; fragments ``id`` int32,
``duration`` int64 ms, ``cpu_usage`` double MHz, ``gpu_usage`` double MHz. Durations are whole
milliseconds, rounded (never truncated to zero: at least 1 ms); a task's fragments sum to its
duration. A fragment's GPU usage is the request's mean utilisation over that fragment times the
GPU's capacity, so OpenDC integrates the same energy Kavier does.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from kavier.io.columns import arrow_table
from kavier.perf.utilization import UtilizationProfile

MAX_FRAGMENT_ROWS = 1 << 21
HOST_CPU_CAPACITY_MHZ = 1000.0

TASK_SCHEMA = pa.schema(
    [
        ("id", pa.int32()),
        ("submission_time", pa.int64()),
        ("duration", pa.int64()),
        ("cpu_count", pa.int32()),
        ("cpu_capacity", pa.float64()),
        ("mem_capacity", pa.int64()),
        ("gpu_count", pa.int32()),
        ("gpu_capacity", pa.float64()),
    ]
)
FRAGMENT_SCHEMA = pa.schema(
    [
        ("id", pa.int32()),
        ("duration", pa.int64()),
        ("cpu_usage", pa.float64()),
        ("gpu_usage", pa.float64()),
    ]
)


def duration_ms(seconds: np.ndarray) -> np.ndarray:
    """Whole milliseconds, rounded half to even, at least 1."""
    return np.maximum(np.rint(np.asarray(seconds) * 1000.0).astype(np.int64), 1)


def tasks_table(
    rec: dict[str, np.ndarray],
    start_epoch_ms: int,
    gpu_capacity_mhz: float,
    gpu_memory_mib: int,
) -> pa.Table:
    """One OpenDC task per request: submitted at its arrival, lasting its GPU busy time."""
    n = rec["request_id"].shape[0]
    busy = rec["prefill_s"] + rec["decode_s"]
    submission = start_epoch_ms + np.rint(rec["arrival_s"] * 1000.0).astype(np.int64)
    return arrow_table(
        {
            "id": rec["request_id"].astype(np.int32),
            "submission_time": submission,
            "duration": duration_ms(busy),
            "cpu_count": np.ones(n, dtype=np.int32),
            "cpu_capacity": np.full(n, HOST_CPU_CAPACITY_MHZ),
            "mem_capacity": np.full(n, int(gpu_memory_mib), dtype=np.int64),
            "gpu_count": np.ones(n, dtype=np.int32),
            "gpu_capacity": np.full(n, float(gpu_capacity_mhz)),
        },
        schema=TASK_SCHEMA,
    )


def fragment_tables(
    rec: dict[str, np.ndarray],
    export_rate_s: float,
    profile: UtilizationProfile,
    gpu_capacity_mhz: float,
) -> Iterator[pa.Table]:
    """Fragments of ``export_rate_s`` (the last one takes the remainder), in bounded tables."""
    frag_ms = max(1, int(round(export_rate_s * 1000.0)))
    busy = rec["prefill_s"] + rec["decode_s"]
    total_ms = duration_ms(busy)
    counts = np.maximum(total_ms // frag_ms, 1)
    ids = rec["request_id"].astype(np.int32)
    on_gpu = rec["replica"] >= 0
    cum = np.cumsum(counts)
    start_idx = 0
    n = ids.shape[0]
    while start_idx < n:
        base = cum[start_idx - 1] if start_idx else 0
        stop = int(np.searchsorted(cum, base + MAX_FRAGMENT_ROWS, side="right"))
        stop = max(stop, start_idx + 1)
        sl = slice(start_idx, stop)
        c = counts[sl]
        rows = int(c.sum())
        owner = np.repeat(np.arange(stop - start_idx, dtype=np.int32), c)
        ends = np.cumsum(c)
        last_end = ends - 1
        # Fragment bounds in ms: every fragment is frag_ms long but the last takes the rest.
        x0 = np.arange(rows, dtype=np.int64)
        x0 -= (ends - c)[owner]
        x0 *= frag_ms
        dur_ms = np.full(rows, frag_ms, dtype=np.int64)
        dur_ms[last_end] = total_ms[sl] - x0[last_end]
        dur = busy[sl]
        warm, cool = profile.knots(dur)
        x0_s = x0 / 1000.0
        x1_s = x0_s + frag_ms / 1000.0
        x1_s[last_end] = x0_s[last_end] + dur_ms[last_end] / 1000.0
        usage = _usage(profile, x0_s, x1_s, dur, warm, cool, owner, c, last_end)
        usage *= gpu_capacity_mhz * 1000.0
        last_usage = usage[last_end] / dur_ms[last_end]
        usage /= float(frag_ms)
        usage[last_end] = last_usage
        # Round away float noise (to 0.001 MHz) so equal usages are equal and encode compactly.
        np.round(usage, 3, out=usage)
        if not on_gpu[sl].all():
            usage[~on_gpu[sl][owner]] = 0.0
        yield arrow_table(
            {
                "id": ids[sl][owner],
                "duration": dur_ms,
                "cpu_usage": np.zeros(rows),
                "gpu_usage": usage,
            },
            schema=FRAGMENT_SCHEMA,
        )
        start_idx = stop


def _usage(
    profile: UtilizationProfile,
    x0_s: np.ndarray,
    x1_s: np.ndarray,
    dur: np.ndarray,
    warm: np.ndarray,
    cool: np.ndarray,
    owner: np.ndarray,
    counts: np.ndarray,
    last_end: np.ndarray,
) -> np.ndarray:
    """``integral(x1) - integral(x0)`` of :meth:`UtilizationProfile.integral` per fragment.

    Only a request's last fragment can reach past its duration ``D`` (the others end at least
    half a millisecond before it), so ``min(x, D)`` is ``x`` elsewhere and needs no
    per-fragment copy of ``D``; the same operations on the same values give the same bits.
    When a fragment does not fit that rule (durations beyond ~1e12 s), the plain formula runs.
    """
    multi = np.flatnonzero(counts > 1)
    fits = bool(np.all(x0_s[last_end] <= dur)) and bool(np.all(x1_s[last_end[multi] - 1] <= dur[multi]))
    if not fits:
        d_r, w_r, c_r = dur[owner], warm[owner], cool[owner]
        usage = profile.integral(x1_s, d_r, w_r, c_r)
        usage -= profile.integral(x0_s, d_r, w_r, c_r)
        return usage
    w_r = warm[owner]
    span_r = (cool - warm)[owner]
    extra_gain = profile.busy - profile.edge

    def integral(x: np.ndarray, at_last: np.ndarray) -> np.ndarray:
        total = x * profile.edge
        total[last_end] = at_last
        extra = np.subtract(x, w_r)
        np.clip(extra, 0.0, span_r, out=extra)
        extra *= extra_gain
        total += extra
        return total

    usage = integral(x1_s, np.minimum(x1_s[last_end], dur) * profile.edge)
    usage -= integral(x0_s, np.minimum(x0_s[last_end], dur) * profile.edge)
    return usage


def batched_fragment_table(
    rec: dict[str, np.ndarray], export_rate_s: float, capacity_mhz: float, busy: float
) -> pa.Table:
    """OpenDC fragments of batched requests: a request's share of its replica's GPU (busy
    utilisation / mean batch size) over its service time, at the export rate."""
    frag_ms = max(1, int(round(export_rate_s * 1000.0)))
    total = duration_ms(rec["finish_s"] - rec["start_s"])
    counts = np.maximum(total // frag_ms, 1)
    owner = np.repeat(np.arange(counts.size), counts)
    first_row = np.cumsum(counts) - counts
    j = np.arange(owner.size) - first_row[owner]
    dur = np.full(owner.size, frag_ms, dtype=np.int64)
    last = np.cumsum(counts) - 1
    dur[last] = total - j[last] * frag_ms
    usage = np.round(capacity_mhz * busy / np.maximum(rec["_batch"], 1.0), 3)[owner]
    return arrow_table(
        {
            "id": rec["request_id"].astype(np.int32)[owner],
            "duration": dur,
            "cpu_usage": np.zeros(owner.size),
            "gpu_usage": usage,
        },
        schema=FRAGMENT_SCHEMA,
    )
