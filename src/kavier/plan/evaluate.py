"""One planned configuration, simulated in memory and judged against the SLOs (with a cache)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from kavier.plan.slo import SloCheck, SloSpec, check_slo
from kavier.scenario import Scenario

# summary.json keys an evaluation keeps (units in the names).
SUMMARY_KEYS = (
    "num_requests",
    "num_gpus",
    "num_replicas",
    "simulated_time_s",
    "requests_per_s",
    "goodput_requests_per_s",
    "ttft_p50_s",
    "ttft_p99_s",
    "tpot_p50_s",
    "tpot_p99_s",
    "queue_p99_s",
    "e2e_p99_s",
    "gpu_utilization_mean",
    "gpu_busy_fraction",
    "mfu_mean",
    "mbu_mean",
    "kv_use_peak",
    "load_state",
    "queue_growth_requests_per_s",
    "mean_batch_size",
    "preemptions",
    "input_tokens",
    "output_tokens",
    "gpu_hours",
    "gpu_price_per_hour_usd",
    "energy_facility_kwh",
    "co2_operational_g",
    "co2_embodied_g",
    "co2_total_g",
    "cost_gpu_usd",
    "cost_energy_usd",
    "cost_total_usd",
    "usd_per_mtok",
    "wh_per_mtok",
    "gco2_per_mtok",
    "wall_time_s",
)


def _plain(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass
class Evaluation:
    """A simulated configuration: GPU, TP, replicas, arrival-rate multiplier, and the verdict."""

    gpu: str
    tp: int
    replicas: int
    rate_scale: float
    check: SloCheck
    summary: dict[str, Any]
    offered_rate_rps: float  # requests / arrival span (s) of the run as simulated

    @property
    def meets(self) -> bool:
        """True when the run meets the SLOs."""
        return self.check.meets

    @property
    def usd_per_hour(self) -> float:
        """GPUs x US$/GPU-hour + the run's energy cost per hour of simulated time."""
        s = self.summary
        sim = s.get("simulated_time_s") or 0.0
        energy = s["cost_energy_usd"] / sim * 3600.0 if sim > 0 else 0.0
        return s["num_gpus"] * s["gpu_price_per_hour_usd"] + energy

    @property
    def usd_per_1k_requests(self) -> float:
        """The run's total cost per thousand requests (US$)."""
        return self.summary["cost_total_usd"] / self.summary["num_requests"] * 1000.0

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON values (NaN -> None)."""
        return {
            "gpu": self.gpu,
            "tp": self.tp,
            "replicas": self.replicas,
            "rate_scale": self.rate_scale,
            "meets_slo": self.meets,
            "offered_rate_rps": _plain(self.offered_rate_rps),
            "usd_per_hour": _plain(self.usd_per_hour),
            "usd_per_1k_requests": _plain(self.usd_per_1k_requests),
            # Measured at the SLO percentile (over all requests and over the tail window).
            "slo_check": {k: v for k, v in self.check.to_json_dict().items() if k != "meets"},
            **{k: _plain(v) for k, v in self.summary.items()},
        }


class Evaluator:
    """Simulates ``base`` with a GPU, TP, replica count and rate multiplier; caches by those four.

    Runs are in memory with ``opendc`` off; SLOs are also set on the scenario so the summary's
    goodput matches. ``on_eval(evaluation)`` is called after each new simulation.
    """

    def __init__(
        self,
        base: Scenario,
        slo: SloSpec,
        on_eval: Callable[[Evaluation], None] | None = None,
    ) -> None:
        self.base = base.model_dump()
        self.base.update(
            {
                "opendc": False,
                "plots": False,
                "baseline": False,
                "slo_ttft": slo.ttft_s,
                "slo_tpot": slo.tpot_s,
            }
        )
        self.slo = slo
        self.on_eval = on_eval
        self.cache: dict[tuple[str, int, int, float], Evaluation] = {}

    def __call__(self, gpu: str, tp: int, replicas: int, rate_scale: float) -> Evaluation:
        """The (cached) evaluation of one configuration."""
        key = (gpu, int(tp), int(replicas), float(rate_scale))
        if key in self.cache:
            return self.cache[key]
        from kavier.api import simulate

        scenario = Scenario.model_validate(
            {
                **self.base,
                "gpu": gpu,
                "tp": int(tp),
                "replicas": int(replicas),
                "gpus": int(replicas) * int(tp) * int(self.base["pp"]),
                "replica_groups": None,
                "rate_scale": float(rate_scale),
            }
        )
        start = time.perf_counter()
        result = simulate(scenario)
        arrival = result.requests.column("arrival_s").to_numpy()
        span = float(arrival.max() - arrival.min()) if arrival.size else 0.0
        summary = {k: result.summary[k] for k in SUMMARY_KEYS if k in result.summary}
        summary["wall_time_s"] = time.perf_counter() - start
        evaluation = Evaluation(
            gpu=gpu,
            tp=int(tp),
            replicas=int(replicas),
            rate_scale=float(rate_scale),
            check=check_slo(result.requests, self.slo),
            summary=summary,
            offered_rate_rps=arrival.size / span if span > 0 else math.nan,
        )
        self.cache[key] = evaluation
        if self.on_eval is not None:
            self.on_eval(evaluation)
        return evaluation
