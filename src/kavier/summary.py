"""``summary.json``: one set of keys for every run, in one order, each with its unit in its name.

:data:`SUMMARY_KEYS` is the list. Every run's summary holds every key, in this order; a value a
run cannot have is ``None`` (``null`` in JSON), never a missing key: the sequential backend has
no iterations and no router, a run without ``--baseline`` no savings against a baseline, a run
without token prices no revenue. :func:`assemble` builds a summary from its parts (the request
metrics, the backend's keys, the observers' keys) and derives the cost and efficiency keys. A
built-in part adds no key that is not in the list (a test checks it), so a new figure is added
here once; a plugin's output may add keys of its own, which follow the list.
"""

from __future__ import annotations

import math
from typing import Any

from kavier.efficiency.costs import cost_and_efficiency
from kavier.events import RunInfo
from kavier.metrics import SummaryAccumulator
from kavier.scenario import Scenario

SUMMARY_KEYS: tuple[str, ...] = (
    # requests and latency (s), from the request records
    "num_requests",
    "simulated_time_s",
    "gpu_busy_s",
    "total_prefill_s",
    "total_decode_s",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "throughput_tokens_per_s",
    "ttft_mean_s",
    "ttft_p50_s",
    "ttft_p90_s",
    "ttft_p99_s",
    "tpot_mean_s",
    "tpot_p50_s",
    "tpot_p99_s",
    "itl_mean_s",
    "itl_p50_s",
    "itl_p90_s",
    "itl_p99_s",
    "e2e_mean_s",
    "e2e_p50_s",
    "e2e_p90_s",
    "e2e_p99_s",
    "queue_mean_s",
    "queue_p99_s",
    "requests_served_from_response_cache",
    "output_throughput_tokens_per_s",
    "input_throughput_tokens_per_s",
    "requests_per_s",
    "goodput_requests_per_s",
    "slo_attainment",
    # the cluster and its use
    "num_gpus",
    "num_replicas",
    "preemptions",
    "iterations",
    "mean_batch_size",
    "kv_utilization_mean",
    "gpu_utilization_mean",
    "mfu_mean",
    "mbu_mean",
    "mfu_prefill",
    "mfu_decode",
    "mbu_prefill",
    "mbu_decode",
    "model",
    "gpu",
    "tp",
    "pp",
    "preset",
    "scheduler",
    "router",
    "engine",
    "max_num_seqs",
    "max_batched_tokens",
    "chunked_prefill",
    "frontend_s_per_request",
    "frontend_s_per_token",
    "perf_profile_used",
    "perf_profile_note",
    "time_per_output_token_s",
    "kv_bytes_per_token",
    "kv_capacity_bytes",
    "kv_blocks_total",
    "weight_bytes",
    # caches
    "prefix_cache_lookups",
    "prefix_cache_hits",
    "prefix_cache_hit_ratio",
    "prefix_cache_evictions",
    "prefix_cache_token_hit_ratio",
    "prefix_cache_hit_tokens",
    "prefix_cache_expirations",
    "prefix_cache_bytes_loaded",
    "prefix_cache_bytes_offloaded",
    "prefix_cache_load_s",
    "prefix_cache_loads_declined",
    "prefix_cache_hit_tokens_gpu",
    "prefix_cache_hit_tokens_host_dram",
    "prefix_cache_hit_tokens_local_ssd",
    "prefix_cache_hit_tokens_remote",
    "prefix_cache_lower_tier_evictions",
    "response_cache_lookups",
    "response_cache_hits",
    # power, energy, carbon
    "power_model",
    "gpu_idle_w",
    "gpu_max_w",
    "energy_it_j",
    "energy_facility_j",
    "energy_it_kwh",
    "energy_facility_kwh",
    "avg_power_w",
    "peak_power_w",
    "pue_mean",
    "co2_operational_g",
    "carbon_intensity_mean_g_per_kwh",
    "carbon_intensity_source",
    "pue_source",
    # cost and efficiency
    "gpu_hours",
    "cost_gpu_usd",
    "cost_energy_usd",
    "cost_total_usd",
    "co2_embodied_g",
    "co2_total_g",
    "usd_per_mtok",
    "wh_per_mtok",
    "gco2_per_mtok",
    "joules_per_output_token",
    "gpu_price_per_hour_usd",
    "energy_price_per_kwh_usd",
    "revenue_usd",
    "margin_usd",
    # what the caches saved (the thesis's efficiency)
    "saved_prefill_s",
    "saved_decode_s",
    "cache_saved_share",
    "thesis_e_cost_usd_per_mtok",
    "thesis_e_energy_wh_per_mtok",
    "thesis_e_co2_g_per_mtok",
    # against the same scenario without caches (--baseline)
    "baseline_gpu_busy_s",
    "baseline_total_prefill_s",
    "baseline_energy_facility_j",
    "baseline_co2_operational_g",
    "baseline_co2_embodied_g",
    "baseline_cost_total_usd",
    "baseline_ttft_mean_s",
    "baseline_ttft_p99_s",
    "baseline_e2e_mean_s",
    "baseline_simulated_time_s",
    "saved_gpu_s",
    "saved_energy_j",
    "saved_co2_g",
    "saved_cost_usd",
    "ttft_mean_change_s",
    "ttft_p99_change_s",
    # the simulator itself
    "wall_time_s",
    "engine_events",
    "events_per_wall_s",
    "simulated_s_per_wall_s",
    # appended later (keys are only ever appended): is the load sustainable (kavier.load)
    "load_state",
    "queue_growth_requests_per_s",
    "queue_growth_share_of_arrivals",
    "load_window_arrival_rate_requests_per_s",
    "load_state_per_replica",
    "queue_growth_requests_per_s_max_replica",
    # what the GPUs and their KV memory did, each named for what it is
    "gpu_busy_fraction",
    "kv_use_mean",
    "kv_use_peak",
    "kv_headroom_blocks",
    # the prefix cache's per-request ratio, named for what it counts
    "prefix_cache_requests_with_any_hit_ratio",
    # requests the server rejected for holding more than --max-model-len tokens (serving)
    "rejected_requests",
)


def _band_keys() -> tuple[str, ...]:
    from kavier.perf.profiles import BAND_KEYS

    return tuple(f"{key}_{end}" for keys in BAND_KEYS.values() for key in keys for end in ("low", "high"))


# Every banded figure's 80 % band (see kavier.perf.profiles.bands): ``<key>_low``, ``<key>_high``.
BAND_SUMMARY_KEYS: tuple[str, ...] = _band_keys()
SUMMARY_KEYS = (
    SUMMARY_KEYS[: SUMMARY_KEYS.index("wall_time_s")]
    + BAND_SUMMARY_KEYS
    + SUMMARY_KEYS[SUMMARY_KEYS.index("wall_time_s") :]
)

# Keys that describe the run's wall-clock time: they differ between identical runs.
WALL_CLOCK_KEYS = ("wall_time_s", "events_per_wall_s", "simulated_s_per_wall_s")

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


def ordered(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with every key of :data:`SUMMARY_KEYS`, in that order (None where absent),
    followed by any other keys in the order given (a plugin's output may add its own; the
    built-in parts add none, which the tests check)."""
    out = {k: values.get(k) for k in SUMMARY_KEYS}
    out.update((k, v) for k, v in values.items() if k not in _KEY_SET)
    return out


_KEY_SET = frozenset(SUMMARY_KEYS)


def assemble(
    scenario: Scenario,
    totals: SummaryAccumulator,
    info: RunInfo,
    backend: dict[str, Any],
    observed: dict[str, Any],
) -> dict[str, Any]:
    """A run's summary from its request metrics, the backend's keys and the observers' keys,
    with the cost, embodied-carbon and efficiency keys derived from them (unordered; the driver
    adds the wall-clock keys and orders it)."""
    result = totals.result()
    result.update(totals.serving_metrics(scenario.slo_ttft, scenario.slo_tpot))
    result.update(backend)
    result.update(observed)
    result["num_gpus"] = info.num_gpus
    result["preset"] = scenario.preset
    result["gpu_busy_fraction"] = busy_fraction(result["gpu_busy_s"], info.num_gpus, totals.end_s)
    if result.get("prefix_cache_lookups"):
        result["prefix_cache_requests_with_any_hit_ratio"] = result["prefix_cache_hit_ratio"]
    gpu = info.replicas[0].gpu
    price = gpu.price_per_hour_usd if scenario.gpu_price_per_hour is None else scenario.gpu_price_per_hour
    result.update(
        cost_and_efficiency(
            num_gpus=info.num_gpus,
            simulated_time_s=totals.end_s,
            input_tokens=totals.input_tokens,
            output_tokens=totals.output_tokens,
            energy_it_j=result["energy_it_j"],
            energy_facility_j=result["energy_facility_j"],
            co2_operational_g=result["co2_operational_g"],
            gpu_price_per_hour=price,
            energy_price_per_kwh=scenario.energy_price_per_kwh,
            embodied_co2_g_per_gpu=gpu.embodied_co2_g,
            gpu_lifetime_years=scenario.gpu_lifetime_years,
            token_price_per_mtok=scenario.token_price_per_mtok,
        )
    )
    result.update(thesis_efficiency(result, result["saved_prefill_s"], result["saved_decode_s"]))
    return result


def busy_fraction(gpu_busy_s: float, num_gpus: int, simulated_time_s: float) -> float | None:
    """The share of the run's GPU-seconds spent running work: ``gpu_busy_s / (GPUs x simulated
    time)`` (None for a run of no time). Busy is not loaded: a GPU decoding one sequence is
    busy; ``mfu_mean`` and ``mbu_mean`` say how much of its compute and bandwidth it used."""
    if simulated_time_s <= 0 or num_gpus <= 0:
        return None
    return gpu_busy_s / (num_gpus * simulated_time_s)


def thesis_efficiency(
    result: dict[str, Any], saved_prefill_s: float | None, saved_decode_s: float | None
) -> dict[str, Any]:
    """The thesis's efficiency ``E = C (dT_P + dT_D) / (T_P + T_D)`` for cost, energy and CO2.

    ``T_P``/``T_D`` are the prefill/decode GPU-seconds the run would have needed without its
    caches (spent + saved), ``dT_P``/``dT_D`` the seconds the caches saved, and ``C`` the run's
    cost, energy or CO2 per million tokens; ``E`` is then the part of ``C`` the caches saved,
    in the same unit (see docs/thesis_metrics.md for why this reading).

    The thesis preset times the saved seconds itself (each request with and without its cache
    hit); the serving preset cannot (a hit changes the batches that follow), so without
    ``--baseline`` the saved seconds are None and so are ``cache_saved_share`` and ``E``; with
    it they are the baseline's prefill/decode seconds minus the run's (:func:`with_baseline`).
    """
    keys = ("cache_saved_share", "thesis_e_cost_usd_per_mtok", "thesis_e_energy_wh_per_mtok")
    if saved_prefill_s is None or saved_decode_s is None:
        out: dict[str, Any] = dict.fromkeys((*keys, "thesis_e_co2_g_per_mtok"))
        out.update(saved_prefill_s=saved_prefill_s, saved_decode_s=saved_decode_s)
        return out
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


def with_baseline(summary: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The keys ``--baseline`` adds to a run's summary: :func:`baseline_savings`, and, when the
    run could not time its own savings (the serving preset), ``saved_prefill_s`` and
    ``saved_decode_s`` as the baseline's GPU-seconds minus the run's, with the share and the
    thesis efficiency from them. A run that timed its savings itself (the thesis preset) keeps
    them, so its share and efficiency agree with the saved seconds it reports."""
    out = baseline_savings(summary, base)
    if summary.get("saved_prefill_s") is not None and summary.get("saved_decode_s") is not None:
        del out["saved_prefill_s"]
        return out
    saved_decode = base["total_decode_s"] - summary["total_decode_s"]
    out.update(thesis_efficiency(summary, out["saved_prefill_s"], saved_decode))
    return out


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


def with_bands(result: dict[str, Any], engine: str | None) -> dict[str, Any]:
    """``<key>_low`` and ``<key>_high`` for every banded figure of ``result``, from the held-out
    errors of ``engine``'s profiles ({} without an engine or bands)."""
    from kavier.perf.profiles import BAND_KEYS, band_limits, bands

    found = bands(engine) if engine else {}
    out: dict[str, Any] = {}
    for metric, (q_low, q_high) in found.items():
        for key in BAND_KEYS.get(metric, ()):
            value = result.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                out[f"{key}_low"], out[f"{key}_high"] = band_limits(float(value), q_low, q_high)
    return out


def rate(count: float, wall_s: float) -> float:
    """``count`` per second of wall time (NaN for no time)."""
    return count / wall_s if wall_s > 0 else math.nan
