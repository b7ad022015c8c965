"""Predictions set against measurements: one :class:`Comparison` per measured quantity, and the
error statistics ``kavier validate`` prints (MAPE and bias, per suite and metric, fitted apart
from held out).

A comparison is *fitted* when the constants that produced the prediction were fitted on that
measurement's group (its GPU and model in that suite), and *held out* otherwise; *reference*
marks the thesis's own experiment, whose constants the thesis chose on its data. A suite whose
rows no constant was fitted on labels its replay with the shipped profiles *held out: shipped*.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

FITTED, HELD_OUT, REFERENCE = "fitted", "held out", "reference"
# The shipped profiles replaying a suite none of whose rows they were fitted on.
SHIPPED_HELD_OUT = "held out: shipped"

# The metrics, in the order they are reported, with what each compares.
METRICS: dict[str, str] = {
    "ttft_s": "time to first token (s), as the measurement counts it",
    "prefill_s": "one prefill iteration of the whole batch (s)",
    "tpot_s": "time per output token after the first (s)",
    "ttft_saturated_s": "time to first token of a saturated run (s): mostly queueing, reported apart",
    "itl_s": "inter-token latency (s): the median (ML.ENERGY) or the mean per request (NIM)",
    "decode_step_s": "one decode iteration (s)",
    "e2e_s": "request latency, arrival to last token (s)",
    "output_tokens_per_s": "output throughput (tokens/s)",
    "output_tokens_per_s_ratio": "output throughput on a GPU over that on H100-SXM, same engine and load",
    "j_per_output_token": "GPU energy per output token (J)",
    "avg_power_w": "average GPU power, summed over the GPUs (W)",
    "avg_power_fraction": "average power per GPU / the GPU's maximum power",
    "avg_batch": "mean running requests",
}


@dataclass(frozen=True)
class Comparison:
    """One measured quantity and its prediction (units: the metric's)."""

    suite: str
    case: str
    metric: str
    gpu: str
    model: str
    measured: float
    predicted: float
    split: str = HELD_OUT

    @property
    def error(self) -> float:
        """Signed relative error, (predicted - measured) / measured."""
        return (self.predicted - self.measured) / self.measured


@dataclass(frozen=True)
class ErrorStats:
    """Errors of a group of comparisons, in percent: MAPE and bias (mean signed error)."""

    n: int
    mape_pct: float
    bias_pct: float
    worst_pct: float


def error_stats(comparisons: Sequence[Comparison]) -> ErrorStats:
    """MAPE, bias and the largest absolute error of ``comparisons`` (NaN for none)."""
    errors = [c.error for c in comparisons if math.isfinite(c.predicted) and c.measured != 0]
    if not errors:
        return ErrorStats(0, math.nan, math.nan, math.nan)
    n = len(errors)
    return ErrorStats(
        n=n,
        mape_pct=100.0 * sum(abs(e) for e in errors) / n,
        bias_pct=100.0 * sum(errors) / n,
        worst_pct=100.0 * max(abs(e) for e in errors),
    )


def grouped(
    comparisons: Iterable[Comparison], keys: Sequence[str] = ("suite", "metric", "split")
) -> dict[tuple[str, ...], list[Comparison]]:
    """Comparisons grouped by the values of ``keys`` (attributes of :class:`Comparison`): groups
    in first-appearance order, but metrics in :data:`METRICS` order within each earlier key."""
    groups: dict[tuple[str, ...], list[Comparison]] = {}
    for c in comparisons:
        groups.setdefault(tuple(getattr(c, k) for k in keys), []).append(c)
    if "metric" not in keys:
        return groups
    at = keys.index("metric")
    first = {key: i for i, key in enumerate(groups)}
    order = {m: i for i, m in enumerate(METRICS)}

    def rank(key: tuple[str, ...]) -> tuple:
        before = min(first[k] for k in groups if k[:at] == key[:at])
        return (before, order.get(key[at], len(order)), first[key])

    return dict(sorted(groups.items(), key=lambda kv: rank(kv[0])))
