"""The simulation pipeline: workload chunks -> cluster -> records -> time series -> a sink.

Pure core: takes a resolved scenario and a sink object and returns the summary; only the sink
decides whether tables go to memory or to files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from kavier.cache.prefix_thesis import ThesisPrefixCache, prefix_keys
from kavier.efficiency.costs import cost_and_efficiency
from kavier.energy.accounting import EnergyAccountant
from kavier.energy.resolve import EnergySetup, energy_setup
from kavier.engine.records import (
    UtilizationProfile,
    activity_segments,
    count_steps,
    request_table,
    to_arrow,
)
from kavier.engine.sequential import SequentialCluster
from kavier.engine.timeseries import TimeseriesBuilder
from kavier.errors import ScenarioError
from kavier.io.opendc import fragment_tables, tasks_table
from kavier.io.sinks import ROW_GROUP_ROWS
from kavier.library.catalog import load_catalog
from kavier.library.spec import GpuSpec, ModelSpec
from kavier.metrics import SummaryAccumulator
from kavier.perf.thesis import ThesisPerfModel
from kavier.scenario import Scenario
from kavier.units import GIB, J_PER_KWH, MIB
from kavier.workload.build import workload_source
from kavier.workload.source import WorkloadSource

TIMESERIES_COLUMNS = (
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


class Sink(Protocol):
    """Where a run's tables go (memory or files)."""

    def requests(self, table: pa.Table) -> None: ...
    def timeseries(self, table: pa.Table) -> None: ...
    def opendc_tasks(self, table: pa.Table) -> None: ...
    def opendc_fragments(self, table: pa.Table) -> None: ...


@dataclass(frozen=True)
class System:
    """The resolved hardware and model of a scenario."""

    model: ModelSpec
    gpu: GpuSpec
    weight_bytes: float
    kv_capacity_bytes: float


def resolve_system(scenario: Scenario) -> System:
    """Look the model and GPU up and check that the model fits (one-line error otherwise)."""
    catalog = load_catalog(scenario.catalog)
    model = catalog.model(scenario.llm)
    gpu = catalog.gpu(scenario.gpu)
    weights = 2.0 * model.num_params
    usable = gpu.memory_bytes * scenario.gpu_memory_utilization
    if weights > usable:
        raise ScenarioError(
            f"{model.name} needs {weights / GIB:.1f} GiB for its 16-bit weights but one "
            f"{gpu.name} offers {usable / GIB:.1f} GiB at gpu_memory_utilization "
            f"{scenario.gpu_memory_utilization}; choose a GPU with more memory (see `kavier library`)"
        )
    return System(model=model, gpu=gpu, weight_bytes=weights, kv_capacity_bytes=usable - weights)


BASELINE_KEYS = (
    "gpu_busy_s",
    "total_prefill_s",
    "energy_facility_j",
    "co2_operational_g",
    "co2_embodied_g",
    "cost_total_usd",
    "ttft_mean_s",
    "ttft_p99_s",
    "e2e_mean_s",
    "simulated_time_s",
)


def baseline_savings(summary: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """What the caches saved against the same scenario without them (s, J, g, US$).

    ``saved_co2_g`` counts operational and embodied CO2; ``ttft_*_change_s`` is cached minus
    baseline (negative = faster with the cache).
    """
    out: dict[str, Any] = {f"baseline_{k}": base[k] for k in BASELINE_KEYS if k in base}
    out["saved_gpu_s"] = base["gpu_busy_s"] - summary["gpu_busy_s"]
    out["saved_prefill_s"] = base["total_prefill_s"] - summary["total_prefill_s"]
    out["saved_energy_j"] = base["energy_facility_j"] - summary["energy_facility_j"]
    out["saved_co2_g"] = (base["co2_operational_g"] + base["co2_embodied_g"]) - (
        summary["co2_operational_g"] + summary["co2_embodied_g"]
    )
    out["saved_cost_usd"] = base["cost_total_usd"] - summary["cost_total_usd"]
    out["ttft_mean_change_s"] = summary["ttft_mean_s"] - base["ttft_mean_s"]
    out["ttft_p99_change_s"] = summary["ttft_p99_s"] - base["ttft_p99_s"]
    return out


def run(
    scenario: Scenario,
    sink: Sink,
    progress: Callable[[int, float], None] | None = None,
    source: WorkloadSource | None = None,
) -> dict[str, Any]:
    """Simulate ``scenario``, streaming tables into ``sink``; returns the summary dict.

    ``progress(requests_done, simulated_s)`` is called after every chunk. ``source`` replaces
    the scenario's workload (e.g. requests given in memory). With ``baseline`` the scenario also
    runs without prefix and response caches (outputs discarded) and the summary gains the
    savings (:func:`baseline_savings`).
    """
    summary = _run_once(scenario, sink, progress, source)
    if scenario.baseline:
        from kavier.io.sinks import NullSink

        plain = scenario.model_copy(
            update={"prefix_cache": "off", "response_cache": False, "baseline": False}
        )
        base = _run_once(plain, NullSink(), None, source)
        summary.update(baseline_savings(summary, base))
        summary["wall_time_s"] += base["wall_time_s"]
    return summary


def _run_once(
    scenario: Scenario,
    sink: Sink,
    progress: Callable[[int, float], None] | None = None,
    source: WorkloadSource | None = None,
) -> dict[str, Any]:
    if scenario.perf_model == "thesis" and (scenario.prefix_cache == "block" or scenario.response_cache):
        raise ScenarioError(
            "the block prefix cache and the response cache need the serving engine; with --preset thesis "
            "use --prefix-cache thesis (and --prefix-cache-policy full for prompt-response caching)"
        )
    if scenario.perf_model == "serving":
        from kavier.engine.serving_sim import run_serving

        return run_serving(scenario, sink, progress, source)
    if scenario.scheduler != "sequential":
        raise ScenarioError(
            f"scheduler {scenario.scheduler!r} needs the serving performance model; the thesis model runs "
            "one request at a time (use --preset serving, or --scheduler sequential)"
        )
    wall_start = time.perf_counter()
    system = resolve_system(scenario)
    perf = ThesisPerfModel(
        model=system.model,
        gpu=system.gpu,
        compute_efficiency=scenario.compute_efficiency,
        memory_efficiency=scenario.memory_efficiency,
        overhead_s=scenario.overhead_s,
        kv_cache=scenario.kv_cache,
    )
    profile = UtilizationProfile(
        busy=scenario.busy_utilization,
        edge=scenario.edge_utilization,
        warmup_s=scenario.warmup_s,
        cooldown_s=scenario.cooldown_s,
    )
    use_cache = scenario.prefix_cache == "thesis" and scenario.prefix_len > 0
    cache = ThesisPrefixCache(scenario.prefix_cache_size) if use_cache else None
    cluster = SequentialCluster(scenario.gpus, cache, scenario.prefix_cache_policy)
    kv_per_token = system.model.kv_bytes_per_token(2.0) if scenario.kv_cache else 0.0
    series = TimeseriesBuilder(
        scenario.gpus,
        scenario.export_rate,
        segment_quantities=("gpu_utilization", "kv_used_bytes", "power_excess_w"),
        count_quantities=("running", "waiting"),
        constants={"kv_capacity_bytes": np.full(scenario.gpus, system.kv_capacity_bytes)},
        piece_rows=ROW_GROUP_ROWS,
    )
    energy = energy_setup(scenario, system.gpu)
    power = energy.power
    idle_w = power.idle_power_w
    start_epoch_s = scenario.start_time.timestamp()
    accountant = EnergyAccountant(scenario.gpus, idle_w, start_epoch_s, energy.intensity, energy.pue)
    decode_c, decode_m = perf.decode_activity()
    summary = SummaryAccumulator()
    start_epoch_ms = int(round(scenario.start_time.timestamp() * 1000))
    capacity_mhz = system.gpu.capacity_mhz
    memory_mib = int(system.gpu.memory_bytes // MIB)
    session_scope = scenario.prefix_cache_scope == "session"

    util_integral = [0.0]  # GPU-seconds of utilisation, from the exported intervals

    def emit_series(tables) -> None:
        for table in tables:
            check_series_coverage(energy, scenario, start_epoch_s, table)
            busy = table.column("gpu_utilization").to_numpy() * table.column("interval_s").to_numpy()
            util_integral[0] += float(busy.sum())
            table = accountant.augment(table)
            sink.timeseries(table.select(list(TIMESERIES_COLUMNS)))

    saved = [0.0, 0.0]  # prefill and decode GPU-seconds the caches saved
    if source is None:
        source = workload_source(scenario)
    for chunk in source.chunks(scenario.flush_size):
        if len(chunk) == 0:
            continue
        keys = (
            prefix_keys(chunk, scenario.prefix_len, session_scope)
            if cache is not None
            else [None] * len(chunk)
        )
        full_prefill = perf.prefill_s(chunk.num_input_tokens)
        full_decode = perf.decode_s(chunk.num_output_tokens)
        times = cluster.process(chunk.arrival_s, full_prefill, full_decode, keys)
        saved[0] += float(np.sum(full_prefill - times.prefill_s))
        saved[1] += float(np.sum(full_decode - times.decode_s))
        rec = request_table(chunk, times, perf.first_token_offset_s())
        summary.add(rec)
        sink.requests(to_arrow(rec))
        seg = activity_segments(rec, profile, kv_per_token)
        pre_c, pre_m = perf.prefill_activity(rec["num_input_tokens"][seg.row])
        compute = np.where(seg.in_prefill, pre_c, decode_c)
        memory = np.where(seg.in_prefill, pre_m, decode_m)
        excess = power.power_w(seg.util, compute, memory) - idle_w
        series.add_segments(
            seg.replica,
            seg.t0,
            seg.t1,
            {
                "gpu_utilization": (seg.util, None),
                "kv_used_bytes": (seg.kv0, seg.kv_slope),
                "power_excess_w": (excess, None),
            },
        )
        series.add_steps(*count_steps(rec))
        emit_series(series.emit_until(float(chunk.arrival_s[-1])))
        if scenario.opendc:
            sink.opendc_tasks(tasks_table(rec, start_epoch_ms, capacity_mhz, memory_mib))
            fragments = partial(fragment_tables, rec, scenario.export_rate, profile, capacity_mhz)
            deferred = getattr(sink, "opendc_fragments_from", None)
            if deferred is not None:
                deferred(fragments)  # built on the sink's writer thread
            else:
                for table in fragments():
                    sink.opendc_fragments(table)
        if progress is not None:
            progress(summary.num_requests, summary.end_s)
    emit_series(series.finish(summary.end_s))

    result = summary.result()
    if summary.num_requests == 0:
        raise ScenarioError("the workload holds no requests; check the trace or generator settings")
    result.update(
        {
            "prefix_cache_lookups": cache.lookups if cache else 0,
            "prefix_cache_hits": cache.hits if cache else 0,
            "prefix_cache_hit_ratio": (cache.hits / summary.num_requests) if cache else 0.0,
            "prefix_cache_evictions": cache.evictions if cache else 0,
            "prefix_cache_token_hit_ratio": (
                summary.cached_tokens / summary.input_tokens if cache and summary.input_tokens else 0.0
            ),
            "num_gpus": scenario.gpus,
            "gpu_utilization_mean": util_integral[0] / (scenario.gpus * summary.end_s)
            if summary.end_s > 0
            else 0.0,
            "model": system.model.name,
            "gpu": system.gpu.name,
            "preset": scenario.preset,
            "time_per_output_token_s": perf.time_per_token_s,
            "kv_bytes_per_token": system.model.kv_bytes_per_token(2.0),
            "kv_capacity_bytes": system.kv_capacity_bytes,
            "weight_bytes": system.weight_bytes,
        }
    )
    result.update(energy_summary(scenario, system, summary, accountant, energy))
    result.update(thesis_efficiency(result, saved[0], saved[1]))
    result["wall_time_s"] = time.perf_counter() - wall_start
    return result


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


def energy_summary(
    scenario: Scenario,
    system: System,
    summary: SummaryAccumulator,
    accountant: EnergyAccountant,
    energy: EnergySetup,
) -> dict[str, Any]:
    """Power, energy, carbon, cost and efficiency keys of summary.json."""
    price = (
        system.gpu.price_per_hour_usd if scenario.gpu_price_per_hour is None else scenario.gpu_price_per_hour
    )
    out: dict[str, Any] = {
        "power_model": energy.power.name,
        "gpu_idle_w": energy.power.idle_w,
        "gpu_max_w": energy.power.max_w,
        "energy_it_j": accountant.energy_it_j,
        "energy_facility_j": accountant.energy_facility_j,
        "energy_it_kwh": accountant.energy_it_j / J_PER_KWH,
        "energy_facility_kwh": accountant.energy_facility_j / J_PER_KWH,
        "avg_power_w": accountant.avg_power_w,
        "peak_power_w": accountant.peak_power_w,
        "pue_mean": accountant.energy_facility_j / accountant.energy_it_j if accountant.energy_it_j else 1.0,
        "co2_operational_g": accountant.co2_g,
        "carbon_intensity_mean_g_per_kwh": (
            accountant.co2_g / (accountant.energy_facility_j / J_PER_KWH)
            if accountant.energy_facility_j
            else 0.0
        ),
        "carbon_intensity_source": energy.intensity_source,
        "pue_source": energy.pue_source,
    }
    out.update(
        cost_and_efficiency(
            num_gpus=scenario.gpus,
            simulated_time_s=summary.end_s,
            input_tokens=summary.input_tokens,
            output_tokens=summary.output_tokens,
            energy_it_j=accountant.energy_it_j,
            energy_facility_j=accountant.energy_facility_j,
            co2_operational_g=accountant.co2_g,
            gpu_price_per_hour=price,
            energy_price_per_kwh=scenario.energy_price_per_kwh,
            embodied_co2_g_per_gpu=system.gpu.embodied_co2_g,
            gpu_lifetime_years=scenario.gpu_lifetime_years,
            token_price_per_mtok=scenario.token_price_per_mtok,
        )
    )
    return out


def thesis_efficiency(
    result: dict[str, Any], saved_prefill_s: float, saved_decode_s: float
) -> dict[str, Any]:
    """The thesis's efficiency ``E = C (dT_P + dT_D) / (T_P + T_D)`` for cost, energy and CO2.

    ``T_P``/``T_D`` are the prefill/decode GPU-seconds the run would have needed without its
    caches (spent + saved), ``dT_P``/``dT_D`` the seconds the caches saved, and ``C`` the run's
    cost, energy or CO2 per million tokens; ``E`` is then the part of ``C`` the caches saved,
    in the same unit (see docs/thesis_metrics.md for why this reading).
    """
    total = result["total_prefill_s"] + result["total_decode_s"] + saved_prefill_s + saved_decode_s
    share = (saved_prefill_s + saved_decode_s) / total if total > 0 else 0.0
    return {
        "saved_prefill_s": saved_prefill_s,
        "saved_decode_s": saved_decode_s,
        "cache_saved_share": share,
        "thesis_e_cost_usd_per_mtok": result["usd_per_mtok"] * share,
        "thesis_e_energy_wh_per_mtok": result["wh_per_mtok"] * share,
        "thesis_e_co2_g_per_mtok": result["gco2_per_mtok"] * share,
    }
