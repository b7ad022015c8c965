"""The time series (``timeseries.parquet``): per replica and export interval, what the GPUs did,
what they drew and what it emitted; and the run's utilisation, power, energy and carbon keys.

Columns (interval means over ``[time_s, time_s + interval_s)``): ``gpu_utilization`` (0..1),
``kv_used_bytes``, ``kv_capacity_bytes``, ``running`` and ``waiting`` (requests), ``power_w``
(the replica's GPUs, idle power included), ``energy_j``, ``carbon_intensity_g_per_kwh``,
``co2_g`` (facility energy x intensity), then the backend's own quantities (the serving
backend's ``batch_tokens`` and ``kv_blocks_used``). Power comes from the scenario's power model
applied to each piece of activity (its utilisation and compute/memory busy fractions); the
energy accountant adds idle power, PUE and carbon per interval (:mod:`kavier.energy.accounting`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from kavier.energy.accounting import EnergyAccountant
from kavier.energy.resolve import EnergySetup, energy_setup, power_model
from kavier.events import Activity, BaseObserver, RunInfo
from kavier.io.sinks import ROW_GROUP_ROWS, Sink
from kavier.observers.binning import TimeseriesBuilder
from kavier.registry import OUTPUTS
from kavier.scenario import Scenario
from kavier.units import J_PER_KWH

OUTPUT = "timeseries"
COLUMNS = (
    "time_s",
    "replica",
    "gpu_utilization",
    "kv_used_bytes",
    "kv_capacity_bytes",
    "running",
    "waiting",
    "power_w",
    "energy_j",
    "carbon_intensity_g_per_kwh",
    "co2_g",
    "interval_s",
)


@OUTPUTS.register("timeseries")
class TimeseriesObserver(BaseObserver):
    """``timeseries.parquet`` with power, energy and carbon per replica and interval (every run;
    its energy keys are part of every summary)."""

    @staticmethod
    def wanted(scenario: Scenario, sink: Sink) -> bool:
        return True

    def __init__(self, scenario: Scenario, sink: Sink) -> None:
        self.scenario = scenario
        self.sink = sink
        self.start_epoch_s = scenario.start_time.timestamp()
        self.util_s = 0.0  # utilisation x seconds over all replicas
        self.kv_occupied_s = 0.0  # KV-block occupancy fraction x seconds over all replicas

    def on_start(self, info: RunInfo) -> None:
        scenario = self.scenario
        self.info = info
        reps = len(info.replicas)
        self.energy: EnergySetup = energy_setup(scenario, info.replicas[0].gpu)
        self.powers = [power_model(scenario, r.gpu) for r in info.replicas]
        self.gpus = [r.gpus for r in info.replicas]
        idle = np.array([pw.idle_power_w * r.gpus for pw, r in zip(self.powers, info.replicas, strict=True)])
        self.columns = list(COLUMNS) + list(info.series_quantities)
        self.series = TimeseriesBuilder(
            reps,
            scenario.export_rate,
            segment_quantities=(
                "gpu_utilization",
                "kv_used_bytes",
                "power_excess_w",
                *info.series_quantities,
            ),
            count_quantities=("running", "waiting"),
            constants={"kv_capacity_bytes": np.array([r.kv_capacity_bytes for r in info.replicas])},
            piece_rows=ROW_GROUP_ROWS,
        )
        blocks = [r.kv_blocks_total for r in info.replicas]
        track_blocks = "kv_blocks_used" in info.series_quantities and None not in blocks
        self.blocks_total = np.array(blocks, dtype=np.float64) if track_blocks else None
        self.blocks_peak = np.zeros(reps)  # the most KV blocks each replica held at once
        self.accountant = EnergyAccountant(
            reps, idle, self.start_epoch_s, self.energy.intensity, self.energy.pue
        )

    def on_activity(self, activity: Activity) -> None:
        a = activity
        if a.t0.size:
            power = self.powers[a.same_gpu_as]
            compute = a.compute_fraction if a.mfu is None else a.mfu
            memory = a.memory_fraction if a.mbu is None else a.mbu
            excess = power.power_w(a.utilization, compute, memory) - power.idle_power_w
            gpus = self.gpus[a.same_gpu_as]
            if gpus != 1:
                excess = excess * gpus
            values = {
                "gpu_utilization": (a.utilization, None),
                "kv_used_bytes": (a.kv_bytes, a.kv_bytes_per_s),
                "power_excess_w": (excess, None),
            }
            for name in self.info.series_quantities:
                values[name] = (a.extra[name], None)
            if self.blocks_total is not None:
                np.maximum.at(self.blocks_peak, a.replica, a.extra["kv_blocks_used"])
            self.series.add_segments(a.replica, a.t0, a.t1, values)
        if a.step_t is not None and a.step_t.size:
            self.series.add_steps(
                a.step_replica, a.step_t, {"running": a.step_running, "waiting": a.step_waiting}
            )

    def on_frontier(self, time_s: float) -> None:
        self._write(self.series.emit_until(time_s))

    def on_partial_frontier(self, time_s: float) -> None:
        self._write(self.series.emit_whole_pieces(time_s))

    def on_end(self, end_s: float) -> None:
        self.end_s = end_s
        self._write(self.series.finish(end_s))

    def _write(self, tables: Iterable[pa.Table]) -> None:
        for table in tables:
            check_series_coverage(self.energy, self.scenario, self.start_epoch_s, table)
            width = table.column("interval_s").to_numpy()
            busy = table.column("gpu_utilization").to_numpy() * width
            self.util_s += float(busy.sum())
            if self.blocks_total is not None:
                occupancy = (
                    table.column("kv_blocks_used").to_numpy()
                    / self.blocks_total[table.column("replica").to_numpy()]
                )
                self.kv_occupied_s += float(np.sum(occupancy * width))
            table = self.accountant.augment(table)
            self.sink.write(OUTPUT, table.select(self.columns))

    def summary(self) -> dict[str, Any]:
        """Utilisation, KV occupancy, power, energy and carbon keys of summary.json.

        ``gpu_utilization_mean`` is the power model's utilisation input averaged over replicas and
        time (busy time x the busy utilisation, 0.95 by default): it reads ~95 % whenever the
        GPUs run iterations, however small; ``gpu_busy_fraction`` (:mod:`kavier.summary`) and
        ``mfu_mean``/``mbu_mean`` say how busy and how loaded they were. ``kv_use_mean`` (=
        ``kv_utilization_mean``) is the time-weighted share of KV blocks allocated, ``kv_use_peak``
        the largest share any replica held at once and ``kv_headroom_blocks`` the fewest blocks
        any replica left free at its peak (all null without paged KV blocks, the thesis preset).
        """
        reps, end = len(self.info.replicas), self.end_s
        acc, energy = self.accountant, self.energy
        kv_mean = None if self.blocks_total is None else self.kv_occupied_s / (reps * end) if end > 0 else 0.0
        return {
            "gpu_utilization_mean": self.util_s / (reps * end) if end > 0 else 0.0,
            "kv_utilization_mean": kv_mean,
            "kv_use_mean": kv_mean,
            "kv_use_peak": (
                None if self.blocks_total is None else float(np.max(self.blocks_peak / self.blocks_total))
            ),
            "kv_headroom_blocks": (
                None if self.blocks_total is None else int(np.min(self.blocks_total - self.blocks_peak))
            ),
            "power_model": energy.power.name,
            "gpu_idle_w": energy.power.idle_w,
            "gpu_max_w": energy.power.max_w,
            "energy_it_j": acc.energy_it_j,
            "energy_facility_j": acc.energy_facility_j,
            "energy_it_kwh": acc.energy_it_j / J_PER_KWH,
            "energy_facility_kwh": acc.energy_facility_j / J_PER_KWH,
            "avg_power_w": acc.avg_power_w,
            "peak_power_w": acc.peak_power_w,
            "pue_mean": acc.energy_facility_j / acc.energy_it_j if acc.energy_it_j else 1.0,
            "co2_operational_g": acc.co2_g,
            "carbon_intensity_mean_g_per_kwh": (
                acc.co2_g / (acc.energy_facility_j / J_PER_KWH) if acc.energy_facility_j else 0.0
            ),
            "carbon_intensity_source": energy.intensity_source,
            "pue_source": energy.pue_source,
        }


def check_series_coverage(
    energy: EnergySetup, scenario: Scenario, start_epoch_s: float, table: pa.Table
) -> None:
    """A carbon trace or PUE series must cover every exported interval (unless wrapped)."""
    series_given = (scenario.carbon_trace and not scenario.carbon_trace_wrap) or isinstance(scenario.pue, str)
    if table.num_rows == 0 or not series_given:
        return
    from kavier.energy.carbon import check_coverage

    end = table.column("time_s")[-1].as_py() + table.column("interval_s")[-1].as_py()
    begin = table.column("time_s")[0].as_py()
    if scenario.carbon_trace and not scenario.carbon_trace_wrap:
        trace = scenario.carbon_trace
        check_coverage(energy.intensity, start_epoch_s + begin, start_epoch_s + end, "carbon trace", trace)
    if isinstance(scenario.pue, str):
        check_coverage(energy.pue, start_epoch_s + begin, start_epoch_s + end, "PUE series", scenario.pue)
