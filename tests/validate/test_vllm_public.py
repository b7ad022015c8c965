"""The vllm-public suite: its built-in data and its replay of ``vllm bench serve`` runs."""

from __future__ import annotations

import math
from importlib.resources import files

import numpy as np
import pytest

from kavier.library.catalog import load_catalog
from kavier.validate import vllm_public as v
from kavier.validate.compare import FITTED, SHIPPED_HELD_OUT
from kavier.validate.suites import SUITES

RUNS = v.runs(v.read_rows())
NEEDED = {"mean_tpot_ms", "median_itl_ms", "output_tokens_per_s", "mean_ttft_ms", "duration_s"}


def test_the_csv_ships_inside_the_package_and_parses():
    assert files("kavier.validate").joinpath("data/public/vllm_serving.csv").is_file()
    rows = v.read_rows()
    assert rows and set(rows[0]) == set(v.RUN_KEYS) | {"metric", "value", "unit", "notes"}
    for row in rows:
        assert math.isfinite(float(row["value"])) and float(row["value"]) > 0
        assert row["url"].startswith("https://")
    assert len(RUNS) >= 10
    for run in RUNS:
        assert set(run["metrics"]) >= NEEDED, run["source_id"]


def test_every_gpu_and_model_is_in_the_library():
    catalog = load_catalog()
    for run in RUNS:
        assert catalog.gpu(run["gpu"]) is not None
        assert catalog.model(run["model"]) is not None
        assert int(run["tp"]) <= int(run["num_gpus"])


def test_the_rows_totals_agree_with_their_lengths():
    """Random prompts of L tokens (within 0.5 %: a few lost to retokenising), outputs to full length."""
    for run in RUNS:
        n, m = int(run["num_prompts"]), run["metrics"]
        assert m["total_output_tokens"] == n * int(run["output_tokens"])
        assert m["total_input_tokens"] == pytest.approx(n * int(run["input_tokens"]), rel=0.005)


@pytest.mark.parametrize("run", RUNS[:3], ids=lambda r: f"{r['source_id']}-{r['num_prompts']}")
def test_the_replay_sends_the_rows_requests(run):
    cols = v.workload(run)
    n = int(run["num_prompts"])
    assert cols["num_input_tokens"].size == n
    assert np.all(cols["num_input_tokens"] == int(run["input_tokens"]))
    assert np.all(cols["num_output_tokens"] == int(run["output_tokens"]))
    assert np.all(cols["arrival_s"] == 0.0)  # request rate inf: all sent at once


def test_range_ratio_and_a_finite_rate_follow_the_bench_client():
    rng = np.random.default_rng(1)
    lens = v.lengths(1000, 0.5, 5000, rng)
    assert lens.min() >= 500 and lens.max() <= 1500 and abs(lens.mean() - 1000) < 20
    times = v.arrivals(200, 4.0, rng)
    assert np.all(np.diff(times) >= 0) and times[-1] == pytest.approx(200 / 4.0)


def test_the_kv_cache_is_the_gib_the_server_logged():
    run = next(r for r in RUNS if r["tp"] == "1")
    keys = v.scenario_of(run)
    catalog = load_catalog()
    gpu, model = catalog.gpu(run["gpu"]), catalog.model(run["model"])
    kv = keys["gpu_memory_utilization"] * gpu.memory_bytes - model.num_params * 2
    assert kv / v.GIB == pytest.approx(float(v.flags(run)["kv_cache_gib_per_gpu"]), rel=1e-6)


def test_one_tp1_run_is_predicted_within_15_percent():
    """Qwen2.5-32B on one A100-80GB, 10 prompts of 1024/1024: the decode-bound figures."""
    run = next(r for r in RUNS if r["tp"] == "1" and r["num_prompts"] == "10")
    predicted = v.predict(run)
    for name, (metric, factor) in v.MEASURED.items():
        if metric == "ttft_s":
            continue
        measured = run["metrics"][name] * factor
        assert abs(predicted[metric] / measured - 1) < 0.15, (metric, predicted[metric], measured)


def test_the_suite_is_registered_built_in_and_held_out():
    suite = SUITES["vllm-public"]
    assert suite.data_file is None
    comparisons = v.run(split=FITTED)
    assert {c.split for c in comparisons} == {SHIPPED_HELD_OUT}
    assert {c.metric for c in comparisons} == {"tpot_s", "itl_s", "output_tokens_per_s"}  # TTFT confounded
    assert len(comparisons) == 3 * len(RUNS)
