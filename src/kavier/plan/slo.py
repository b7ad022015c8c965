"""Does one simulated run meet the latency SLOs? (percentiles, goodput and a backlog guard)

A run *meets* the SLOs when, over its per-request records:

- the ``percentile``-th TTFT (requests with >= 1 output token) is <= ``ttft_s``, and the
  ``percentile``-th TPOT (requests with >= 2 output tokens) is <= ``tpot_s`` (each if given);
- the fraction of requests meeting both SLOs individually (goodput) is >= ``min_goodput_fraction``
  (if given);
- the same percentile checks also hold over the *tail window*, the last ``tail_fraction`` of
  requests by arrival: a backlog that grows through a short trace hurts the last requests most,
  which an all-request percentile can hide;
- the median queueing time of the tail window is <= ``max_queue_s`` (default: the TTFT SLO if
  given, else 1 s), so a TPOT-only SLO cannot be met by an ever-growing queue;
- the run is not ``overloaded`` (:func:`kavier.load.classify_load`, the classification
  ``kavier run`` prints and writes as ``load_state``): its waiting queue does not grow by 10 %
  or more of the arrival rate over the second half of the arrivals. A ``backlogged`` run may
  meet the SLOs (the percentile and tail checks judge it).

Percentiles use numpy's linear interpolation, as ``summary.json`` does; all times are seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from kavier.load import OVERLOADED, classify_load
from kavier.metrics import percentile as _pct


@dataclass(frozen=True)
class SloSpec:
    """Latency targets (seconds) and how they are judged."""

    ttft_s: float | None = None
    tpot_s: float | None = None
    percentile: float = 99.0
    min_goodput_fraction: float | None = None
    tail_fraction: float = 0.1
    max_queue_s: float | None = None

    def __post_init__(self) -> None:
        if self.ttft_s is None and self.tpot_s is None:
            raise ValueError("give a TTFT and/or a TPOT SLO")
        for name in ("ttft_s", "tpot_s", "max_queue_s"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} = {value!r}: must be a positive number of seconds")
        if not 0 < self.percentile <= 100:
            raise ValueError(f"percentile {self.percentile!r}: must be in (0, 100]")
        if self.min_goodput_fraction is not None and not 0 < self.min_goodput_fraction <= 1:
            raise ValueError(f"min goodput fraction {self.min_goodput_fraction!r}: must be in (0, 1]")
        if not 0 < self.tail_fraction <= 1:
            raise ValueError(f"tail fraction {self.tail_fraction!r}: must be in (0, 1]")

    @property
    def queue_limit_s(self) -> float:
        """The tail window's median-queue limit in seconds."""
        if self.max_queue_s is not None:
            return self.max_queue_s
        return self.ttft_s if self.ttft_s is not None else 1.0

    def describe(self) -> str:
        """E.g. ``p99 TTFT <= 0.5 s, p99 TPOT <= 0.05 s``."""
        p = f"p{self.percentile:g}"
        parts = []
        if self.ttft_s is not None:
            parts.append(f"{p} TTFT <= {self.ttft_s:g} s")
        if self.tpot_s is not None:
            parts.append(f"{p} TPOT <= {self.tpot_s:g} s")
        if self.min_goodput_fraction is not None:
            parts.append(f"goodput >= {self.min_goodput_fraction:.1%}")
        return ", ".join(parts)

    def to_json_dict(self) -> dict[str, Any]:
        """The targets as plain JSON values."""
        return {
            "slo_ttft_s": self.ttft_s,
            "slo_tpot_s": self.tpot_s,
            "slo_percentile": self.percentile,
            "min_goodput_fraction": self.min_goodput_fraction,
            "tail_fraction": self.tail_fraction,
            "max_tail_queue_s": self.queue_limit_s,
        }


@dataclass
class SloCheck:
    """The verdict on one run, with the measured values (seconds, fractions)."""

    meets: bool
    ttft_s: float  # the percentile's TTFT over all requests
    tpot_s: float
    tail_ttft_s: float
    tail_tpot_s: float
    tail_queue_p50_s: float
    goodput_fraction: float
    reasons: list[str] = field(default_factory=list)  # why it fails; empty when it meets
    load_state: str | None = None  # stable, backlogged or overloaded (kavier.load)
    queue_growth_requests_per_s: float | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON values (NaN -> None)."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            out[key] = None if isinstance(value, float) and not math.isfinite(value) else value
        return out


def _columns(requests: pa.Table | dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = ("arrival_s", "ttft_s", "tpot_s", "queue_s", "num_output_tokens")
    if isinstance(requests, pa.Table):
        cols = {n: requests.column(n).to_numpy() for n in names}
        if "replica" in requests.column_names:
            cols["replica"] = requests.column("replica").to_numpy()
        return cols
    cols = {n: np.asarray(requests[n]) for n in names}
    if "replica" in requests:
        cols["replica"] = np.asarray(requests["replica"])
    return cols


def check_slo(requests: pa.Table | dict[str, np.ndarray], slo: SloSpec) -> SloCheck:
    """Judge a run from its per-request records (``requests.parquet`` columns)."""
    cols = _columns(requests)
    n = cols["arrival_s"].shape[0]
    if n == 0:
        raise ValueError("a run without requests cannot be judged")
    order = np.argsort(cols["arrival_s"], kind="stable")
    tail = order[n - max(1, math.ceil(slo.tail_fraction * n)) :]
    produces = cols["num_output_tokens"] >= 1
    tpot = cols["tpot_s"].astype(np.float64)
    has_tpot = ~np.isnan(tpot)
    q = slo.percentile

    def ttft_of(idx: np.ndarray) -> float:
        return _pct(cols["ttft_s"][idx][produces[idx]], q)

    def tpot_of(idx: np.ndarray) -> float:
        return _pct(tpot[idx][has_tpot[idx]], q)

    every = np.arange(n)
    ok = np.ones(n, dtype=bool)
    if slo.ttft_s is not None:
        ok &= ~produces | (cols["ttft_s"] <= slo.ttft_s)
    if slo.tpot_s is not None:
        ok &= ~has_tpot | (tpot <= slo.tpot_s)
    check = SloCheck(
        meets=True,
        ttft_s=ttft_of(every),
        tpot_s=tpot_of(every),
        tail_ttft_s=ttft_of(tail),
        tail_tpot_s=tpot_of(tail),
        tail_queue_p50_s=float(np.median(cols["queue_s"][tail])),
        goodput_fraction=float(ok.mean()),
    )
    p = f"p{q:g}"
    for label, value, limit in (
        (f"{p} TTFT", check.ttft_s, slo.ttft_s),
        (f"{p} TPOT", check.tpot_s, slo.tpot_s),
        (f"tail {p} TTFT", check.tail_ttft_s, slo.ttft_s),
        (f"tail {p} TPOT", check.tail_tpot_s, slo.tpot_s),
    ):
        # NaN (no request produced the metric) is not a violation.
        if limit is not None and value > limit:
            check.reasons.append(f"{label} {value:.3g} s > {limit:g} s")
    if slo.min_goodput_fraction is not None and check.goodput_fraction < slo.min_goodput_fraction:
        check.reasons.append(f"goodput {check.goodput_fraction:.1%} < {slo.min_goodput_fraction:.1%}")
    if check.tail_queue_p50_s > slo.queue_limit_s:
        check.reasons.append(
            f"backlog: tail median queue {check.tail_queue_p50_s:.3g} s > {slo.queue_limit_s:g} s"
        )
    load = classify_load(cols["arrival_s"], cols["arrival_s"] + cols["queue_s"], cols.get("replica"))
    check.load_state = load.state
    check.queue_growth_requests_per_s = load.run.queue_growth_requests_per_s
    if load.state == OVERLOADED:
        growth = load.run.queue_growth_requests_per_s
        check.reasons.append(
            "overloaded: the waiting queue grows"
            + ("" if growth is None else f" by {growth:.3g} requests/s")
            + " over the second half of the arrivals"
        )
    check.meets = not check.reasons
    return check
