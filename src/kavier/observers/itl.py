"""Inter-token latency (ITL): the distribution of every gap between two output tokens of a
request, as ``vllm bench serve`` and The ML.ENERGY Benchmark report it: summary keys only, no
file.

A request that decodes in an iteration gets its next token when the iteration ends, so each
decoding sequence of an iteration contributes one gap equal to the iteration's duration: the
gaps of a run are the iterations' durations, each weighing the number of sequences that decode
in it. A sequence whose prompt (or its last chunk) is in the iteration gets its *first* token
there, which is not a gap (it ends its TTFT). Every gap of the run counts, from its first
iteration to its last (the benchmarks pool every request's gaps, ramp-up and ramp-down
included).

An iteration that prefills only (vLLM V0 without chunked prefill, SGLang's prefill-first
batches) holds the running decoders back (the backend's ``held_seqs``): their next gap spans
the held iterations and the next decode iteration, whose other sequences (those that got their
first token in the held iterations) have a gap of that iteration alone.

This is not ``tpot_*``: a request's TPOT is the mean of its gaps, ``(e2e - ttft) / (n - 1)``,
and its percentiles are over requests. An iteration that carries a prompt beside decoding
sequences is longer than one that does not; with prompts arriving one or two per iteration,
most gaps are the shorter kind, so the median gap lies below the mean, which TPOT and
``batch / output throughput`` measure.

Approximations: a closed-form run of ``k`` decode iterations (the
backend's piece whose batch does not change) contributes ``k`` gaps per sequence at the piece's
mean iteration time (the iterations of such a run differ only by their growing KV reads); the
gap across a preemption (a sequence waiting, then recomputing) is not counted. Gaps are binned
on a logarithmic grid of relative width :data:`RELATIVE_BIN_WIDTH`: a percentile is exact to
that width, the mean is exact. The sequential backend (the thesis preset) has no iterations:
its keys are null.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kavier.events import Activity, BaseObserver
from kavier.io.sinks import Sink
from kavier.registry import OUTPUTS
from kavier.scenario import Scenario

KEYS = ("itl_mean_s", "itl_p50_s", "itl_p90_s", "itl_p99_s")
# The gap grid: bins of relative width RELATIVE_BIN_WIDTH from SHORTEST_S to LONGEST_S (gaps
# outside fall in the first or last bin).
SHORTEST_S = 1e-7
LONGEST_S = 1e5
RELATIVE_BIN_WIDTH = 1e-3
_LOG_STEP = math.log1p(RELATIVE_BIN_WIDTH)
_BINS = int(math.ceil(math.log(LONGEST_S / SHORTEST_S) / _LOG_STEP)) + 1


def bin_of(gap_s: np.ndarray) -> np.ndarray:
    """The grid bin of each gap (seconds): ``floor(log(gap / SHORTEST_S) / log(1 + width))``."""
    with np.errstate(divide="ignore"):
        index = np.floor(np.log(np.maximum(gap_s, SHORTEST_S) / SHORTEST_S) / _LOG_STEP)
    return np.clip(index, 0, _BINS - 1).astype(np.int64)


def bin_value(index: int) -> float:
    """A bin's geometric middle (seconds): within half a bin of every gap in it."""
    return SHORTEST_S * math.exp((index + 0.5) * _LOG_STEP)


@OUTPUTS.register("itl")
class InterTokenLatency(BaseObserver):
    """``itl_mean_s`` and ``itl_p50/p90/p99_s`` over every gap between two output tokens."""

    @staticmethod
    def wanted(scenario: Scenario, sink: Sink) -> bool:
        return True

    def __init__(self, scenario: Scenario, sink: Sink) -> None:
        self.counts = np.zeros(_BINS)  # gaps per bin
        self.gaps = 0.0  # gaps counted
        self.gap_s = 0.0  # their sum (s)
        self.missing = False  # some busy piece came without iteration detail
        # per replica: cohorts of held decoders [count, seconds since their last token], oldest first
        self.held: dict[int, list[list[float]]] = {}

    def on_activity(self, activity: Activity) -> None:
        a = activity
        if not a.t0.size:
            return
        d = a.detail
        if "decode_seqs" not in d or "iterations" not in d:
            self.missing = True
            return
        iterations = d["iterations"]
        weight = d["decode_seqs"] * iterations  # gaps the piece ends
        gap = (a.t1 - a.t0) / np.maximum(iterations, 1)
        held = d.get("held_seqs")
        if held is not None and (self.held or held.any()):
            weight = weight.copy()
            extra_w, extra_gap = self._spans(a.replica, a.t0, a.t1, d["decode_seqs"], held, gap, weight)
            weight = np.concatenate([weight, extra_w])
            gap = np.concatenate([gap, extra_gap])
        keep = weight > 0
        if not keep.any():
            return
        weight, gap = weight[keep], gap[keep]
        self.counts += np.bincount(bin_of(gap), weights=weight, minlength=_BINS)
        self.gaps += float(weight.sum())
        self.gap_s += float(np.dot(weight, gap))

    def _spans(self, replica, t0, t1, decode_seqs, held, gap, weight) -> tuple[np.ndarray, np.ndarray]:
        """The gaps that span held iterations, in piece order per replica. A held iteration adds
        its seconds to every cohort of held decoders and starts a cohort of the decoders held for
        the first time (a sequence whose first token the iteration before gave); a decode piece
        after held ones gives each cohort's decoders one gap of the cohort's seconds plus its
        first iteration (taken out of ``weight``, which this adjusts in place)."""
        extra_w, extra_gap = [], []
        for i in np.flatnonzero((held > 0) | (decode_seqs > 0)).tolist():
            r = int(replica[i])
            if held[i] > 0:  # an iteration that prefills only, holding the decoders back
                cohorts = self.held.setdefault(r, [])
                excess = sum(c[0] for c in cohorts) - float(held[i])
                while excess > 0 and cohorts:  # fewer held than before (preempted): newest first
                    cut = min(excess, cohorts[-1][0])
                    cohorts[-1][0] -= cut
                    excess -= cut
                    if cohorts[-1][0] <= 0:
                        cohorts.pop()
                for c in cohorts:
                    c[1] += float(t1[i] - t0[i])
                if excess < 0:
                    cohorts.append([-excess, float(t1[i] - t0[i])])
            elif r in self.held:
                left = float(decode_seqs[i])
                for n, since in self.held.pop(r):
                    n = min(n, left)
                    left -= n
                    weight[i] -= n
                    extra_w.append(n)
                    extra_gap.append(since + float(gap[i]))
        return np.asarray(extra_w, dtype=float), np.asarray(extra_gap, dtype=float)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) of the gaps counted (seconds)."""
        cumulative = np.cumsum(self.counts)
        index = int(np.searchsorted(cumulative, q / 100.0 * cumulative[-1]))
        return bin_value(min(index, _BINS - 1))

    def summary(self) -> dict[str, Any]:
        """``itl_*`` (seconds; null without iteration detail or without any gap)."""
        if self.missing or self.gaps <= 0:
            return dict.fromkeys(KEYS)
        return {
            "itl_mean_s": self.gap_s / self.gaps,
            "itl_p50_s": self.percentile(50),
            "itl_p90_s": self.percentile(90),
            "itl_p99_s": self.percentile(99),
        }
