"""Run-level metrics (``summary.json``) accumulated chunk by chunk from request records.

Keys carry their unit. Latency percentiles are exact (linear interpolation, numpy's default)
over all requests that produce the metric; ``tpot`` covers requests with >= 2 output tokens.
``prefix_cache_hit_ratio`` is hits per request, as the thesis defined it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kavier.events import BaseObserver, Records


def percentile(values: np.ndarray, q: float) -> float:
    """``float(np.percentile(values, q))`` (linear interpolation, NaN if any value is NaN),
    computed the same way to the bit, but without ``np.percentile``, whose index bookkeeping
    imports ``numpy.ma`` (~15 ms of a run's start-up); NaN for no values. ``q`` in percent."""
    n = values.size
    if n == 0:
        return math.nan
    virtual = (n - 1) * (q / 100)
    lo = min(math.floor(virtual), n - 1)
    hi = lo if virtual >= n - 1 else lo + 1
    part = np.partition(values.ravel(), sorted({0, lo, hi, n - 1}))
    if part.dtype.kind in "fc" and math.isnan(part[-1]):
        return math.nan
    a, b = part[lo], part[hi]
    gamma = virtual - lo if virtual < n - 1 else virtual + 1  # numpy's: its index is then -1
    diff = b - a
    return float(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


class SummaryAccumulator(BaseObserver):
    """Collects per-request columns (a few floats per request) and reduces them at the end.

    It is the driver's first observer: it sees every batch of records (:meth:`on_requests`).
    """

    def __init__(self) -> None:
        self._ttft: list[np.ndarray] = []
        self._tpot: list[np.ndarray] = []
        self._e2e: list[np.ndarray] = []
        self._queue: list[np.ndarray] = []
        self._good: list[np.ndarray] = []  # (ttft, tpot) pairs for goodput
        self.num_requests = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cached_tokens = 0
        self.total_prefill_s = 0.0
        self.total_decode_s = 0.0
        self.end_s = 0.0
        self.edge_served = 0

    def on_requests(self, records: Records) -> None:
        """Fold one batch of request records in."""
        self.add(records)

    def add(self, rec: Records) -> None:
        """Fold one chunk of request records in."""
        n = rec["request_id"].shape[0]
        if n == 0:
            return
        self.num_requests += n
        self.input_tokens += int(rec["num_input_tokens"].sum())
        self.output_tokens += int(rec["num_output_tokens"].sum())
        self.cached_tokens += int(rec["cached_tokens"].sum())
        self.total_prefill_s += float(rec["prefill_s"].sum())
        self.total_decode_s += float(rec["decode_s"].sum())
        self.end_s = max(self.end_s, float(rec["finish_s"].max()))
        self.edge_served += int((rec["replica"] < 0).sum())
        produces = rec["num_output_tokens"] >= 1
        self._ttft.append(rec["ttft_s"][produces])
        tpot = rec["tpot_s"]
        self._tpot.append(tpot[~np.isnan(tpot)])
        self._e2e.append(rec["e2e_s"])
        self._queue.append(rec["queue_s"])
        self._good.append(np.stack([np.where(produces, rec["ttft_s"], 0.0), np.nan_to_num(tpot, nan=0.0)]))

    def serving_metrics(self, slo_ttft: float | None, slo_tpot: float | None) -> dict[str, Any]:
        """Throughputs per second of simulated time and goodput under the SLOs (if given)."""
        sim = self.end_s
        rate = (lambda x: x / sim) if sim > 0 else (lambda x: math.nan)
        pairs = np.concatenate(self._good, axis=1) if self._good else np.zeros((2, 0))
        ok = np.ones(pairs.shape[1], dtype=bool)
        if slo_ttft is not None:
            ok &= pairs[0] <= slo_ttft
        if slo_tpot is not None:
            ok &= pairs[1] <= slo_tpot
        return {
            "output_throughput_tokens_per_s": rate(self.output_tokens),
            "input_throughput_tokens_per_s": rate(self.input_tokens),
            "requests_per_s": rate(self.num_requests),
            "goodput_requests_per_s": rate(int(ok.sum())),
            "slo_attainment": float(ok.mean()) if ok.size else math.nan,
        }

    def result(self) -> dict[str, Any]:
        """The performance keys of summary.json."""
        ttft = np.concatenate(self._ttft) if self._ttft else np.zeros(0)
        tpot = np.concatenate(self._tpot) if self._tpot else np.zeros(0)
        e2e = np.concatenate(self._e2e) if self._e2e else np.zeros(0)
        queue = np.concatenate(self._queue) if self._queue else np.zeros(0)
        sim = self.end_s
        busy = self.total_prefill_s + self.total_decode_s
        tokens = self.input_tokens + self.output_tokens
        return {
            "num_requests": self.num_requests,
            "simulated_time_s": sim,
            "gpu_busy_s": busy,
            "total_prefill_s": self.total_prefill_s,
            "total_decode_s": self.total_decode_s,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "throughput_tokens_per_s": tokens / sim if sim > 0 else math.nan,
            "ttft_mean_s": _mean(ttft),
            "ttft_p50_s": percentile(ttft, 50),
            "ttft_p90_s": percentile(ttft, 90),
            "ttft_p99_s": percentile(ttft, 99),
            "tpot_mean_s": _mean(tpot),
            "tpot_p50_s": percentile(tpot, 50),
            "tpot_p99_s": percentile(tpot, 99),
            "e2e_mean_s": _mean(e2e),
            "e2e_p50_s": percentile(e2e, 50),
            "e2e_p90_s": percentile(e2e, 90),
            "e2e_p99_s": percentile(e2e, 99),
            "queue_mean_s": _mean(queue),
            "queue_p99_s": percentile(queue, 99),
            "requests_served_from_response_cache": self.edge_served,
        }
