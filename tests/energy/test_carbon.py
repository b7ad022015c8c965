"""``kavier.energy.carbon``: regional table, exact interval means of step series, trace files,
coverage errors."""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kavier.energy.carbon import (
    RegionIntensity,
    StepSeries,
    all_regions,
    check_coverage,
    load_carbon_trace,
    load_pue_series,
    region_intensity,
    region_rows,
)
from kavier.errors import KavierError, ScenarioError
from tests.paths import SHARED_DATA

T0 = 1_700_000_000.0  # an epoch-scale origin, so precision problems would show


def exact_mean(times: list[float], values: list[float], step: float, a: float, b: float) -> float:
    """Reference: time-weighted mean over [a, b) by explicit overlap of every step (no wrap)."""
    ends = list(times[1:]) + [times[-1] + step]
    total = 0.0
    for t0, t1, v in zip(times, ends, values, strict=True):
        total += v * max(0.0, min(b, t1) - max(a, t0))
    return total / (b - a)


def test_interval_means_match_hand_computation() -> None:
    s = StepSeries([T0, T0 + 10, T0 + 20], [1.0, 3.0, 5.0])
    assert s.step_s == 10.0 and s.end_s == T0 + 30
    np.testing.assert_allclose(s.interval_means(T0 + 5, 10.0, 2), [2.0, 4.0], rtol=1e-12)
    # Intervals not aligned to the steps: [2,9) = 1; [9,16) = (1*1 + 6*3)/7; [16,23) = (4*3 + 3*5)/7.
    np.testing.assert_allclose(s.interval_means(T0 + 2, 7.0, 3), [1.0, 19 / 7, 27 / 7], rtol=1e-12)
    # One interval over everything is the time-weighted mean.
    assert s.interval_means(T0, 30.0, 1)[0] == pytest.approx(3.0)
    assert s.mean() == pytest.approx(3.0)


def test_uneven_steps_last_value_holds_one_median_step() -> None:
    # Steps of 10 s and 30 s: median 20 s, so the last value (6) holds on [40, 60).
    s = StepSeries([T0, T0 + 10, T0 + 40], [2.0, 4.0, 6.0])
    assert s.step_s == 20.0 and s.end_s == T0 + 60
    assert s.interval_means(T0 + 40, 20.0, 1)[0] == pytest.approx(6.0)
    assert s.interval_means(T0, 60.0, 1)[0] == pytest.approx((2 * 10 + 4 * 30 + 6 * 20) / 60)
    assert not s.covers(T0, T0 + 61)


def test_interval_means_agree_with_explicit_overlaps_on_random_series() -> None:
    rng = np.random.default_rng(7)
    # Offsets in eighths of a second: exact in float64 even at epoch scale, so the reference (computed
    # relative to T0) and the series (given absolute epoch times) see the same instants.
    rel = list(np.cumsum(rng.integers(8, 400, size=40)) / 8.0)
    values = list(rng.uniform(0.0, 900.0, size=40))
    s = StepSeries([T0 + r for r in rel], values)
    start_rel, dt = rel[0] + 3.25, 17.875
    n = int((s.end_s - T0 - start_rel) // dt)
    got = s.interval_means(T0 + start_rel, dt, n)
    want = [exact_mean(rel, values, s.step_s, start_rel + k * dt, start_rel + (k + 1) * dt) for k in range(n)]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    # The means times dt add up to the integral over the whole span.
    whole = exact_mean(rel, values, s.step_s, start_rel, start_rel + n * dt) * n * dt
    assert got.sum() * dt == pytest.approx(whole, rel=1e-12)


def test_wrap_repeats_with_its_period() -> None:
    s = StepSeries([T0, T0 + 10, T0 + 20], [1.0, 3.0, 5.0], wrap=True)
    assert s.period_s == 30.0
    base = s.interval_means(T0 + 2, 7.0, 4)
    for k in (-3, 1, 5, 1000):
        np.testing.assert_allclose(s.interval_means(T0 + 2 + k * 30.0, 7.0, 4), base, rtol=1e-9)
    # An interval across the wrap point: [25, 35) = 5 s of 5 then 5 s of 1.
    assert s.interval_means(T0 + 25, 10.0, 1)[0] == pytest.approx(3.0)
    # Before the first timestamp: [-5, 5) = 5 s of the last value then 5 s of the first.
    assert s.interval_means(T0 - 5, 10.0, 1)[0] == pytest.approx(3.0)
    # Many whole periods average to the series mean.
    assert s.interval_means(T0 + 7, 30.0 * 11, 1)[0] == pytest.approx(s.mean())
    assert s.covers(T0 - 1e6, T0 + 1e6)


def test_coverage_and_out_of_range_intervals() -> None:
    s = StepSeries([T0, T0 + 10, T0 + 20], [1.0, 3.0, 5.0])
    assert s.covers(T0, T0 + 30)
    assert not s.covers(T0 - 1, T0 + 10)
    assert not s.covers(T0, T0 + 31)
    with pytest.raises(ScenarioError):
        s.interval_means(T0 + 25, 10.0, 1)
    with pytest.raises(ScenarioError):
        s.interval_means(T0, 0.0, 1)
    assert s.interval_means(T0 + 1e9, 1.0, 0).shape == (0,)


def test_check_coverage_message_names_trace_spans_and_fix() -> None:
    start = datetime(2022, 1, 1, tzinfo=UTC).timestamp()
    s = StepSeries(start + 3600.0 * np.arange(24 * 365), np.full(24 * 365, 100.0), name="x")
    run0 = datetime(2023, 1, 1, tzinfo=UTC).timestamp()
    with pytest.raises(ScenarioError) as err:
        check_coverage(s, run0, run0 + 5 * 3600, "carbon trace", "nl.parquet")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg == (
        "carbon trace nl.parquet covers 2022-01-01T00:00Z..2023-01-01T00:00Z but the run spans "
        "2023-01-01T00:00Z..2023-01-01T05:00Z; choose --start-time inside it or pass --carbon-trace-wrap"
    )
    check_coverage(s, start, start + 86400, "carbon trace", "nl.parquet")  # inside: no error
    wrapped = StepSeries(s.times_s, s.values, wrap=True)
    check_coverage(wrapped, run0, run0 + 5 * 3600, "carbon trace", "nl.parquet")


def test_constant_and_point_lookup() -> None:
    c = StepSeries.constant(321.0)
    np.testing.assert_allclose(c.interval_means(T0, 0.25, 1000), 321.0)
    s = StepSeries([T0, T0 + 10, T0 + 20], [1.0, 3.0, 5.0])
    np.testing.assert_array_equal(s.at([T0, T0 + 9.99, T0 + 10, T0 + 29.9]), [1.0, 1.0, 3.0, 5.0])
    with pytest.raises(ScenarioError):
        s.at(T0 + 30)


def test_invalid_series_are_rejected() -> None:
    with pytest.raises(ScenarioError):
        StepSeries([T0, T0], [1.0, 2.0])
    with pytest.raises(ScenarioError):
        StepSeries([], [])
    with pytest.raises(ScenarioError):
        StepSeries([T0, T0 + 1], [1.0])


def test_ten_million_intervals_are_fast() -> None:
    n = 35_040  # a year of 15-minute steps
    rng = np.random.default_rng(1)
    s = StepSeries(T0 + 900.0 * np.arange(n), rng.uniform(10, 500, n))
    t = time.perf_counter()
    m = s.interval_means(T0, 1.0, 10_000_000)
    elapsed = time.perf_counter() - t
    assert m.shape == (10_000_000,)
    # 10^7 one-second bins = 11111 whole 900 s steps plus 100 s of the next one.
    # Float64 rounding of a year-long cumulative integral: ~1e-9 relative for 1 s bins.
    np.testing.assert_allclose(m[:900], s.values[0], rtol=1e-8)
    np.testing.assert_allclose(m[-100:], s.values[11111], rtol=1e-8)
    assert elapsed < 2.0, f"10^7 interval means took {elapsed:.2f} s"
    w = StepSeries(s.times_s, s.values, wrap=True)
    t = time.perf_counter()
    w.interval_means(T0 - 5e6, 3.7, 10_000_000)
    assert time.perf_counter() - t < 3.0


def write_parquet(
    path: Path, ts_ms: list[int], ci: list[float], *, ts_type: pa.DataType | None = None
) -> Path:
    ts = pa.array(ts_ms, type=pa.int64())
    if ts_type is not None:  # a real timestamp column, same instants
        ts = pa.array([datetime.fromtimestamp(t / 1000, tz=UTC) for t in ts_ms], type=ts_type)
    pq.write_table(pa.table({"timestamp": ts, "carbon_intensity": pa.array(ci, type=pa.float64())}), path)
    return path


MS0 = 1_640_995_200_000  # 2022-01-01T00:00Z


@pytest.mark.parametrize("ts_type", [None, pa.timestamp("ms"), pa.timestamp("us", tz="UTC")])
def test_load_parquet_trace(tmp_path: Path, ts_type: pa.DataType | None) -> None:
    p = write_parquet(
        tmp_path / "t.parquet", [MS0, MS0 + 3_600_000, MS0 + 7_200_000], [100, 200, 400], ts_type=ts_type
    )
    s = load_carbon_trace(p)
    np.testing.assert_allclose(s.times_s, [MS0 / 1000, MS0 / 1000 + 3600, MS0 / 1000 + 7200])
    np.testing.assert_allclose(s.values, [100, 200, 400])
    assert s.end_s == MS0 / 1000 + 3 * 3600
    assert s.interval_means(MS0 / 1000 + 1800, 3600, 2) == pytest.approx([150.0, 300.0])
    assert not s.wrap and load_carbon_trace(p, wrap=True).wrap


def test_load_csv_trace_ms_and_iso(tmp_path: Path) -> None:
    ms = tmp_path / "ms.csv"
    ms.write_text(f"timestamp,carbon_intensity\n{MS0},10\n{MS0 + 900_000},20\n")
    iso = tmp_path / "iso.csv"
    iso.write_text(
        "timestamp,carbon_intensity\n2022-01-01T00:00:00Z,10\n2022-01-01T01:15:00+01:00,20\n"  # = 00:15Z
    )
    naive = tmp_path / "naive.csv"
    naive.write_text("timestamp,carbon_intensity\n2022-01-01 00:00:00,10\n2022-01-01 00:15:00,20\n")
    for p in (ms, iso, naive):
        s = load_carbon_trace(p)
        np.testing.assert_allclose(s.times_s, [MS0 / 1000, MS0 / 1000 + 900], err_msg=str(p))
        np.testing.assert_allclose(s.values, [10, 20])


def test_unsorted_rows_are_sorted_and_duplicates_rejected(tmp_path: Path) -> None:
    p = tmp_path / "u.csv"
    p.write_text(f"timestamp,carbon_intensity\n{MS0 + 7_200_000},3\n{MS0},1\n{MS0 + 3_600_000},2\n")
    s = load_carbon_trace(p)
    np.testing.assert_allclose(s.values, [1, 2, 3])
    d = tmp_path / "d.csv"
    d.write_text(f"timestamp,carbon_intensity\n{MS0},1\n{MS0 + 3_600_000},2\n{MS0},5\n")
    with pytest.raises(ScenarioError, match=r"rows 1 and 3 share timestamp 2022-01-01T00:00Z"):
        load_carbon_trace(d)


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        (f"timestamp,carbon_intensity\n{MS0},1\n{MS0 + 1000},nan\n", r"row 2: carbon_intensity is missing"),
        (f"timestamp,carbon_intensity\n{MS0},1\n{MS0 + 1000},-3\n", r"row 2: carbon_intensity = -3\.0"),
        (f"timestamp,carbon_intensity\n{MS0},1\n{MS0 + 1000},\n", r"row 2: carbon_intensity is missing"),
        (f"timestamp,co2\n{MS0},1\n", r"lacks column\(s\) carbon_intensity; found: timestamp, co2"),
        ("timestamp,carbon_intensity\n", r"holds no rows"),
        ("timestamp,carbon_intensity\nyesterday,1\n", r"row 1: timestamp 'yesterday' is neither"),
    ],
)
def test_bad_trace_rows_give_one_line_errors(tmp_path: Path, body: str, pattern: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(body)
    with pytest.raises(ScenarioError, match=pattern) as err:
        load_carbon_trace(p)
    assert str(p) in str(err.value) and "\n" not in str(err.value)


def test_nan_and_negative_in_parquet(tmp_path: Path) -> None:
    p = write_parquet(tmp_path / "nan.parquet", [MS0, MS0 + 1000, MS0 + 2000], [1.0, 2.0, float("nan")])
    with pytest.raises(ScenarioError, match=r"nan\.parquet: row 3: carbon_intensity = nan must be"):
        load_carbon_trace(p)
    p = write_parquet(tmp_path / "neg.parquet", [MS0, MS0 + 1000], [-0.5, 2.0])
    with pytest.raises(ScenarioError, match=r"neg\.parquet: row 1: carbon_intensity = -0\.5 must be"):
        load_carbon_trace(p)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="does not exist"):
        load_carbon_trace(tmp_path / "nope.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"this is not parquet at all")
    with pytest.raises(ScenarioError, match=r"junk\.parquet is not a readable parquet file") as err:
        load_carbon_trace(junk)
    assert "\n" not in str(err.value)
    assert isinstance(err.value, KavierError)


def test_pue_series(tmp_path: Path) -> None:
    p = tmp_path / "pue.csv"
    p.write_text(f"timestamp,pue\n{MS0},1.2\n{MS0 + 3_600_000},1.4\n")
    s = load_pue_series(p)
    assert s.interval_means(MS0 / 1000, 7200.0, 1)[0] == pytest.approx(1.3)
    bad = tmp_path / "bad.csv"
    bad.write_text(f"timestamp,pue\n{MS0},1.2\n{MS0 + 3_600_000},0.9\n")
    with pytest.raises(
        ScenarioError, match=r"PUE series .*bad\.csv: row 2: pue = 0\.9 must be a finite number >= 1\.0"
    ):
        load_pue_series(bad)


REQUIRED_REGIONS = [
    "NL", "DE", "FR", "BE", "PL", "SE", "NO", "FI", "DK", "ES", "PT", "IT", "GB", "IE", "AT", "CH", "CZ",
    "GR", "US", "US-CA", "US-TX", "US-VA", "US-WA", "US-NY", "CA", "BR", "IN", "CN", "JP", "KR", "AU",
    "SG", "ZA",
]  # fmt: skip


def test_region_table_is_complete_and_sourced() -> None:
    rows = region_rows()
    codes = [r["code"] for r in rows]
    assert len(rows) >= 30 and len(set(codes)) == len(codes)
    assert set(REQUIRED_REGIONS) <= set(codes)
    for r in rows:
        assert 0 < r["g_per_kwh"] < 1200, r
        assert 2015 <= r["year"] <= 2030, r
        assert r["source"] and r["licence"], r


LICENCES = {"CC-BY-4.0", "ODbL-1.0", "CC0-1.0", "public-domain"}
SOURCE_DATA = re.compile(r"^github\.com/[\w.-]+/[\w.-]+@[0-9a-f]{40}:\S+, \S")


def test_every_region_has_a_read_source_year_and_licence() -> None:
    """Issue 14: no figure from memory; each names its publisher, page, stored file@commit, year, licence."""
    regions = all_regions()
    assert len(regions) == 39
    for r in regions:
        assert r.source.strip() and r.source_url.startswith("https://"), r.code
        assert r.licence in LICENCES, r.code
        assert 2015 <= r.year <= 2030, r.code
        assert r.basis.startswith("lifecycle"), r.code
        text = " ".join((r.source, r.source_url, r.source_data, r.note)).lower()
        assert "from memory" not in text and "unverified" not in text, r.code
        if r.verified:
            assert SOURCE_DATA.match(r.source_data), (r.code, r.source_data)
            assert r.value_in_source is not None and abs(r.g_per_kwh - r.value_in_source) <= 0.5, r.code
        else:  # allowed only with a stated reason
            assert r.note.strip(), r.code
    assert all(r.verified for r in regions)


@pytest.mark.parametrize(
    ("code", "g_per_kwh", "source", "licence"),
    [
        # Values that changed when the remembered figures were replaced by read ones (2023).
        ("PT", 166.0, "Ember via Our World in Data", "CC-BY-4.0"),  # 165.553
        ("KR", 431.0, "Ember via Our World in Data", "CC-BY-4.0"),  # 430.567
        ("EU", 244.0, "Ember", "CC-BY-4.0"),  # 243.83
        ("US-CA", 263.0, "Electricity Maps", "ODbL-1.0"),
        ("US-TX", 394.0, "Electricity Maps", "ODbL-1.0"),
        ("US-VA", 401.0, "Electricity Maps", "ODbL-1.0"),
        ("US-WA", 123.0, "Electricity Maps", "ODbL-1.0"),
        ("US-NY", 286.0, "Electricity Maps", "ODbL-1.0"),
        ("CA-QC", 31.0, "Electricity Maps", "ODbL-1.0"),
        # Unchanged ones, now read from the same files.
        ("NL", 268.0, "Ember via Our World in Data", "CC-BY-4.0"),  # 267.622
        ("WORLD", 481.0, "Ember", "CC-BY-4.0"),  # 480.79
        ("IS", 28.0, "Electricity Maps", "ODbL-1.0"),
    ],
)
def test_region_values_come_from_their_source(code: str, g_per_kwh: float, source: str, licence: str) -> None:
    r = region_intensity(code)
    assert (r.g_per_kwh, r.year, r.source, r.licence) == (g_per_kwh, 2023, source, licence)


def test_region_lookup_is_case_insensitive_with_aliases() -> None:
    nl = region_intensity("nl")
    assert isinstance(nl, RegionIntensity) and nl.code == "NL"
    assert region_intensity("UK").code == "GB"
    assert region_intensity(" gb ").code == "GB"
    assert region_intensity("caiso").code == "US-CA"
    assert region_intensity("us_ca").code == "US-CA"
    assert region_intensity("ercot").code == "US-TX"
    # Known orderings that any correct table keeps: hydro/nuclear grids far below coal grids.
    assert (
        region_intensity("FR").g_per_kwh < region_intensity("DE").g_per_kwh < region_intensity("PL").g_per_kwh
    )
    assert region_intensity("NO").g_per_kwh < 100 < region_intensity("IN").g_per_kwh


def test_unknown_region_error_lists_close_matches() -> None:
    with pytest.raises(ScenarioError) as err:
        region_intensity("NLL")
    msg = str(err.value)
    assert "\n" not in msg and "'NLL'" in msg
    assert "close matches: NL" in msg and "see `kavier library --kind regions`" in msg
    with pytest.raises(ScenarioError, match="kavier library --kind regions"):
        region_intensity("atlantis")


needs_shared = pytest.mark.skipif(
    not (SHARED_DATA / "carbon" / "opendc_2022_NL.parquet").is_file(), reason="shared data absent"
)


@needs_shared
@pytest.mark.parametrize("region", ["NL", "DE", "FR", "BE"])
def test_real_trace_year_mean_matches_its_values(region: str) -> None:
    path = SHARED_DATA / "carbon" / f"opendc_2022_{region}.parquet"
    s = load_carbon_trace(path)
    raw = pq.read_table(path).column("carbon_intensity").to_numpy()
    assert len(s) == raw.size and np.all(np.diff(s.times_s) > 0)
    assert datetime.fromtimestamp(s.start_s, tz=UTC) == datetime(2022, 1, 1, tzinfo=UTC)
    # Hourly means over the covered part of 2022, then their average: within 1 % of the arithmetic
    # mean of the trace's own values (exact when the steps are even; FR has one 2-hour gap).
    nbins = int((s.end_s - s.start_s) // 3600)
    hourly = s.interval_means(s.start_s, 3600.0, nbins)
    assert hourly.mean() == pytest.approx(raw.mean(), rel=0.01)
    assert s.mean() == pytest.approx(raw.mean(), rel=0.01)
    # Daily means bracket the data.
    daily = s.interval_means(s.start_s, 86400.0, nbins // 24)
    assert raw.min() <= daily.min() and daily.max() <= raw.max()


@needs_shared
def test_real_nl_trace_coverage_and_wrap() -> None:
    path = SHARED_DATA / "carbon" / "opendc_2022_NL.parquet"
    s = load_carbon_trace(path)
    jan_2023 = datetime(2023, 1, 1, tzinfo=UTC).timestamp()
    with pytest.raises(
        ScenarioError, match=r"covers 2022-01-01T00:00Z\.\.2022-12-31T00:00Z but the run spans"
    ):
        check_coverage(s, jan_2023, jan_2023 + 3600, "carbon trace", path)
    w = load_carbon_trace(path, wrap=True)
    check_coverage(w, jan_2023, jan_2023 + 3600, "carbon trace", path)
    a = w.interval_means(s.start_s + 12345.0, 60.0, 500)
    b = w.interval_means(s.start_s + 12345.0 + 3 * w.period_s, 60.0, 500)
    np.testing.assert_allclose(a, b, rtol=1e-9)
    assert math.isclose(w.period_s, s.end_s - s.start_s)
