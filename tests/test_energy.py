"""Power models, energy as the exact integral of power, carbon, PUE and cost, by hand."""

import math

import numpy as np
import pytest

import kavier
from kavier.energy.power import PowerModel

IDLE, MAX = 50.0, 250.0


@pytest.mark.parametrize(
    ("name", "u", "expected"),
    [
        ("constant", 0.3, MAX),
        ("linear", 0.3, IDLE + 200 * 0.3),
        ("square", 0.3, IDLE + 200 * 0.09),
        ("cubic", 0.3, IDLE + 200 * 0.027),
        ("sqrt", 0.25, IDLE + 200 * 0.5),
        ("mse", 0.5, IDLE + 200 * (1.0 - 0.5**1.4)),
        ("asymptotic", 0.5, IDLE + 100 * (1.5 - math.exp(-0.5 / 0.3))),
        ("asymptotic-dvfs", 0.5, IDLE + 100 * (1.125 - math.exp(-0.125 / 0.3))),
    ],
)
def test_opendc_power_models(name, u, expected):
    model = PowerModel(name, IDLE, MAX)
    assert model.power_w(np.array([u]))[0] == pytest.approx(expected)
    if name != "constant":
        assert model.power_w(np.array([0.0]))[0] == pytest.approx(IDLE)


def test_activity_model_prefill_vs_decode_like_a_measured_h100():
    h100 = PowerModel("activity", 70.0, 700.0)
    prefill = h100.power_w(np.array([0.95]), np.array([1.0]), np.array([0.05]))[0]
    decode = h100.power_w(np.array([0.95]), np.array([0.007]), np.array([1.0]))[0]
    assert prefill == pytest.approx(700.0)
    assert 360 < decode < 400
    assert h100.power_w(np.array([0.0]), np.array([1.0]), np.array([1.0]))[0] == pytest.approx(70.0)


def _one_request(**kw):
    req = {"num_input_tokens": [1000], "num_output_tokens": [100], "arrival_s": [0.0]}
    return kavier.simulate(requests=req, preset="thesis", prefix_len=0, gpu_idle_w=IDLE, gpu_max_w=MAX, **kw)


def test_one_request_energy_by_hand():
    r = _one_request(power_model="linear", export_rate=0.05, carbon_intensity=300.0, pue=1.25)
    t_p = 1000 * 2 * 8e9 / (125e12 * 0.3) + 0.025
    t_d = 100 * 2 * 8e9 / (600e9 * 0.6)
    d = t_p + t_d
    # utilisation 0.5 in the first and last 0.2 s, 0.95 between
    util_seconds = 0.5 * 0.4 + 0.95 * (d - 0.4)
    energy = IDLE * d + (MAX - IDLE) * util_seconds
    s = r.summary
    assert s["simulated_time_s"] == pytest.approx(d)
    assert s["energy_it_j"] == pytest.approx(energy, rel=1e-12)
    assert s["energy_facility_j"] == pytest.approx(1.25 * energy, rel=1e-12)
    assert s["co2_operational_g"] == pytest.approx(1.25 * energy * 300.0 / 3.6e6, rel=1e-12)
    ts = r.timeseries
    energy_j = ts.column("energy_j").to_numpy()
    assert energy_j.sum() == pytest.approx(energy, rel=1e-12)
    assert np.allclose(energy_j, ts.column("power_w").to_numpy() * ts.column("interval_s").to_numpy())
    assert np.allclose(ts.column("co2_g").to_numpy(), energy_j * 1.25 * 300.0 / 3.6e6)
    assert s["avg_power_w"] == pytest.approx(energy / d)


@pytest.mark.parametrize("model", ["linear", "mse", "asymptotic", "activity", "cubic"])
def test_energy_does_not_depend_on_export_rate(model):
    rng = np.random.default_rng(3)
    req = {
        "num_input_tokens": rng.integers(1, 4000, 60),
        "num_output_tokens": rng.integers(1, 300, 60),
        "arrival_s": np.cumsum(rng.exponential(8.0, 60)),
    }
    energies = [
        kavier.simulate(requests=req, prefix_len=0, gpus=2, power_model=model, export_rate=rate).summary[
            "energy_it_j"
        ]
        for rate in (0.01, 0.7, 1.0, 300.0)
    ]
    assert max(energies) - min(energies) <= 1e-9 * max(energies)


def test_idle_gpus_draw_idle_power_for_the_whole_run():
    req = {"num_input_tokens": [10, 10], "num_output_tokens": [1, 1], "arrival_s": [0.0, 1000.0]}
    r = kavier.simulate(requests=req, prefix_len=0, gpus=4, gpu_idle_w=IDLE, gpu_max_w=MAX, export_rate=10.0)
    end = r.summary["simulated_time_s"]
    ts = r.timeseries
    replica = ts.column("replica").to_numpy()
    energy = ts.column("energy_j").to_numpy()
    used = set(r.requests.column("replica").to_pylist())
    for g in set(range(4)) - used:
        assert energy[replica == g].sum() == pytest.approx(IDLE * end, rel=1e-12)
    assert r.summary["energy_it_j"] > 4 * IDLE * end


def test_cost_and_embodied_carbon():
    r = _one_request(
        gpu_price_per_hour=3.6, energy_price_per_kwh=0.2, gpu_lifetime_years=4, token_price_per_mtok="1,2"
    )
    s = r.summary
    hours = s["simulated_time_s"] / 3600
    assert s["cost_gpu_usd"] == pytest.approx(3.6 * hours)
    assert s["cost_energy_usd"] == pytest.approx(s["energy_facility_j"] / 3.6e6 * 0.2)
    assert s["cost_total_usd"] == pytest.approx(s["cost_gpu_usd"] + s["cost_energy_usd"])
    from kavier.library.catalog import load_catalog

    embodied = load_catalog().gpu("A10").embodied_co2_g
    assert s["co2_embodied_g"] == pytest.approx(embodied * s["simulated_time_s"] / (4 * 365.25 * 86400))
    assert s["usd_per_mtok"] == pytest.approx(s["cost_total_usd"] / (1100 / 1e6))
    assert s["wh_per_mtok"] == pytest.approx(s["energy_facility_j"] / 3600 / (1100 / 1e6))
    assert s["joules_per_output_token"] == pytest.approx(s["energy_facility_j"] / 100)
    assert s["revenue_usd"] == pytest.approx(1000 / 1e6 * 1 + 100 / 1e6 * 2)


def test_pue_below_one_is_rejected():
    from kavier.errors import ScenarioError

    with pytest.raises(ScenarioError, match="PUE"):
        kavier.build_scenario(overrides={"pue": 0.9})


def test_region_and_default_intensity():
    nl = _one_request(region="NL").summary
    from kavier.energy.carbon import region_intensity

    expected = region_intensity("NL").g_per_kwh
    assert nl["carbon_intensity_mean_g_per_kwh"] == pytest.approx(expected)
    default = _one_request().summary
    assert default["carbon_intensity_mean_g_per_kwh"] == pytest.approx(480.0)


def _write_trace(path, start_ms, values, step_ms=3_600_000):
    import pyarrow as pa
    import pyarrow.parquet as pq

    stamps = start_ms + np.arange(len(values), dtype=np.int64) * step_ms
    pq.write_table(pa.table({"timestamp": stamps, "carbon_intensity": np.asarray(values, float)}), path)


def test_carbon_trace_is_aligned_to_start_time_and_integrated_per_interval(tmp_path):
    trace = tmp_path / "c.parquet"
    start_ms = 1656633600000  # 2022-07-01T00:00:00Z
    _write_trace(trace, start_ms, [100.0, 300.0, 500.0])
    # one long request spanning the first two hours: 40,000 output tokens at 44.4 ms
    req = {"num_input_tokens": [10], "num_output_tokens": [120_000], "arrival_s": [0.0]}
    r = kavier.simulate(
        requests=req,
        preset="thesis",
        prefix_len=0,
        carbon_trace=str(trace),
        export_rate=600.0,
        start_time="2022-07-01T00:00:00Z",
        power_model="constant",
    )
    ts = r.timeseries
    t = ts.column("time_s").to_numpy()
    intensity = ts.column("carbon_intensity_g_per_kwh").to_numpy()
    assert np.allclose(intensity[t < 3600], 100.0, rtol=1e-9)
    assert np.allclose(intensity[(t >= 3600) & (t < 7200)], 300.0, rtol=1e-9)
    energy = ts.column("energy_j").to_numpy()
    assert r.summary["co2_operational_g"] == pytest.approx(np.sum(energy * intensity) / 3.6e6)


def test_carbon_trace_must_cover_the_run_unless_wrapped(tmp_path):
    from kavier.errors import ScenarioError

    trace = tmp_path / "c.parquet"
    _write_trace(trace, 1656633600000, [100.0, 300.0])
    req = {"num_input_tokens": [10], "num_output_tokens": [200_000], "arrival_s": [0.0]}
    with pytest.raises(ScenarioError, match="carbon-trace-wrap"):
        kavier.simulate(
            requests=req,
            preset="thesis",
            prefix_len=0,
            carbon_trace=str(trace),
            start_time="2022-07-01T00:00:00Z",
        )
    wrapped = kavier.simulate(
        requests=req,
        preset="thesis",
        prefix_len=0,
        carbon_trace=str(trace),
        carbon_trace_wrap=True,
        start_time="2022-07-01T00:00:00Z",
        export_rate=3600.0,
    )
    intensity = wrapped.timeseries.column("carbon_intensity_g_per_kwh").to_numpy()
    assert np.allclose(intensity[:3], [100.0, 300.0, 100.0], rtol=1e-9)


def test_real_opendc_trace_nl(shared_data):
    trace = shared_data / "carbon" / "opendc_2022_NL.parquet"
    r = _one_request(carbon_trace=str(trace), start_time="2022-03-01T12:00:00Z")
    assert 50 < r.summary["carbon_intensity_mean_g_per_kwh"] < 800


def test_opendc_bundle_and_compare(tmp_path):
    import json

    from kavier.report.compare import compare

    folders = []
    for name, prefix in (("base", 0), ("cached", 1024)):
        s = kavier.build_scenario(
            overrides={
                "preset": "thesis",
                "num_sessions": 12,
                "prefix_len": prefix,
                "power_model": "mse",
                "output_folder": str(tmp_path / name),
            }
        )
        folder, _ = kavier.run_to_folder(s)
        folders.append(folder)
    topo = json.loads((folders[0] / "opendc" / "topology.json").read_text())
    host = topo["clusters"][0]["hosts"][0]
    assert host["gpuPowerModel"]["modelType"] == "mse"
    assert host["gpuPowerModel"]["idlePower"] == load_a10().idle_power_w
    experiment = json.loads((folders[0] / "opendc" / "experiment.json").read_text())
    assert experiment["topologies"][0]["pathToFile"] == "opendc/topology.json"
    assert (folders[0] / "opendc" / "carbon.parquet").is_file()
    result = compare(folders)
    base, cached = result.summaries
    assert result.ratio("usd_per_mtok", 1) == pytest.approx(cached["usd_per_mtok"] / base["usd_per_mtok"])
    assert result.ratio("gco2_per_mtok", 1) < 1.0  # caching saves prefill energy


def load_a10():
    from kavier.library.catalog import load_catalog

    return load_catalog().gpu("A10")
