"""``kavier.summary``: ``--baseline`` savings against the same run without caches, and the bands."""

from __future__ import annotations

import math
import tomllib

import pytest

import kavier
from kavier.perf.profiles import BAND_KEYS, HERE
from kavier.summary import BAND_SUMMARY_KEYS, SUMMARY_KEYS, with_bands
from tests.paths import ROOT
from tests.runs import SERVE

SMALL = {
    "workload": "poisson",
    "rate": 10.0,
    "num_requests": 20,
    "input_tokens": "uniform:200:1500",
    "output_tokens": "uniform:8:64",
    "seed": 4,
    "prefix_cache": "off",
    **SERVE,
}


def test_baseline_reports_savings():
    s = kavier.simulate(workload="chat", num_sessions=20, baseline=True, **SERVE).summary
    assert s["saved_gpu_s"] == pytest.approx(s["baseline_gpu_busy_s"] - s["gpu_busy_s"])
    assert s["saved_prefill_s"] > 0 and s["saved_energy_j"] > 0 and s["saved_cost_usd"] > 0
    assert s["saved_co2_g"] > 0 and s["ttft_mean_change_s"] < 0


@pytest.mark.parametrize("engine", ["vllm-v1", "vllm-v0"])
def test_bands_are_the_held_out_quantiles_of_bands_toml(engine):
    """<key>_low = key / (1 + q90) and <key>_high = key / (1 + q10), with bands.toml's quantiles."""
    s = kavier.simulate(engine=engine, **SMALL).summary
    data = tomllib.loads((HERE / engine / "bands.toml").read_text(encoding="utf-8"))
    q10, q90 = data["ttft"]["q10"], data["ttft"]["q90"]
    assert s["ttft_p50_s_low"] == pytest.approx(s["ttft_p50_s"] / (1 + q90), rel=1e-12)
    assert s["ttft_p50_s_high"] == pytest.approx(s["ttft_p50_s"] / (1 + q10), rel=1e-12)
    for band, keys in BAND_KEYS.items():
        q10, q90 = data[band]["q10"], data[band]["q90"]
        for key in keys:
            value, low, high = s[key], s[f"{key}_low"], s[f"{key}_high"]
            assert value > 0 and math.isfinite(value), key
            assert low == pytest.approx(value / (1 + q90), rel=1e-12), key
            assert high == pytest.approx(value / (1 + q10), rel=1e-12), key
            assert low <= high, key
    # The band keys come last but for the wall-clock keys, in SUMMARY_KEYS order.
    assert list(s)[list(s).index("ttft_mean_s_low") :][: len(BAND_SUMMARY_KEYS)] == list(BAND_SUMMARY_KEYS)


def test_thesis_preset_has_null_bands_as_documented():
    """The thesis preset (no engine) reports every band key as null, as docs/reference.md says."""
    s = kavier.simulate(preset="thesis", num_requests=10, opendc=False).summary
    assert s["engine"] is None and s["perf_profile_used"] is None
    assert set(BAND_SUMMARY_KEYS) <= set(s) and all(s[k] is None for k in BAND_SUMMARY_KEYS)
    assert s["ttft_p50_s"] > 0  # the figures themselves are there, only their bands are not
    reference = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    line = next(ln for ln in reference.splitlines() if ln.startswith("Every `summary.json` holds"))
    assert "`null` where a run cannot have the value" in line
    assert all(f"`{k}`" in line for k in BAND_SUMMARY_KEYS)
    assert set(BAND_SUMMARY_KEYS) <= set(SUMMARY_KEYS)


def test_with_bands_skips_missing_and_non_finite_figures():
    """with_bands bands only finite numbers, and nothing without an engine or with no bands.toml."""
    result = {"ttft_p50_s": 0.2, "ttft_p90_s": math.nan, "ttft_p99_s": None, "tpot_mean_s": 0.01}
    out = with_bands(result, "vllm-v1")
    assert set(out) == {"ttft_p50_s_low", "ttft_p50_s_high", "tpot_mean_s_low", "tpot_mean_s_high"}
    assert with_bands(result, None) == {} and with_bands(result, "no-such-engine") == {}


SAVED_KEYS = (
    "saved_prefill_s",
    "saved_decode_s",
    "cache_saved_share",
    "thesis_e_cost_usd_per_mtok",
    "thesis_e_energy_wh_per_mtok",
    "thesis_e_co2_g_per_mtok",
)


def test_serving_preset_leaves_cache_savings_null_without_a_baseline():
    """The serving engine does not time what its caches saved: null, not a 0.0 that reads as
    'saved nothing'."""
    s = kavier.simulate(workload="chat", num_sessions=10, **SERVE).summary
    assert s["prefix_cache_hits"] > 0
    assert all(s[k] is None for k in SAVED_KEYS)


def test_serving_baseline_computes_every_saving_consistently():
    """With --baseline the saved prefill and decode seconds add up to the saved GPU-seconds, and
    the share and the thesis efficiency follow from them (none of them 0.0 beside a saving)."""
    s = kavier.simulate(workload="chat", num_sessions=20, baseline=True, **SERVE).summary
    assert s["saved_prefill_s"] == pytest.approx(s["baseline_total_prefill_s"] - s["total_prefill_s"])
    assert s["saved_prefill_s"] + s["saved_decode_s"] == pytest.approx(s["saved_gpu_s"])
    assert s["cache_saved_share"] == pytest.approx(s["saved_gpu_s"] / s["baseline_gpu_busy_s"])
    assert 0 < s["cache_saved_share"] < 1
    assert s["thesis_e_cost_usd_per_mtok"] == pytest.approx(s["usd_per_mtok"] * s["cache_saved_share"])
    assert s["thesis_e_co2_g_per_mtok"] == pytest.approx(s["gco2_per_mtok"] * s["cache_saved_share"])


def test_thesis_baseline_keeps_the_savings_the_run_timed_itself():
    kw = {"preset": "thesis", "num_requests": 60, "opendc": False}
    plain = kavier.simulate(**kw).summary
    s = kavier.simulate(baseline=True, **kw).summary
    assert s["saved_prefill_s"] > 0
    for key in SAVED_KEYS:
        assert s[key] == plain[key], key
    assert s["saved_gpu_s"] == pytest.approx(s["saved_prefill_s"] + s["saved_decode_s"])


def test_request_hit_ratio_is_named_for_what_it_counts():
    """prefix_cache_requests_with_any_hit_ratio: requests with any prefix hit / lookups (the old
    prefix_cache_hit_ratio kept); null without a prefix cache."""
    s = kavier.simulate(workload="chat", num_sessions=10, **SERVE).summary
    assert s["prefix_cache_requests_with_any_hit_ratio"] == s["prefix_cache_hit_ratio"]
    assert s["prefix_cache_hits"] / s["prefix_cache_lookups"] == s["prefix_cache_requests_with_any_hit_ratio"]
    off = kavier.simulate(**SMALL).summary
    assert off["prefix_cache_requests_with_any_hit_ratio"] is None


def test_busy_fraction_and_kv_use_are_named_for_what_they_are():
    s = kavier.simulate(**SMALL).summary
    busy = s["gpu_busy_s"] / (s["num_gpus"] * s["simulated_time_s"])
    assert s["gpu_busy_fraction"] == pytest.approx(busy)
    # gpu_utilization_mean is the power model's input: busy fraction x the busy utilisation
    assert s["gpu_utilization_mean"] == pytest.approx(0.95 * busy)
    assert s["kv_use_mean"] == s["kv_utilization_mean"]
    assert 0 < s["kv_use_mean"] <= s["kv_use_peak"] <= 1
    blocks = s["kv_blocks_total"]
    assert s["kv_headroom_blocks"] == round(blocks * (1 - s["kv_use_peak"]))
    assert 0 < s["mfu_mean"] < 1 and 0 < s["mbu_mean"] < 1
    thesis = kavier.simulate(preset="thesis", num_requests=10, opendc=False).summary
    assert thesis["kv_use_peak"] is None and thesis["kv_headroom_blocks"] is None
    assert 0 < thesis["gpu_busy_fraction"] <= 1


def test_new_keys_are_appended_after_the_old_ones():
    old_last = SUMMARY_KEYS.index("simulated_s_per_wall_s")
    for key in ("load_state", "gpu_busy_fraction", "kv_use_peak", "prefix_cache_requests_with_any_hit_ratio"):
        assert SUMMARY_KEYS.index(key) > old_last
