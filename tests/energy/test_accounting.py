"""``kavier.energy.accounting``: energy as the exact integral of power, PUE and carbon per interval."""

import numpy as np
import pytest

import kavier
from tests.energy.helpers import IDLE, MAX, one_request, write_trace


def test_one_request_energy_by_hand():
    r = one_request(power_model="linear", export_rate=0.05, carbon_intensity=300.0, pue=1.25)
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
        kavier.simulate(requests=req, gpus=2, power_model=model, export_rate=rate).summary["energy_it_j"]
        for rate in (0.01, 0.7, 1.0, 300.0)
    ]
    assert max(energies) - min(energies) <= 1e-9 * max(energies)


def test_idle_gpus_draw_idle_power_for_the_whole_run():
    req = {"num_input_tokens": [10, 10], "num_output_tokens": [1, 1], "arrival_s": [0.0, 1000.0]}
    r = kavier.simulate(requests=req, gpus=4, gpu_idle_w=IDLE, gpu_max_w=MAX, export_rate=10.0)
    end = r.summary["simulated_time_s"]
    ts = r.timeseries
    replica = ts.column("replica").to_numpy()
    energy = ts.column("energy_j").to_numpy()
    used = set(r.requests.column("replica").to_pylist())
    for g in set(range(4)) - used:
        assert energy[replica == g].sum() == pytest.approx(IDLE * end, rel=1e-12)
    assert r.summary["energy_it_j"] > 4 * IDLE * end


def test_carbon_trace_is_aligned_to_start_time_and_integrated_per_interval(tmp_path):
    trace = tmp_path / "c.parquet"
    start_ms = 1656633600000  # 2022-07-01T00:00:00Z
    write_trace(trace, start_ms, [100.0, 300.0, 500.0])
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
