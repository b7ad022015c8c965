"""``kavier.report.plots``: PNGs are written, valid, and the power plot is conditional."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from matplotlib.image import imread

from kavier.errors import KavierError
from kavier.report import plots
from kavier.report.plots import write_plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


BASE_PLOTS = {"latency_cdf.png", "utilization_queue.png", "kv_usage.png"}


GIB = 1024**3


def make_run(
    folder: Path,
    *,
    n_replicas: int = 2,
    n_requests: int = 400,
    n_intervals: int = 300,
    interval_s: float = 1.0,
    power: bool = False,
    seed: int = 0,
) -> Path:
    """Write a synthetic kavier output folder (requests, timeseries, summary) into ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)

    n = n_requests
    arrival = np.sort(rng.uniform(0, n_intervals * interval_s * 0.9, n))
    queue = rng.exponential(0.05, n)
    n_in = rng.integers(50, 4000, n)
    n_out = rng.integers(1, 600, n)
    prefill = n_in * 2e-5 + rng.uniform(0.005, 0.02, n)
    tpot = rng.lognormal(np.log(0.03), 0.3, n)
    decode = tpot * np.maximum(n_out - 1, 0)
    start = arrival + queue
    first = start + prefill
    finish = first + decode
    requests = pa.table(
        {
            "request_id": pa.array(np.arange(n), pa.int64()),
            "session_id": pa.array(np.arange(n) // 4, pa.int64()),
            "arrival_s": arrival,
            "start_s": start,
            "first_token_s": first,
            "finish_s": finish,
            "num_input_tokens": pa.array(n_in, pa.int64()),
            "num_output_tokens": pa.array(n_out, pa.int64()),
            "cached_tokens": pa.array(n_in // 3, pa.int64()),
            "queue_s": queue,
            "prefill_s": prefill,
            "decode_s": decode,
            "ttft_s": first - arrival,
            "tpot_s": np.where(n_out >= 2, tpot, np.nan),
            "e2e_s": finish - arrival,
            "replica": pa.array(np.arange(n) % n_replicas, pa.int32()),
            "preemptions": pa.array(rng.integers(0, 2, n), pa.int32()),
        }
    )
    pq.write_table(requests, folder / "requests.parquet")

    t = np.arange(n_intervals) * interval_s
    time_s = np.tile(t, n_replicas)
    replica = np.repeat(np.arange(n_replicas), n_intervals).astype(np.int32)
    phase = replica * 0.7
    util = np.clip(0.6 + 0.3 * np.sin(time_s / (n_intervals * interval_s) * 6 + phase), 0, 1)
    cap = np.full(time_s.size, 40.0 * GIB)
    cols = {
        "time_s": time_s,
        "replica": pa.array(replica, pa.int32()),
        "gpu_utilization": util,
        "kv_used_bytes": cap * util * 0.8,
        "kv_capacity_bytes": cap,
        "running": 20 * util + rng.uniform(0, 2, time_s.size),
        "waiting": np.maximum(0, 30 * (util - 0.7)) + rng.uniform(0, 1, time_s.size),
    }
    if power:
        power_w = 150 + 550 * util
        ci = 200 + 100 * np.cos(time_s / 3600)
        energy_j = power_w * interval_s
        cols |= {
            "power_w": power_w,
            "energy_j": energy_j,
            "carbon_intensity_g_per_kwh": ci,
            "co2_g": energy_j / 3.6e6 * ci,
        }
    pq.write_table(pa.table(cols), folder / "timeseries.parquet")

    summary = {"num_requests": n, "ttft_p50_s": float(np.median(first - arrival))}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def assert_png(path: Path) -> tuple[int, int]:
    """Assert ``path`` is a non-trivial PNG and return its (width, height) in pixels."""
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    img = imread(path)
    height, width = img.shape[:2]
    assert width >= 600 and height >= 400, (path, width, height)
    # Not a blank canvas: a real plot has a fair share of non-white pixels.
    non_white = (img[..., :3] < 0.95).any(axis=-1).mean()
    assert non_white > 0.01, (path, non_white)
    return width, height


def test_two_replicas_without_power(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    paths = write_plots(run)
    assert {p.name for p in paths} == BASE_PLOTS
    assert all(p.parent == run / "plots" for p in paths)
    for p in paths:
        assert_png(p)
    assert not (run / "plots" / "power_energy_co2.png").exists()


def test_power_columns_add_power_plot(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", power=True)
    paths = write_plots(run)
    assert {p.name for p in paths} == BASE_PLOTS | {"power_energy_co2.png"}
    for p in paths:
        assert_png(p)


def test_power_without_energy_or_co2_columns(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", power=True)
    table = pq.read_table(run / "timeseries.parquet")
    table = table.drop_columns(["energy_j", "co2_g", "carbon_intensity_g_per_kwh"])
    pq.write_table(table, run / "timeseries.parquet")
    paths = write_plots(run)
    assert "power_energy_co2.png" in {p.name for p in paths}
    for p in paths:
        assert_png(p)


def test_twenty_replicas_and_custom_out_dir(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_replicas=20, power=True, n_intervals=200, interval_s=60)
    out = tmp_path / "pics"
    paths = write_plots(str(run), out_dir=str(out))
    assert {p.name for p in paths} == BASE_PLOTS | {"power_energy_co2.png"}
    assert all(p.parent == out for p in paths)
    for p in paths:
        assert_png(p)
    assert not (run / "plots").exists()


def test_all_tpot_nan_still_plots(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    table = pq.read_table(run / "requests.parquet")
    idx = table.schema.get_field_index("tpot_s")
    table = table.set_column(idx, "tpot_s", pa.array(np.full(table.num_rows, np.nan)))
    pq.write_table(table, run / "requests.parquet")
    paths = write_plots(run)
    assert_png(paths[0])


def test_missing_requests_file_raises(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    (run / "requests.parquet").unlink()
    with pytest.raises(KavierError, match="requests.parquet") as info:
        write_plots(run)
    assert "\n" not in str(info.value)
    assert "run" in str(info.value)


def test_missing_timeseries_file_raises(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    (run / "timeseries.parquet").unlink()
    with pytest.raises(KavierError, match="timeseries.parquet"):
        write_plots(run)


def test_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(KavierError, match="nope"):
        write_plots(tmp_path / "nope")


def test_missing_column_raises(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    table = pq.read_table(run / "timeseries.parquet").drop_columns(["gpu_utilization"])
    pq.write_table(table, run / "timeseries.parquet")
    with pytest.raises(KavierError, match="gpu_utilization"):
        write_plots(run)


def test_corrupt_parquet_raises(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    (run / "requests.parquet").write_bytes(b"not parquet")
    with pytest.raises(KavierError, match="requests.parquet"):
        write_plots(run)


def test_long_timeseries_is_binned(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_intervals=12_000, power=True)
    ts = plots._TimeSeries.load(run / "timeseries.parquet")
    assert ts.binned and ts.num_bins == plots.NUM_BINS
    util = ts.per_replica_mean(ts.columns["gpu_utilization"])
    assert util.shape == (2, plots.NUM_BINS)
    assert np.isfinite(util).all()
    # Binning by mean preserves the overall average.
    assert util.mean() == pytest.approx(ts.columns["gpu_utilization"].mean(), rel=1e-3)
    # Summing power over replicas then averaging intervals per bin keeps total power right.
    power = ts.total_per_bin(ts.columns["power_w"]) / ts.intervals_per_bin()
    expected = ts.columns["power_w"].sum() / 12_000
    assert power.mean() == pytest.approx(expected, rel=1e-2)
    for p in write_plots(run):
        assert_png(p)


def test_short_timeseries_is_not_binned(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_intervals=300)
    ts = plots._TimeSeries.load(run / "timeseries.parquet")
    assert not ts.binned and ts.num_bins == 300


def test_cdf_points_are_thinned_deterministically() -> None:
    values = np.random.default_rng(1).lognormal(size=plots.MAX_CDF_POINTS * 3)
    x1, y1 = plots._cdf_points(values)
    x2, y2 = plots._cdf_points(values)
    assert x1.size <= plots.MAX_CDF_POINTS
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert x1[0] == values.min() and x1[-1] == values.max()
    assert y1[-1] == 1.0
    assert np.all(np.diff(x1) >= 0)


def test_empty_timeseries_still_writes_plots(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", power=True)
    table = pq.read_table(run / "timeseries.parquet").slice(0, 0)
    pq.write_table(table, run / "timeseries.parquet")
    paths = write_plots(run)
    assert {p.name for p in paths} == BASE_PLOTS | {"power_energy_co2.png"}
    for p in paths:
        assert p.read_bytes()[:8] == PNG_MAGIC


def test_single_interval_single_replica(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_replicas=1, n_intervals=1, n_requests=1, power=True)
    paths = write_plots(run)
    assert len(paths) == 4
    for p in paths:
        assert_png(p)
